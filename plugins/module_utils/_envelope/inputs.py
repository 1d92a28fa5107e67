# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""For internal collection use only: the engine's inputs, checked and normalised once.

Key ids (in check mode, those earlier tasks only predict too), encryption contexts, algorithm
suites, frame lengths and commitment policies, each refused with a one-line EnvelopeError (kind
``invalid_argument``) before any KMS call. Light on purpose: modules that never encrypt (data_key)
use it without importing the AWS Encryption SDK, which is imported only by the functions that need
it, and controller plugins without importing amazon.aws.
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
from ansible_collections.envelope.kms.plugins.module_utils.errors import EnvelopeError, InputError

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


# Check mode: a task that would create a key returns its id and ARN as null (KMS has not chosen them),
# so later tasks get null, or an alias the real run would create, for a key that does not exist yet.
# The one home of this rule, for modules (through kms.py) and controller plugins alike.
UNKNOWN_KEY_ASSUMPTION = "assuming an earlier task creates that key in the real run (check mode)"
# Stands, among the key ARNs resolved in check mode, for such a key: no header holds it, since nothing
# can be wrapped under a key that does not exist yet. Never sent to KMS; results show it as None.
UNKNOWN_KEY_ARN = "\0unknown key "


def is_unknown_key_ref(key_ref):
    """True for a null or blank key reference: what check mode predicts for a key not created yet."""
    return key_ref is None or not str(key_ref).strip()


def unknown_key_warning(option, key_ref=None):
    """The check-mode warning for a key reference that names no key yet. It names the option and the
    reference, so that a typo (which the real run refuses) does not go unnoticed."""
    if is_unknown_key_ref(key_ref):
        return f"{option} is null or empty: {UNKNOWN_KEY_ASSUMPTION}"
    return f"Key {key_ref} ({option}) was not found: {UNKNOWN_KEY_ASSUMPTION}"


def predicted_key_ids(key_ids, check_mode, option="key_id"):
    """A key id option (one id, a list, or None: given as null) as a list in which a null or blank
    entry is None. Only check mode takes such an entry (an earlier task's prediction): outside it,
    InputError, before any KMS call."""
    key_ids = [key_ids] if key_ids is None or isinstance(key_ids, str) else list(key_ids)
    key_ids = [None if is_unknown_key_ref(key_id) else key_id for key_id in key_ids]
    if check_mode or None not in key_ids:
        return key_ids
    where = f" (entry {key_ids.index(None) + 1} of {len(key_ids)})" if len(key_ids) > 1 else ""
    raise InputError(f"{option} is null or empty{where}: give a KMS key id, key ARN, alias name or alias ARN (the null "
                     "key id of a key an earlier task would create is taken in check mode only)")


def resolve_predicted_key_ids(resolve, key_ids, warn, option="key_id"):
    """Check mode: the key ARNs of ``key_ids`` (predicted_key_ids' list) by ``resolve`` (a key id ->
    its ARN), in order and without repeats. An entry that is None, or that names no key (``resolve``
    raising EnvelopeError of kind key_not_found), is warned about (unknown_key_warning) and stands as
    an unknown key ARN (is_unknown_key_arn). Any other failure is raised."""
    arns = []
    for index, key_id in enumerate(key_ids):
        arn = None
        if not is_unknown_key_ref(key_id):
            try:
                arn = resolve(key_id)
            except EnvelopeError as error:
                if error.kind != "key_not_found":
                    raise
        if arn is None:
            warn(unknown_key_warning(option, key_id))
            arn = f"{UNKNOWN_KEY_ARN}{index}"
        if arn not in arns:
            arns.append(arn)
    if not arns:
        raise InputError("at least one KMS key id is required to encrypt")
    return arns


def is_unknown_key_arn(arn):
    return arn.startswith(UNKNOWN_KEY_ARN)


def known_key_arns(arns):
    """The resolved key ARNs of keys that exist (in check mode, without the unknown ones)."""
    return [arn for arn in arns if not is_unknown_key_arn(arn)]


def shown_key_arns(arns):
    """Key ARNs as results and diffs show them: None for each key not known yet, in place."""
    return [None if is_unknown_key_arn(arn) else arn for arn in arns]


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
