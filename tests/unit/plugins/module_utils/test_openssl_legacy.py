"""The openssl enc reader (_envelope/openssl.py) against files made by the real `openssl` command,
with the recipe's passphrase (the base64 text of a data key): digests, PBKDF2, -a, sizes around
the AES block, wrong settings, damaged files."""

import base64
import hashlib
import os
import shutil
import subprocess

import pytest

from ansible_collections.envelope.kms.plugins.module_utils._envelope import openssl
from ansible_collections.envelope.kms.plugins.module_utils.errors import EnvelopeError, InputError

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")

DATA_KEY = bytes(range(32))
PASSPHRASE = base64.b64encode(DATA_KEY).decode()  # what `aws kms decrypt --output text --query Plaintext` prints


def openssl_enc(tmp_path, plaintext, *flags, name="file"):
    src = tmp_path / f"{name}.txt"
    src.write_bytes(plaintext)
    out = tmp_path / f"{name}.enc"
    subprocess.run(["openssl", "enc", "-e", "-aes256", "-k", PASSPHRASE, "-in", str(src), "-out", str(out), *flags],
                   check=True, capture_output=True)
    return str(out)


def read_all(path, digest="sha256", iterations=None, data_key=DATA_KEY, encoding="base64", cipher="aes-256-cbc",
             hasher=None):
    with openssl.LegacyFile(path) as legacy:
        key, iv = openssl.derive_key_iv(openssl.passphrase(data_key, encoding), legacy.salt, digest,
                                        openssl.CIPHERS[cipher], iterations)
        reader = openssl.LegacyReader(legacy, key, iv, hasher)
        size = reader.size
        parts = []
        while True:
            part = reader.read(7777)
            if not part:
                break
            parts.append(part)
        assert reader.finished
        data = b"".join(parts)
        assert len(data) == size
        return data, legacy.armored


SIZES = [0, 1, 15, 16, 17, 5 * 1024 * 1024]
SETTINGS = [
    pytest.param(("-md", "sha256"), dict(digest="sha256"), id="sha256"),
    pytest.param(("-md", "md5"), dict(digest="md5"), id="md5"),
    pytest.param(("-pbkdf2",), dict(iterations=openssl.PBKDF2_DEFAULT_ITERATIONS), id="pbkdf2"),
    pytest.param(("-pbkdf2", "-iter", "1000", "-md", "md5"), dict(digest="md5", iterations=1000), id="pbkdf2-md5-1000"),
]


@pytest.mark.parametrize("size", SIZES, ids=[f"{size}B" for size in SIZES])
@pytest.mark.parametrize("flags, settings", SETTINGS)
def test_files_of_the_recipe_decrypt_to_the_original(tmp_path, size, flags, settings):
    plaintext = os.urandom(size)
    path = openssl_enc(tmp_path, plaintext, *flags)
    assert read_all(path, **settings) == (plaintext, False)


def test_the_recipe_without_md_is_sha256_and_a_base64_file_is_detected(tmp_path):
    plaintext = b"DB_PASSWORD=hunter2\n" * 10
    assert read_all(openssl_enc(tmp_path, plaintext)) == (plaintext, False)
    assert read_all(openssl_enc(tmp_path, plaintext, "-a", name="armored")) == (plaintext, True)
    assert read_all(openssl_enc(tmp_path, plaintext, "-a", "-A", name="oneline")) == (plaintext, True)


def test_smaller_ciphers_and_other_passphrase_encodings(tmp_path):
    plaintext = b"x" * 100
    src = tmp_path / "p.txt"
    src.write_bytes(plaintext)
    out = tmp_path / "p.enc"
    subprocess.run(["openssl", "enc", "-e", "-aes-128-cbc", "-k", DATA_KEY.hex(), "-in", str(src), "-out", str(out)],
                   check=True, capture_output=True)
    assert read_all(str(out), encoding="hex", cipher="aes-128-cbc")[0] == plaintext


@pytest.mark.parametrize("wrong", [dict(digest="md5"), dict(iterations=10000), dict(data_key=bytes(32)),
                                   dict(encoding="hex")], ids=["digest", "pbkdf2", "data-key", "encoding"])
def test_wrong_settings_fail_on_the_padding_before_any_byte_is_read(tmp_path, wrong):
    path = openssl_enc(tmp_path, b"secret value\n")
    # Bad padding is what a wrong key gives 255 times in 256: a fixed salt and key here, so the
    # outcome is deterministic for this file; assert the error when it happens, and the garbage otherwise.
    try:
        data = read_all(path, **wrong)[0]
    except EnvelopeError as error:
        assert error.kind == "corrupt"
        assert "the padding is wrong after decryption" in error.message and "md5" in error.message
        assert "secret value" not in error.message
    else:
        assert data != b"secret value\n"


def test_a_wrong_key_is_caught_by_the_padding_most_of_the_time(tmp_path):
    path = openssl_enc(tmp_path, b"payload")
    caught = 0
    for attempt in range(64):
        try:
            read_all(path, data_key=hashlib.sha256(bytes([attempt])).digest())
        except EnvelopeError:
            caught += 1
    assert caught >= 56  # 255/256 expected: 64 on average, fewer than 57 is a 1e-9 event


def test_files_that_are_not_openssl_enc_output(tmp_path):
    plain = tmp_path / "plain"
    plain.write_bytes(b"just text, no header at all\n")
    with pytest.raises(EnvelopeError, match="does not start with Salted__") as error:
        openssl.LegacyFile(str(plain))
    assert error.value.kind == "not_envelope"
    path = openssl_enc(tmp_path, b"0123456789abcdef0123")
    with open(path, "rb") as handle:
        data = handle.read()
    truncated = tmp_path / "truncated"
    truncated.write_bytes(data[:-5])
    with pytest.raises(EnvelopeError, match="not a whole number of 16-byte AES blocks"):
        openssl.LegacyFile(str(truncated))
    header_only = tmp_path / "header"
    header_only.write_bytes(data[:16])
    with pytest.raises(EnvelopeError, match="0 bytes of ciphertext"):
        openssl.LegacyFile(str(header_only))
    bad_armor = tmp_path / "armor"
    bad_armor.write_bytes(b"U2FsdGVkX1!!!not base64")
    with pytest.raises(EnvelopeError, match="not valid base64"):
        openssl.LegacyFile(str(bad_armor))
    with pytest.raises(EnvelopeError, match="directory"):
        openssl.LegacyFile(str(tmp_path))


def test_a_damaged_last_block_fails_and_a_damaged_middle_block_is_not_detected(tmp_path):
    plaintext = b"A" * 64
    path = openssl_enc(tmp_path, plaintext)
    with open(path, "rb") as handle:
        data = bytearray(handle.read())
    last = bytearray(data)
    last[-1] ^= 0x01
    (tmp_path / "last").write_bytes(bytes(last))
    with pytest.raises(EnvelopeError, match="padding"):
        read_all(str(tmp_path / "last"))
    middle = bytearray(data)
    middle[16 + 20] ^= 0x01  # no MAC: a flipped bit in block 2 garbles blocks 2 and 3 silently
    (tmp_path / "middle").write_bytes(bytes(middle))
    garbled = read_all(str(tmp_path / "middle"))[0]
    assert garbled != plaintext and len(garbled) == len(plaintext)


def test_the_checksum_proves_the_content(tmp_path):
    plaintext = b"token=abc\n"
    path = openssl_enc(tmp_path, plaintext)
    algorithm, value = openssl.parse_checksum("SHA256:" + hashlib.sha256(plaintext).hexdigest().upper())
    hasher = hashlib.new(algorithm)
    read_all(path, hasher=hasher)
    openssl.check_digest(path, hasher, value)
    other = hashlib.new(algorithm)
    read_all(path, hasher=other)
    with pytest.raises(EnvelopeError, match="does not match checksum sha256:0000"):
        openssl.check_digest(path, other, "0" * 64)


@pytest.mark.parametrize("checksum, message", [
    ("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "must be <algorithm>:<hex digest>"),
    ("crc32:1234", "must be <algorithm>:<hex digest>"),
    ("sha256:1234", "a sha256 digest is 64 hex digits (4 given)"),
    ("md5:" + "z" * 32, "a md5 digest is 32 hex digits"),
])
def test_checksum_form(checksum, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        openssl.parse_checksum(checksum)


def test_settings_and_data_key_blob():
    with pytest.raises(InputError, match="iterations must be a whole number of 1 or more"):
        openssl.check_settings("sha256", "aes-256-cbc", 0)
    with pytest.raises(InputError, match="digest must be one of"):
        openssl.check_settings("sha3", "aes-256-cbc", None)
    blob = bytes([1, 2, 2, 0]) + os.urandom(180)
    text = base64.b64encode(blob)
    assert openssl.data_key_blob(raw=blob) == blob
    assert openssl.data_key_blob(raw=text + b"\n") == blob
    assert openssl.data_key_blob(text=text.decode() + "\n") == blob
    with pytest.raises(InputError, match="not base64 text"):
        openssl.data_key_blob(text="not base64 at all!")
    with pytest.raises(InputError, match="is empty"):
        openssl.data_key_blob(raw=b"")
    with pytest.raises(InputError, match="is empty"):
        openssl.data_key_blob(text=" \n")


def test_a_raw_passphrase_ends_at_the_first_nul_byte_as_the_argument_of_k_did():
    assert openssl.passphrase(b"ab\0cd", "raw") == b"ab"
    assert openssl.passphrase(b"abcd", "raw") == b"abcd"
    assert openssl.passphrase(b"\x01\x02", "hex") == b"0102"
    with pytest.raises(InputError, match="passphrase_encoding must be one of"):
        openssl.passphrase(b"x", "utf-16")
