#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: grant
short_description: Manage the grants of a KMS key by name
version_added: 0.2.0
description:
  - Makes a KMS key carry the grants the task lists, like C(aws kms create-grant),
    C(aws kms revoke-grant) and C(aws kms retire-grant), but idempotently.
  - A grant gives one principal (a host's IAM role, another account) the use of the key for some
    operations, optionally only when the request's encryption context equals, or includes, given
    pairs. With envelope.kms files that means a host role that can decrypt only the files whose
    context says C(app=billing).
  - Grants are identified by O(grants[].name). KMS cannot change a grant, so a listed grant whose
    grantee, retiring principal, operations or constraints differ from the task is replaced, the new
    grant being created before the old one is removed. RV(created) and RV(removed) say why.
  - Every option is checked before the first KMS call (names, operations, constraint types, their
    size, and operations a constraint cannot govern), so a bad entry changes nothing.
  - KMS grants are eventually consistent, a new grant can take a few seconds to be usable
    everywhere. RV(created[].grant_token) lets the grantee use it at once (GrantTokens).
author:
  - envelope.kms developers (!UNKNOWN)
options:
  key_id:
    description:
      - The key whose grants to manage, as a key id, key ARN, alias name or alias ARN.
    type: str
    required: true
    aliases: [key_arn]
  grants:
    description:
      - The grants the key must (or must not) carry. Names are unique within the list.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description:
          - The grant's name, 1 to 256 letters, digits, V(:), V(/), V(_) or V(-).
          - KMS itself allows several grants with one name. Here a name stands for one grant, and
            extra grants of a listed name are removed.
        type: str
        required: true
      grantee_principal:
        description:
          - The principal that gets the permissions, an IAM role or user ARN, an account ARN
            (C(arn:aws:iam::111122223333:root)) or an AWS service principal that KMS accepts.
          - Required when O(grants[].state=present).
        type: str
      retiring_principal:
        description:
          - The principal that may retire the grant (RetireGrant), besides the grantee when the
            grant allows C(RetireGrant).
        type: str
      operations:
        description:
          - The operations the grant allows, as KMS names them (C(Decrypt), C(Encrypt),
            C(GenerateDataKey), C(ReEncryptFrom), C(ReEncryptTo), C(DescribeKey),
            C(RetireGrant), C(CreateGrant) and the others of the KMS API reference).
          - The order does not matter. Required when O(grants[].state=present).
          - A grant for a host that decrypts envelope.kms files needs C(Decrypt); one that writes
            them needs C(GenerateDataKey) and C(Encrypt) (several keys per file).
        type: list
        elements: str
      constraints:
        description:
          - Allow the cryptographic operations only when the request's encryption context matches.
          - One of the two types per grant, with up to 8 pairs of at most 384 characters each.
          - KMS compares the keys of the pairs without case and the values with case.
          - A constraint applies to operations that take an encryption context. V(DescribeKey),
            V(RetireGrant) and V(CreateGrant) may sit beside it, other operations cannot.
        type: dict
        suboptions:
          encryption_context_equals:
            description:
              - The request's encryption context must be exactly these pairs.
              - Files under a signing algorithm suite (the ESDK's default outside this collection) carry one more
                pair, C(aws-crypto-public-key), in the context the SDK sends to KMS, so an equals constraint
                without it never matches them; use O(grants[].constraints.encryption_context_subset) for those.
            type: dict
          encryption_context_subset:
            description:
              - The request's encryption context must include these pairs (and may hold more).
              - The usual choice for envelope.kms files, whose context often carries more pairs.
            type: dict
      state:
        description:
          - V(absent) removes every grant of the key with this name; only O(grants[].name) is needed.
        type: str
        choices: [present, absent]
        default: present
  purge:
    description:
      - Also remove every grant of the key whose name O(grants) does not list, unnamed grants
        included.
      - Grants made by AWS services for their own use (for instance by EBS or RDS for encrypted
        volumes) are removed too, which breaks those resources. Use it on keys that only this task
        grants on.
    type: bool
    default: false
  removal:
    description:
      - How grants are removed. V(revoke) (RevokeGrant) is for the key's administrators.
        V(retire) (RetireGrant) is for the grant's retiring principal, or its grantee when the
        grant allows C(RetireGrant).
    type: str
    choices: [revoke, retire]
    default: revoke
notes:
  - In check mode a task that would create a key returns its id as null. Given such a null
    O(key_id), or one that names no key yet, the module reports every listed grant as created, with
    a warning naming the key, instead of failing. Outside check mode both are errors, before any change.
  - The encryption context that envelope.kms writes into a file's header is the one KMS sees on
    Decrypt and GenerateDataKey, so a constraint on it is enforced by KMS itself, not by the collection.
seealso:
  - module: envelope.kms.key_info
    description: O(envelope.kms.key_info#module:include_grants) lists a key's grants.
  - name: Grants in AWS KMS
    description: The AWS KMS developer guide on grants, grant constraints and eventual consistency.
    link: https://docs.aws.amazon.com/kms/latest/developerguide/grants.html
extends_documentation_fragment:
  - envelope.kms.attributes
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: The billing hosts may decrypt only the billing files
  envelope.kms.grant:
    key_id: alias/app-secrets
    grants:
      - name: billing-hosts-decrypt
        grantee_principal: arn:aws:iam::111122223333:role/billing-hosts
        retiring_principal: arn:aws:iam::111122223333:role/deployer
        operations: [Decrypt, DescribeKey]
        constraints:
          encryption_context_subset:
            app: billing

- name: Keep exactly these grants on the key, remove any other
  envelope.kms.grant:
    key_id: "{{ key.key_arn }}"
    purge: true
    grants:
      - name: billing-hosts-decrypt
        grantee_principal: arn:aws:iam::111122223333:role/billing-hosts
        operations: [Decrypt]
        constraints:
          encryption_context_equals:
            app: billing
            env: prod
      - name: ci-encrypt
        grantee_principal: arn:aws:iam::111122223333:role/ci
        operations: [GenerateDataKey, Encrypt]

- name: Remove one grant
  envelope.kms.grant:
    key_id: alias/app-secrets
    grants:
      - name: ci-encrypt
        state: absent

- name: A grantee retires its own grant
  envelope.kms.grant:
    key_id: alias/app-secrets
    removal: retire
    grants:
      - name: billing-hosts-decrypt
        state: absent
"""

RETURN = r"""
key_id:
  description: The id of the key (null in check mode when the key is not known yet).
  returned: always
  type: str
  sample: 1234abcd-12ab-34cd-56ef-1234567890ab
key_arn:
  description: The ARN of the key (null in check mode when the key is not known yet).
  returned: always
  type: str
  sample: arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab
grants:
  description:
    - The key's grants after the task, oldest first. In check mode, as they would be (grants to
      create have no RV(grants[].grant_id)).
    - The list is built from what the task read and did, not read again, since KMS lists a new
      grant only after a while.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The grant's name (empty for a grant made without one).
      type: str
      sample: billing-hosts-decrypt
    grant_id:
      description: The grant's id.
      type: str
      sample: 0c237476b39f8bc44e45212e08498fbe3151305030726c0590dd8d3e9f3d6a60
    grantee_principal:
      description: The principal that has the permissions.
      type: str
      sample: arn:aws:iam::111122223333:role/billing-hosts
    retiring_principal:
      description: The principal that may retire the grant, or null.
      type: str
      sample: arn:aws:iam::111122223333:role/deployer
    operations:
      description: The operations the grant allows, sorted.
      type: list
      elements: str
      sample: [Decrypt, DescribeKey]
    constraints:
      description: The grant's encryption context constraint, or null.
      type: dict
      sample: {"encryption_context_subset": {"app": "billing"}}
    issuing_account:
      description: The account that made the grant, when KMS says.
      type: str
      sample: arn:aws:iam::111122223333:root
    creation_date:
      description: When the grant was made (ISO 8601), when KMS says.
      type: str
      sample: "2026-12-02T04:30:00+00:00"
created:
  description: The grants the task created (or would create in check mode).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The grant's name.
      type: str
      sample: billing-hosts-decrypt
    grant_id:
      description: The new grant's id (null in check mode).
      type: str
      sample: 0c237476b39f8bc44e45212e08498fbe3151305030726c0590dd8d3e9f3d6a60
    grant_token:
      description:
        - The grant token KMS returned, which the grantee can pass as C(GrantTokens) to use the
          grant before it is consistent everywhere (null in check mode).
      type: str
      sample: AQpAM2RhZTk1MGMyNTk2ZmZmMzEyYWVhOWViN2I1MWM4Mzc0MWFiYjc5ZjFhZjMzMjFh...
    reason:
      description: V(missing), or which fields of the grant it replaces differ.
      type: str
      sample: replaces a grant whose constraints differ
removed:
  description: The grants the task removed (or would remove in check mode).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The grant's name.
      type: str
      sample: old-grant
    grant_id:
      description: The removed grant's id.
      type: str
      sample: 5a0d1d2a69b3d3c5fa0e3b85f1bd8bd3e1f0c9b8e6d6b52f2a8b3d0aa7d5cc12
    reason:
      description: V(replaced), V(duplicate name), V(state=absent) or V(purged, not listed).
      type: str
      sample: replaced
"""

from ansible.module_utils.common.warnings import warn

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.envelope.kms.plugins.module_utils.errors import module_errors
from ansible_collections.envelope.kms.plugins.module_utils.grants import (
    REMOVAL_METHODS,
    apply_grants,
    current_grants,
    desired_grants,
    diff_view,
    grant_spec_options,
    plan_grants,
    planned_changes,
    predict,
)
from ansible_collections.envelope.kms.plugins.module_utils.kms import find_key, kms_client, required_key_ref


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            key_id=dict(type="str", required=True, aliases=["key_arn"]),
            grants=dict(type="list", elements="dict", default=[], options=grant_spec_options()),
            purge=dict(type="bool", default=False),
            removal=dict(type="str", choices=list(REMOVAL_METHODS), default="revoke"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    with module_errors(module, "Invalid options"):
        desired = desired_grants(params["grants"])
        key_ref = required_key_ref(params["key_id"], "key_id is null or empty", module.check_mode)
    client = kms_client(module)
    with module_errors(module, "Could not read the key and its grants"):
        # ansible-core's warn, not module.warn: see key_rotation.py
        metadata = find_key(client, key_ref, "key_id", module.check_mode, warn, f"Key {key_ref} does not exist")
        current = current_grants(client, metadata["Arn"]) if metadata else []

    steps = plan_grants(current, desired, purge=params["purge"])
    key_arn = metadata["Arn"] if metadata else None
    after = predict(current, steps)
    if steps and not module.check_mode:
        with module_errors(module, f"Could not change the grants of key {key_arn}"):
            created, removed = apply_grants(client, key_arn, steps, params["removal"])
        new_ids = {grant["name"]: grant["grant_id"] for grant in created}
        for grant in after:
            if grant["grant_id"] is None:
                grant["grant_id"] = new_ids.get(grant["name"])
    else:
        created, removed = planned_changes(steps)

    result = dict(
        changed=bool(steps),
        key_id=metadata["KeyId"] if metadata else None,
        key_arn=key_arn,
        grants=after,
        created=created,
        removed=removed,
    )
    if module._diff:
        result["diff"] = dict(before=diff_view(current), after=diff_view(after))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
