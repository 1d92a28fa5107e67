# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""For internal collection use only: the message format without KMS: headers and size arithmetic.

Reading a header needs no key: it tells the wrapping key ARNs, the context, the suite and the
frame length (unauthenticated until decrypt re-checks them). The sizes a framed message of a given
plaintext size can have let callers rule out a match from a file size alone.
"""

from __future__ import annotations

try:
    from aws_encryption_sdk.exceptions import AWSEncryptionSDKClientError, MaxEncryptedDataKeysExceeded
    from aws_encryption_sdk.identifiers import Algorithm, SerializationVersion
    from aws_encryption_sdk.internal.formatting.deserialize import deserialize_header
except ImportError:
    pass  # envelope.HAS_ESDK tells

from ansible_collections.envelope.kms.plugins.module_utils.errors import EnvelopeError
from ansible_collections.envelope.kms.plugins.module_utils._envelope.inputs import algorithm_suite
from ansible_collections.envelope.kms.plugins.module_utils._envelope.io import open_source
from ansible_collections.envelope.kms.plugins.module_utils._envelope.library import require_esdk
from ansible_collections.envelope.kms.plugins.module_utils._envelope.model import facts_from_header

# Any plausible header: 64 bytes up to 10 wrapped keys and a large context.
PLAUSIBLE_HEADER_LENGTHS = (64, 128 * 1024)


def inspect_header(source):
    """EnvelopeFacts from the header of a path, bytes or binary file, without KMS calls.

    The facts are unauthenticated; decrypt (or compare) re-checks them once the data key is known.
    """
    require_esdk()
    with open_source(source, "cannot inspect envelope") as opened:
        facts = read_facts(opened.stream, opened.label, None)[0]
        return facts.with_size(opened.size())


def read_facts(stream, label, max_data_keys):
    """(facts, header length with its auth tag) from the stream's position, which is restored."""
    start = stream.tell()
    try:
        _check_magic(stream.read(4), label)
        stream.seek(start)
        try:
            header, raw_header = deserialize_header(stream, max_data_keys)
        except MaxEncryptedDataKeysExceeded as error:
            raise EnvelopeError(f"{label}: more wrapped data keys than the allowed {max_data_keys}",
                                "too_large") from error
        except (AWSEncryptionSDKClientError, ValueError, TypeError) as error:
            raise EnvelopeError(f"{label}: the envelope header is truncated or corrupt", "corrupt") from error
    finally:
        stream.seek(start)
    algorithm = header.algorithm
    auth_length = algorithm.auth_len + (algorithm.iv_len if header.version == SerializationVersion.V1 else 0)
    return facts_from_header(header), len(raw_header) + auth_length


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
