#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: key_version
short_description: Work out which key version of a lifecycle to use, and whether a manual rotation is due
version_added: 0.1.0
description:
  - Reads, without changing anything, the key versions that the C(envelope.kms.lifecycle) role manages and
    decides which one to use. Key version V(N) of lifecycle O(name) is the key behind
    C(alias/<name>-v<N>); C(alias/<name>) points at the current one; a manual rotation tags the version it
    makes with C(envelope-kms-rotation=<rotation_id>). KMS holds all the state.
  - Without O(rotate), the current version is used, or version V(1) when there is none yet (RV(rotation=none)).
  - With O(rotate), the version tagged with O(rotation_id) is used when it is the current one or the next one
    (RV(rotation=resume)); an older version with that tag means a later rotation superseded this one
    (RV(rotation=superseded), the current version is kept); otherwise a new version V(N+1) is due (RV(rotation=new)).
  - Fails when C(alias/<name>) points at a key without a C(alias/<name>-v<N>) alias, and when the next version
    C(alias/<name>-v<N+1>) exists but was made by another rotation (RV(rotation=blocked), returned with the failure).
  - Costs one C(ListAliases) for the account (one request per page of aliases), then one C(ListResourceTags) for the
    current key and, during a rotation, for the next version or for older versions until one carries O(rotation_id).
author:
  - envelope.kms developers (!UNKNOWN)
options:
  name:
    description:
      - The lifecycle name, without the C(alias/) prefix. It names the aliases C(alias/<name>) and C(alias/<name>-v<N>).
    type: str
    required: true
  rotate:
    description:
      - Whether a manual rotation is asked for.
    type: bool
    default: false
  rotation_id:
    description:
      - Identifies the manual rotation, one rotation per id, like C(lifecycle_rotation_id) of the role.
      - Required when O(rotate=true).
    type: str
extends_documentation_fragment:
  - envelope.kms.attributes.INFO_MODULE
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Which key version of the billing secrets is current
  envelope.kms.key_version:
    name: billing
  register: billing_version

- name: Show it
  ansible.builtin.debug:
    msg: "{{ billing_version.version_alias }} (version {{ billing_version.version }})"

- name: Plan the rotation of this quarter
  envelope.kms.key_version:
    name: billing
    rotate: true
    rotation_id: 2025-q3
  register: billing_rotation

- name: Create the key version it names
  envelope.kms.key:
    alias: "{{ billing_rotation.version_alias }}"
    tags: "{{ billing_rotation.key_tags }}"
  when: billing_rotation.rotation != 'superseded'
"""

RETURN = r"""
rotation:
  description:
    - V(none) without O(rotate); V(new) when a new version is due; V(resume) when O(rotation_id) made the current
      or the next version; V(superseded) when it made an older one; V(blocked) (with the failure) when another
      rotation made the next one.
  returned: always
  type: str
  sample: new
version:
  description: The number of the key version to use (V(1) when there is none yet).
  returned: always
  type: int
  sample: 3
version_alias:
  description: The alias of that version, C(alias/<name>-v<version>).
  returned: always
  type: str
  sample: alias/billing-v3
alias:
  description: The stable alias, C(alias/<name>).
  returned: always
  type: str
  sample: alias/billing
tags:
  description:
    - The tags of the version kept (the current one, or the next one when it is resumed); empty for a new or
      blocked version.
  returned: always
  type: dict
  sample: {"envelope-kms-lifecycle": "billing", "envelope-kms-version": "2", "envelope-kms-rotation": "2025-q2"}
key_tags:
  description:
    - The tags the lifecycle role sets on the key version, C(envelope-kms-lifecycle), C(envelope-kms-version), and
      C(envelope-kms-rotation) when the version belongs to a rotation (O(rotation_id) for a new one).
  returned: always
  type: dict
  sample: {"envelope-kms-lifecycle": "billing", "envelope-kms-version": "3", "envelope-kms-rotation": "2025-q3"}
other:
  description:
    - The C(envelope-kms-rotation) tag of the next version C(alias/<name>-v<N+1>) when it was read (during a rotation
      that is not the current version's), otherwise empty. When RV(rotation=blocked), the rotation to finish first.
  returned: always
  type: str
  sample: 2025-q2
current_version:
  description: The number of the current version (the highest C(alias/<name>-v<N>) of the key behind C(alias/<name>)), V(0) when there is none.
  returned: always
  type: int
  sample: 2
current:
  description: The key behind C(alias/<name>), null when that alias does not exist.
  returned: always
  type: dict
  contains:
    key_id:
      description: The key id.
      type: str
      returned: always
      sample: 1234abcd-12ab-34cd-56ef-1234567890ab
    key_arn:
      description: The key ARN.
      type: str
      returned: always
      sample: arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab
    tags:
      description: The key's tags; null when they could not be read.
      type: dict
      returned: always
      sample: {"envelope-kms-lifecycle": "billing", "envelope-kms-version": "2"}
    aliases:
      description: The full names of the aliases that point at the key, sorted.
      type: list
      elements: str
      returned: always
      sample: [alias/billing, alias/billing-v2]
"""

from ansible.module_utils.common.warnings import warn

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.envelope.kms.plugins.module_utils.errors import module_errors
from ansible_collections.envelope.kms.plugins.module_utils.key_version import (
    BLOCKED,
    blocked_message,
    check_name,
    check_rotation_id,
    key_version_result,
    plan_key_version,
    read_key_version,
)
from ansible_collections.envelope.kms.plugins.module_utils.kms import kms_client


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            rotate=dict(type="bool", default=False),
            rotation_id=dict(type="str"),
        ),
        required_if=[("rotate", True, ["rotation_id"])],
        supports_check_mode=True,
    )
    name, rotate, rotation_id = module.params["name"], module.params["rotate"], module.params["rotation_id"]
    client = kms_client(module)
    with module_errors(module, f"Could not read the key versions of {name}"):
        check_name(name)
        check_rotation_id(rotate, rotation_id)
        # ansible-core's warn, not module.warn: see key_rotation.py
        inputs = read_key_version(client, name, rotate, rotation_id, warn)
        plan = plan_key_version(name, rotate, rotation_id, **inputs)

    result = key_version_result(name, rotation_id, inputs, plan)
    if plan["rotation"] == BLOCKED:
        module.fail_json(msg=blocked_message(name, rotation_id, plan), **result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
