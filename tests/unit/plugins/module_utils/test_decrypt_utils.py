"""Unit tests for plugins/module_utils/decrypt.py (the decrypt module's and lookup's helpers)."""

import base64
import io
import os

import pytest

from ansible_collections.envelope.kms.plugins.module_utils.decrypt import (
    DecryptInputError,
    encode_content,
    preview,
)
from ansible_collections.envelope.kms.plugins.module_utils.envelope import Engine, EnvelopeError, Mismatch, PlaintextMatcher


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


# Engine.decrypt_to against the local KMS endpoint: the engine's checks apply; the sink gets everything.


@pytest.fixture
def sealed(kms, app_key, tmp_path):
    key = app_key.arn
    engine = Engine(kms)
    plaintext = os.urandom(3 * 4096 + 5)
    source = tmp_path / "plain"
    source.write_bytes(plaintext)
    path = tmp_path / "sealed.enc"
    engine.encrypt_file(str(source), str(path), [key], {"app": "x"}, frame_length=4096)
    return engine, key, plaintext, str(path)


def test_decrypt_to(sealed):
    engine, key, plaintext, path = sealed
    chunks = []
    facts = engine.decrypt_to(path, chunks.append, encryption_context={"app": "x"}, allowed_key_arns=[key])
    assert b"".join(chunks) == plaintext
    assert facts.key_arns == (key,)
    assert facts.encryption_context == {"app": "x"}


def test_decrypt_to_checks_and_sink_errors(sealed, tmp_path):
    engine, key, plaintext, path = sealed
    with pytest.raises(EnvelopeError) as error:
        engine.decrypt_to(path, list().append, encryption_context={"app": "y"})
    assert error.value.kind == "context_mismatch"
    trailing = tmp_path / "trailing.enc"
    with open(path, "rb") as handle:
        trailing.write_bytes(handle.read() + b"x")
    with pytest.raises(EnvelopeError) as error:
        engine.decrypt_to(str(trailing), list().append)
    assert error.value.kind == "trailing_data"
    matcher = PlaintextMatcher(io.BytesIO(b"different"))
    with pytest.raises(Mismatch):
        engine.decrypt_to(path, matcher.feed)
