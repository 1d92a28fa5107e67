#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: alias
short_description: Create, re-point or delete a KMS alias
version_added: 0.1.0
description:
  - Makes a KMS alias point at a customer managed key, like C(aws kms create-alias) and
    C(aws kms update-alias), but idempotently.
  - Re-pointing an existing alias to a new key is the manual key rotation of the AWS documentation.
    The key the alias pointed to before is returned as RV(previous_target_key_id) so a playbook can
    keep it enabled while ciphertext under it still exists.
  - A key can carry several aliases; run the module once per alias.
author:
  - envelope.kms developers (!UNKNOWN)
options:
  name:
    description:
      - The alias name. The C(alias/) prefix is optional.
      - Names starting with C(alias/aws/) are reserved for AWS managed keys and are refused.
    type: str
    required: true
    aliases: [alias]
  target_key_id:
    description:
      - The key the alias must point at, as a key id, key ARN, alias name or alias ARN.
      - An alias given here is resolved to the key it points at now.
      - Required when O(state=present).
    type: str
    aliases: [key_id]
  state:
    description:
      - V(present) creates the alias or re-points it; V(absent) deletes it (the key is untouched).
    type: str
    choices: [present, absent]
    default: present
notes:
  - In check mode a task that would create a key returns its id as null. Given such a null
    O(target_key_id), or one that names no key (for instance an alias an earlier task only
    predicted), the module reports the alias as created or re-pointed, with a warning naming the key,
    instead of failing. Outside check mode both are errors, before any change.
extends_documentation_fragment:
  - envelope.kms.attributes
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Give a key a friendly name
  envelope.kms.alias:
    name: alias/app-secrets
    target_key_id: "{{ new_key.key_id }}"

- name: Manual rotation, re-point the alias to the next key
  envelope.kms.alias:
    name: app-secrets
    target_key_id: alias/app-secrets-v2
  register: rotated

- name: Show which key the alias used before
  ansible.builtin.debug:
    msg: "Keep {{ rotated.previous_target_key_id }} enabled until every file is rewrapped"

- name: Remove an alias
  envelope.kms.alias:
    name: alias/old-name
    state: absent
"""

RETURN = r"""
name:
  description: The full alias name.
  returned: always
  type: str
  sample: alias/app-secrets
alias_arn:
  description: The alias ARN (when the alias exists or would exist).
  returned: when known
  type: str
  sample: arn:aws:kms:us-east-1:123456789012:alias/app-secrets
target_key_id:
  description:
    - The key id the alias points at after the task (null once deleted).
    - Null in check mode when the target key is not known yet, see the notes.
  returned: always
  type: str
  sample: 0987dcba-09fe-87dc-65ba-ab0987654321
target_key_arn:
  description: The ARN of that key (null when RV(target_key_id) is).
  returned: always
  type: str
  sample: arn:aws:kms:us-east-1:123456789012:key/0987dcba-09fe-87dc-65ba-ab0987654321
previous_target_key_id:
  description: The key id the alias pointed at before the task (null if it did not exist).
  returned: always
  type: str
  sample: 6fa6043b-2fd4-433b-83a5-3f4193d7d1a6
"""

from ansible.module_utils.common.warnings import warn

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.envelope.kms.plugins.module_utils.aliases import alias_arn, apply_alias, plan_alias
from ansible_collections.envelope.kms.plugins.module_utils.errors import module_errors
from ansible_collections.envelope.kms.plugins.module_utils.kms import (
    KmsInputError,
    describe_key,
    find_key,
    kms_client,
    normalize_alias,
    required_key_ref,
)


def resolve_target(client, target_key_id, check_mode):
    """KeyMetadata of the target key; None in check mode for a key not known yet (with a warning
    naming it: null, as check mode predicts the id of a key an earlier task creates, or not found)."""
    # ansible-core's warn, not module.warn: see key_rotation.py
    target = find_key(client, target_key_id, "target_key_id", check_mode, warn,
                      f"Target key {target_key_id} does not exist")
    if target is not None and target.get("KeyManager") != "CUSTOMER":
        raise KmsInputError(f"Target key {target_key_id} is AWS managed: aliases can only point at customer managed keys")
    return target


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            name=dict(type="str", required=True, aliases=["alias"]),
            target_key_id=dict(type="str", aliases=["key_id"]),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        required_if=[("state", "present", ["target_key_id"])],
        supports_check_mode=True,
    )
    present = module.params["state"] == "present"
    with module_errors(module, "Invalid options"):
        name = normalize_alias(module.params["name"])
        target_ref = None
        if present:
            target_ref = required_key_ref(module.params["target_key_id"], "target_key_id is required with state=present "
                                          "(it is null or empty)", module.check_mode)
    client = kms_client(module)
    with module_errors(module, "Could not read the alias and its target key"):
        current = describe_key(client, name)
        desired = resolve_target(client, target_ref, module.check_mode) if present else None

    current_id = current["KeyId"] if current else None
    desired_id = desired["KeyId"] if desired else None
    action = plan_alias(module.params["state"], current_id, desired_id)
    if action and not module.check_mode:
        with module_errors(module, f"Could not {action} alias {name}"):
            apply_alias(client, action, name, desired_id)

    result = dict(
        changed=action is not None,
        name=name,
        alias_arn=alias_arn((desired or current or {}).get("Arn"), name),
        target_key_id=desired_id,
        target_key_arn=desired["Arn"] if desired else None,
        previous_target_key_id=current_id,
    )
    if module._diff:
        result["diff"] = dict(
            before={"name": name, "target_key_id": current_id} if current else {},
            after={"name": name, "target_key_id": desired_id} if present else {},
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
