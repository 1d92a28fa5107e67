"""Hostile envelope headers: each is refused with one clear line, in bounded memory and time, before
any KMS call, by every path that reads headers (inspect_header, decrypt to a file or to memory,
rewrap, compare).

Headers are hand-crafted with struct.pack after the AWS Encryption SDK message format (v1 and v2:
aws_encryption_sdk/internal/formatting/deserialize.py) where the library cannot write them (10 000
wrapped data keys, a frame length of 2^32-1); the non-UTF-8 key ARN starts from a real envelope
written by the engine against the local moto server, with one byte of its key ARN replaced.
"""

import io
import os
import struct
import tracemalloc

import pytest
from aws_encryption_sdk.internal.formatting.deserialize import deserialize_header
from aws_encryption_sdk.internal.formatting.encryption_context import serialize_encryption_context

from ansible_collections.envelope.kms.plugins.module_utils._envelope import errors as envelope_errors
from ansible_collections.envelope.kms.plugins.module_utils._envelope import format as envelope_format
from ansible_collections.envelope.kms.plugins.module_utils.envelope import (
    DEFAULT_MAX_ENCRYPTED_DATA_KEYS,
    DEFAULT_MAX_FRAME_LENGTH,
    SIGNED_ALGORITHM,
    Engine,
    EnvelopeError,
    inspect_header,
)
from tests.harness.stubbed_kms import BLOB, DATA_KEY, KEY_ARN
from tests.harness.time_limit import TimeLimit

CONTEXT = {"app": "billing"}
V2_SUITE = 0x0478  # AES_256_GCM_HKDF_SHA512_COMMIT_KEY
V1_SUITE = 0x0178  # AES_256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384 (v1 messages use non-committing suites)
FRAMED = 2
CONTEXT_LIMIT = 65535  # the header's context length field has 2 bytes


# ---------------------------------------------------------------------------------------------
# Hand-crafted headers


def serialized_context(context):
    if not context:
        return b""
    body = struct.pack(">H", len(context))
    for key, value in sorted(context.items()):
        key, value = key.encode(), value.encode()
        body += struct.pack(">H", len(key)) + key + struct.pack(">H", len(value)) + value
    return body


def data_key(key_info=KEY_ARN.encode(), provider=b"aws-kms", wrapped=BLOB):
    return b"".join(struct.pack(">H", len(field)) + field for field in (provider, key_info, wrapped))


def edks(count, one=None):
    return struct.pack(">H", count) + (one if one is not None else data_key()) * count


def header_v2(keys=None, frame_length=4096, context=None, content_type=FRAMED, suite=V2_SUITE):
    """Version 2: version, suite, message id (32), context, data keys, content type, frame length,
    suite data (the 32-byte commitment key), then the header auth tag (16)."""
    context = serialized_context(CONTEXT if context is None else context)
    return (struct.pack(">BH", 2, suite) + b"\x11" * 32 + struct.pack(">H", len(context)) + context
            + (edks(1) if keys is None else keys) + struct.pack(">BI", content_type, frame_length)
            + b"\x22" * 32 + b"\x33" * 16)


def header_v1(keys=None, frame_length=4096, context=None, content_type=FRAMED, suite=V1_SUITE):
    """Version 1: version, type 0x80, suite, message id (16), context, data keys, content type,
    reserved (4 zero bytes), IV length (12), frame length, then header auth IV (12) and tag (16)."""
    context = serialized_context(CONTEXT if context is None else context)
    return (struct.pack(">BBH", 1, 0x80, suite) + b"\x11" * 16 + struct.pack(">H", len(context)) + context
            + (edks(1) if keys is None else keys) + struct.pack(">BIBI", content_type, 0, 12, frame_length)
            + b"\x44" * 12 + b"\x33" * 16)


def test_the_crafted_headers_follow_the_format():
    """The builders are right: the library reads their fields back (so refusals below are about
    the one field each test changes)."""
    for build, version in ((header_v2, 2), (header_v1, 1)):
        header, raw = deserialize_header(io.BytesIO(build(edks(2), frame_length=8192)))
        assert header.version.value == version
        assert header.frame_length == 8192
        assert header.encryption_context == CONTEXT
        assert len(header.encrypted_data_keys) == 1  # the same key twice: the library keeps a set
        facts = envelope_format.read_facts(io.BytesIO(build()), "x", 10)[0]
        assert facts.key_arns == (KEY_ARN,) and facts.frame_length == 4096


# ---------------------------------------------------------------------------------------------
# Every reading path, with an engine whose KMS client answers nothing: any KMS call fails the test


@pytest.fixture
def engine(stubbed):
    client, stubber = stubbed
    return Engine(client)  # the stubber has no answer: a KMS call would raise, and fail the test


def refusals(engine, path, tmp_path):
    """{path taken: EnvelopeError} for every way the collection reads an envelope file."""
    dest = tmp_path / "plain.out"
    dest.write_bytes(b"old")
    found = {}
    calls = {
        "inspect_header": lambda: inspect_header(path),
        "decrypt_file": lambda: engine.decrypt_file(path, dest),
        "decrypt_bytes": lambda: engine.decrypt_bytes(path),
        "decrypt_strict": lambda: engine.decrypt_bytes(path, allowed_key_arns=[KEY_ARN]),
        "rewrap_file": lambda: engine.rewrap_file(path, [KEY_ARN]),
    }
    before = open(path, "rb").read()
    listing = sorted(os.listdir(tmp_path))
    for name, call in calls.items():
        with TimeLimit(10), pytest.raises(EnvelopeError) as raised:
            call()
        found[name] = raised.value
    assert open(path, "rb").read() == before, "nothing rewritten"
    assert dest.read_bytes() == b"old", "nothing decrypted"
    assert sorted(os.listdir(tmp_path)) == listing, "no temp file left"
    assert engine.compare(path, b"anything", [KEY_ARN]).same is False  # and no KMS call (the stubber has none)
    return found


def assert_one_line(errors, kind, words):
    for name, error in errors.items():
        assert error.kind == kind, f"{name}: {error.kind}: {error.message}"
        assert words in error.message, f"{name}: {error.message}"
        assert "\n" not in error.message and "codec" not in error.message and "Traceback" not in error.message


@pytest.mark.parametrize("build, frame_length", [
    (header_v2, 2 ** 32 - 1), (header_v2, 2 ** 31 - 1), (header_v2, DEFAULT_MAX_FRAME_LENGTH + 128),
    (header_v1, 2 ** 32 - 1),
], ids=["v2-2^32-1", "v2-2^31-1", "v2-64MiB+128", "v1-2^32-1"])
def test_giant_frame_length_is_refused_as_too_large(engine, tmp_path, build, frame_length):
    """2^32-1 is above the library's own bound (it read 'truncated or corrupt' before), 2^31-1 and
    64 MiB + 128 only above ours: every path names the frame length and the bound. (A v1 header
    below the library's bound is refused by the commitment policy first: its suites do not commit.)"""
    path = tmp_path / "giant.enc"
    path.write_bytes(build(frame_length=frame_length) + b"\x00" * 64)
    errors = refusals(engine, str(path), tmp_path)
    assert_one_line(errors, "too_large",
                    f"the envelope's frame length ({frame_length} bytes) is larger than the "
                    f"{DEFAULT_MAX_FRAME_LENGTH} bytes accepted")


@pytest.mark.parametrize("build", [header_v2, header_v1], ids=["v2", "v1"])
def test_ten_thousand_wrapped_keys_are_refused_in_bounded_memory(engine, tmp_path, build):
    """10 000 data keys, each naming another KMS key, all there in the file (about 1.4 MB): refused
    from the count field, so reading the header holds a few KiB, not every key."""
    many = struct.pack(">H", 10000) + b"".join(
        data_key(f"arn:aws:kms:us-east-1:111122223333:key/{n:036d}".encode()) for n in range(10000))
    path = tmp_path / "many.enc"
    path.write_bytes(build(many))
    assert path.stat().st_size > 1_000_000
    tracemalloc.start()
    try:
        with TimeLimit(10), pytest.raises(EnvelopeError) as raised:
            inspect_header(str(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 256 * 1024, f"reading a refused header took {peak} bytes"
    assert raised.value.message.endswith(
        f"the envelope header declares 10000 wrapped data keys, more than the allowed {DEFAULT_MAX_ENCRYPTED_DATA_KEYS}")
    assert_one_line(refusals(engine, str(path), tmp_path), "too_large",
                    f"declares 10000 wrapped data keys, more than the allowed {DEFAULT_MAX_ENCRYPTED_DATA_KEYS}")


def test_a_declared_key_count_with_nothing_behind_it(engine, tmp_path):
    """65535 keys declared, none there: the count alone refuses it."""
    path = tmp_path / "declared.enc"
    path.write_bytes(header_v2(struct.pack(">H", 65535)))
    assert_one_line(refusals(engine, str(path), tmp_path), "too_large", "declares 65535 wrapped data keys")


def test_the_largest_header_allowed_is_read_in_bounded_memory(tmp_path):
    """Within the bounds: 10 keys whose fields are each 65535 bytes long (about 2 MiB of header):
    read, and nothing like a copy per key is kept beyond what the header holds."""
    huge = data_key(b"k" * 65535, provider=b"p" * 65535, wrapped=b"w" * 65535)
    keys = struct.pack(">H", 10) + b"".join(huge.replace(b"k" * 8, b"%08d" % n, 1) for n in range(10))
    path = tmp_path / "big.enc"
    path.write_bytes(header_v2(keys))
    tracemalloc.start()
    try:
        with TimeLimit(10):
            facts = inspect_header(str(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert facts.data_key_count == 10 and facts.key_arns == ()  # no aws-kms key among them
    assert peak < 16 * 1024 * 1024, peak


# ---------------------------------------------------------------------------------------------
# A KMS key ARN that is not UTF-8 text: tampering, in the words used for other tampering


def hostile_copy(source, tmp_path, replace, name="hostile.enc"):
    """The envelope at ``source`` with one byte of its key ARN replaced (the header only)."""
    data = bytearray(source.read_bytes())
    arn_at = data.index(replace[0])
    data[arn_at + len(replace[0]) - 1] = replace[1]
    path = tmp_path / name
    path.write_bytes(bytes(data))
    return path


@pytest.fixture
def sealed(kms, app_key, tmp_path):
    path = tmp_path / "sealed" / "secret.enc"
    path.parent.mkdir()
    Engine(kms).encrypt_bytes(b"secret\n", path, app_key.arn, CONTEXT)
    return path


@pytest.mark.parametrize("byte", [0xFF, 0x0A, 0x00], ids=["0xff", "newline", "nul"])
def test_a_key_arn_that_is_not_text_reads_as_tampered_everywhere(kms, app_key, sealed, tmp_path, byte):
    path = hostile_copy(sealed, tmp_path, (app_key.arn.encode(), byte))
    calls = []
    kms.meta.events.register("before-call.kms.*", lambda model, **kwargs: calls.append(model.name))
    errors = refusals(Engine(kms), str(path), tmp_path)
    assert_one_line(errors, "corrupt",
                    "the envelope header is tampered or corrupt (a wrapped data key's KMS key ARN is not printable "
                    "UTF-8 text)")
    assert calls == [], "refused from the header, before any KMS call"
    assert errors["decrypt_bytes"].message.startswith(f"cannot decrypt {path}: ")
    assert errors["rewrap_file"].message.startswith(f"cannot rewrap {path}: ")


def test_the_library_decoding_a_key_arn_itself_is_translated():
    """Should a codec error still come out of the library (it decodes the ARN when it calls KMS),
    translate gives the tampering line, not the codec's words."""
    with pytest.raises(UnicodeDecodeError) as raised:
        b"arn:aws:kms:\xff".decode("utf-8")
    translated = envelope_errors.translate(raised.value, "cannot decrypt f.enc")
    assert translated.kind == "corrupt"
    assert translated.message == "cannot decrypt f.enc: the envelope header is tampered or corrupt (text in it is not valid UTF-8)"


# ---------------------------------------------------------------------------------------------
# An encryption context too large for a header


@pytest.mark.parametrize("context", [{}, {"a": "b"}, {"app": "billing", "é": "ü" * 300}, {f"k{n}": "v" * n for n in range(50)}])
def test_serialized_context_length_is_the_library_serialization(context):
    assert envelope_format.serialized_context_length(context) == len(serialize_encryption_context(context))


def test_signed_context_length_counts_the_public_key(stub, tmp_path):
    """The signed suite adds its public key to the context: the rule counts exactly that."""
    stub.add_response("generate_data_key", {"KeyId": KEY_ARN, "Plaintext": DATA_KEY, "CiphertextBlob": BLOB})
    Engine(stub.client).encrypt_bytes(b"x", tmp_path / "signed.enc", KEY_ARN, CONTEXT, SIGNED_ALGORITHM)
    header = deserialize_header(io.BytesIO((tmp_path / "signed.enc").read_bytes()))[0]
    assert "aws-crypto-public-key" in header.encryption_context
    assert envelope_format.serialized_context_length(CONTEXT, signed=True) == len(
        serialize_encryption_context(header.encryption_context))


def too_large(room=0):
    """A context exactly ``room`` bytes over the limit of an unsigned header."""
    return {"k": "v" * (CONTEXT_LIMIT - 2 - 4 - 1 + room)}


def test_check_context_fits_at_the_limit():
    assert envelope_format.MAX_CONTEXT_BYTES == CONTEXT_LIMIT
    envelope_format.check_context_fits(too_large(0), "x")  # exactly 65535 bytes
    with pytest.raises(EnvelopeError) as raised:
        envelope_format.check_context_fits(too_large(1), "cannot encrypt f")
    assert raised.value.kind == "too_large"
    assert raised.value.message.startswith(
        "cannot encrypt f: the encryption context is larger than the 65535 bytes an envelope header holds")
    with pytest.raises(EnvelopeError, match="larger than the 65535 bytes"):
        envelope_format.check_context_fits(too_large(0), "x", signed=True)


@pytest.mark.parametrize("context", [too_large(1), {"k": "v" * 70000}, {f"{n:05d}": "" for n in range(16384)}],
                         ids=["one byte over", "one value too large", "many pairs"])
def test_a_context_too_large_says_so_not_truncated(stub, tmp_path, context):
    """Refused before GenerateDataKey (the stub has no answer: any KMS call fails the test), with a
    message that says the context is too large, not that an envelope is 'truncated or corrupt'."""
    with pytest.raises(EnvelopeError) as raised:
        Engine(stub.client).encrypt_bytes(b"x", tmp_path / "e.enc", KEY_ARN, context)
    assert raised.value.kind == "too_large"
    assert "the encryption context is larger than the 65535 bytes an envelope header holds" in raised.value.message
    assert "corrupt" not in raised.value.message
    assert not os.path.exists(tmp_path / "e.enc") and os.listdir(tmp_path) == []


def test_the_library_size_messages_are_translated():
    from aws_encryption_sdk.exceptions import CustomMaximumValueExceeded, SerializationError

    cases = {
        SerializationError("The serialized context is too large."): "the encryption context is larger than",
        SerializationError("The encryption context contains too many elements."): "the encryption context is larger",
        SerializationError("Specified frame length larger than allowed maximum: 4294967295 > 2147483647"):
            f"the envelope's frame length (4294967295 bytes) is larger than the {DEFAULT_MAX_FRAME_LENGTH} bytes",
        CustomMaximumValueExceeded("Frame Size in header found larger than custom value: 99999999 > 67108864"):
            "the envelope's frame length (99999999 bytes) is larger than the 67108864 bytes accepted",
        CustomMaximumValueExceeded("Non-framed message content length found larger than custom value: 9 > 8"):
            "the envelope's non-framed body (9 bytes) is larger than the 8 bytes accepted",
    }
    for error, words in cases.items():
        translated = envelope_errors.translate(error, "what")
        assert translated.kind == "too_large" and translated.message.startswith("what: " + words), translated.message
    assert envelope_errors.translate(SerializationError("Bad format of serialized context."), "what").message == (
        "what: the envelope is truncated or corrupt")
    assert envelope_errors.translate(SerializationError("Cannot encode dictionary key or value using utf-8."),
                                     "what").message == "what: the encryption context is not valid UTF-8 text"
