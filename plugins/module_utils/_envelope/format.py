# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""For internal collection use only: the message format without KMS: headers and size arithmetic.

Reading a header needs no key: it tells the wrapping key ARNs, the context, the suite and the
frame length (unauthenticated until decrypt re-checks them). The sizes a framed message of a given
plaintext size can have let callers rule out a match from a file size alone.
"""

from __future__ import annotations

import re

try:
    from aws_encryption_sdk.exceptions import AWSEncryptionSDKClientError, MaxEncryptedDataKeysExceeded
    from aws_encryption_sdk.identifiers import Algorithm, ContentType, SerializationVersion
    from aws_encryption_sdk.internal.formatting.deserialize import deserialize_header
except ImportError:
    pass  # envelope.HAS_ESDK tells

from ansible_collections.envelope.kms.plugins.module_utils._envelope.constants import (
    DEFAULT_MAX_ENCRYPTED_DATA_KEYS,
    DEFAULT_MAX_FRAME_LENGTH,
    KMS_PROVIDER_ID,
    PUBLIC_KEY_CONTEXT_KEY,
)
from ansible_collections.envelope.kms.plugins.module_utils.errors import EnvelopeError
from ansible_collections.envelope.kms.plugins.module_utils._envelope.inputs import algorithm_suite
from ansible_collections.envelope.kms.plugins.module_utils._envelope.io import open_source
from ansible_collections.envelope.kms.plugins.module_utils._envelope.library import require_esdk
from ansible_collections.envelope.kms.plugins.module_utils._envelope.model import facts_from_header

# Any plausible header: 64 bytes up to 10 wrapped keys and a large context.
PLAUSIBLE_HEADER_LENGTHS = (64, 128 * 1024)
# The header stores the serialized encryption context behind a 2-byte length: at most this many
# bytes (2 for the number of pairs, then per pair 2 + key + 2 + value, as UTF-8).
MAX_CONTEXT_BYTES = 65535
# The signed suites add their public key to the context: P-384, compressed, base64 (68 characters).
SIGNED_CONTEXT_EXTRA_BYTES = 2 + len(PUBLIC_KEY_CONTEXT_KEY) + 2 + 68
# What the library says when it refuses a frame length or a body (3.3.x and 4.x alike).
_FRAME_REFUSAL = re.compile(r"frame (?:length|size)\b.*?(\d+)\s*>\s*(\d+)", re.IGNORECASE | re.DOTALL)
_BODY_REFUSAL = re.compile(r"non-framed message content length.*?(\d+)\s*>\s*(\d+)", re.IGNORECASE | re.DOTALL)
_CONTEXT_REFUSAL = re.compile(r"(encryption|serialized) context .*(too large|too long|too many)", re.IGNORECASE)
_CONTEXT_NOT_TEXT = re.compile(r"cannot encode dictionary key or value", re.IGNORECASE)
# A wrapped data key of the aws-kms provider names its KMS key by ARN: text, never control characters.
NOT_TEXT_KEY_ID = "the envelope header is tampered or corrupt (a wrapped data key's KMS key ARN is not printable UTF-8 text)"
NOT_UTF8_HEADER = "the envelope header is tampered or corrupt (text in it is not valid UTF-8)"


def inspect_header(source, max_data_keys=DEFAULT_MAX_ENCRYPTED_DATA_KEYS, max_frame_length=DEFAULT_MAX_FRAME_LENGTH):
    """EnvelopeFacts from the header of a path, bytes or binary file, without KMS calls.

    The facts are unauthenticated; decrypt (or compare) re-checks them once the data key is known.
    A header with more wrapped data keys or a larger frame length than decrypt accepts is refused
    here too (``too_large``), so a hostile header costs bounded memory and time.
    """
    require_esdk()
    with open_source(source, "cannot inspect envelope") as opened:
        facts = read_facts(opened.stream, opened.label, max_data_keys, max_frame_length)[0]
        return facts.with_size(opened.size())


def read_facts(stream, label, max_data_keys, max_frame_length=None):
    """(facts, header length with its auth tag) from the stream's position, which is restored.

    ``max_data_keys`` (None: any) is checked on the count field before any key is read, so the
    header read stays small (a wrapped key is at most 3 x 64 KiB). ``max_frame_length`` (None: the
    library's own bound) refuses larger frames from the header alone."""
    start = stream.tell()
    try:
        _check_magic(stream.read(4), label)
        stream.seek(start)
        try:
            header, raw_header = deserialize_header(stream, max_data_keys)
        except MaxEncryptedDataKeysExceeded as error:
            raise too_many_data_keys(error, label, max_data_keys) from error
        except UnicodeDecodeError as error:
            raise EnvelopeError(f"{label}: {NOT_UTF8_HEADER}", "corrupt") from error
        except (AWSEncryptionSDKClientError, ValueError, TypeError) as error:
            refusal = size_refusal(error, label, max_frame_length)
            if refusal is not None:
                raise refusal from error
            raise EnvelopeError(f"{label}: the envelope header is truncated or corrupt", "corrupt") from error
    finally:
        stream.seek(start)
    _check_kms_key_ids(header, label)
    framed = header.content_type == ContentType.FRAMED_DATA
    if max_frame_length and framed and header.frame_length > max_frame_length:
        raise EnvelopeError(frame_too_large(label, header.frame_length, max_frame_length), "too_large")
    algorithm = header.algorithm
    auth_length = algorithm.auth_len + (algorithm.iv_len if header.version == SerializationVersion.V1 else 0)
    return facts_from_header(header), len(raw_header) + auth_length


def _check_kms_key_ids(header, label):
    """The library decodes a KMS wrapped key's provider info (the key ARN) only when it calls KMS,
    and then fails with a bare codec error: refuse it here, with the other tampering, before any
    KMS call. Control characters are refused too: the ARN goes into one-line messages."""
    for data_key in header.encrypted_data_keys:
        provider = data_key.key_provider
        if str(provider.provider_id) != KMS_PROVIDER_ID:
            continue  # other providers' info is binary (a raw key's holds its IV)
        key_info = provider.key_info
        try:
            text = key_info.decode("utf-8") if isinstance(key_info, (bytes, bytearray)) else str(key_info)
        except UnicodeDecodeError:
            text = None
        if not text or not text.isprintable():
            raise EnvelopeError(f"{label}: {NOT_TEXT_KEY_ID}", "corrupt")


def too_many_data_keys(error, label, limit=None):
    """EnvelopeError for the library's MaxEncryptedDataKeysExceeded ("...: 10000 > 10")."""
    match = re.search(r"(\d+)\s*>\s*(\d+)", str(error))
    if match:
        return EnvelopeError(f"{label}: the envelope header declares {match.group(1)} wrapped data keys, more than "
                             f"the allowed {match.group(2)}", "too_large")
    return EnvelopeError(f"{label}: the envelope header declares more wrapped data keys than the allowed "
                         f"{limit or DEFAULT_MAX_ENCRYPTED_DATA_KEYS}", "too_large")


def frame_too_large(label, found, limit):
    return f"{label}: the envelope's frame length ({found} bytes) is larger than the {limit} bytes accepted"


def context_too_large(label):
    return (f"{label}: the encryption context is larger than the {MAX_CONTEXT_BYTES} bytes an envelope header holds "
            f"(keys and values as UTF-8, 4 bytes more per pair, {SIGNED_CONTEXT_EXTRA_BYTES} more in a signed suite)")


def size_refusal(error, label, max_frame_length=None):
    """EnvelopeError for the library refusing a size (a frame length, a non-framed body, an
    encryption context too large for a header), or None. The library says it in its messages only."""
    text = " ".join(str(arg) for arg in getattr(error, "args", ()) if isinstance(arg, (str, int)))
    match = _FRAME_REFUSAL.search(text)
    if match and "final frame" in text.lower():
        # a final frame longer than the header's frame length: a damaged body, not a size bound
        return EnvelopeError(f"{label}: the envelope is tampered or corrupt (its final frame is longer than its "
                             "frame length)", "corrupt")
    if match:
        # "custom value": the bound the engine gave the library; else the library's own, above ours
        limit = int(match.group(2)) if "custom" in text.lower() else (max_frame_length or DEFAULT_MAX_FRAME_LENGTH)
        return EnvelopeError(frame_too_large(label, int(match.group(1)), limit), "too_large")
    match = _BODY_REFUSAL.search(text)
    if match:
        return EnvelopeError(f"{label}: the envelope's non-framed body ({match.group(1)} bytes) is larger than the "
                             f"{match.group(2)} bytes accepted", "too_large")
    if _CONTEXT_REFUSAL.search(text):
        return EnvelopeError(context_too_large(label), "too_large")
    if _CONTEXT_NOT_TEXT.search(text):
        return EnvelopeError(f"{label}: the encryption context is not valid UTF-8 text", "invalid_argument")
    return None


def serialized_context_length(context, signed=False):
    """Bytes the encryption context takes in a header (the library's serialization)."""
    pairs = list((context or {}).items())
    if signed:
        pairs.append((PUBLIC_KEY_CONTEXT_KEY, "x" * (SIGNED_CONTEXT_EXTRA_BYTES - 4 - len(PUBLIC_KEY_CONTEXT_KEY))))
    if not pairs:
        return 0
    return 2 + sum(4 + len(str(key).encode("utf-8", "surrogatepass")) + len(str(value).encode("utf-8", "surrogatepass"))
                   for key, value in pairs)


def check_context_fits(context, label, signed=False):
    """Refuse (``too_large``) an encryption context no envelope header can hold, before any KMS call."""
    if serialized_context_length(context, signed) > MAX_CONTEXT_BYTES:
        raise EnvelopeError(context_too_large(label), "too_large")


def _check_magic(first_bytes, label):
    """Tell "this is not an envelope at all" apart from a damaged one, from the first bytes."""
    if not first_bytes:
        raise EnvelopeError(f"{label}: empty file, not an AWS Encryption SDK message", "not_envelope")
    version = first_bytes[0]
    if version == 1:
        known = first_bytes[1:2] in (b"", b"\x80")  # v1: version, type 0x80, suite id
    elif version == 2:
        known = len(first_bytes) < 3 or _is_known_suite(int.from_bytes(first_bytes[1:3], "big"))
    else:
        known = False
    if not known:
        raise EnvelopeError(f"{label}: not an AWS Encryption SDK message (envelope)", "not_envelope")


def _is_known_suite(algorithm_id):
    try:
        Algorithm.get_by_id(algorithm_id)
    except KeyError:
        return False
    return True


def require_end_of_input(stream, what):
    """The library stops reading after the footer and accepts anything behind it: we do not."""
    if stream.read(1):
        raise EnvelopeError(f"{what}: unexpected data after the end of the envelope", "trailing_data")


def envelope_could_hold(envelope_size, plaintext_size, frame_length, algorithm=None,
                        header_lengths=PLAUSIBLE_HEADER_LENGTHS):
    """Could an envelope of ``envelope_size`` bytes, framed at ``frame_length``, hold ``plaintext_size``
    bytes, for any header length in ``header_lengths`` (low, high)? Lets a caller that only knows a
    file's size rule out a match without reading the file. A non-framed envelope (frame length 0)
    always could."""
    require_esdk()
    if not frame_length:
        return True
    suite = algorithm_suite(algorithm)
    shortest, longest = header_lengths
    return any(
        low + shortest <= envelope_size <= high + longest
        for low, high in expected_ciphertext_sizes(0, suite, frame_length, plaintext_size)
    )


def size_could_hold(stream, facts, header_length, plaintext_size):
    """The exact form of envelope_could_hold, for an envelope at hand (``facts.size`` known): the
    body's size follows from the plaintext size, and a signed message's footer says its own length
    (read from ``stream``, whose position is restored)."""
    if not facts.frame_length:
        return True  # non-framed: only decrypting tells
    suite = algorithm_suite(facts.algorithm_id)
    for low, high in expected_ciphertext_sizes(header_length, suite, facts.frame_length, plaintext_size):
        if not low <= facts.size <= high:
            continue
        if not suite.is_signing():
            return True
        body_end = low - 2  # where the footer starts: its 2-byte signature length, then the signature
        if _footer_length(stream, body_end) == facts.size - low:
            return True
    return False


def _footer_length(stream, offset):
    start = stream.tell()
    try:
        stream.seek(start + offset)
        field = stream.read(2)
    finally:
        stream.seek(start)
    return int.from_bytes(field, "big") if len(field) == 2 else None


def expected_ciphertext_sizes(header_length, algorithm, frame_length, plaintext_size):
    """Possible sizes (low, high) of a framed envelope holding plaintext_size bytes, given the
    length of its header."""
    overhead = algorithm.iv_len + algorithm.auth_len
    regular = 4 + overhead + frame_length  # sequence number, iv, content, tag
    final_fixed = 4 + 4 + 4 + overhead  # end marker, sequence number, content length, iv, tag
    layouts = [(plaintext_size // frame_length, plaintext_size % frame_length)]
    if plaintext_size and plaintext_size % frame_length == 0:
        # Other ESDKs may put a full last frame in the final frame instead of an empty one.
        layouts.append((plaintext_size // frame_length - 1, frame_length))
    footer = (2, 2 + algorithm.signature_len) if algorithm.is_signing() else (0, 0)
    sizes = []
    for full_frames, final_content in layouts:
        body = header_length + full_frames * regular + final_fixed + final_content
        sizes.append((body + footer[0], body + footer[1]))
    return sizes
