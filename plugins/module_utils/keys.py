# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Customer managed keys: what to do (a pure plan, a pure prediction of the result) and doing it.

A plan is a list of ``(action, args)`` pairs. Each action is named after the boto3 KMS client
method that performs it and its args are that call's parameters, minus the key id, which is only
known when the plan is applied (a key created by the plan gets its id from CreateKey).
"""

from __future__ import annotations

import copy
import json

try:
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:
    pass  # AnsibleAWSModule reports it

from ansible.module_utils.common.text.converters import to_text

from ansible_collections.amazon.aws.plugins.module_utils.policy import compare_policies
from ansible_collections.amazon.aws.plugins.module_utils.tagging import (
    ansible_dict_to_boto3_tag_list,
    boto3_tag_list_to_ansible_dict,
    compare_aws_tags,
)

from ansible_collections.envelope.kms.plugins.module_utils.kms import (
    KmsInputError,
    alias_names,
    describe_key,
    key_policy,
    key_summary,
    key_tags,
)

CREATE_KEY = "create_key"
CREATE_ALIAS = "create_alias"
UPDATE_ALIAS = "update_alias"
CANCEL_DELETION = "cancel_key_deletion"
UPDATE_DESCRIPTION = "update_key_description"
PUT_POLICY = "put_key_policy"
UNTAG = "untag_resource"
TAG = "tag_resource"
ENABLE = "enable_key"
DISABLE = "disable_key"
SCHEDULE_DELETION = "schedule_key_deletion"

# The values KMS accepts (CreateKey), in the order the API reference lists them.
KEY_USAGES = ["ENCRYPT_DECRYPT", "SIGN_VERIFY", "GENERATE_VERIFY_MAC", "KEY_AGREEMENT", "ENCAPSULATE_DECAPSULATE"]
KEY_SPECS = [
    "SYMMETRIC_DEFAULT",
    "RSA_2048",
    "RSA_3072",
    "RSA_4096",
    "ECC_NIST_P256",
    "ECC_NIST_P384",
    "ECC_NIST_P521",
    "ECC_SECG_P256K1",
    "ECC_NIST_EDWARDS25519",
    "HMAC_224",
    "HMAC_256",
    "HMAC_384",
    "HMAC_512",
    "SM2",
    "ML_DSA_44",
    "ML_DSA_65",
    "ML_DSA_87",
    "ML_KEM_512",
    "ML_KEM_768",
    "ML_KEM_1024",
]
DEFAULT_KEY_SPEC = "SYMMETRIC_DEFAULT"
DEFAULT_KEY_USAGE = "ENCRYPT_DECRYPT"
# The usages KMS allows per key spec (CreateKey, KeyUsage), by key spec prefix: they pick the
# default usage of a new key and refuse a combination KMS cannot create (check_key_usage).
_USAGES_BY_SPEC = (
    ("SYMMETRIC_DEFAULT", ("ENCRYPT_DECRYPT",)),
    ("RSA_", ("ENCRYPT_DECRYPT", "SIGN_VERIFY")),
    ("ECC_NIST_EDWARDS25519", ("SIGN_VERIFY",)),
    ("ECC_NIST_P", ("SIGN_VERIFY", "KEY_AGREEMENT")),
    ("ECC_SECG_P256K1", ("SIGN_VERIFY",)),
    ("HMAC_", ("GENERATE_VERIFY_MAC",)),
    ("ML_DSA_", ("SIGN_VERIFY",)),
    ("ML_KEM_", ("ENCAPSULATE_DECAPSULATE",)),
    ("SM2", ("ENCRYPT_DECRYPT", "SIGN_VERIFY", "KEY_AGREEMENT")),
)

# Where a new key's material comes from (CreateKey Origin). Keys in a custom key store (the last two)
# need its id, and an external key store also the id of the external key (XksKeyId); both kinds are
# symmetric encryption keys in one Region only (API reference: CreateKey, CustomKeyStoreId).
ORIGINS = ["AWS_KMS", "EXTERNAL", "AWS_CLOUDHSM", "EXTERNAL_KEY_STORE"]
DEFAULT_ORIGIN = "AWS_KMS"
EXTERNAL = "EXTERNAL"
CUSTOM_KEY_STORE_ORIGINS = ("AWS_CLOUDHSM", "EXTERNAL_KEY_STORE")
EXTERNAL_KEY_STORE = "EXTERNAL_KEY_STORE"
# A key with origin EXTERNAL is created without key material, in this state until it is imported.
PENDING_IMPORT = "PendingImport"
# Fixed when the key is created: given for an existing key, each is compared, never changed.
IMMUTABLE = ("key_usage", "key_spec", "multi_region", "origin", "custom_key_store_id", "xks_key_id")

PENDING_WINDOW_DAYS = (7, 30)
POLICY_NAME = "default"

# The fields the diff shows and check mode predicts.
MANAGED_FIELDS = ("description", "enabled", "key_state", "tags", "policy", "aliases")

# What the module returns from KeyMetadata (snake_cased), besides its own keys.
RESULT_FIELDS = (
    "key_id",
    "arn",
    "aws_account_id",
    "creation_date",
    "description",
    "enabled",
    "key_state",
    "deletion_date",
    "key_usage",
    "key_spec",
    "key_manager",
    "origin",
    "custom_key_store_id",
    "cloud_hsm_cluster_id",
    "xks_key_configuration",
    "expiration_model",
    "valid_to",
    "multi_region",
    "multi_region_configuration",
    "encryption_algorithms",
    "signing_algorithms",
    "mac_algorithms",
    "key_agreement_algorithms",
)


class KeyApplyError(Exception):
    """A KMS call of the plan failed; says which one and the id of the key (known or just created)."""

    def __init__(self, action, key_id, error):
        super().__init__(f"{action} failed: {error}")
        self.action = action
        self.key_id = key_id
        self.error = error


def check_pending_window(days):
    low, high = PENDING_WINDOW_DAYS
    if days is None or not low <= days <= high:
        raise KmsInputError(f"pending_window_days must be between {low} and {high} (inclusive), got {days}")
    return days


def parse_policy(policy):
    """The policy option (a JSON text; Ansible turns a dict into one) as a dict; None leaves it as is."""
    if policy is None:
        return None
    try:
        parsed = json.loads(policy)
    except ValueError as exc:
        raise KmsInputError(f"policy is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise KmsInputError("policy must be a JSON object (a key policy document)")
    return parsed


def normalize_tags(tags):
    """Tags as KMS stores them: text keys and values (True -> 'True', like amazon.aws). None stays None."""
    if tags is None:
        return None
    return {to_text(key): to_text(value) for key, value in tags.items()}


def default_key_usage(key_spec):
    """ENCRYPT_DECRYPT where the key spec allows it, else the spec's only usage; KmsInputError if it has several."""
    for prefix, usages in _USAGES_BY_SPEC:
        if key_spec.startswith(prefix):
            if DEFAULT_KEY_USAGE in usages:
                return DEFAULT_KEY_USAGE
            if len(usages) == 1:
                return usages[0]
            raise KmsInputError(f"key_spec {key_spec} needs key_usage: one of {', '.join(usages)}")
    return DEFAULT_KEY_USAGE  # a key spec newer than this table: KMS's own default


def allowed_key_usages(key_spec):
    """The key usages KMS allows for key_spec; None for a key spec newer than this table."""
    for prefix, usages in _USAGES_BY_SPEC:
        if key_spec.startswith(prefix):
            return usages
    return None


def check_key_usage(key_spec, key_usage):
    """KmsInputError when a key of key_spec cannot have key_usage (either None: nothing to check)."""
    if key_spec is None or key_usage is None:
        return
    usages = allowed_key_usages(key_spec)
    if usages is not None and key_usage not in usages:
        raise KmsInputError(f"key_usage {key_usage} is not possible with key_spec {key_spec}: "
                            f"it allows {', '.join(usages)}")


def check_origin(origin, custom_key_store_id, xks_key_id, key_spec=None, key_usage=None, multi_region=None):
    """KmsInputError for origin options KMS would refuse (CreateKey): custom_key_store_id with the custom
    key store origins only and required by them, xks_key_id only and always with EXTERNAL_KEY_STORE, and
    custom key stores for single-Region SYMMETRIC_DEFAULT / ENCRYPT_DECRYPT keys. Checks the options as
    given (None: not given), so the same task passes for a new key and on a re-run."""
    for name, value in (("custom_key_store_id", custom_key_store_id), ("xks_key_id", xks_key_id)):
        if value is not None and not value.strip():
            raise KmsInputError(f"{name} must not be empty")
    in_store = origin in CUSTOM_KEY_STORE_ORIGINS
    if custom_key_store_id is not None and not in_store:
        raise KmsInputError(f"custom_key_store_id needs origin {' or '.join(CUSTOM_KEY_STORE_ORIGINS)} "
                            f"(origin is {origin or 'not given'})")
    if in_store and custom_key_store_id is None:
        raise KmsInputError(f"origin {origin} needs custom_key_store_id: the id of the custom key store")
    if xks_key_id is not None and origin != EXTERNAL_KEY_STORE:
        raise KmsInputError(f"xks_key_id needs origin {EXTERNAL_KEY_STORE} (origin is {origin or 'not given'})")
    if origin == EXTERNAL_KEY_STORE and xks_key_id is None:
        raise KmsInputError(f"origin {EXTERNAL_KEY_STORE} needs xks_key_id: the id of the external key")
    if in_store:
        wrong = [
            f"{name} {value}"
            for name, value, allowed in (("key_spec", key_spec, DEFAULT_KEY_SPEC), ("key_usage", key_usage, DEFAULT_KEY_USAGE))
            if value is not None and value != allowed
        ]
        if multi_region:
            wrong.append("multi_region true")
        if wrong:
            raise KmsInputError(f"A key with origin {origin} is a single-Region {DEFAULT_KEY_SPEC} {DEFAULT_KEY_USAGE} "
                                f"key: {', '.join(wrong)} is not possible")


def snapshot(metadata, aliases, tags, policy):
    """The plain-data view of an existing key that plan_key compares against."""
    return {
        "key_id": metadata["KeyId"],
        "key_state": metadata.get("KeyState"),
        "enabled": metadata.get("Enabled", False),
        "description": metadata.get("Description") or "",
        "key_usage": metadata.get("KeyUsage"),
        "key_spec": metadata.get("KeySpec") or metadata.get("CustomerMasterKeySpec"),
        "multi_region": bool(metadata.get("MultiRegion", False)),
        "key_manager": metadata.get("KeyManager", "CUSTOMER"),
        "origin": metadata.get("Origin", DEFAULT_ORIGIN),
        "custom_key_store_id": metadata.get("CustomKeyStoreId"),
        "xks_key_id": (metadata.get("XksKeyConfiguration") or {}).get("Id"),
        "aliases": sorted(aliases),
        "tags": dict(tags),
        "policy": policy,
    }


def read_key(client, key_ref):
    """(KeyMetadata, snapshot) of the key a key id, key ARN or alias names; (None, None) if none."""
    metadata = describe_key(client, key_ref)
    if metadata is None:
        return None, None
    key_id = metadata["KeyId"]
    return metadata, snapshot(metadata, alias_names(client, key_id), key_tags(client, key_id), key_policy(client, key_id))


def plan_key(current, desired, alias_target=None):
    """The KMS calls that bring the key from `current` to `desired`, as [(action, args), ...].

    current: snapshot() of the key, or None when it does not exist.
    desired: state, key_id (what the user gave, or None), alias (full name or None), description,
      policy (dict), tags (text dict) -- each None to leave as is --, purge_tags, enabled,
      key_usage, key_spec, multi_region, origin, custom_key_store_id, xks_key_id (None: not given),
      bypass_policy_lockout_safety_check, pending_window_days.
    alias_target: the key id desired["alias"] points at now (None when the alias does not exist).

    Raises KmsInputError for requests KMS cannot honour (unknown key_id, immutable attributes,
    AWS managed keys) before anything is changed.
    """
    if desired["state"] == "absent":
        if current is None or current["key_state"] == "PendingDeletion":
            return []
        actions = [(SCHEDULE_DELETION, {"PendingWindowInDays": desired["pending_window_days"]})]
        _refuse_aws_managed(current, actions)
        return actions

    if current is None:
        if desired.get("key_id"):
            raise KmsInputError(
                f"Key {desired['key_id']} does not exist: KMS chooses the id of a new key, "
                "so give only an alias to create one"
            )
        return _plan_create(desired)

    _refuse_immutable_changes(current, desired)
    actions, key_state, enabled = _plan_pending_deletion(current)
    actions += plan_description_and_policy(current, desired) + plan_tags(current, desired)
    # Keys in other states (PendingImport: no key material yet, Unavailable, ...) cannot be enabled or
    # disabled, so enabled is no change to make for them.
    if key_state in ("Enabled", "Disabled") and desired["enabled"] != enabled:
        actions.append((ENABLE if desired["enabled"] else DISABLE, {}))
    alias = desired.get("alias")
    if alias and alias_target != current["key_id"]:
        actions.append((CREATE_ALIAS if alias_target is None else UPDATE_ALIAS, {"AliasName": alias}))
    _refuse_aws_managed(current, actions)
    return actions


def _plan_pending_deletion(current):
    """([cancel the deletion] or [], key state and enabled after it)."""
    if current["key_state"] == "PendingDeletion":
        return [(CANCEL_DELETION, {})], "Disabled", False  # what CancelKeyDeletion leaves
    return [], current["key_state"], current["enabled"]


def plan_description_and_policy(current, desired):
    actions = []
    if desired["description"] is not None and desired["description"] != current["description"]:
        actions.append((UPDATE_DESCRIPTION, {"Description": desired["description"]}))
    if desired["policy"] is not None and (
        current["policy"] is None or compare_policies(current["policy"], desired["policy"])
    ):
        actions.append((PUT_POLICY, dict({"PolicyName": POLICY_NAME, "Policy": json.dumps(desired["policy"])},
                                         **_bypass_lockout_check(desired))))
    return actions


def _bypass_lockout_check(desired):
    """The argument of CreateKey and PutKeyPolicy that skips KMS's policy lockout check, when asked for."""
    return {"BypassPolicyLockoutSafetyCheck": True} if desired.get("bypass_policy_lockout_safety_check") else {}


def plan_tags(current, desired):
    if desired["tags"] is None:
        return []
    to_set, to_unset = compare_aws_tags(current["tags"], desired["tags"], desired["purge_tags"])
    actions = []
    if to_unset:
        actions.append((UNTAG, {"TagKeys": sorted(to_unset)}))
    if to_set:
        actions.append((TAG, {"Tags": tag_list(to_set)}))
    return actions


def _plan_create(desired):
    if not desired.get("alias"):
        raise KmsInputError("A new key needs an alias: it is how this module finds the key again")
    key_spec = desired.get("key_spec") or DEFAULT_KEY_SPEC
    check_key_usage(key_spec, desired.get("key_usage"))
    args = {
        "KeySpec": key_spec,
        "KeyUsage": desired.get("key_usage") or default_key_usage(key_spec),
        "MultiRegion": bool(desired.get("multi_region")),
    }
    if desired["description"] is not None:
        args["Description"] = desired["description"]
    if desired["policy"] is not None:
        args["Policy"] = json.dumps(desired["policy"])
    if desired["tags"]:
        args["Tags"] = tag_list(desired["tags"])
    for name, arg in (("origin", "Origin"), ("custom_key_store_id", "CustomKeyStoreId"), ("xks_key_id", "XksKeyId")):
        if desired.get(name) is not None:
            args[arg] = desired[name]
    args.update(_bypass_lockout_check(desired))
    # The alias right after the key: it is the key's identity, so a later failure can be re-run.
    actions = [(CREATE_KEY, args), (CREATE_ALIAS, {"AliasName": desired["alias"]})]
    # A key without key material (PendingImport) cannot be disabled: enabled applies once it is imported.
    if not desired["enabled"] and args.get("Origin") != EXTERNAL:
        actions.append((DISABLE, {}))
    return actions


def _refuse_immutable_changes(current, desired):
    differences = [
        f"{name} is {current[name]}, not {desired[name]}"
        for name in IMMUTABLE
        if desired.get(name) is not None and desired[name] != current[name]
    ]
    if differences:
        raise KmsInputError(
            f"Key {current['key_id']}: {'; '.join(differences)}. {', '.join(IMMUTABLE[:-1])} and {IMMUTABLE[-1]} "
            "cannot change after a key is created: create a new key (and re-point the alias to it)"
        )


def _refuse_aws_managed(current, actions):
    if actions and current["key_manager"] != "CUSTOMER":
        raise KmsInputError(
            f"Key {current['key_id']} is managed by {current['key_manager']}: it cannot be modified "
            f"(this task would need {', '.join(step[0] for step in actions)})"
        )


def tag_list(tags):
    return ansible_dict_to_boto3_tag_list(dict(sorted(tags.items())), "TagKey", "TagValue")


def managed_fields(current):
    """The fields a diff shows, from a snapshot (an empty dict for a key that does not exist)."""
    if current is None:
        return {}
    return {name: current[name] for name in MANAGED_FIELDS}


# The calls that set a key's description, policy and tags: the same for a key and for a replica.
ATTRIBUTE_ACTIONS = (UPDATE_DESCRIPTION, PUT_POLICY, UNTAG, TAG)


def predict_attribute(after, action, args):
    """Apply one of ATTRIBUTE_ACTIONS to a prediction (a dict with description, policy and tags)."""
    if action == UPDATE_DESCRIPTION:
        after["description"] = args["Description"]
    elif action == PUT_POLICY:
        after["policy"] = json.loads(args["Policy"])
    elif action == UNTAG:
        for tag_key in args["TagKeys"]:
            after["tags"].pop(tag_key, None)
    elif action == TAG:
        after["tags"].update(boto3_tag_list_to_ansible_dict(args["Tags"], "TagKey", "TagValue"))


def predict_key(current, actions):
    """The managed fields after applying `actions` to `current`, computed from the plan alone.

    Used for check mode and for the diff. A key the plan creates gets the KMS default policy,
    which is unknown until KMS writes it: its policy is predicted as None unless the plan sets one.
    """
    if current is None and not actions:
        return {}
    after = copy.deepcopy(managed_fields(current))
    for action, args in actions:
        if action == CREATE_KEY:
            without_material = args.get("Origin") == EXTERNAL
            after = {
                "description": args.get("Description", ""),
                "enabled": not without_material,
                "key_state": PENDING_IMPORT if without_material else "Enabled",
                "tags": boto3_tag_list_to_ansible_dict(args.get("Tags", []), "TagKey", "TagValue"),
                "policy": json.loads(args["Policy"]) if "Policy" in args else None,
                "aliases": [],
            }
        elif action == CANCEL_DELETION:
            after.update(key_state="Disabled", enabled=False)
        elif action in ATTRIBUTE_ACTIONS:
            predict_attribute(after, action, args)
        elif action == ENABLE:
            after.update(key_state="Enabled", enabled=True)
        elif action == DISABLE:
            after.update(key_state="Disabled", enabled=False)
        elif action == SCHEDULE_DELETION:
            after.update(key_state="PendingDeletion", enabled=False)
        elif action in (CREATE_ALIAS, UPDATE_ALIAS):
            after["aliases"] = sorted(set(after["aliases"]) | {args["AliasName"]})
    return after


def apply_key(client, actions, key_id=None):
    """Make the plan's calls in order; returns the key id (the new one when the plan creates it)."""
    for action, args in actions:
        try:
            if action == CREATE_KEY:
                key_id = client.create_key(**args)["KeyMetadata"]["KeyId"]
            elif action in (CREATE_ALIAS, UPDATE_ALIAS):
                getattr(client, action)(TargetKeyId=key_id, **args)
            else:
                getattr(client, action)(KeyId=key_id, **args)
        except (BotoCoreError, ClientError) as exc:
            raise KeyApplyError(action, key_id, exc) from exc
    return key_id


def predicted_metadata(actions):
    """The KeyMetadata check mode can predict for a key the plan creates (None when it creates none)."""
    for action, args in actions:
        if action == CREATE_KEY:
            metadata = {
                "KeyId": None,
                "Arn": None,
                "KeySpec": args["KeySpec"],
                "KeyUsage": args["KeyUsage"],
                "MultiRegion": args["MultiRegion"],
                "KeyManager": "CUSTOMER",
                "Origin": args.get("Origin", DEFAULT_ORIGIN),
            }
            if "CustomKeyStoreId" in args:
                metadata["CustomKeyStoreId"] = args["CustomKeyStoreId"]
            if "XksKeyId" in args:
                metadata["XksKeyConfiguration"] = {"Id": args["XksKeyId"]}
            return metadata
    return None


def key_result(metadata, after):
    """The module's return values: KeyMetadata (snake_cased) with the managed fields of `after`.

    For a key check mode predicts would be created (predicted_metadata()), the fields only KMS
    can fill in (key_id, arn, creation_date, ...) are None.
    """
    summary = key_summary(metadata)
    result = {name: summary.get(name) for name in RESULT_FIELDS}
    result.update(after)
    # KMS sets the date when it schedules the deletion: check mode cannot predict it.
    if result["key_state"] != "PendingDeletion" or result["deletion_date"] is None:
        del result["deletion_date"]
    result["key_arn"] = result["arn"]
    return result
