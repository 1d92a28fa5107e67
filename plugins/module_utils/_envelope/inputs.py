# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""For internal collection use only: the engine's inputs, checked and normalised once.

Key ids, encryption contexts, algorithm suites, frame lengths and commitment policies, each refused
with a one-line EnvelopeError (kind ``invalid_argument``) before any KMS call. Light on purpose:
modules that never encrypt (data_key) use it without importing the AWS Encryption SDK, which is
imported only by the functions that need it.
"""

from __future__ import annotations

import re

from ansible_collections.envelope.kms.plugins.module_utils._envelope.constants import (
    ALIAS_PREFIX,
    DEFAULT_ALGORITHM,
    DEFAULT_FRAME_LENGTH,
    DEFAULT_MAX_FRAME_LENGTH,
    FRAME_LENGTH_MULTIPLE,
    RESERVED_CONTEXT_PREFIX,
    SIGNED_ALGORITHM,
)
from ansible_collections.envelope.kms.plugins.module_utils.errors import InputError

BARE_KEY_ID = re.compile(r"^(mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$")


def normalize_key_id(key_id):
    """Key id, key ARN, alias ARN or 'alias/name' as KMS takes them; a bare name becomes 'alias/name'."""
    key_id = (key_id or "").strip()
    if not key_id:
        raise InputError("a KMS key id must not be empty")
    if key_id.startswith("arn:") or key_id.startswith(ALIAS_PREFIX) or BARE_KEY_ID.match(key_id):
        return key_id
    return ALIAS_PREFIX + key_id


def key_id_list(key_ids):
    """One key id or a list, normalised, without repeats; at least one."""
    if isinstance(key_ids, str):
        key_ids = [key_ids]
    normalized = []
    for key_id in key_ids or ():
        key_id = normalize_key_id(key_id)
        if key_id not in normalized:
            normalized.append(key_id)
    if not normalized:
        raise InputError("at least one KMS key id is required to encrypt")
    return normalized


def normalize_context(context, purpose="encryption context", reserved_prefix=RESERVED_CONTEXT_PREFIX):
    """A str->str dict; numbers become strings; keys with the reserved prefix ('aws-crypto-', the AWS
    Encryption SDK's; None for a context that only KMS sees) are refused."""
    if not isinstance(context, (dict, type(None))):
        raise InputError(f"{purpose} must be a dictionary of strings, not {type(context).__name__}")
    normalized = {}
    for key, value in (context or {}).items():
        if isinstance(value, bool) or not isinstance(value, (str, int, float)) or not isinstance(key, str):
            raise InputError(f"{purpose} keys and values must be strings (key {key!r})")
        if reserved_prefix and key.startswith(reserved_prefix):
            raise InputError(f"{purpose} key {key!r} is reserved by the AWS Encryption SDK")
        normalized[key] = str(value)
    return normalized


def algorithm_suite(name):
    """Suite by name (case-insensitive) or id ('0x0478', 1144); None is the default suite."""
    from aws_encryption_sdk.identifiers import Algorithm  # pylint: disable=import-outside-toplevel

    if name is None:
        name = DEFAULT_ALGORITHM
    if isinstance(name, int) or (isinstance(name, str) and name.lower().startswith("0x")):
        try:
            return Algorithm.get_by_id(int(name, 16) if isinstance(name, str) else name)
        except (KeyError, ValueError):
            pass
    else:
        member = getattr(Algorithm, str(name).upper(), None)
        if isinstance(member, Algorithm):
            return member
    raise InputError(f"unknown algorithm suite {name!r}; use {DEFAULT_ALGORITHM} or {SIGNED_ALGORITHM}")


def commitment_policy(name):
    from aws_encryption_sdk.identifiers import CommitmentPolicy  # pylint: disable=import-outside-toplevel

    member = getattr(CommitmentPolicy, str(name).upper(), None)
    if not isinstance(member, CommitmentPolicy):
        raise InputError(f"unknown commitment policy {name!r}")
    return member


def frame_length(value):
    """The frame length to encrypt with: a multiple of 128 up to the decrypt bound; None is the default."""
    length = DEFAULT_FRAME_LENGTH if value is None else int(value)
    if length < 1 or length > DEFAULT_MAX_FRAME_LENGTH or length % FRAME_LENGTH_MULTIPLE:
        raise InputError(f"frame length must be a multiple of {FRAME_LENGTH_MULTIPLE} between {FRAME_LENGTH_MULTIPLE} "
                         f"and {DEFAULT_MAX_FRAME_LENGTH} bytes")
    return length
