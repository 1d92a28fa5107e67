# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""KMS access shared by every plugin: the one client factory with the one retry policy, name rules
and read-only lookups.

Every KMS client of the collection comes from ``kms_client`` (modules, action plugins, the lookup,
and the clients the envelope engine hands to the AWS Encryption SDK), so every call, GenerateDataKey
and Decrypt made by the library included, retries throttling and transient KMS errors the same way.
Everything else here reads; plans and the calls that apply them live beside each module's own
helper (keys.py, aliases.py, rotation.py) so the comparison logic stays pure and unit-testable.
"""

from __future__ import annotations

import json
import re

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict

try:
    from botocore.config import Config
except ImportError:
    pass  # AnsibleAWSModule and the plugin bases report a missing botocore

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.tagging import boto3_tag_list_to_ansible_dict

from ansible_collections.envelope.kms.plugins.module_utils._envelope.constants import ALIAS_PREFIX, KMS_RETRIES
# The check-mode rule for keys earlier tasks only predict (null, or not created yet): one home, shared
# with the controller plugins, which must not import this file (it imports amazon.aws).
from ansible_collections.envelope.kms.plugins.module_utils._envelope.inputs import (  # noqa: F401
    UNKNOWN_KEY_ASSUMPTION,
    is_unknown_key_ref,
    unknown_key_warning,
)

# A user input KMS would reject, caught before any call so the message can say why.
from ansible_collections.envelope.kms.plugins.module_utils.errors import InputError as KmsInputError  # noqa: F401


RESERVED_ALIAS_PREFIX = "alias/aws/"
ALIAS_NAME = re.compile(r"^alias/[a-zA-Z0-9/_-]{1,250}$")


def kms_client(aws, region=None):
    """The KMS client of an AnsibleAWSModule or an amazon.aws plugin (anything with amazon.aws's
    ``client(service, **params)``), for its own region or ``region``, with the retry policy."""
    params = {"config": Config(retries=dict(KMS_RETRIES))}
    if region:
        params["region"] = region
    return aws.client("kms", **params)


def alias_name(name):
    """'foo' or 'alias/foo' -> 'alias/foo'; refuses names KMS would reject (alias/aws/... included)."""
    if not name:
        raise KmsInputError("An alias name must not be empty")
    full = name if name.startswith(ALIAS_PREFIX) else ALIAS_PREFIX + name
    if not ALIAS_NAME.match(full):
        raise KmsInputError(
            f"Invalid alias name {name!r}: use 1-250 letters, digits, '/', '_' or '-' after 'alias/'"
        )
    return full


def normalize_alias(name):
    """An alias this collection may create, move or delete: alias_name, but not alias/aws/..."""
    full = alias_name(name)
    if full.startswith(RESERVED_ALIAS_PREFIX):
        raise KmsInputError(f"Alias {full} is reserved: names starting with alias/aws/ belong to AWS managed keys")
    return full


def is_alias_reference(key_ref):
    """True for 'alias/x' and 'arn:aws:kms:...:alias/x' (key ids and key ARNs are not)."""
    return key_ref.startswith(ALIAS_PREFIX) or ":alias/" in key_ref


def describe_key(client, key_ref):
    """KeyMetadata for a key id, key ARN, alias name or alias ARN; None when it does not exist."""
    try:
        return client.describe_key(KeyId=key_ref)["KeyMetadata"]
    except is_boto3_error_code("NotFoundException"):
        return None


def given_as_null(*names):
    """Whether the task gave one of the option ``names`` (an option and its aliases) as null.

    AnsibleModule's params cannot tell an option given as null from one not given, and for an option
    that is not required both mean something (key_id null with an alias: a key an earlier task would
    create in check mode, not "manage the key by its alias"). ``basic._load_params()`` re-reads the
    arguments the module was handed, unchanged; its docstring invites modules to call it, without a
    stability promise (the unit tests of this function would see a change).
    """
    from ansible.module_utils.basic import _load_params  # pylint: disable=import-outside-toplevel

    given = _load_params()
    return any(name in given and given[name] is None for name in names)


def wanted_key_ids(key_ids, given, check_mode):
    """The key_id list option of a module that writes envelopes (rewrap, import_openssl), checked
    before any KMS call: not ``given`` is an error; null, or with a null or
    blank entry, too outside check mode; in check mode those are keys an earlier task would create."""
    if not given:
        raise KmsInputError("missing required arguments: key_id")
    key_ids = [None] if key_ids is None else list(key_ids)
    if not key_ids or (not check_mode and any(is_unknown_key_ref(key_id) for key_id in key_ids)):
        raise KmsInputError("key_id is required: it is null or empty, or holds a null or empty entry")
    return key_ids


def required_key_ref(key_ref, message, check_mode):
    """``key_ref``; None when it is null or blank, which only check mode accepts (an earlier task's
    prediction). Outside check mode that raises KmsInputError(message), before any KMS call."""
    if not is_unknown_key_ref(key_ref):
        return key_ref
    if check_mode:
        return None
    raise KmsInputError(message)


def find_key(client, key_ref, option, check_mode, warn, missing):
    """KeyMetadata of ``key_ref`` (None or a reference, as required_key_ref leaves it).

    In check mode a None ``key_ref``, or one that names no key, gives None and a warning naming the
    option and the reference (unknown_key_warning). Outside check mode a reference to no key raises
    KmsInputError(missing): the module's one line naming the key.
    """
    if key_ref is not None:
        metadata = describe_key(client, key_ref)
        if metadata is not None:
            return metadata
        if not check_mode:
            raise KmsInputError(missing)
    elif not check_mode:
        raise KmsInputError(f"{option} is null or empty")
    warn(unknown_key_warning(option, key_ref))
    return None


def known_key_arns(values, option, check_mode, warn, given_null=False):
    """A list of key ARNs an earlier task may have predicted as null, without its null or blank entries
    (``given_null``: the option itself was given as null, which stands for one such entry).

    Leaving them out is exact in check mode: nothing can be wrapped under a key that does not exist
    yet. Outside check mode such an entry raises KmsInputError. None (not given) stays None.
    """
    if values is None and given_null:
        values = [None]
    if values is None or not any(is_unknown_key_ref(value) for value in values):
        return values
    if not check_mode:
        raise KmsInputError(f"{option} is null or holds a null or empty entry: give key ARNs")
    warn(f"{option} is null or holds a null or empty entry, left out: {UNKNOWN_KEY_ASSUMPTION}")
    return [value for value in values if not is_unknown_key_ref(value)]


def paginate(client, operation, result_key, **params):
    """Every page's ``result_key`` items (each page request retried by the client's policy)."""
    return client.get_paginator(operation).paginate(**params).build_full_result().get(result_key, [])


def list_aliases(client, key_id=None):
    """Aliases as KMS lists them (AliasName, AliasArn, TargetKeyId, ...), for one key or all."""
    params = {"KeyId": key_id} if key_id else {}
    return paginate(client, "list_aliases", "Aliases", **params)


def alias_names(client, key_id):
    return sorted(alias["AliasName"] for alias in list_aliases(client, key_id))


def key_tags(client, key_id):
    tags = paginate(client, "list_resource_tags", "Tags", KeyId=key_id)
    return boto3_tag_list_to_ansible_dict(tags, "TagKey", "TagValue")


def key_policy(client, key_id):
    """The key's (only) policy, parsed; None when the caller may not read it."""
    try:
        policy = client.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]
    except is_boto3_error_code("AccessDeniedException"):
        return None
    return json.loads(policy)


def supports_rotation(metadata):
    """Only symmetric encryption keys with KMS-generated material can rotate (AWS docs, EnableKeyRotation)."""
    return (
        metadata.get("KeySpec", "SYMMETRIC_DEFAULT") == "SYMMETRIC_DEFAULT"
        and metadata.get("KeyUsage", "ENCRYPT_DECRYPT") == "ENCRYPT_DECRYPT"
        and metadata.get("Origin", "AWS_KMS") == "AWS_KMS"
    )


def rotation_status(client, key_id):
    """GetKeyRotationStatus as {'enabled', 'rotation_period_days', 'next_rotation_date',
    'on_demand_rotation_start_date'} (the last is set while an on-demand rotation runs).

    Fields KMS omits (moto omits RotationPeriodInDays; disabled rotation has no period) are None.
    """
    status = client.get_key_rotation_status(KeyId=key_id)
    return {
        "enabled": status["KeyRotationEnabled"],
        "rotation_period_days": status.get("RotationPeriodInDays"),
        "next_rotation_date": iso(status.get("NextRotationDate")),
        "on_demand_rotation_start_date": iso(status.get("OnDemandRotationStartDate")),
    }


def list_rotations(client, key_id):
    """Completed rotations (ListKeyRotations), oldest first, snake_cased with ISO dates."""
    rotations = paginate(client, "list_key_rotations", "Rotations", KeyId=key_id)
    return [
        {
            "key_id": rotation.get("KeyId"),
            "rotation_date": iso(rotation.get("RotationDate")),
            "rotation_type": rotation.get("RotationType"),
        }
        for rotation in rotations
    ]


def key_summary(metadata, aliases=None):
    """Snake-cased KeyMetadata (what `aws kms describe-key` prints) plus the key's aliases."""
    summary = camel_dict_to_snake_dict({key: iso(value) for key, value in metadata.items()})
    if aliases is not None:
        summary["aliases"] = aliases
    return summary


def iso(value):
    """A datetime as ISO 8601 text; anything else as it is."""
    return value.isoformat() if hasattr(value, "isoformat") else value
