# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Helpers shared by the envelope.kms.decrypt module and lookup.

Pure parts (plaintext matching, modes, encodings, option checks) are unit-tested without AWS; the
one function that drives the engine (``decrypt_to_sink``) keeps the engine's decrypt checks
(required context, allowed keys or accounts, end of input) while streaming plaintext to a callable
instead of a file, so the module can compare with an existing destination in constant memory,
with one KMS Decrypt and without writing anything.
"""

from __future__ import annotations

import base64
import os
import re
import stat

from ansible_collections.envelope.kms.plugins.module_utils import envelope

# return_content and the lookup hold the whole plaintext in memory (and in the task result).
MAX_CONTENT_SIZE = 64 * 1024 * 1024
# diff_plaintext shows at most this much plaintext on each side.
MAX_DIFF_PLAINTEXT = 64 * 1024
# Plaintext files are created private unless a mode is asked for.
DEFAULT_MODE = 0o600
READ_SIZE = 256 * 1024

_ACCOUNT_ID = re.compile(r"^\d{12}$")


class DecryptInputError(ValueError):
    """A bad option value, caught before any KMS call."""


def check_account_ids(account_ids):
    """AWS account ids as 12-digit strings (YAML may have turned them into numbers)."""
    checked = []
    for account_id in account_ids or ():
        text = str(account_id).strip()
        if isinstance(account_id, int) and not isinstance(account_id, bool):
            text = text.zfill(12)
        if not _ACCOUNT_ID.match(text):
            raise DecryptInputError(f"discovery_account_ids must be 12-digit AWS account ids, not {account_id!r}")
        checked.append(text)
    return checked


def decrypt_policy(params):
    """The engine's decrypt keyword arguments from module or lookup options."""
    return dict(
        encryption_context=params.get("encryption_context") or {},
        allowed_key_arns=list(params.get("allowed_key_arns") or []),
        discovery_account_ids=check_account_ids(params.get("discovery_account_ids")),
        discovery_partition=params.get("discovery_partition") or None,
    )


def encode_content(data, encoding, what="the plaintext"):
    """Plaintext bytes as a string: UTF-8 text, or base64 for binary data."""
    if encoding == "base64":
        return base64.b64encode(data).decode("ascii")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise DecryptInputError(f"{what} is not UTF-8 text: ask for base64 encoding instead") from None


def preview(data, limit=MAX_DIFF_PLAINTEXT, what="plaintext"):
    """Text for a plaintext diff (opt-in): at most ``limit`` bytes, binary shown as a note."""
    if data is None:
        return ""
    if len(data) > limit:
        return f"({what} not shown: larger than {limit} bytes)\n"
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return f"({what} not shown: binary data, {len(data)} bytes)\n"


def read_head(path, limit):
    """Up to limit + 1 bytes of a file (one more than shown tells "too big" apart)."""
    with open(path, "rb") as handle:
        return handle.read(limit + 1)


def octal_mode(mode):
    """The mode as an int when it is numeric (int, or an octal string like '0640'), else None
    (symbolic modes such as 'u=rw,g=r' are applied afterwards by the module's file handling)."""
    if mode is None:
        return None
    if isinstance(mode, int) and not isinstance(mode, bool):
        return mode & 0o7777
    try:
        return int(str(mode), 8) & 0o7777
    except ValueError:
        return None


def initial_mode(mode, existing):
    """Mode the freshly decrypted file gets when it replaces dest atomically: the requested numeric
    mode, else the mode of the file it replaces, else private (0600)."""
    numeric = octal_mode(mode)
    if numeric is not None:
        return numeric
    if existing is not None:
        return stat.S_IMODE(existing.st_mode)
    return DEFAULT_MODE


def format_mode(value):
    return f"{value:04o}"


class Mismatch(Exception):
    """Raised from PlaintextMatcher.feed to stop decrypting at the first difference."""


class PlaintextMatcher:
    """Sink for decrypted chunks that compares them with an expected binary stream as they come.

    ``stop_on_mismatch``: raise Mismatch at the first difference (saves decrypting the rest);
    otherwise keep consuming so the whole envelope is still verified. ``keep``: also hold the first
    ``keep`` + 1 bytes of plaintext (for an opt-in diff, or content in check mode)."""

    def __init__(self, expected=None, stop_on_mismatch=True, keep=0):
        self._expected = expected
        self._stop = stop_on_mismatch
        self._keep = keep
        self.kept = bytearray()
        self.size = 0
        self.same = expected is not None

    def feed(self, chunk):
        self.size += len(chunk)
        if self._keep and len(self.kept) <= self._keep:
            self.kept.extend(chunk[: self._keep + 1 - len(self.kept)])
        if self.same:
            if _read_exactly(self._expected, len(chunk)) != chunk:
                self.same = False
                if self._stop:
                    raise Mismatch()

    def finish(self):
        """True when everything matched and the expected stream has nothing more."""
        if self.same and self._expected.read(1):
            self.same = False
        return self.same


def _read_exactly(stream, size):
    parts = []
    while size > 0:
        part = stream.read(min(size, READ_SIZE))
        if not part:
            break
        parts.append(part)
        size -= len(part)
    return b"".join(parts)


def decrypt_to_sink(engine, src, sink, encryption_context=None, allowed_key_arns=None, discovery_account_ids=None,
                    discovery_partition=None):
    """Decrypt the envelope file ``src`` with the same checks as ``Engine.decrypt_file``, passing
    plaintext chunks to ``sink`` instead of writing them. Returns the authenticated EnvelopeFacts.

    Chunks arrive before the end of the message is verified: a caller must not release them when
    this raises. An exception raised by ``sink`` (e.g. Mismatch) stops decrypting and propagates.

    The engine has no public call for this yet (only to a file or to bytes in memory); this uses
    its internal decrypt stream until it gets one."""
    policy = envelope._decrypt_policy(encryption_context, allowed_key_arns, discovery_account_ids,
                                      discovery_partition, engine.region)
    with envelope._open_source(os.fspath(src), "cannot decrypt") as source:
        return engine._decrypt_stream(source, sink, policy, f"cannot decrypt {source.label}")
