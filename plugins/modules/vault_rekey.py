#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vault_rekey
short_description: Rekey every ansible-vault file and inline !vault value under a tree to a KMS-held vault password
version_added: 0.2.0
description:
  - Moves a repository's ansible-vault content to the password that a KMS envelope holds (the one the
    C(envelope-kms-client) vault password client prints, see the C(envelope.kms.vault_password)
    playbook) in one task. C(ansible-vault rekey) works one file at a time and does not know inline
    values.
  - Handles whole-file vaults and inline C(!vault |) values in YAML files. Every vault payload is
    decrypted with the vault secrets given to the run (C(--vault-id old@prompt), C(--vault-password-file))
    and encrypted again with the new password under the vault id O(vault_id). Every other byte of a
    file is kept. A payload already under O(vault_id) and the new password is left as it is, so a
    re-run changes nothing.
  - All or nothing per file, and nothing before everything is ready. Every file is read and rekeyed
    in memory first; if any file cannot be (a payload no given secret opens, a malformed payload, an
    inline value that is not a block scalar), the task fails naming each, and no file is changed.
    Then each changed file is written to a temp file beside it and renamed over it, keeping its mode.
  - Plaintext stays in memory. The results name files and counts only.
  - The new password is read as C(envelope-kms-client) reads it, with its AWS settings (the
    environment, then C(region), C(profile) and C(endpoint_url) in C([envelope_kms_vault])) unless
    the task gives AWS options of its own.
  - Refused for the whole file, and so for the task (nothing written), a file holding vault payloads
    other than C(!vault |) block values (JSON C(__ansible_vault) values, flow style, vault text inside
    another value). M(envelope.kms.vars_file) with O(envelope.kms.vars_file#module:src) converts those.
author:
  - envelope.kms developers (!UNKNOWN)
options:
  paths:
    description:
      - Files and glob patterns on the controller (C(*), C(?), C([...]), C(**) for any depth), relative
        to the playbook's folder, such as V(inventory/**/*.yml). Files without vault content are
        left alone and not listed in RV(files).
      - C(**) does not enter links to directories nor hidden directories; at most 10000 files.
    type: list
    elements: str
    required: true
  vault_id:
    description:
      - The vault id (label) of the new password, such as V(prod). The payloads are written with it
        (C($ANSIBLE_VAULT;1.2;AES256;prod)), so C(--vault-id prod@envelope-kms-client) opens them.
    type: str
    required: true
  envelope:
    description:
      - The KMS envelope file holding the new password. Defaults to where C(envelope-kms-client) looks for
        O(vault_id)'s (E(ENVELOPE_KMS_VAULT_PASSWORD_FILE), C(password_file) in the
        C([envelope_kms_vault]) section of ansible.cfg, else C(vault-passwords/<vault_id>.enc) beside
        the inventory). Its encryption context must be C(ansible-vault-id=<vault_id>).
    type: path
  allowed_key_arns:
    description:
      - Only these KMS key ARNs may unwrap the envelope. Defaults to what C(envelope-kms-client)
        allows (E(ENVELOPE_KMS_VAULT_ALLOWED_KEY_ARNS), C(allowed_key_arns) in C([envelope_kms_vault]));
        without either, any key the credentials may use. Set it when the envelope is committed to
        the repository, so a replaced envelope under someone else's key is refused.
    type: list
    elements: str
extends_documentation_fragment:
  - envelope.kms.attributes.CONTROLLER_ACTION
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
attributes:
  check_mode:
    description: Decrypts and re-encrypts in memory and reports what would change; writes nothing.
    support: full
  diff_mode:
    description: No diff; RV(rekeyed) lists the files.
    support: none
requirements:
  - boto3, botocore and the aws-encryption-sdk Python library (3.3 or later) on the controller
seealso:
  - module: envelope.kms.vars_file
  - name: Moving from ansible-vault (README)
    description: The vault password client, rekey and migration to envelope vars files.
    link: https://github.com/envelope/kms/blob/main/README.md#moving-from-ansible-vault
"""

EXAMPLES = r"""
# ansible-playbook --vault-id old@prompt rekey.yml
- name: Rekey the whole repository to the KMS-held password of vault id prod
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Rekey
      envelope.kms.vault_rekey:
        paths:
          - inventory/**/*.yml
          - vars/*.yml
        vault_id: prod
      register: rekey

    - name: Show the files changed
      ansible.builtin.debug:
        var: rekey.rekeyed
"""

RETURN = r"""
vault_id:
  description: The vault id the payloads are written with.
  returned: always
  type: str
  sample: prod
envelope:
  description: The envelope file the new password was read from.
  returned: always
  type: str
rekeyed:
  description: The files changed (or, in check mode, that would be).
  returned: always
  type: list
  elements: str
values_rekeyed:
  description: How many vault payloads were re-encrypted.
  returned: always
  type: int
files:
  description: Each file with vault content.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The file, as matched.
      type: str
    kind:
      description: V(file) for a whole-file vault, V(inline) for a YAML file with C(!vault) values.
      type: str
    values:
      description: Vault payloads in the file.
      type: int
    rekeyed:
      description: Payloads re-encrypted (the others were already under the new password).
      type: int
    changed:
      description: Whether the file changed.
      type: bool
"""
