# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""For internal collection use only: ansible-vault content in files, rekeyed in memory.

A file is either a whole-file vault (its bytes start with ``$ANSIBLE_VAULT;``) or text that may
hold inline ``!vault |`` block values (YAML vars files). ``rekey_text`` returns the new text with
every vault payload re-encrypted under one new secret and vault id, and every other byte kept;
nothing is written here (the caller writes each file atomically once all of them are ready).
"""

from __future__ import annotations

from ansible.parsing.vault import VaultLib, is_encrypted, parse_vaulttext_envelope

VAULT_HEADER = "$ANSIBLE_VAULT;"


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
        """Inline values found by YAML's own scanner (a !vault tag on a block scalar), so comments,
        quoted strings and untagged block text that mention !vault are left alone; each payload's
        lines are replaced, every other byte kept; the result must load to the same data with the
        payloads set aside."""
        vault_headers = text.count(VAULT_HEADER)
        if not vault_headers and "!vault" not in text:
            return Rekeyed(None, 0, 0, text)  # no vault content: not even parsed
        blocks = _vault_blocks(text, where)
        if vault_headers != len(blocks):
            raise VaultFileError(f"{where}: holds vault payloads that are not '!vault |' block values (JSON "
                                 "__ansible_vault values, flow style, or vault text inside another value); convert "
                                 "it with envelope.kms.migrate_vault or rekey those values by hand")
        if not blocks:
            return Rekeyed(None, 0, 0, text)
        lines = text.splitlines(keepends=True)
        rekeyed = 0
        for first, last, payload in reversed(blocks):  # from the end: line numbers stay valid
            new = self.payload(payload, f"{where}: line {first + 1}")
            if new is None:
                continue
            rekeyed += 1
            indent = _indent(lines[first])
            ending = "\r\n" if lines[first].endswith("\r\n") else "\n"
            replacement = [indent + payload_line + ending for payload_line in new.splitlines()]
            if not lines[last].endswith(("\n", "\r")):
                replacement[-1] = replacement[-1][:-len(ending)]  # the file ended without a line break
            lines[first:last + 1] = replacement
        result = "".join(lines)
        if rekeyed and _data_without_payloads(result, where) != _data_without_payloads(text, where):
            raise VaultFileError(f"{where}: rewriting its !vault values would change other data; rekey it by hand")
        return Rekeyed("inline", len(blocks), rekeyed, result)


def _yaml():
    import yaml  # pylint: disable=import-outside-toplevel

    return yaml


def _vault_blocks(text, where):
    """[(first line, last line, payload text)] of every '!vault |' block value, in file order."""
    yaml = _yaml()
    try:
        tokens = list(yaml.scan(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise VaultFileError(f"{where}: not valid YAML{f' (line {mark.line + 1})' if mark else ''}") from None
    blocks = []
    for index, token in enumerate(tokens):
        if not (isinstance(token, yaml.TagToken) and tuple(token.value) == ("!", "vault")):
            continue
        following = [item for item in tokens[index + 1:index + 3] if not isinstance(item, yaml.AnchorToken)]
        scalar = following[0] if following else None
        if not isinstance(scalar, yaml.ScalarToken) or scalar.style not in ("|", ">"):
            raise VaultFileError(f"{where}: line {token.start_mark.line + 1}: a !vault value that is not a block "
                                 "scalar ('key: !vault |' followed by the payload); rekey it by hand")
        lines = text.splitlines()
        last = scalar.end_mark.line if scalar.end_mark.column else scalar.end_mark.line - 1
        first = scalar.start_mark.line + 1
        while last >= first and not lines[last].strip():
            last -= 1  # blank lines after the payload belong to the file, not to the payload
        if last < first or not lines[first].strip().startswith(VAULT_HEADER):
            raise VaultFileError(f"{where}: line {token.start_mark.line + 1}: a !vault value without a vault payload")
        blocks.append((first, last, "\n".join(line.strip() for line in lines[first:last + 1])))
    return blocks


def _data_without_payloads(text, where):
    """The YAML documents of a text with every !vault value as one placeholder."""
    yaml = _yaml()

    class _Loader(yaml.SafeLoader):  # pylint: disable=too-many-ancestors
        pass

    _Loader.add_constructor("!vault", lambda loader, node: "<vault payload>")
    try:
        return list(yaml.load_all(text, Loader=_Loader))  # nosec: a safe loader
    except yaml.YAMLError:
        raise VaultFileError(f"{where}: not valid YAML") from None


def _indent(line):
    return line[:len(line) - len(line.lstrip(" \t"))]


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
