# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""For internal collection use only: what the engine tells about an envelope, as plain data."""

from __future__ import annotations

from dataclasses import asdict, dataclass

try:
    from aws_encryption_sdk.identifiers import ContentType
except ImportError:
    pass  # envelope.HAS_ESDK tells

from ansible_collections.envelope.kms.plugins.module_utils._envelope.constants import (
    KMS_PROVIDER_ID,
    PUBLIC_KEY_CONTEXT_KEY,
)


@dataclass(frozen=True)
class EnvelopeFacts:
    """What an envelope's header says, plus checksums when the engine has just written it.

    From ``inspect_header`` these facts are not authenticated (that needs the data key); the
    engine's decrypt re-checks them on the authenticated header.
    """

    key_arns: tuple  # KMS keys the data key is wrapped under, sorted
    encryption_context: dict  # without the library's reserved aws-crypto-public-key entry
    algorithm: str  # suite name, e.g. AES_256_GCM_HKDF_SHA512_COMMIT_KEY
    algorithm_id: int  # e.g. 0x0478
    signed: bool
    frame_length: int  # 0 for a non-framed message
    message_id: str  # hex
    data_key_count: int  # all wrapped data keys, KMS or not
    size: int = None  # ciphertext bytes, when known
    sha1: str = None  # of the ciphertext, set by encrypt/rewrap
    sha256: str = None

    def to_dict(self):
        facts = asdict(self)
        facts["key_arns"] = list(self.key_arns)
        return facts

    def with_size(self, size):
        return EnvelopeFacts(**dict(asdict(self), size=size))

    def wrapped_as(self, key_arns, encryption_context):
        """Reasons these facts differ from data keys wrapped under exactly ``key_arns`` (KMS keys
        only) with exactly ``encryption_context``: 'key' and/or 'context'. Empty: the same."""
        reasons = []
        if set(self.key_arns) != set(key_arns) or self.data_key_count != len(self.key_arns):
            reasons.append("key")
        if self.encryption_context != encryption_context:
            reasons.append("context")
        return reasons


@dataclass(frozen=True)
class Comparison:
    """Whether an existing envelope already holds what is wanted; ``reasons`` lists what differs:
    'invalid' (not a readable envelope), 'key', 'context', 'algorithm', 'frame_length', 'content'."""

    same: bool
    reasons: tuple
    facts: EnvelopeFacts = None
    kms_calls: int = 0  # Decrypt calls it needed: 0 or 1


def facts_from_header(header, size=None, sha1=None, sha256=None):
    """EnvelopeFacts of a library MessageHeader."""
    key_arns = sorted(
        _text(data_key.key_provider.key_info)
        for data_key in header.encrypted_data_keys
        if _text(data_key.key_provider.provider_id) == KMS_PROVIDER_ID
    )
    context = {key: value for key, value in header.encryption_context.items() if key != PUBLIC_KEY_CONTEXT_KEY}
    framed = header.content_type == ContentType.FRAMED_DATA
    return EnvelopeFacts(
        key_arns=tuple(key_arns),
        encryption_context=context,
        algorithm=header.algorithm.name,
        algorithm_id=header.algorithm.algorithm_id,
        signed=header.algorithm.is_signing(),
        frame_length=header.frame_length if framed else 0,
        message_id=header.message_id.hex(),
        data_key_count=len(header.encrypted_data_keys),
        size=size,
        sha1=sha1,
        sha256=sha256,
    )


def _text(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
