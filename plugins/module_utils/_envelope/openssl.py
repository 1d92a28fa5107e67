# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""For internal collection use only: files made by ``openssl enc`` with a passphrase, read back.

The classic KMS recipe encrypts with ``openssl enc -e -aes256 -k "<base64 plaintext data key>"``:

- the file is ``Salted__``, an 8-byte salt, then AES-CBC ciphertext with PKCS#7 padding (or all of
  it in base64, with ``-a``/``-base64``, which this reader detects from its first bytes);
- key and IV come from the passphrase and the salt by OpenSSL's ``EVP_BytesToKey`` (one round of
  the digest: SHA-256 by default since OpenSSL 1.1.0, MD5 before), or by PBKDF2-HMAC with
  ``-pbkdf2``/``-iter`` (10000 iterations by default);
- nothing authenticates it. A wrong key shows only as bad padding, which a wrong key still passes
  about once in 256 tries; only a checksum of the plaintext proves the result.

``LegacyReader`` streams the plaintext out (read(n)) in constant memory. Its padding is checked up
front from the last two blocks alone (CBC decrypts any block from the one before it), so a wrong
key fails before a byte is used, and the exact plaintext size is known before reading.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import io
import os
import re

try:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
except ImportError:
    pass  # envelope.HAS_ESDK tells (cryptography comes with aws-encryption-sdk)

from ansible_collections.envelope.kms.plugins.module_utils._envelope.constants import CHUNK_SIZE
from ansible_collections.envelope.kms.plugins.module_utils._envelope.io import open_regular
from ansible_collections.envelope.kms.plugins.module_utils.errors import EnvelopeError, InputError

SALTED = b"Salted__"
ARMORED = base64.b64encode(SALTED)[:10]  # b"U2FsdGVkX1": what `openssl enc -a` output starts with
BLOCK = 16
CIPHERS = {"aes-256-cbc": 32, "aes-192-cbc": 24, "aes-128-cbc": 16}
DIGESTS = ("sha256", "md5", "sha1", "sha512")
PASSPHRASE_ENCODINGS = ("base64", "hex", "raw")
PBKDF2_DEFAULT_ITERATIONS = 10000  # openssl enc -pbkdf2 without -iter
CHECKSUM_ALGORITHMS = ("sha256", "sha512", "sha384", "sha1", "md5")
MAX_ARMORED_SIZE = 256 * 1024 * 1024  # a base64 file is decoded in memory: ciphertext only, bounded
_WHITESPACE = re.compile(rb"\s+")

WRONG_KEY_HINT = ("wrong data key or passphrase encoding, wrong digest (files made before OpenSSL 1.1.0 need md5), "
                  "pbkdf2/iterations not as the file was made, or a damaged file")


def passphrase(data_key, encoding="base64"):
    """The passphrase the recipe gave openssl for a plaintext data key: its base64 text (what
    ``aws kms decrypt --output text --query Plaintext`` prints), its hex text, or the bytes as
    ``-kfile`` or ``-pass file:`` read a key file (its first line, up to a NUL byte)."""
    if encoding == "base64":
        return base64.b64encode(data_key)
    if encoding == "hex":
        return binascii.hexlify(data_key)
    if encoding == "raw":
        # what `-kfile`/`-pass file:` read: the first line, as a C string (up to a NUL byte)
        return bytes(data_key).split(b"\n", 1)[0].split(b"\0", 1)[0]
    raise InputError(f"passphrase_encoding must be one of {', '.join(PASSPHRASE_ENCODINGS)}, not {encoding!r}")


def derive_key_iv(secret, salt, digest="sha256", key_size=32, iterations=None):
    """(key, iv) as openssl enc derives them: EVP_BytesToKey with one round (iterations None), or
    PBKDF2-HMAC-<digest> with that many iterations."""
    if iterations is not None:
        material = hashlib.pbkdf2_hmac(digest, secret, salt, iterations, key_size + BLOCK)
    else:
        material, block = b"", b""
        while len(material) < key_size + BLOCK:
            block = hashlib.new(digest, block + secret + salt).digest()
            material += block
    return material[:key_size], material[key_size:key_size + BLOCK]


def parse_checksum(checksum):
    """(algorithm, lowercase hex) from 'sha256:<hex>' (the form of ansible.builtin.get_url), or None."""
    if checksum is None or checksum == "":
        return None
    algorithm, sep, value = str(checksum).strip().partition(":")
    algorithm = algorithm.lower()
    if not sep or algorithm not in CHECKSUM_ALGORITHMS:
        raise InputError(f"checksum must be <algorithm>:<hex digest> with algorithm one of "
                         f"{', '.join(CHECKSUM_ALGORITHMS)} (as ansible.builtin.get_url takes it), not {checksum!r}")
    value = value.strip().lower()
    size = hashlib.new(algorithm).digest_size * 2
    if len(value) != size or not re.fullmatch(r"[0-9a-f]+", value):
        raise InputError(f"checksum: a {algorithm} digest is {size} hex digits ({len(value)} given)")
    return algorithm, value


def check_settings(digest, cipher, iterations):
    """InputError for a digest, cipher or iteration count openssl enc would not have used."""
    if digest not in DIGESTS:
        raise InputError(f"digest must be one of {', '.join(DIGESTS)}, not {digest!r}")
    if cipher not in CIPHERS:
        raise InputError(f"cipher must be one of {', '.join(CIPHERS)}, not {cipher!r}")
    if iterations is not None and (isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1):
        raise InputError(f"iterations must be a whole number of 1 or more, not {iterations!r}")


def legacy_error(path, problem, kind="corrupt"):
    return EnvelopeError(f"cannot import {path}: {problem}", kind, path)


class LegacyFile:
    """The ciphertext of an openssl enc file: salt, body offset and length, armored or not. Opening it
    checks the framing (no KMS, no key): a file without the Salted__ header, or whose body is not
    a whole number of AES blocks, is refused."""

    def __init__(self, path):
        self.path = path
        self.armored = False
        stream = open_regular(path)
        try:
            start = stream.read(len(ARMORED))
            stream.seek(0)
            if start == ARMORED:
                stream = self._decoded(stream)
            self.stream = stream
            header = stream.read(BLOCK)
            self.body_size = stream.seek(0, io.SEEK_END) - BLOCK
        except BaseException:
            stream.close()
            raise
        if header[:len(SALTED)] != SALTED or len(header) < BLOCK:
            self.close()
            raise legacy_error(path, "not a file made by `openssl enc` with a salt (it does not start with Salted__)",
                               "not_envelope")
        self.salt = header[len(SALTED):]
        if self.body_size < BLOCK or self.body_size % BLOCK:
            self.close()
            raise legacy_error(path, f"truncated or damaged: {self.body_size} bytes of ciphertext after the header, "
                                     f"not a whole number of {BLOCK}-byte AES blocks")

    def _decoded(self, stream):
        """The bytes of an `openssl enc -a` file (base64, in lines): decoded in memory, since its
        size is needed up front."""
        if os.fstat(stream.fileno()).st_size > MAX_ARMORED_SIZE:
            raise legacy_error(self.path, f"a base64 (-a) file above {MAX_ARMORED_SIZE} bytes is not read; "
                                          "decode it first (openssl base64 -d)", "too_large")
        text = _WHITESPACE.sub(b"", stream.read())
        stream.close()
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise legacy_error(self.path, "starts as base64 (openssl enc -a) but is not valid base64") from None
        self.armored = True
        return io.BytesIO(data)

    def close(self):
        self.stream.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class LegacyReader:
    """read(n) over the plaintext of a LegacyFile under (key, iv); ``hasher`` (a hashlib object or
    None) sees every plaintext byte. Construction checks the padding from the last two blocks and
    raises a 'corrupt' EnvelopeError when it is wrong. tell() and seek(0, SEEK_END) give the exact
    size (io.Source.size() asks for it); nothing else seeks."""

    def __init__(self, legacy, key, iv, hasher=None):
        self._legacy = legacy
        self.hasher = hasher
        self._position = 0
        self._at_end = False  # between a length probe's seek to the end and its seek back
        self._read = 0  # ciphertext bytes read so far
        self.size = legacy.body_size - self._padding(key, iv)
        legacy.stream.seek(BLOCK)
        self._decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
        self._buffer = bytearray()
        self.name = legacy.path

    def _padding(self, key, iv):
        stream = self._legacy.stream
        if self._legacy.body_size > BLOCK:
            stream.seek(BLOCK + self._legacy.body_size - 2 * BLOCK)
            previous = stream.read(BLOCK)
        else:
            previous = iv
        stream.seek(BLOCK + self._legacy.body_size - BLOCK)
        last = stream.read(BLOCK)
        block = Cipher(algorithms.AES(key), modes.ECB()).decryptor().update(last)  # nosec - one raw block of CBC
        plain = bytes(a ^ b for a, b in zip(block, previous))
        pad = plain[-1]
        if not 1 <= pad <= BLOCK or not hmac.compare_digest(plain[-pad:], bytes([pad]) * pad):
            raise legacy_error(self._legacy.path, f"the padding is wrong after decryption: {WRONG_KEY_HINT}")
        return pad

    def read(self, size=-1):
        if self._at_end:
            return b""
        while self._read < self._legacy.body_size and (size < 0 or len(self._buffer) < size):
            chunk = self._legacy.stream.read(min(CHUNK_SIZE, self._legacy.body_size - self._read))
            if not chunk:
                raise legacy_error(self._legacy.path, "the file got shorter while it was read", "io_error")
            self._read += len(chunk)
            self._buffer += self._decryptor.update(chunk)
        wanted = self.size - self._position
        if size >= 0:
            wanted = min(wanted, size)
        data = bytes(self._buffer[:wanted])
        del self._buffer[:wanted]
        self._position += len(data)
        if self.hasher is not None:
            self.hasher.update(data)
        return data

    @property
    def finished(self):
        return self._position == self.size

    def tell(self):
        return self.size if self._at_end else self._position

    def seek(self, offset, whence=io.SEEK_SET):
        """Only what a length probe does (io.Source.size(), the SDK's stream_length): tell(), seek to
        the end, tell() there, seek back to where it was. Reading is always in order."""
        if (offset, whence) == (0, io.SEEK_END):
            self._at_end = True
            return self.size
        if whence == io.SEEK_SET and offset == self._position:
            self._at_end = False
            return offset
        raise io.UnsupportedOperation("a legacy file's plaintext is read in order")


def check_digest(path, hasher, expected):
    """EnvelopeError when the plaintext's digest is not the user's checksum."""
    if hasher is None:
        return
    if not hmac.compare_digest(hasher.hexdigest(), expected):
        raise legacy_error(path, f"the decrypted content does not match checksum {hasher.name}:{expected} "
                                 f"(its {hasher.name} is {hasher.hexdigest()}): {WRONG_KEY_HINT}")


def data_key_blob(text=None, raw=None, label="encrypted_data_key"):
    """The KMS CiphertextBlob from a base64 text (``aws kms generate-data-key --output text --query
    CiphertextBlob``) or from a file's bytes, which may be that text or the decoded blob."""
    if raw is not None:
        stripped = _WHITESPACE.sub(b"", raw)
        if stripped and re.fullmatch(rb"[A-Za-z0-9+/]+={0,2}", stripped) and len(stripped) % 4 == 0:
            return base64.b64decode(stripped)
        if not raw:
            raise InputError(f"{label} is empty")
        return bytes(raw)
    stripped = re.sub(r"\s+", "", text or "")
    if not stripped:
        raise InputError(f"{label} is empty")
    try:
        return base64.b64decode(stripped, validate=True)
    except (binascii.Error, ValueError):
        raise InputError(f"{label} is not base64 text (as `aws kms generate-data-key --output text --query "
                         "CiphertextBlob` prints it)") from None
