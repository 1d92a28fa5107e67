# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""For internal collection use only: ansible-vault content in files, rekeyed in memory.

A file is either a whole-file vault (its bytes start with ``$ANSIBLE_VAULT;``) or text that may
hold inline ``!vault |`` block values (YAML vars files). ``rekey_text`` returns the new text with
every vault payload re-encrypted under one new secret and vault id, and every other byte kept;
nothing is written here (the caller writes each file atomically once all of them are ready).
"""

from __future__ import annotations

import re

from ansible.parsing.vault import VaultLib, is_encrypted, parse_vaulttext_envelope

VAULT_HEADER = "$ANSIBLE_VAULT;"
_BLOCK_START = re.compile(r"!vault\s*\|[-+0-9]*\s*(#.*)?$")
_VAULT_TAG = re.compile(r"!vault\b")


class VaultFileError(Exception):
    def __init__(self, message):
        super().__init__(message)
        self.message = message


class Rekeyed:
    """The outcome for one file: ``kind`` ('file', 'inline' or None for no vault content),
    ``values`` (payloads found), ``rekeyed`` (payloads re-encrypted), ``text`` (the new text)."""

    def __init__(self, kind, values, rekeyed, text):
        self.kind = kind
        self.values = values
        self.rekeyed = rekeyed
        self.text = text

    @property
    def changed(self):
        return self.rekeyed > 0


class Rekeyer:
    """Re-encrypts vault payloads under ``(label, secret)``; ``old_secrets`` (Ansible's
    [(vault id, VaultSecret)]) decrypt them."""

    def __init__(self, old_secrets, label, secret):
        self.label = label
        self.secret = secret
        self._new = VaultLib([(label, secret)])
        self._any = VaultLib(list(old_secrets) + [(label, secret)])

    def payload(self, vaulttext, where):
        """(new vaulttext or None when it is already under the new secret and vault id)."""
        b_vaulttext = vaulttext.encode("utf-8") if isinstance(vaulttext, str) else vaulttext
        try:
            _b_ciphertext, _version, _cipher, vault_id = parse_vaulttext_envelope(b_vaulttext)
        except Exception as error:  # AnsibleError and others: a malformed payload
            raise VaultFileError(f"{where}: not a valid vault payload ({_first_line(error)})") from None
        if vault_id == self.label:
            try:
                self._new.decrypt(b_vaulttext)
                return None  # already rekeyed
            except Exception:  # pylint: disable=broad-exception-caught
                pass  # same label, other password: rekey it
        try:
            plaintext = self._any.decrypt(b_vaulttext)
        except Exception as error:  # AnsibleVaultError: no secret given to the run opens it
            raise VaultFileError(f"{where}: cannot decrypt with the vault secrets given to this run "
                                 f"({_first_line(error)})") from None
        return self._new.encrypt(plaintext, secret=self.secret, vault_id=self.label).decode("ascii")

    def rekey_text(self, data, where):
        """A Rekeyed for a file's bytes."""
        if is_encrypted(data):
            new = self.payload(data, where)
            return Rekeyed("file", 1, 0 if new is None else 1, data.decode("utf-8") if new is None else new)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return Rekeyed(None, 0, 0, None)
        return self._rekey_inline(text, where)

    def _rekey_inline(self, text, where):
        lines = text.splitlines(keepends=True)
        out, values, rekeyed, index = [], 0, 0, 0
        while index < len(lines):
            line = lines[index]
            out.append(line)
            index += 1
            if not _BLOCK_START.search(line.rstrip("\r\n")):
                continue
            block, index = _block(lines, index, _indent(line))
            if not block or not block[0].strip().startswith(VAULT_HEADER):
                raise VaultFileError(f"{where}: line {index}: a !vault value without a vault payload below it")
            values += 1
            new = self.payload("\n".join(item.strip() for item in block), f"{where}: line {index - len(block)}")
            if new is None:
                out.extend(block)
                continue
            rekeyed += 1
            indent = _indent(block[0])
            ending = "\r\n" if block[-1].endswith("\r\n") else "\n"
            out.extend(indent + payload_line + ending for payload_line in new.splitlines())
        if len(_VAULT_TAG.findall(text)) != values:
            raise VaultFileError(f"{where}: has !vault values that are not block scalars ('key: !vault |' followed "
                                 "by the payload); rekey those by hand")
        return Rekeyed("inline" if values else None, values, rekeyed, "".join(out))


def _block(lines, index, key_indent):
    """The lines of a block scalar after its header line: more indented than the key, blank lines
    inside it kept."""
    block = []
    while index < len(lines):
        line = lines[index]
        if line.strip() and len(_indent(line)) <= len(key_indent):
            break
        if not line.strip():
            # a blank line ends a vault payload (payloads have none)
            break
        block.append(line)
        index += 1
    return block, index


def _indent(line):
    return line[:len(line) - len(line.lstrip(" \t"))]


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
