#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: key_material
short_description: Import key material of your own into a KMS key with origin EXTERNAL, or delete it
version_added: 0.2.0
description:
  - Imports key material you generated (for example in your own HSM) into a symmetric encryption KMS key
    created without key material (M(envelope.kms.key) with O(envelope.kms.key#module:origin=EXTERNAL)),
    like C(aws kms get-parameters-for-import) followed by C(aws kms import-key-material), but
    idempotently. The material is wrapped on the host that runs the module (usually the controller,
    with C(delegate_to) or C(connection=local)), under the RSA public key KMS returns for this import.
  - With O(state=absent), deletes the imported key material (C(aws kms delete-imported-key-material)).
    The key becomes unusable at once and returns to state C(PendingImport) until the material is
    imported again.
  - Every option is checked before any call to KMS. The key is then read (DescribeKey); a key whose
    origin is not C(EXTERNAL) is refused in one line.
  - KMS never reveals the key material it holds, so the module cannot tell whether it equals
    O(key_material). A key that holds key material whose expiration (O(valid_to)) is the one asked for
    is left unchanged; use O(force=true) to import again anyway.
author:
  - envelope.kms developers (!UNKNOWN)
requirements:
  - cryptography (on the host that runs the module; the AWS Encryption SDK installs it)
options:
  key_id:
    description:
      - The key, as a key id, key ARN, alias name or alias ARN. An alias is resolved to the key it points at now.
      - Its origin must be C(EXTERNAL).
    type: str
    required: true
  state:
    description:
      - V(present) imports O(key_material) when the key holds none, when its expiration differs from
        O(valid_to), or with O(force=true).
      - V(absent) deletes the key material the key holds (DeleteImportedKeyMaterial). A key without key
        material, or pending deletion, is left unchanged. O(key_material) and O(valid_to) are not used.
    type: str
    choices: [present, absent]
    default: present
  key_material:
    description:
      - The key material, base64-encoded (whitespace is ignored), required with O(state=present).
      - For a symmetric encryption key (C(SYMMETRIC_DEFAULT)), the only kind this module imports into, it
        is a 256-bit key, 32 bytes once decoded. Another length, or text that is not base64, is refused
        before any call to KMS.
      - Never returned, logged or shown in a diff. Keep it in Ansible Vault or another secret store, and
        keep a copy, since KMS cannot give it back, and a key whose material was deleted or expired only works
        again once the same material is imported.
      - With O(force=false), a key that already holds key material is not compared with this one (KMS
        cannot), see the description.
    type: str
  wrapping_algorithm:
    description:
      - How the key material is protected in transit, under the RSA public key of GetParametersForImport.
      - V(RSAES_OAEP_SHA_256) and V(RSAES_OAEP_SHA_1) encrypt the material with RSA-OAEP.
        V(RSA_AES_KEY_WRAP_SHA_256) and V(RSA_AES_KEY_WRAP_SHA_1) wrap it with a fresh AES key (AES key wrap
        with padding) and encrypt that AES key with RSA-OAEP; they are not available in China Regions.
      - C(RSAES_PKCS1_V1_5) is not offered, KMS no longer supports it.
    type: str
    choices: [RSAES_OAEP_SHA_256, RSAES_OAEP_SHA_1, RSA_AES_KEY_WRAP_SHA_256, RSA_AES_KEY_WRAP_SHA_1]
    default: RSAES_OAEP_SHA_256
  wrapping_key_spec:
    description:
      - The size of the RSA public key KMS returns to wrap the material. AWS recommends the longest
        practical key, hence the default.
    type: str
    choices: [RSA_2048, RSA_3072, RSA_4096]
    default: RSA_4096
  valid_to:
    description:
      - When the imported key material expires, as an ISO 8601 date (V(2026-06-30), midnight UTC) or date
        and time (V(2026-06-30T12:00:00Z), V(2026-06-30T14:00:00+02:00); without an offset it is UTC).
      - It must be in the future and at most 365 days away (a KMS limit), checked before any call to KMS.
      - Not given, the key material does not expire (C(KEY_MATERIAL_DOES_NOT_EXPIRE)).
      - When it expires, KMS deletes the key material and the key is unusable until the same material is
        imported again. A different O(valid_to) (or leaving it out for material that expires) imports the
        material again with the new expiration.
    type: str
  force:
    description:
      - Import O(key_material) even when the key holds key material with the same expiration, for example
        after restoring the material from a backup.
      - KMS accepts only the key material the key held before (it refuses other material in a re-import);
        every run with V(true) imports again and reports a change.
    type: bool
    default: false
notes:
  - The key material and its base64 text never appear in results, warnings, errors or diffs; the option is
    C(no_log). KMS errors are reported with their code and message, which do not hold the material either.
  - Check mode reads the key (DescribeKey) and reports the change it would make, without asking KMS for an
    import token (GetParametersForImport) or importing or deleting anything.
  - A new key with origin C(EXTERNAL) is in state C(PendingImport), and M(envelope.kms.key) does not enable or
    disable it (O(envelope.kms.key#module:enabled) is no change to make then). After the import it is C(Enabled).
  - In check mode a task that would create a key returns its id as null. Given such a null O(key_id), or one
    that names no key, the module warns, naming the key, and reports the import it would make into a new key
    without key material. Outside check mode both are errors, before any change.
  - Importing new key material for on-demand rotation (ImportType C(NEW_KEY_MATERIAL)) and key material of
    asymmetric or HMAC keys are not supported.
extends_documentation_fragment:
  - envelope.kms.attributes
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Create a key for key material of our own
  envelope.kms.key:
    alias: alias/byok-secrets
    origin: EXTERNAL
  register: byok_key

- name: Import the key material (kept in Ansible Vault, base64-encoded)
  envelope.kms.key_material:
    key_id: alias/byok-secrets
    key_material: "{{ vault_byok_key_material_b64 }}"
  register: imported

- name: Import it with an expiration date, wrapped with RSA-AES key wrap under a 4096-bit key
  envelope.kms.key_material:
    key_id: "{{ byok_key.key_arn }}"
    key_material: "{{ vault_byok_key_material_b64 }}"
    wrapping_algorithm: RSA_AES_KEY_WRAP_SHA_256
    wrapping_key_spec: RSA_4096
    valid_to: "2026-06-30T00:00:00Z"

- name: Import the same key material again after restoring it from a backup (a change on every run)
  envelope.kms.key_material:
    key_id: alias/byok-secrets
    key_material: "{{ vault_byok_key_material_b64 }}"
    force: true

- name: Make the key unusable at once by deleting its key material (import it again to restore it)
  envelope.kms.key_material:
    key_id: alias/byok-secrets
    state: absent
"""

RETURN = r"""
key_id:
  description: The key id. Null in check mode for a key that is not known yet, see the notes.
  returned: always
  type: str
  sample: 1234abcd-12ab-34cd-56ef-1234567890ab
key_arn:
  description: The key ARN. Null in check mode for a key that is not known yet, see the notes.
  returned: always
  type: str
  sample: arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab
key_state:
  description:
    - The key state after the task, C(Enabled) once key material is imported, C(PendingImport) without it.
    - In check mode, the state the change would leave.
  returned: always
  type: str
  sample: Enabled
imported:
  description: Whether the key holds key material after the task (in check mode, would hold).
  returned: always
  type: bool
  sample: true
expiration_model:
  description: C(KEY_MATERIAL_EXPIRES) or C(KEY_MATERIAL_DOES_NOT_EXPIRE); null when the key holds no key material.
  returned: always
  type: str
  sample: KEY_MATERIAL_EXPIRES
valid_to:
  description: When the key material expires (ISO 8601); null when it does not, or when there is none.
  returned: always
  type: str
  sample: "2026-06-30T00:00:00+00:00"
"""

import datetime

from ansible.module_utils.basic import missing_required_lib
from ansible.module_utils.common.warnings import warn

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.envelope.kms.plugins.module_utils.errors import module_errors
from ansible_collections.envelope.kms.plugins.module_utils.key_material import (
    CRYPTOGRAPHY_IMPORT_ERROR,
    DEFAULT_WRAPPING_ALGORITHM,
    DEFAULT_WRAPPING_KEY_SPEC,
    HAS_CRYPTOGRAPHY,
    IMPORT,
    NEW_KEY,
    WRAPPING_ALGORITHMS,
    WRAPPING_KEY_SPECS,
    decode_key_material,
    delete_key_material,
    import_key_material,
    material_state,
    parse_valid_to,
    plan_material,
)
from ansible_collections.envelope.kms.plugins.module_utils.kms import (
    describe_key,
    find_key,
    kms_client,
    required_key_ref,
)


def checked_options(module):
    """(key reference or None, key material bytes or None, valid_to), before any call to KMS."""
    params, present = module.params, module.params["state"] == "present"
    with module_errors(module, "Invalid options"):
        material = decode_key_material(params["key_material"]) if present else None
        valid_to = parse_valid_to(params["valid_to"], datetime.datetime.now(datetime.timezone.utc)) if present else None
        key_ref = required_key_ref(params["key_id"], "key_id is required (it is null or empty)", module.check_mode)
    return key_ref, material, valid_to


def apply_plan(module, client, metadata, action, material, valid_to):
    """Import or delete the key material; the key's metadata after it."""
    arn, params = metadata["Arn"], module.params
    if action == IMPORT:
        with module_errors(module, f"Could not import key material into key {arn}"):
            import_key_material(client, arn, material, params["wrapping_algorithm"], params["wrapping_key_spec"], valid_to)
    else:
        with module_errors(module, f"Could not delete the imported key material of key {arn}"):
            delete_key_material(client, arn)
    with module_errors(module, f"Could not read key {arn} back"):
        return describe_key(client, arn) or metadata


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            key_id=dict(type="str", required=True, no_log=False),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            key_material=dict(type="str", no_log=True),
            wrapping_algorithm=dict(type="str", choices=WRAPPING_ALGORITHMS, default=DEFAULT_WRAPPING_ALGORITHM),
            wrapping_key_spec=dict(type="str", choices=WRAPPING_KEY_SPECS, default=DEFAULT_WRAPPING_KEY_SPEC,
                                   no_log=False),
            valid_to=dict(type="str"),
            force=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    if module.params["state"] == "present" and not HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib("cryptography"), exception=CRYPTOGRAPHY_IMPORT_ERROR)
    key_ref, material, valid_to = checked_options(module)

    client = kms_client(module)
    with module_errors(module, f"Could not read key {key_ref}"):
        # ansible-core's warn(), not module.warn(): see key_rotation.py
        metadata = find_key(client, key_ref, "key_id", module.check_mode, warn, f"Key {key_ref} does not exist")
        metadata = metadata or NEW_KEY
        plan = plan_material(metadata, module.params["state"], valid_to, module.params["force"])

    after = plan.after
    if plan.action and not module.check_mode:
        after = material_state(apply_plan(module, client, metadata, plan.action, material, valid_to))
    result = dict(
        changed=bool(plan.action),
        key_id=metadata["KeyId"],
        key_arn=metadata["Arn"],
        key_state=after["key_state"],
        imported=after["state"] == "present",
        expiration_model=after["expiration_model"],
        valid_to=after["valid_to"],
    )
    if module._diff:
        result["diff"] = dict(before=plan.before, after=after)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
