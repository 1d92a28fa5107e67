#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: load_vars
short_description: Load an envelope vars file (KMS-encrypted values) as variables in a task
version_added: 0.2.0
description:
  - Loads one envelope vars file (written by M(envelope.kms.vars_file)) in a task, like
    M(ansible.builtin.include_vars) loads a plain one, and sets its keys as variables of the host.
    Encrypted values are decrypted on the controller; clear values are kept as they are.
  - All values of a file share one data key, so a file costs one KMS C(Decrypt), whatever the number
    of values. Ansible runs a task once per host, each in its own worker process, and this action's
    cache lives in that process. Add C(run_once=true) to decrypt once for all the play's hosts (the
    values are then set on every host), or load files with the P(envelope.kms.vars#vars) plugin,
    which decrypts each file once per playbook run.
  - The same checks as M(envelope.kms.decrypt) apply to every value (the required
    O(encryption_context) pairs, the allowed keys or accounts). Each value is also bound to its key
    path, and all values must share the file's data key, so moved or swapped values fail with one
    line naming the file and the key.
  - The result is always C(no_log); decrypted values are never templated again.
  - Precedence is that of host facts, not of M(ansible.builtin.include_vars) (which ansible-core
    treats specially by name), so play C(vars) override these values. Ansible drops keys that are
    connection variables (C(ansible_become_password), ...) with a warning, and with
    C(inject_facts_as_vars=false) the values are only under C(ansible_facts). The
    P(envelope.kms.vars#vars) plugin has none of these limits.
author:
  - envelope.kms developers (!UNKNOWN)
options:
  file:
    description:
      - The envelope vars file. A relative path is searched like M(ansible.builtin.include_vars)
        searches it (the role's C(vars/) folder, then the playbook's folder).
    type: str
    required: true
  name:
    description:
      - Put the file's variables under this one variable instead of at the top level.
    type: str
  allow_fact_cache:
    description:
      - The values become host facts. With a persistent fact cache (C(fact_caching) other than
        C(memory), such as C(jsonfile) or C(redis)) that cache would store the decrypted values, so
        the task fails unless this is V(true).
    type: bool
    default: false
extends_documentation_fragment:
  - envelope.kms.attributes.CONTROLLER_ACTION
  - envelope.kms.decrypt_policy
  - envelope.kms.decrypt_policy.keys
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
attributes:
  check_mode:
    description: Reads and decrypts in check mode too (nothing is changed).
    support: full
  diff_mode:
    description: Nothing changes, so there is no diff.
    support: none
requirements:
  - boto3, botocore and the aws-encryption-sdk Python library (3.3 or later) on the controller
notes:
  - Files of more than 16 MiB are refused.
seealso:
  - plugin: envelope.kms.vars
    plugin_type: vars
  - module: envelope.kms.vars_file
  - module: ansible.builtin.include_vars
"""

EXAMPLES = r"""
- name: Load the billing secrets for this play
  envelope.kms.load_vars:
    file: secrets/billing.kms.yml
    encryption_context:
      app: billing
  run_once: true

- name: Under one variable, from a key in another region
  envelope.kms.load_vars:
    file: dr.kms.yml
    name: dr_secrets
    region: eu-west-1
    allowed_key_arns:
      - arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab
"""

RETURN = r"""
ansible_facts:
  description: The file's variables (or O(name) holding them). Never shown, the result is C(no_log).
  returned: success
  type: dict
ansible_included_var_files:
  description: The path of the file loaded.
  returned: success
  type: list
  elements: str
  sample: [/srv/playbooks/secrets/billing.kms.yml]
"""
