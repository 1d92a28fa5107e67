"""Finding secrets where they must not be: in files left on disk and in the output of a run.

A secret is searched in the forms it would take when leaked: its bytes, base64 (standard and
URL-safe, with and without padding), and hex in lower and upper case. Files are read as bytes, and
containers are opened: a zip file's members, the module payload an AnsiballZ wrapper carries
(base64 ``zip_data``), gzip data. The data keys of envelopes are recovered with KMS the way any
reader would: the header is parsed with the reference library and each KMS-wrapped data key is
sent to KMS Decrypt with the header's encryption context.
"""

import base64
import binascii
import gzip
import io
import json
import os
import re
import zipfile

from aws_encryption_sdk.internal.formatting.deserialize import deserialize_header

# the AnsiballZ wrapper passes its module payload as a keyword argument: zip_data='<base64>',
_ZIP_DATA = re.compile(rb"zip_data=['\"]([A-Za-z0-9+/=\s]+)['\"]")
KMS_PROVIDER_ID = "aws-kms"


def forms(secret):
    """{label: bytes} of the forms in which ``secret`` (str or bytes) is searched."""
    raw = secret.encode() if isinstance(secret, str) else bytes(secret)
    standard = base64.b64encode(raw)
    urlsafe = base64.urlsafe_b64encode(raw)
    found = {
        "raw": raw,
        "base64": standard,
        "base64 (no padding)": standard.rstrip(b"="),
        "base64url": urlsafe.rstrip(b"="),
        "hex": binascii.hexlify(raw),
        "HEX": binascii.hexlify(raw).upper(),
    }
    # a too short or too regular secret would match by chance: keep only the forms that are long enough
    return {label: value for label, value in found.items() if len(value) >= 12}


class Needles:
    """Named secrets and their forms: ``search(data)`` lists the ones found in some bytes.

    A secret of several lines (or ending in a newline) is also searched line by line and as JSON
    escapes it (a module's arguments, a callback's output), where its newlines are ``\\n``."""

    def __init__(self):
        self._forms = []  # (name, label, bytes)

    def add(self, name, secret):
        for label, value in forms(secret).items():
            self._forms.append((name, label, value))
        text = secret.decode("utf-8", "replace") if isinstance(secret, (bytes, bytearray)) else secret
        if "\n" in text:
            escaped = json.dumps(text)[1:-1].encode()
            if len(escaped) >= 12:
                self._forms.append((name, "JSON-escaped", escaped))
            for number, line in enumerate(text.splitlines(), 1):
                # a PEM armour line is the same in every key: not a secret
                if len(line.strip()) >= 12 and not line.startswith("-----"):
                    self._forms.append((name, f"line {number}", line.strip().encode()))
        return self

    def __len__(self):
        return len({name for name, _label, _value in self._forms})

    def search(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        return sorted({f"{name} ({label})" for name, label, value in self._forms if value in data})


def expanded(data, name="", depth=0):
    """(name, bytes) of ``data`` and of what it contains (zip members, AnsiballZ payloads, gzip)."""
    yield name, data
    if depth > 3:
        return
    if data[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                for member in archive.infolist():
                    yield from expanded(archive.read(member), f"{name}!{member.filename}", depth + 1)
        except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError):
            pass
    elif data[:2] == b"\x1f\x8b":
        try:
            yield from expanded(gzip.decompress(data), f"{name}!gunzip", depth + 1)
        except (OSError, EOFError, ValueError):
            pass
    for match in _ZIP_DATA.finditer(data):
        try:
            payload = base64.b64decode(re.sub(rb"\s", b"", match.group(1)))
        except (binascii.Error, ValueError):
            continue
        yield from expanded(payload, f"{name}!zip_data", depth + 1)


def files_under(root, skip=()):
    """Every regular file under ``root`` (symbolic links not followed), except the paths in ``skip``."""
    skipped = {os.path.realpath(path) for path in skip}
    for directory, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for filename in sorted(filenames):
            path = os.path.join(directory, filename)
            if os.path.islink(path) or not os.path.isfile(path) or os.path.realpath(path) in skipped:
                continue
            yield path


def scan_file(path, needles):
    """The needles found in the file at ``path`` or in what it contains: [(where, [found...])]."""
    with open(path, "rb") as handle:
        data = handle.read()
    return [(where or path, found) for where, content in expanded(data, path) if (found := needles.search(content))]


# -- data keys of envelopes


def envelope_header(path):
    """The reference library's header of the AWS Encryption SDK message at ``path``, or None when
    the file is no such message."""
    with open(path, "rb") as handle:
        if handle.read(1) not in (b"\x01", b"\x02"):  # the message format versions
            return None
        handle.seek(0)
        try:
            return deserialize_header(handle)[0]
        except Exception:  # pylint: disable=broad-exception-caught  # not an envelope, whatever the library says
            return None


def envelope_data_keys(header, kms):
    """The plaintext data key behind each KMS-wrapped data key of ``header`` (KMS Decrypt with the
    header's encryption context, as the library itself calls it)."""
    keys = []
    for edk in header.encrypted_data_keys:
        if edk.key_provider.provider_id != KMS_PROVIDER_ID:
            continue
        answer = kms.decrypt(CiphertextBlob=edk.encrypted_data_key, EncryptionContext=dict(header.encryption_context),
                             KeyId=edk.key_provider.key_info.decode())
        keys.append(answer["Plaintext"])
    return keys


def wrapped_data_key(path, kms, encryption_context=None):
    """The plaintext of a KMS ciphertext blob file (raw or one line of base64), as the data_key
    module writes it; None when KMS cannot decrypt it with that context."""
    with open(path, "rb") as handle:
        data = handle.read()
    candidates = [data]
    try:
        candidates.append(base64.b64decode(data.strip(), validate=True))
    except (binascii.Error, ValueError):
        pass
    for blob in candidates:
        try:
            return kms.decrypt(CiphertextBlob=blob, EncryptionContext=dict(encryption_context or {}))["Plaintext"]
        except Exception:  # pylint: disable=broad-exception-caught  # not this encoding
            continue
    return None
