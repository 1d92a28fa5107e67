# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""For internal collection use only: the engine's inputs, checked and normalised once.

Key ids, encryption contexts, algorithm suites, frame lengths and commitment policies, each refused
with a one-line EnvelopeError (kind ``invalid_argument``) before any KMS call.
"""

from __future__ import annotations

import re

try:
    from aws_encryption_sdk.identifiers import Algorithm, CommitmentPolicy
except ImportError:
    pass  # envelope.HAS_ESDK tells

from ansible_collections.envelope.kms.plugins.module_utils._envelope.constants import (
    ALIAS_PREFIX,
    DEFAULT_ALGORITHM,
    DEFAULT_FRAME_LENGTH,
    DEFAULT_MAX_FRAME_LENGTH,
    RESERVED_CONTEXT_PREFIX,
    SIGNED_ALGORITHM,
)
from ansible_collections.envelope.kms.plugins.module_utils._envelope.errors import EnvelopeError

BARE_KEY_ID = re.compile(r"^(mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$")


def normalize_key_id(key_id):
    """Key id, key ARN, alias ARN or 'alias/name' as KMS takes them; a bare name becomes 'alias/name'."""
    key_id = (key_id or "").strip()
    if not key_id:
        raise EnvelopeError("a KMS key id must not be empty", "invalid_argument")
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
        raise EnvelopeError("at least one KMS key id is required to encrypt", "invalid_argument")
    return normalized


def normalize_context(context, purpose="encryption context"):
    """A str->str dict; numbers become strings; reserved 'aws-crypto-' keys are refused."""
    normalized = {}
    for key, value in (context or {}).items():
        if isinstance(value, bool) or not isinstance(value, (str, int, float)) or not isinstance(key, str):
            raise EnvelopeError(f"{purpose} keys and values must be strings (key {key!r})", "invalid_argument")
        if key.startswith(RESERVED_CONTEXT_PREFIX):
            raise EnvelopeError(f"{purpose} key {key!r} is reserved by the AWS Encryption SDK", "invalid_argument")
        normalized[key] = str(value)
    return normalized


def algorithm_suite(name):
    """Suite by name (case-insensitive) or id ('0x0478', 1144); None is the default suite."""
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
    raise EnvelopeError(f"unknown algorithm suite {name!r}; use {DEFAULT_ALGORITHM} or {SIGNED_ALGORITHM}",
                        "invalid_argument")


def commitment_policy(name):
    member = getattr(CommitmentPolicy, str(name).upper(), None)
    if not isinstance(member, CommitmentPolicy):
        raise EnvelopeError(f"unknown commitment policy {name!r}", "invalid_argument")
    return member


def frame_length(value):
    """The frame length to encrypt with: a multiple of 16 up to the decrypt bound; None is the default."""
    length = DEFAULT_FRAME_LENGTH if value is None else int(value)
    if length < 1 or length > DEFAULT_MAX_FRAME_LENGTH or length % 16:
        raise EnvelopeError(
            f"frame length must be a multiple of 16 between 16 and {DEFAULT_MAX_FRAME_LENGTH} bytes", "invalid_argument"
        )
    return length
