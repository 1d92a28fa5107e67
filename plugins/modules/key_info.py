#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: key_info
short_description: Read KMS keys with their aliases, tags, policy and rotation status
version_added: 0.1.0
description:
  - Describes KMS keys, like C(aws kms describe-key), with each key's aliases, tags, key policy and
    automatic rotation status, and lists aliases, like C(aws kms list-aliases).
  - Pick one key with O(key_id) or O(alias), or narrow the keys with O(tags). Without O(key_id) and
    O(alias), every customer managed key of the account and region is read.
  - A key that does not exist is not an error, RV(keys) is then empty.
  - Reading a key costs a few KMS requests (DescribeKey, ListResourceTags, GetKeyPolicy,
    GetKeyRotationStatus). A named key never lists the whole account, and aliases are listed
    once per task, not once per key.
author:
  - envelope.kms developers (!UNKNOWN)
options:
  key_id:
    description:
      - The key to read, as a key id, key ARN, alias name or alias ARN.
      - An alias name needs its C(alias/) prefix here; O(alias) takes the bare name too.
      - The key is returned whoever manages it, AWS managed keys included.
    type: str
    aliases: [key_arn]
  alias:
    description:
      - The alias of the key to read. The C(alias/) prefix is optional; an alias ARN works too.
      - AWS managed aliases such as C(alias/aws/ebs) can be read.
    type: str
  tags:
    description:
      - Only keys carrying all these tags, with these values, are returned.
      - Values are compared as strings. Keys whose tags cannot be read never match.
      - Can be combined with O(key_id) or O(alias), then the named key must carry the tags too.
    type: dict
  include_policy:
    description:
      - Read each key's policy (one GetKeyPolicy request per key) and return it as RV(keys[].policy).
    type: bool
    default: true
  include_rotations:
    description:
      - Also return the history of completed rotations of each key (ListKeyRotations, one request
        per rotatable key) as RV(keys[].rotation.rotations).
    type: bool
    default: false
  include_grants:
    description:
      - Read each key's grants (ListGrants, one request per key, every page) and return them as
        RV(keys[].grants), in the form M(envelope.kms.grant) returns them.
    type: bool
    default: true
  include_aws_managed:
    description:
      - When listing keys (no O(key_id) nor O(alias)), also return the keys that AWS services
        manage (C(alias/aws/...)). They are skipped by default, as they cannot be changed.
    type: bool
    default: false
  include_pending_deletion:
    description:
      - Return keys scheduled for deletion (key state C(PendingDeletion) or C(PendingReplicaDeletion)).
        They still exist and their deletion can be cancelled, so they are returned by default.
      - Set to V(false) to see only the keys that are not being deleted; this applies to a key
        named with O(key_id) or O(alias) as well.
    type: bool
    default: true
notes:
  - Read the result as C(result['keys']), because C(result.keys) is the Python dict method in Jinja2.
  - Details KMS refuses to give for one key (for instance the tags or policy of a key of another
    account) are returned as V(null) with a warning instead of failing the task.
  - In check mode a task that would create a key returns its id as null. Given such a null (or
    empty) O(key_id) or O(alias), the module returns no key, with a warning, rather than every key
    of the account; outside check mode it is an error. A key that does not exist is no error, no key
    is returned.
extends_documentation_fragment:
  - envelope.kms.attributes.INFO_MODULE
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Read the key behind an alias
  envelope.kms.key_info:
    alias: app-secrets
  register: app_key

- name: Show its id and whether it rotates
  ansible.builtin.debug:
    msg: "{{ app_key['keys'][0].key_id }} rotation: {{ app_key['keys'][0].rotation.enabled }}"
  when: app_key['keys'] | length > 0

- name: All customer managed keys of a project, without policies and grants (no ListGrants per key)
  envelope.kms.key_info:
    tags:
      project: billing
    include_policy: false
    include_grants: false
  register: billing_keys

- name: Who may use the app key through grants
  envelope.kms.key_info:
    key_id: alias/app-secrets
    include_policy: false
  register: app_grants

- name: Show each grant's name, grantee and operations
  ansible.builtin.debug:
    msg: "{{ item.name }}: {{ item.grantee_principal }} may {{ item.operations | join(', ') }}"
  loop: "{{ app_grants['keys'][0].grants }}"
  loop_control:
    label: "{{ item.name }}"

- name: Every alias of the account and region, like aws kms list-aliases
  envelope.kms.key_info:
    include_policy: false
    include_grants: false
  register: everything

- name: Print alias to key mapping
  ansible.builtin.debug:
    msg: "{{ everything.aliases | items2dict(key_name='alias_name', value_name='target_key_id') }}"

- name: A key by ARN with its rotation history
  envelope.kms.key_info:
    key_id: arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab
    include_rotations: true
"""

RETURN = r"""
keys:
  description:
    - The keys that match, oldest first. Empty when a named key does not exist.
    - Use C(result['keys']) in templates, C(result.keys) is the dict method.
  returned: always
  type: list
  elements: dict
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
    arn:
      description: The key ARN, under the name DescribeKey gives it.
      type: str
      returned: always
      sample: arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab
    aws_account_id:
      description: The account that owns the key.
      type: str
      returned: always
      sample: "123456789012"
    description:
      description: The key description.
      type: str
      returned: always
      sample: Envelope encryption of the app secrets
    key_state:
      description: The key state, for example V(Enabled), V(Disabled) or V(PendingDeletion).
      type: str
      returned: always
      sample: Enabled
    enabled:
      description: Whether the key is enabled.
      type: bool
      returned: always
      sample: true
    creation_date:
      description: When the key was created (ISO 8601).
      type: str
      returned: always
      sample: "2024-05-01T10:20:30.123000+00:00"
    deletion_date:
      description: When KMS deletes the key (ISO 8601).
      type: str
      returned: when the key is pending deletion
      sample: "2024-06-01T10:20:30.123000+00:00"
    pending_deletion_window_in_days:
      description: The waiting period before deletion, for multi-Region primary keys waiting for their replicas.
      type: int
      returned: when KMS gives it
      sample: 30
    key_usage:
      description: What the key is for.
      type: str
      returned: always
      sample: ENCRYPT_DECRYPT
    key_spec:
      description: The type of key material.
      type: str
      returned: always
      sample: SYMMETRIC_DEFAULT
    customer_master_key_spec:
      description: The deprecated name of RV(keys[].key_spec).
      type: str
      returned: always
      sample: SYMMETRIC_DEFAULT
    key_manager:
      description: V(CUSTOMER) for customer managed keys, V(AWS) for AWS managed keys.
      type: str
      returned: always
      sample: CUSTOMER
    origin:
      description: Where the key material comes from.
      type: str
      returned: always
      sample: AWS_KMS
    multi_region:
      description: Whether the key is a multi-Region key.
      type: bool
      returned: always
      sample: false
    multi_region_configuration:
      description: The primary key and replicas of a multi-Region key, snake_cased as DescribeKey gives them.
      type: dict
      returned: for multi-Region keys
      sample: {"multi_region_key_type": "PRIMARY", "primary_key": {"arn": "arn:aws:kms:...", "region": "us-east-1"},
               "replica_keys": []}
    encryption_algorithms:
      description: The encryption algorithms the key supports.
      type: list
      elements: str
      returned: for encryption keys
      sample: [SYMMETRIC_DEFAULT]
    signing_algorithms:
      description: The signing algorithms the key supports.
      type: list
      elements: str
      returned: for signing keys
      sample: [RSASSA_PSS_SHA_256]
    mac_algorithms:
      description: The MAC algorithms the key supports.
      type: list
      elements: str
      returned: for HMAC keys
      sample: [HMAC_SHA_256]
    expiration_model:
      description: Whether imported key material expires.
      type: str
      returned: for keys with imported material
      sample: KEY_MATERIAL_DOES_NOT_EXPIRE
    valid_to:
      description: When imported key material expires (ISO 8601).
      type: str
      returned: for keys with expiring imported material
      sample: "2025-01-01T00:00:00+00:00"
    aliases:
      description: The full names of the aliases that point at the key, sorted.
      type: list
      elements: str
      returned: always
      sample: [alias/app-secrets, alias/app-secrets-v2]
    tags:
      description: The key's tags; null when they could not be read.
      type: dict
      returned: always
      sample: {"project": "billing"}
    policy:
      description: The key policy, parsed; null when it could not be read.
      type: dict
      returned: when O(include_policy=true)
      sample: {"Version": "2012-10-17", "Id": "key-default-1", "Statement": []}
    grants:
      description:
        - The key's grants, oldest first, as RV(envelope.kms.grant#module:grants) of M(envelope.kms.grant)
          (name, grant_id, grantee_principal, retiring_principal, operations, constraints,
          issuing_account, creation_date); null when they could not be read.
      type: list
      elements: dict
      returned: when O(include_grants=true)
      sample: [{"name": "billing-hosts-decrypt", "grant_id": "0c23...", "operations": ["Decrypt"],
                "grantee_principal": "arn:aws:iam::111122223333:role/billing-hosts", "retiring_principal": null,
                "constraints": {"encryption_context_subset": {"app": "billing"}},
                "issuing_account": "arn:aws:iam::111122223333:root", "creation_date": "2026-12-02T04:30:00+00:00"}]
    rotation:
      description:
        - Automatic rotation status, like C(aws kms get-key-rotation-status).
        - Null for keys that cannot rotate (asymmetric, HMAC, imported or custom key store material),
          or when the status could not be read.
      type: dict
      returned: always
      contains:
        enabled:
          description: Whether automatic rotation is on.
          type: bool
          returned: always
          sample: true
        rotation_period_days:
          description: Days between automatic rotations; null when rotation is off or KMS does not say.
          type: int
          returned: always
          sample: 365
        next_rotation_date:
          description: When KMS rotates the key next (ISO 8601); null when not scheduled.
          type: str
          returned: always
          sample: "2025-05-01T10:20:30+00:00"
        on_demand_rotation_start_date:
          description: When the on-demand rotation now in progress started (ISO 8601); null when none runs.
          type: str
          returned: always
          sample: "2025-05-01T10:20:30+00:00"
        rotations:
          description: Completed rotations, oldest first, like C(aws kms list-key-rotations).
          type: list
          elements: dict
          returned: when O(include_rotations=true)
          contains:
            key_id:
              description: The key id.
              type: str
              returned: always
              sample: 1234abcd-12ab-34cd-56ef-1234567890ab
            rotation_date:
              description: When the rotation happened (ISO 8601).
              type: str
              returned: always
              sample: "2024-05-01T10:20:30+00:00"
            rotation_type:
              description: V(AUTOMATIC) or V(ON_DEMAND).
              type: str
              returned: always
              sample: ON_DEMAND
aliases:
  description:
    - Without O(key_id), O(alias) and O(tags), every alias of the account and region, like
      C(aws kms list-aliases), AWS managed ones included.
    - With any of them, only the aliases of the keys in RV(keys).
    - Sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    alias_name:
      description: The full alias name.
      type: str
      returned: always
      sample: alias/app-secrets
    alias_arn:
      description: The alias ARN.
      type: str
      returned: always
      sample: arn:aws:kms:us-east-1:123456789012:alias/app-secrets
    target_key_id:
      description: The id of the key the alias points at; null for AWS managed aliases not yet in use.
      type: str
      returned: always
      sample: 1234abcd-12ab-34cd-56ef-1234567890ab
    creation_date:
      description: When the alias was created (ISO 8601); null when KMS does not say.
      type: str
      returned: always
      sample: "2024-05-01T10:20:30+00:00"
    last_updated_date:
      description: When the alias was last re-pointed (ISO 8601); null when KMS does not say.
      type: str
      returned: always
      sample: "2024-05-01T10:20:30+00:00"
"""

from ansible.module_utils.common.warnings import warn

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.envelope.kms.plugins.module_utils.errors import module_errors
from ansible_collections.envelope.kms.plugins.module_utils.key_info import alias_reference, gather
from ansible_collections.envelope.kms.plugins.module_utils.kms import given_as_null, kms_client, unknown_key_warning


def unknown_key(params):
    """Whether key_id or alias is given but names nothing: empty, or null (what check mode predicts for
    a key an earlier task would create); module.params alone cannot tell null from not given."""
    if params["key_id"] is not None:
        return not params["key_id"].strip()
    return params["alias"] is None and given_as_null("key_id", "key_arn", "alias")


def exit_unknown_key(module, params):
    """Check mode: no keys, with a warning, rather than every key of the account; else one line."""
    option = "key_id" if params["key_id"] is not None or given_as_null("key_id", "key_arn") else "alias"
    if not module.check_mode:
        empty = params["key_id"] is not None
        module.fail_json(msg=f"{option} must not be empty" if empty else
                         f"{option} is null: leave it out to read every key")
    warn(unknown_key_warning(option))
    module.exit_json(changed=False, keys=[], aliases=[])


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            key_id=dict(type="str", aliases=["key_arn"]),
            alias=dict(type="str"),
            tags=dict(type="dict"),
            include_policy=dict(type="bool", default=True),
            include_rotations=dict(type="bool", default=False),
            include_grants=dict(type="bool", default=True),
            include_aws_managed=dict(type="bool", default=False),
            include_pending_deletion=dict(type="bool", default=True),
        ),
        mutually_exclusive=[("key_id", "alias")],
        supports_check_mode=True,
    )
    params = module.params
    if unknown_key(params):
        exit_unknown_key(module, params)
    with module_errors(module, "Invalid options"):
        key_ref = alias_reference(params["alias"]) if params["alias"] is not None else params["key_id"]

    options = dict(
        key_ref=key_ref,
        tags=params["tags"],
        include_policy=params["include_policy"],
        include_rotations=params["include_rotations"],
        include_grants=params["include_grants"],
        include_aws_managed=params["include_aws_managed"],
        include_pending_deletion=params["include_pending_deletion"],
    )
    client = kms_client(module)
    with module_errors(module, "Could not read KMS keys and aliases"):
        # ansible-core's warn, not module.warn: see key_rotation.py
        result = gather(client, options, warn)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
