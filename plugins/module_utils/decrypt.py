# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Helpers shared by the envelope.kms.decrypt module and lookup.

Pure parts (modes, encodings, option checks) are unit-tested without AWS. Decrypting and comparing
with an existing destination is the engine's (Engine.decrypt_to with a PlaintextMatcher).
"""

from __future__ import annotations

import base64
import re
import stat

# return_content and the lookup hold the whole plaintext in memory (and in the task result).
MAX_CONTENT_SIZE = 64 * 1024 * 1024
# diff_plaintext shows at most this much plaintext on each side.
MAX_DIFF_PLAINTEXT = 64 * 1024
# Plaintext files are created private unless a mode is asked for.
DEFAULT_MODE = 0o600

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


def decrypt_options(params):
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
