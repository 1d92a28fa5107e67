# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""KMS access shared by the modules: the retrying client, name rules and read-only lookups.

Everything here reads; plans and the calls that apply them live beside each module's own helper
(keys.py, aliases.py, rotation.py) so the comparison logic stays pure and unit-testable.
"""

from __future__ import annotations

import json
import re

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.amazon.aws.plugins.module_utils.tagging import boto3_tag_list_to_ansible_dict

# AWSRetry's defaults do not cover KMS's own throttling and transient error codes.
KMS_RETRYABLE_CODES = ["ThrottlingException", "KMSInternalException", "DependencyTimeoutException"]
kms_retry = AWSRetry.jittered_backoff(retries=10, delay=1, max_delay=30, catch_extra_error_codes=KMS_RETRYABLE_CODES)

ALIAS_PREFIX = "alias/"
RESERVED_ALIAS_PREFIX = "alias/aws/"
_ALIAS_NAME = re.compile(r"^alias/[a-zA-Z0-9/_-]{1,250}$")


class KmsInputError(ValueError):
    """A user input KMS would reject, caught before any call so the message can say why."""


def kms_client(module):
    """A KMS client whose calls retry throttling when passed aws_retry=True."""
    return module.client("kms", retry_decorator=kms_retry)


def normalize_alias(name):
    """'foo' or 'alias/foo' -> 'alias/foo'; refuses names KMS would reject or reserves for AWS."""
    if not name:
        raise KmsInputError("An alias name must not be empty")
    full = name if name.startswith(ALIAS_PREFIX) else ALIAS_PREFIX + name
    if full.startswith(RESERVED_ALIAS_PREFIX):
        raise KmsInputError(f"Alias {full} is reserved: names starting with alias/aws/ belong to AWS managed keys")
    if not _ALIAS_NAME.match(full):
        raise KmsInputError(
            f"Invalid alias name {name!r}: use 1-250 letters, digits, '/', '_' or '-' after 'alias/'"
        )
    return full


def is_alias_reference(key_ref):
    """True for 'alias/x' and 'arn:aws:kms:...:alias/x' (key ids and key ARNs are not)."""
    return key_ref.startswith(ALIAS_PREFIX) or ":alias/" in key_ref


def describe_key(client, key_ref):
    """KeyMetadata for a key id, key ARN, alias name or alias ARN; None when it does not exist."""
    try:
        return client.describe_key(KeyId=key_ref, aws_retry=True)["KeyMetadata"]
    except is_boto3_error_code("NotFoundException"):
        return None


def _paginate(client, operation, result_key, **params):
    paginator = client.get_paginator(operation)
    return kms_retry(lambda: paginator.paginate(**params).build_full_result())().get(result_key, [])


def list_aliases(client, key_id=None):
    """Aliases as KMS lists them (AliasName, AliasArn, TargetKeyId, ...), for one key or all."""
    params = {"KeyId": key_id} if key_id else {}
    return _paginate(client, "list_aliases", "Aliases", **params)


def alias_names(client, key_id):
    return sorted(alias["AliasName"] for alias in list_aliases(client, key_id))


def key_tags(client, key_id):
    tags = _paginate(client, "list_resource_tags", "Tags", KeyId=key_id)
    return boto3_tag_list_to_ansible_dict(tags, "TagKey", "TagValue")


def key_policy(client, key_id):
    """The key's (only) policy, parsed; None when the caller may not read it."""
    try:
        policy = client.get_key_policy(KeyId=key_id, PolicyName="default", aws_retry=True)["Policy"]
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
    """{'enabled', 'rotation_period_days', 'next_rotation_date'} as GetKeyRotationStatus gives them.

    Fields KMS omits (moto omits RotationPeriodInDays; disabled rotation has no period) are None.
    """
    status = client.get_key_rotation_status(KeyId=key_id, aws_retry=True)
    return {
        "enabled": status["KeyRotationEnabled"],
        "rotation_period_days": status.get("RotationPeriodInDays"),
        "next_rotation_date": _iso(status.get("NextRotationDate")),
    }


def list_rotations(client, key_id):
    """Completed rotations (ListKeyRotations), oldest first, snake_cased with ISO dates."""
    rotations = _paginate(client, "list_key_rotations", "Rotations", KeyId=key_id)
    return [
        {
            "key_id": rotation.get("KeyId"),
            "rotation_date": _iso(rotation.get("RotationDate")),
            "rotation_type": rotation.get("RotationType"),
        }
        for rotation in rotations
    ]


def key_summary(metadata, aliases=None):
    """Snake-cased KeyMetadata (what `aws kms describe-key` prints) plus the key's aliases."""
    summary = camel_dict_to_snake_dict({key: _iso(value) for key, value in metadata.items()})
    if aliases is not None:
        summary["aliases"] = aliases
    return summary


def _iso(value):
    return value.isoformat() if hasattr(value, "isoformat") else value
