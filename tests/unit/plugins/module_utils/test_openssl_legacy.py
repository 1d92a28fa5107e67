"""The openssl enc reader (_envelope/openssl.py) against files made by the real `openssl` command,
with the recipe's passphrase (the base64 text of a data key): digests, PBKDF2, -a, sizes around
the AES block, wrong settings, damaged files."""

import base64
import hashlib
import io
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


@pytest.mark.parametrize("cipher, flag, digest", [("aes-192-cbc", "-aes-192-cbc", "sha1"),
                                                  ("aes-256-cbc", "-aes-256-cbc", "sha512")])
def test_other_ciphers_and_digests(tmp_path, cipher, flag, digest):
    plaintext = os.urandom(1000)
    src = tmp_path / "p.txt"
    src.write_bytes(plaintext)
    out = tmp_path / "p.enc"
    subprocess.run(["openssl", "enc", "-e", flag, "-md", digest, "-k", PASSPHRASE, "-in", str(src), "-out", str(out)],
                   check=True, capture_output=True)
    assert read_all(str(out), digest=digest, cipher=cipher)[0] == plaintext


def test_a_raw_key_file_given_with_kfile(tmp_path):
    """-kfile reads the first line: a key with a newline byte is cut there, and so is the passphrase."""
    data_key = b"\x01\x02\x03\n\x04\x05" + bytes(range(100, 126))
    key_file = tmp_path / "key.bin"
    key_file.write_bytes(data_key)
    src = tmp_path / "p.txt"
    src.write_bytes(b"kfile secret")
    out = tmp_path / "p.enc"
    subprocess.run(["openssl", "enc", "-e", "-aes256", "-kfile", str(key_file), "-in", str(src), "-out", str(out)],
                   check=True, capture_output=True)
    assert read_all(str(out), data_key=data_key, encoding="raw")[0] == b"kfile secret"


def test_the_reader_answers_a_length_probe_and_reads_in_order(tmp_path):
    plaintext = os.urandom(1000)
    path = openssl_enc(tmp_path, plaintext)
    hasher = hashlib.sha256()
    with openssl.LegacyFile(path) as legacy:
        key, iv = openssl.derive_key_iv(PASSPHRASE.encode(), legacy.salt)
        reader = openssl.LegacyReader(legacy, key, iv, hasher)
        # the probe of io.Source.size() and of the SDK's stream_length: tell, seek end, tell, seek back
        assert reader.tell() == 0 and reader.seek(0, io.SEEK_END) == 1000 and reader.tell() == 1000
        assert reader.read(10) == b""  # at the probe's end
        assert reader.seek(0) == 0 and reader.tell() == 0
        assert reader.read(0) == b""
        head = reader.read(100)
        assert head == plaintext[:100] and reader.tell() == 100
        with pytest.raises(io.UnsupportedOperation):
            reader.seek(0)
        assert reader.read(-1) == plaintext[100:] and reader.finished and reader.read(5) == b""
    assert hasher.hexdigest() == hashlib.sha256(plaintext).hexdigest()  # every byte once


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
    """With 8 fixed salts (-S), each wrong setting is refused when the reader is made, before any
    read: bad padding, which a wrong key still passes once in 256 (so at most one salt may pass, and
    then it must not give the plaintext)."""
    plaintext = b"secret value\n"
    refused = 0
    for number in range(8):
        salt = f"{number:016x}"
        body = openssl_enc(tmp_path, plaintext, "-S", salt, name=f"salt{number}")
        path = tmp_path / f"salt{number}.salted"  # OpenSSL 3 writes no header with -S: as it would without
        with open(body, "rb") as handle:
            path.write_bytes(b"Salted__" + bytes.fromhex(salt) + handle.read())
        settings = dict(dict(digest="sha256", iterations=None, data_key=DATA_KEY, encoding="base64"), **wrong)
        with openssl.LegacyFile(str(path)) as legacy:
            assert legacy.salt == bytes.fromhex(salt)
            key, iv = openssl.derive_key_iv(openssl.passphrase(settings["data_key"], settings["encoding"]), legacy.salt,
                                            settings["digest"], 32, settings["iterations"])
            try:
                reader = openssl.LegacyReader(legacy, key, iv)
            except EnvelopeError as error:
                assert error.kind == "corrupt"
                assert "the padding is wrong after decryption" in error.message and "md5" in error.message
                assert "secret value" not in error.message
                refused += 1
            else:
                assert reader.read() != plaintext
    assert refused >= 7


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


def test_a_raw_passphrase_is_the_first_line_up_to_a_nul_byte_as_kfile_reads_it():
    assert openssl.passphrase(b"ab\0cd", "raw") == b"ab"
    assert openssl.passphrase(b"ab\ncd", "raw") == b"ab"
    assert openssl.passphrase(b"abcd", "raw") == b"abcd"
    assert openssl.passphrase(b"\x01\x02", "hex") == b"0102"
    with pytest.raises(InputError, match="passphrase_encoding must be one of"):
        openssl.passphrase(b"x", "utf-16")
