#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: key
short_description: Create, update, disable or schedule the deletion of a KMS customer managed key
version_added: 0.1.0
description:
  - Manages a KMS customer managed key (a CMK) like C(aws kms create-key), C(update-key-description),
    C(put-key-policy), C(tag-resource), C(enable-key), C(disable-key), C(schedule-key-deletion) and
    C(cancel-key-deletion), but idempotently.
  - The key is found by O(key_id) when given, else by the O(alias) it carries. A new key can only be
    created through an alias, since KMS chooses key ids; the alias is created right after the key.
  - When both O(alias) and O(key_id) are given, the key is managed by its id and the alias is made
    to point at it (created, or re-pointed from another key with UpdateAlias).
  - Use M(envelope.kms.key_rotation) for automatic and on-demand rotation, M(envelope.kms.alias) to
    manage further aliases and M(envelope.kms.key_info) to look keys up.
  - Keys for imported key material (O(origin=EXTERNAL)) and keys in a custom key store (a CloudHSM key
    store or an external key store) are created here too; M(envelope.kms.key_material) imports the key
    material of the former.
author:
  - envelope.kms developers (!UNKNOWN)
options:
  alias:
    description:
      - An alias of the key, the key's identity when O(key_id) is not given. The C(alias/) prefix is optional.
      - Names starting with C(alias/aws/) are reserved for AWS managed keys and are refused.
      - With O(key_id) and O(state=present), the alias is created or re-pointed to that key.
      - With O(state=absent) the alias is left in place; KMS deletes the aliases of a key when it deletes the key.
      - One of O(alias) and O(key_id) is required.
    type: str
  key_id:
    description:
      - The key id or key ARN of an existing key. An alias name or alias ARN is resolved to its key.
      - With O(state=present), a key that does not exist is an error (KMS chooses the ids of new keys).
      - One of O(alias) and O(key_id) is required.
    type: str
  description:
    description:
      - The key's description. Not given, the description of an existing key is left as it is.
    type: str
  policy:
    description:
      - The key policy, as a JSON text or a dictionary.
      - Compared with the key's policy semantically (statement order, single values versus lists and
        formatting do not matter).
      - Not given, a new key gets the KMS default key policy and the policy of an existing key is left as it is.
      - Keep a statement that lets your account manage the key, or nobody will be able to change it again.
    type: json
  enabled:
    description:
      - Whether the key is enabled (usable for cryptographic operations).
      - Keys in states other than C(Enabled), C(Disabled) and C(PendingDeletion) (for example C(PendingImport))
        are not enabled or disabled.
      - A key with O(origin=EXTERNAL) has no key material until it is imported (M(envelope.kms.key_material)),
        and stays in state C(PendingImport) until then. O(enabled) is no change to make for such a key, so
        neither O(enabled=true) nor O(enabled=false) reports a change; a new one is not disabled. Run the task
        again after the import to apply O(enabled=false).
    type: bool
    default: true
  key_usage:
    description:
      - What the key is for. It cannot change after the key is created.
      - When creating a key it defaults to V(ENCRYPT_DECRYPT) where O(key_spec) allows it, else to the
        only usage the key spec allows (V(GENERATE_VERIFY_MAC) for C(HMAC_*), V(SIGN_VERIFY) for C(ML_DSA_*),
        V(ECC_NIST_EDWARDS25519) and V(ECC_SECG_P256K1), V(ENCAPSULATE_DECAPSULATE) for C(ML_KEM_*)).
        The C(ECC_NIST_P*) key specs allow V(SIGN_VERIFY) or V(KEY_AGREEMENT), so they need it given.
      - For a new key, a usage the key spec does not allow (for example V(ENCRYPT_DECRYPT) with C(HMAC_*)) is
        refused before the key is created; an existing key's usage and spec are compared instead.
      - On an existing key it is only checked when given, and a different value is an error.
    type: str
    choices: [ENCRYPT_DECRYPT, SIGN_VERIFY, GENERATE_VERIFY_MAC, KEY_AGREEMENT, ENCAPSULATE_DECAPSULATE]
  key_spec:
    description:
      - The type of key material. It cannot change after the key is created.
      - When creating a key it defaults to V(SYMMETRIC_DEFAULT) (AES-256-GCM, what envelope encryption uses).
      - On an existing key it is only checked when given, and a different value is an error.
      - KMS decides which key specs each region supports (for example V(SM2) only in China regions).
    type: str
    choices:
      - SYMMETRIC_DEFAULT
      - RSA_2048
      - RSA_3072
      - RSA_4096
      - ECC_NIST_P256
      - ECC_NIST_P384
      - ECC_NIST_P521
      - ECC_SECG_P256K1
      - ECC_NIST_EDWARDS25519
      - HMAC_224
      - HMAC_256
      - HMAC_384
      - HMAC_512
      - SM2
      - ML_DSA_44
      - ML_DSA_65
      - ML_DSA_87
      - ML_KEM_512
      - ML_KEM_768
      - ML_KEM_1024
  multi_region:
    description:
      - Whether the key is a multi-Region primary key. It cannot change after the key is created.
      - When creating a key it defaults to V(false).
      - On an existing key it is only checked when given, and a different value is an error.
    type: bool
  origin:
    description:
      - Where the key material comes from. It cannot change after the key is created.
      - When creating a key it defaults to V(AWS_KMS) (KMS generates the key material).
      - V(EXTERNAL) creates a key without key material, for key material you import. KMS takes it with
        every key spec; M(envelope.kms.key_material) imports the key material of V(SYMMETRIC_DEFAULT) keys.
      - V(AWS_CLOUDHSM) creates the key in the CloudHSM key store O(custom_key_store_id), which generates
        its key material. V(EXTERNAL_KEY_STORE) creates it in the external key store O(custom_key_store_id),
        backed by the external key O(xks_key_id).
      - Keys in a custom key store (V(AWS_CLOUDHSM), V(EXTERNAL_KEY_STORE)) are symmetric encryption keys
        (O(key_spec=SYMMETRIC_DEFAULT), O(key_usage=ENCRYPT_DECRYPT)) and cannot be multi-Region keys
        (O(multi_region)); other values are refused before any call to KMS.
      - On an existing key it is only checked when given, and a different value is an error.
    type: str
    choices: [AWS_KMS, EXTERNAL, AWS_CLOUDHSM, EXTERNAL_KEY_STORE]
  custom_key_store_id:
    description:
      - The id of the custom key store to create the key in (C(cks-...)). The key store must be connected.
      - Required with O(origin=AWS_CLOUDHSM) and O(origin=EXTERNAL_KEY_STORE), refused with any other
        O(origin), before any call to KMS.
      - On an existing key it is only checked when given, and a different value is an error.
    type: str
  xks_key_id:
    description:
      - The id by which the external key store proxy knows the external key that backs the key.
      - Required with O(origin=EXTERNAL_KEY_STORE) and refused with any other O(origin), before any call to KMS.
      - On an existing key it is only checked when given, and a different value is an error.
    type: str
  bypass_policy_lockout_safety_check:
    description:
      - Skip the KMS check that the key policy (O(policy)) still lets the caller change the policy later.
      - Passed to CreateKey and PutKeyPolicy. With V(true), a policy that locks the caller out is accepted,
        and the key may become unmanageable. Only for a policy meant to do that.
      - This is no state of the key, so it never reports a change by itself.
    type: bool
    default: false
  enable_key_rotation:
    description:
      - Whether automatic rotation of the key material is on (EnableKeyRotation, DisableKeyRotation), as
        M(envelope.kms.key_rotation) sets it; the option of the same name of M(amazon.aws.kms_key).
      - Not given, the key's rotation is left as it is and not read.
      - Only symmetric encryption keys whose key material KMS generated can rotate. V(true) for any other key
        is refused before any change (V(false) holds for them as it is), and so is a change of a multi-Region
        replica's rotation, which follows its primary key.
      - For O(state=present) only. Use M(envelope.kms.key_rotation) for on-demand rotation.
    type: bool
    version_added: 0.2.0
  rotation_period_days:
    description:
      - Days between automatic rotations, 90 to 2560. Requires O(enable_key_rotation=true).
      - Not given, KMS uses 365 days when this task turns rotation on, and an existing period is left as it is.
      - When KMS does not report the current period (emulators such as moto), it is taken to match, as
        M(envelope.kms.key_rotation) does.
    type: int
    version_added: 0.2.0
  pending_window_days:
    description:
      - With O(state=absent), the number of days KMS waits before it deletes the key, 7 to 30.
      - During that window the key is in state C(PendingDeletion) and unusable; O(state=present)
        cancels the deletion.
      - Checked whatever O(state) is, before any call to KMS.
    type: int
    default: 30
  state:
    description:
      - V(present) creates or updates the key and cancels a pending deletion. A key whose deletion is
        cancelled comes back disabled; it is enabled again when O(enabled=true).
      - V(absent) schedules the deletion of the key after O(pending_window_days) (KMS never deletes a
        key at once). A key already pending deletion, or a key that does not exist, is left unchanged.
    type: str
    choices: [present, absent]
    default: present
notes:
  - AWS managed keys (C(KeyManager=AWS)) are refused when the task would change them.
  - Deleting a key makes every ciphertext under it undecryptable once the window has passed.
    Disable the key first (O(enabled=false)) to find out what still uses it.
  - In check mode a task that would create a key returns RV(key_id) and RV(key_arn) as null, since
    KMS chooses them. The modules of this collection given such a null key id (or, here, an
    O(key_id) that names no key, with O(state=present)) in check mode report the change they would
    make with a warning naming the key, instead of failing. Outside check mode a null or unknown
    O(key_id) is an error, before any change.
extends_documentation_fragment:
  - envelope.kms.attributes
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.tags
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Create a key for envelope encryption, with an alias, tags and its own policy
  envelope.kms.key:
    alias: alias/app-secrets
    description: Wraps the data keys of app secrets
    tags:
      project: app
      owner: security
    policy:
      Version: "2012-10-17"
      Statement:
        - Sid: Enable IAM policies
          Effect: Allow
          Principal:
            AWS: "arn:aws:iam::123456789012:root"
          Action: "kms:*"
          Resource: "*"
  register: app_key

- name: Show the key id and ARN
  ansible.builtin.debug:
    msg: "{{ app_key.key_id }} {{ app_key.key_arn }}"

- name: Add a tag without removing the others
  envelope.kms.key:
    alias: app-secrets
    tags:
      cost-center: "1234"
    purge_tags: false

- name: An asymmetric key for signing
  envelope.kms.key:
    alias: release-signing
    key_usage: SIGN_VERIFY
    key_spec: ECC_NIST_P256

- name: A key for key material of your own (origin EXTERNAL), imported by envelope.kms.key_material
  envelope.kms.key:
    alias: alias/byok-secrets
    origin: EXTERNAL
    description: Regulated secrets, key material from our HSM
  register: byok_key

- name: A key in an external key store
  envelope.kms.key:
    alias: alias/xks-secrets
    origin: EXTERNAL_KEY_STORE
    custom_key_store_id: cks-1234567890abcdef0
    xks_key_id: bb8562717f809024

- name: A key in a CloudHSM key store, which generates its key material
  envelope.kms.key:
    alias: alias/hsm-secrets
    origin: AWS_CLOUDHSM
    custom_key_store_id: cks-0123456789abcdef0

- name: A key whose policy is meant to lock the caller out (the policy is in a file of its own)
  envelope.kms.key:
    alias: alias/break-glass
    policy: "{{ lookup('ansible.builtin.file', 'policies/break-glass-only.json') }}"
    bypass_policy_lockout_safety_check: true

- name: Disable a key to find out what still uses it
  envelope.kms.key:
    key_id: 1234abcd-12ab-34cd-56ef-1234567890ab
    enabled: false

- name: Manual rotation, make the alias point at the new key
  envelope.kms.key:
    key_id: "{{ new_key.key_id }}"
    alias: alias/app-secrets

- name: A key whose material KMS rotates every 180 days
  envelope.kms.key:
    alias: alias/app-secrets
    enable_key_rotation: true
    rotation_period_days: 180

- name: Schedule the deletion of the old key in 7 days
  envelope.kms.key:
    alias: alias/app-secrets-v1
    state: absent
    pending_window_days: 7
"""

RETURN = r"""
changes:
  description:
    - The KMS actions the task made (or, in check mode, would make), in order, named after the
      boto3 client methods. Empty when nothing changed, and in check mode for a key not known yet
      (see the notes).
  returned: always
  type: list
  elements: str
  sample: [create_key, create_alias]
key_id:
  description:
    - The key id. Null when there is no key, and in check mode for a key that would be created.
    - Later tasks of this collection accept that null id in check mode, see the notes.
  returned: always
  type: str
  sample: 1234abcd-12ab-34cd-56ef-1234567890ab
key_arn:
  description:
    - The key ARN. Null when there is no key, and in check mode for a key that would be created.
    - Later tasks of this collection accept that null ARN in check mode, see the notes.
  returned: always
  type: str
  sample: arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab
arn:
  description: The key ARN, the name KMS uses (same as RV(key_arn)).
  returned: when the key exists or would be created
  type: str
  sample: arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab
aliases:
  description: The full names of the aliases that point at the key, sorted.
  returned: when the key exists or would be created
  type: list
  elements: str
  sample: [alias/app-secrets]
previous_alias_target_key_id:
  description:
    - The key id O(alias) pointed at before the task, null if the alias did not exist.
    - Differs from RV(key_id) when the task re-pointed the alias (manual rotation). Keep that key
      enabled while ciphertext under it still exists.
  returned: when O(alias) is given and O(state=present)
  type: str
  sample: 0987dcba-09fe-87dc-65ba-ab0987654321
key_state:
  description: The key state, for example C(Enabled), C(Disabled) or C(PendingDeletion).
  returned: when the key exists or would be created
  type: str
  sample: Enabled
enabled:
  description: Whether the key is enabled.
  returned: when the key exists or would be created
  type: bool
  sample: true
description:
  description: The key's description.
  returned: when the key exists or would be created
  type: str
  sample: Wraps the data keys of app secrets
creation_date:
  description: When the key was created (ISO 8601). Null in check mode for a key that would be created.
  returned: when the key exists or would be created
  type: str
  sample: "2024-01-19T15:24:12+00:00"
deletion_date:
  description: When KMS will delete the key (ISO 8601). Not predicted in check mode.
  returned: when the key is pending deletion
  type: str
  sample: "2024-02-18T15:24:12+00:00"
key_usage:
  description: What the key is for.
  returned: when the key exists or would be created
  type: str
  sample: ENCRYPT_DECRYPT
key_spec:
  description: The type of key material.
  returned: when the key exists or would be created
  type: str
  sample: SYMMETRIC_DEFAULT
key_rotation_enabled:
  description: Whether automatic rotation is on (in check mode, would be), after the task.
  returned: when O(enable_key_rotation) is given, O(state=present) and the key exists or would be created
  type: bool
  sample: true
  version_added: 0.2.0
rotation_period_days:
  description:
    - Days between automatic rotations after the task.
    - Null when automatic rotation is off, or when the endpoint does not report the period (some
      emulators) and this run did not just set it, for example on an unchanged re-run.
  returned: when O(enable_key_rotation) is given, O(state=present) and the key exists or would be created
  type: int
  sample: 180
  version_added: 0.2.0
next_rotation_date:
  description: When KMS rotates the key material next (ISO 8601), as KMS reports it. Null when rotation is off, in check mode
    for a change, and when KMS does not report it.
  returned: when O(enable_key_rotation) is given, O(state=present) and the key exists or would be created
  type: str
  sample: "2025-07-18T15:24:12+00:00"
  version_added: 0.2.0
multi_region:
  description: Whether the key is a multi-Region key.
  returned: when the key exists or would be created
  type: bool
  sample: false
multi_region_configuration:
  description: The primary and replica keys of a multi-Region key (snake_cased), null for other keys.
  returned: when the key exists or would be created
  type: dict
  sample:
    multi_region_key_type: PRIMARY
    primary_key:
      arn: arn:aws:kms:us-east-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab
      region: us-east-1
    replica_keys: []
key_manager:
  description: C(CUSTOMER) for customer managed keys, C(AWS) for AWS managed keys.
  returned: when the key exists or would be created
  type: str
  sample: CUSTOMER
origin:
  description:
    - Where the key material comes from, C(AWS_KMS), C(EXTERNAL) (imported key material), C(AWS_CLOUDHSM) or
      C(EXTERNAL_KEY_STORE).
  returned: when the key exists or would be created
  type: str
  sample: AWS_KMS
custom_key_store_id:
  description: The custom key store that holds the key, null for other keys.
  returned: when the key exists or would be created
  type: str
  sample: cks-1234567890abcdef0
cloud_hsm_cluster_id:
  description: The CloudHSM cluster of a key in a CloudHSM key store, null for other keys and in check mode.
  returned: when the key exists or would be created
  type: str
  sample: cluster-1a23b4cdefg
xks_key_configuration:
  description: The external key of a key in an external key store (snake_cased), null for other keys.
  returned: when the key exists or would be created
  type: dict
  sample:
    id: bb8562717f809024
expiration_model:
  description:
    - For a key with origin C(EXTERNAL) that holds key material, whether it expires (C(KEY_MATERIAL_EXPIRES) or
      C(KEY_MATERIAL_DOES_NOT_EXPIRE)); null for other keys.
  returned: when the key exists or would be created
  type: str
  sample: KEY_MATERIAL_DOES_NOT_EXPIRE
valid_to:
  description: When the imported key material expires (ISO 8601), null when it does not or for other keys.
  returned: when the key exists or would be created
  type: str
  sample: "2026-06-30T00:00:00+00:00"
aws_account_id:
  description: The account that owns the key. Null in check mode for a key that would be created.
  returned: when the key exists or would be created
  type: str
  sample: "123456789012"
encryption_algorithms:
  description: The encryption algorithms the key supports (null when KMS lists none).
  returned: when the key exists or would be created
  type: list
  elements: str
  sample: [SYMMETRIC_DEFAULT]
signing_algorithms:
  description: The signing algorithms the key supports (null when KMS lists none).
  returned: when the key exists or would be created
  type: list
  elements: str
  sample: [ECDSA_SHA_256]
mac_algorithms:
  description: The MAC algorithms an HMAC key supports (null when KMS lists none).
  returned: when the key exists or would be created
  type: list
  elements: str
  sample: [HMAC_SHA_256]
key_agreement_algorithms:
  description: The key agreement algorithms the key supports (null when KMS lists none).
  returned: when the key exists or would be created
  type: list
  elements: str
  sample: [ECDH]
tags:
  description: The key's tags.
  returned: when the key exists or would be created
  type: dict
  sample:
    project: app
policy:
  description:
    - The key policy, parsed.
    - Null when the caller may not read it, and in check mode for a key that would be created with
      the KMS default policy.
  returned: when the key exists or would be created
  type: dict
  sample:
    Version: "2012-10-17"
    Statement:
      - Sid: Enable IAM policies
        Effect: Allow
        Principal:
          AWS: "arn:aws:iam::123456789012:root"
        Action: "kms:*"
        Resource: "*"
"""

try:
    import botocore
except ImportError:
    pass  # AnsibleAWSModule reports it

from ansible.module_utils.common.warnings import warn

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.envelope.kms.plugins.module_utils.errors import module_errors
from ansible_collections.envelope.kms.plugins.module_utils.keys import (
    KEY_SPECS,
    KEY_USAGES,
    ORIGINS,
    KeyApplyError,
    apply_key,
    check_origin,
    check_pending_window,
    key_result,
    managed_fields,
    normalize_tags,
    parse_policy,
    plan_key,
    predict_key,
    predicted_metadata,
    read_key,
)
from ansible_collections.envelope.kms.plugins.module_utils.kms import (
    KmsInputError,
    describe_key,
    given_as_null,
    kms_client,
    normalize_alias,
    unknown_key_warning,
)
from ansible_collections.envelope.kms.plugins.module_utils.rotation import (
    NOT_ROTATING,
    apply_plan,
    check_rotatable,
    plan_rotation,
    read_plan,
    validate_request,
    warn_unverified_period,
)


def desired_state(params):
    """The module options as plan_key wants them, checked before any call to KMS."""
    check_origin(params["origin"], params["custom_key_store_id"], params["xks_key_id"],
                 params["key_spec"], params["key_usage"], params["multi_region"])
    return dict(
        state=params["state"],
        key_id=params["key_id"],
        alias=normalize_alias(params["alias"]) if params["alias"] is not None else None,
        description=params["description"],
        policy=parse_policy(params["policy"]),
        tags=normalize_tags(params["tags"]),
        purge_tags=params["purge_tags"],
        enabled=params["enabled"],
        key_usage=params["key_usage"],
        key_spec=params["key_spec"],
        multi_region=params["multi_region"],
        origin=params["origin"],
        custom_key_store_id=params["custom_key_store_id"],
        xks_key_id=params["xks_key_id"],
        bypass_policy_lockout_safety_check=params["bypass_policy_lockout_safety_check"],
        pending_window_days=check_pending_window(params["pending_window_days"]),
        enable_key_rotation=check_rotation_request(params),
        rotation_period_days=params["rotation_period_days"],
    )


def check_rotation_request(params):
    """enable_key_rotation, checked with rotation_period_days before any call to KMS."""
    enabled, period = params["enable_key_rotation"], params["rotation_period_days"]
    if period is not None and not enabled:
        raise KmsInputError("rotation_period_days requires enable_key_rotation=true")
    if enabled is None:
        return None
    if params["state"] != "present":
        raise KmsInputError("enable_key_rotation applies to state=present only")
    validate_request(enabled, period)
    return enabled


def plan_key_rotation(module, client, desired, metadata, current, key_actions):
    """(plan, GetKeyRotationStatus) for enable_key_rotation ((None, None) when not asked): checked
    against the key, or against the key about to be created, before the first change to KMS."""
    enabled, period = desired["enable_key_rotation"], desired["rotation_period_days"]
    if enabled is None:
        return None, None
    if metadata is None:  # a key the plan creates
        check_rotatable(predicted_metadata(key_actions) or {}, enabled, False)
        plan, status = plan_rotation(NOT_ROTATING, enabled, period), NOT_ROTATING
    else:
        with module_errors(module, f"Could not read the rotation status of key {metadata['Arn']}"):
            _can_rotate, status, plan = read_plan(client, metadata, enabled, period)
        warn_unverified_period(plan, metadata["Arn"], period, module.params)
    after_state = predict_key(current, key_actions).get("key_state")
    if plan.actions and after_state != "Enabled":
        # KMS refuses EnableKeyRotation and DisableKeyRotation for a key that is not enabled
        module.fail_json(msg=f"enable_key_rotation={enabled} would change the rotation of a key left {after_state} "
                             "(KMS changes the rotation of enabled keys only): change it with enabled=true first")
    return plan, status


def key_id_is_unknown(params):
    """Whether key_id is given but names nothing: empty, or null (what check mode predicts for a key an
    earlier task would create). With key_id and alias both None, one of them was given as null."""
    key_id = params["key_id"]
    if key_id is not None:
        return not key_id.strip()
    return params["alias"] is None or given_as_null("key_id")


def unknown_key_id_message(key_id):
    if key_id is not None:
        return "key_id must not be empty"
    return "key_id is null: give the id or ARN of an existing key, or leave key_id out to find the key by its alias"


def exit_unknown_key(module, client, desired):
    """Check mode, key_id null or naming no key: an earlier task would create the key, so this task
    would change it (or schedule its deletion). Warns, naming the key; nothing is planned against
    another key."""
    warn(unknown_key_warning("key_id", desired["key_id"]))  # ansible-core's warn: see key_rotation.py
    result = dict(changed=True, changes=[], key_id=None, key_arn=None)
    if desired["alias"] and desired["state"] == "present":
        with module_errors(module, f"Could not read alias {desired['alias']}"):
            target = describe_key(client, desired["alias"])
        result["previous_alias_target_key_id"] = target["KeyId"] if target else None
    module.exit_json(**result)


def read_and_plan(module, client, desired):
    """(KeyMetadata, snapshot, the key id the alias points at, plan). In check mode a key_id that names
    no key exits as exit_unknown_key does (with state=present it is an error outside check mode)."""
    alias, present = desired["alias"], desired["state"] == "present"
    with module_errors(module, f"Could not read key {desired['key_id'] or alias}"):
        metadata, current = read_key(client, desired["key_id"] or alias)
        if current is None and desired["key_id"] and present and module.check_mode:
            exit_unknown_key(module, client, desired)
        alias_target = None
        if alias and present:
            if desired["key_id"]:
                target = describe_key(client, alias)
                alias_target = target["KeyId"] if target else None
            elif current:
                alias_target = current["key_id"]
        return metadata, current, alias_target, plan_key(current, desired, alias_target)


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            alias=dict(type="str"),
            key_id=dict(type="str"),
            description=dict(type="str"),
            policy=dict(type="json"),
            tags=dict(type="dict", aliases=["resource_tags"]),
            purge_tags=dict(type="bool", default=True),
            enabled=dict(type="bool", default=True),
            key_usage=dict(type="str", choices=KEY_USAGES),
            key_spec=dict(type="str", choices=KEY_SPECS),
            multi_region=dict(type="bool"),
            origin=dict(type="str", choices=ORIGINS),
            custom_key_store_id=dict(type="str", no_log=False),
            xks_key_id=dict(type="str", no_log=False),
            bypass_policy_lockout_safety_check=dict(type="bool", default=False, no_log=False),
            pending_window_days=dict(type="int", default=30),
            enable_key_rotation=dict(type="bool"),
            rotation_period_days=dict(type="int"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        required_one_of=[["alias", "key_id"]],
        supports_check_mode=True,
    )
    with module_errors(module, "Invalid options"):
        desired = desired_state(module.params)
        unknown_key_id = key_id_is_unknown(module.params)
        if unknown_key_id and not module.check_mode:
            raise KmsInputError(unknown_key_id_message(desired["key_id"]))

    client = kms_client(module)
    if unknown_key_id:
        exit_unknown_key(module, client, desired)
    alias, present = desired["alias"], desired["state"] == "present"
    metadata, current, alias_target, actions = read_and_plan(module, client, desired)
    rotation, status = plan_key_rotation(module, client, desired, metadata, current, actions) if present else (None, None)

    after = predict_key(current, actions)
    key_id = current["key_id"] if current else None
    if actions and not module.check_mode:
        try:
            key_id = apply_key(client, actions, key_id)
            metadata, final = read_key(client, key_id)
        except KeyApplyError as exc:
            module.fail_json_aws(
                exc.error, msg=f"Could not {exc.action.replace('_', ' ')} (key {exc.key_id})", key_id=exc.key_id
            )
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            module.fail_json_aws(exc, msg=f"Could not read key {key_id} back", key_id=key_id)
        after = managed_fields(final)
    metadata = metadata or predicted_metadata(actions)
    rotation_changes, rotation_result = converge_rotation(module, client, metadata, rotation, status)

    changes = [step[0] for step in actions] + rotation_changes
    result = dict(changed=bool(changes), changes=changes, key_id=None, key_arn=None)
    if metadata:
        result.update(key_result(metadata, after), **rotation_result)
    if alias and present:
        result["previous_alias_target_key_id"] = alias_target
    if module._diff:
        result["diff"] = dict(before=dict(managed_fields(current), **rotation_fields(rotation, "before", current)),
                              after=dict(after, **rotation_fields(rotation, "after", after)))
    module.exit_json(**result)


def converge_rotation(module, client, metadata, plan, status):
    """(changes, result fields) of enable_key_rotation, after its calls (none in check mode)."""
    if plan is None or not metadata:
        return [], {}
    if plan.actions:
        status = NOT_ROTATING if module.check_mode else apply_plan(module, client, metadata["Arn"], plan)
    enabled = plan.after["enabled"]
    return [f"{name}_key_rotation" for name, _period in plan.actions], dict(
        key_rotation_enabled=enabled,
        rotation_period_days=plan.after["rotation_period_days"],
        next_rotation_date=status["next_rotation_date"] if enabled else None,
    )


def rotation_fields(plan, side, fields):
    """The rotation's managed fields for one side of the diff: none when not asked, or for no key."""
    if plan is None or not fields:
        return {}
    return {"key_rotation_enabled": getattr(plan, side)["enabled"],
            "rotation_period_days": getattr(plan, side)["rotation_period_days"]}


if __name__ == "__main__":
    main()
