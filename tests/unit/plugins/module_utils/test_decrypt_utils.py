"""Unit tests for plugins/module_utils/decrypt.py (the decrypt module's and lookup's helpers)."""

import base64
import io
import os

import pytest

from ansible_collections.envelope.kms.plugins.module_utils.decrypt import (
    DecryptInputError,
    Mismatch,
    PlaintextMatcher,
    check_account_ids,
    decrypt_policy,
    decrypt_to_sink,
    encode_content,
    initial_mode,
    octal_mode,
    preview,
)
from ansible_collections.envelope.kms.plugins.module_utils.envelope import Engine, EnvelopeError


def feed_all(matcher, data, size):
    for start in range(0, len(data), size):
        matcher.feed(data[start:start + size])
    return matcher.finish()


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_matcher_same(chunk):
    data = os.urandom(10000)
    matcher = PlaintextMatcher(io.BytesIO(data))
    assert feed_all(matcher, data, chunk) is True
    assert matcher.size == 10000


@pytest.mark.parametrize(
    "expected, plaintext",
    [
        (b"abcdef", b"abcdeX"),  # same size, last byte differs
        (b"abcdef", b"abcdefg"),  # plaintext longer
        (b"abcdefg", b"abcdef"),  # dest longer
        (b"", b"a"),
        (b"a", b""),
    ],
)
def test_matcher_differences_without_stopping(expected, plaintext):
    matcher = PlaintextMatcher(io.BytesIO(expected), stop_on_mismatch=False, keep=3)
    assert feed_all(matcher, plaintext, 2) is False
    assert matcher.size == len(plaintext)
    assert bytes(matcher.kept) == plaintext[:4]  # keep + 1 bytes tell "more than keep" apart


def test_matcher_stops_at_first_difference():
    matcher = PlaintextMatcher(io.BytesIO(b"aaaa" + b"b" * 100))
    matcher.feed(b"aaaa")
    with pytest.raises(Mismatch):
        matcher.feed(b"c" * 100)


def test_matcher_without_expected_file_is_different_and_keeps_nothing_by_default():
    matcher = PlaintextMatcher(None)
    matcher.feed(b"data")
    assert matcher.finish() is False
    assert matcher.kept == b""


def test_account_ids():
    assert check_account_ids(["123456789012", 12345678901]) == ["123456789012", "012345678901"]
    assert check_account_ids(None) == []
    for bad in (["12345"], ["12345678901a"], [True]):
        with pytest.raises(DecryptInputError, match="12-digit"):
            check_account_ids(bad)


def test_policy_from_options():
    assert decrypt_policy({"encryption_context": None, "allowed_key_arns": None}) == dict(
        encryption_context={}, allowed_key_arns=[], discovery_account_ids=[], discovery_partition=None)


def test_encode_content():
    assert encode_content("é\n".encode(), "text") == "é\n"
    assert encode_content(b"\xff\x00", "base64") == base64.b64encode(b"\xff\x00").decode()
    with pytest.raises(DecryptInputError, match="not UTF-8 text: ask for base64"):
        encode_content(b"\xff\x00", "text")


def test_preview():
    assert preview(None) == ""
    assert preview(b"abc") == "abc"
    assert "larger than 2 bytes" in preview(b"abc", limit=2)
    assert "binary data, 2 bytes" in preview(b"\xff\xfe")


class FakeStat:
    def __init__(self, mode):
        self.st_mode = 0o100000 | mode


@pytest.mark.parametrize(
    "mode, existing, expected",
    [
        (None, None, 0o600),  # new plaintext files are private
        (None, FakeStat(0o644), 0o644),  # a replaced file keeps its mode
        ("0640", None, 0o640),
        ("640", FakeStat(0o600), 0o640),
        (0o440, None, 0o440),
        ("u=rw,g=r", None, 0o600),  # symbolic: applied afterwards by the file attribute handling
        ("u=rw,g=r", FakeStat(0o644), 0o644),
    ],
)
def test_initial_mode(mode, existing, expected):
    assert initial_mode(mode, existing) == expected


def test_octal_mode():
    assert octal_mode(None) is None
    assert octal_mode("u+x") is None
    assert octal_mode("01777") == 0o1777
    assert octal_mode(True) is None


# decrypt_to_sink against the local KMS endpoint: the engine's checks apply; the sink gets everything.


@pytest.fixture
def sealed(kms, tmp_path):
    key = kms.create_key()["KeyMetadata"]["Arn"]
    engine = Engine(kms)
    plaintext = os.urandom(3 * 4096 + 5)
    source = tmp_path / "plain"
    source.write_bytes(plaintext)
    path = tmp_path / "sealed.enc"
    engine.encrypt_file(str(source), str(path), [key], {"app": "x"}, frame_length=4096)
    return engine, key, plaintext, str(path)


def test_decrypt_to_sink(sealed):
    engine, key, plaintext, path = sealed
    chunks = []
    facts = decrypt_to_sink(engine, path, chunks.append, encryption_context={"app": "x"}, allowed_key_arns=[key])
    assert b"".join(chunks) == plaintext
    assert facts.key_arns == (key,)
    assert facts.encryption_context == {"app": "x"}


def test_decrypt_to_sink_checks_and_sink_errors(sealed, tmp_path):
    engine, key, plaintext, path = sealed
    with pytest.raises(EnvelopeError) as error:
        decrypt_to_sink(engine, path, list().append, encryption_context={"app": "y"})
    assert error.value.kind == "context_mismatch"
    trailing = tmp_path / "trailing.enc"
    with open(path, "rb") as handle:
        trailing.write_bytes(handle.read() + b"x")
    with pytest.raises(EnvelopeError) as error:
        decrypt_to_sink(engine, str(trailing), list().append)
    assert error.value.kind == "trailing_data"
    matcher = PlaintextMatcher(io.BytesIO(b"different"))
    with pytest.raises(Mismatch):
        decrypt_to_sink(engine, path, matcher.feed)
