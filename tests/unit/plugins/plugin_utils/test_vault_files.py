"""Inline !vault values rekeyed in place (plugin_utils/vault_files.py): found by YAML's scanner, every
other byte kept, the data unchanged but for the payloads; layouts it cannot rewrite are refused."""

import os
import stat

import pytest
import yaml
from ansible.parsing.vault import VaultLib, VaultSecret

from ansible_collections.envelope.kms.plugins.plugin_utils import vault_client
from ansible_collections.envelope.kms.plugins.plugin_utils.vault_files import Rekeyer, VaultFileError

OLD, NEW = VaultSecret(b"old-password"), VaultSecret(b"new-password")
OLD_VAULT = VaultLib([("default", OLD)])
BOTH = VaultLib([("prod", NEW), ("default", OLD)])


def block(plaintext, indent):
    return "".join(indent + line + "\n" for line in OLD_VAULT.encrypt(plaintext).decode().splitlines())


class _Loader(yaml.SafeLoader):  # pylint: disable=too-many-ancestors
    pass


_Loader.add_constructor("!vault", lambda loader, node: ("vault", BOTH.decrypt(loader.construct_scalar(node).encode())))


def rekey(text):
    return Rekeyer([("default", OLD)], "prod", NEW).rekey_text(text.encode(), "f.yml")


@pytest.mark.parametrize("text", [
    "users:\n  - password: !vault |\n" + block("s3cret", "      ") + "    name: bob\n",
    "x:\n  a: !vault |\n" + block("A", "      ") + "    # next\n  b: 1\n",
    "# values are !vault encrypted\na: !vault |\n" + block("A", "  "),
    "note: 'use !vault | # like this'\na: !vault |\n" + block("A", "  "),
    ("a: !vault |\n" + block("A", "  ")).rstrip("\n"),
    ("a: !vault |\n" + block("A", "  ") + "b: 2\n").replace("\n", "\r\n"),
    "a: &anchor !vault |\n" + block("A", "  ") + "\n\nb: *anchor\n",
    "- !vault |-\n" + block("item", "  ") + "- plain\n",
], ids=["list item", "comment after", "comment mention", "quoted mention", "no final newline", "crlf", "anchor",
        "top list"])
def test_inline_values_rekeyed_everything_else_kept(text):
    outcome = rekey(text)
    assert (outcome.kind, outcome.rekeyed) == ("inline", outcome.values) and outcome.values >= 1
    assert yaml.load(outcome.text, Loader=_Loader) == yaml.load(text, Loader=_Loader)
    assert "$ANSIBLE_VAULT;1.2;AES256;prod" in outcome.text and "$ANSIBLE_VAULT;1.1;AES256" not in outcome.text
    kept = [line for line in text.splitlines() if "$ANSIBLE_VAULT" not in line and not line.strip().isalnum()]
    assert all(line in outcome.text.splitlines() for line in kept)
    assert outcome.text.endswith(("\n", "\r\n")) == text.endswith(("\n", "\r\n"))
    again = Rekeyer([("default", OLD)], "prod", NEW).rekey_text(outcome.text.encode(), "f.yml")
    assert (again.rekeyed, again.text) == (0, outcome.text)


@pytest.mark.parametrize("text, message", [
    ('{"a": {"__ansible_vault": "' + OLD_VAULT.encrypt("J").decode().replace("\n", "\\n") + '"}}',
     "not '!vault |' block values"),
    ("app_config: |\n  password: !vault |\n" + block("X", "    ") + "b: !vault |\n" + block("B", "  "),
     "vault text inside another value"),
    ("a: !vault '" + OLD_VAULT.encrypt("A").decode().replace("\n", " ") + "'\n", "not a block scalar"),
    ("a: !vault |\n  not a payload\n", "without a vault payload|not '!vault |' block values"),
])
def test_layouts_it_cannot_rewrite_are_refused(text, message):
    with pytest.raises(VaultFileError, match=message):
        rekey(text)


def test_a_payload_no_given_secret_opens_is_refused():
    other = VaultLib([("default", VaultSecret(b"third"))]).encrypt("x").decode()
    text = "a: !vault |\n" + "".join("  " + line + "\n" for line in other.splitlines())
    with pytest.raises(VaultFileError, match="line 2: cannot decrypt with the vault secrets given to this run"):
        rekey(text)


def test_files_without_vault_content_are_not_parsed():
    assert rekey("{{ not yaml: [\n").kind is None


def test_client_reads_ansible_cfg_as_ansible_core(tmp_path, monkeypatch):
    monkeypatch.delenv("ANSIBLE_CONFIG", raising=False)
    monkeypatch.delenv("ENVELOPE_KMS_VAULT_PASSWORD_FILE", raising=False)
    monkeypatch.delenv("ANSIBLE_INVENTORY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    project = tmp_path / "project"
    project.mkdir()
    (project / "ansible.cfg").write_bytes(b"[envelope_kms_vault]\npassword_file = pw/{label}.enc ; a comment \xe9\n")
    monkeypatch.chdir(project)
    assert vault_client.password_file("prod") == str(project / "pw" / "prod.enc")
    os.chmod(project, os.stat(project).st_mode | stat.S_IWOTH)  # a world-writable cwd: its ansible.cfg is ignored
    assert vault_client.password_file("prod") == str(project / "vault-passwords" / "prod.enc")
