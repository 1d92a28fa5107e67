"""envelope.kms.vault_rekey through the real ansible-playbook (issue #13): a tree of whole-file
vaults and YAML files with inline !vault values, from the run's vault secret (--vault-password-file)
to the password a KMS envelope holds.

Every file is checked here with ansible-core's VaultLib: each payload opens with the new password
(printed by the envelope-kms-client script) under the vault id, none with the old one, and every
non-vault byte of the inline files is as it was.
"""

import os
import shutil
import subprocess

import pytest
from ansible.errors import AnsibleError

from ansible_collections.envelope.kms.plugins.module_utils.envelope import Engine
from ansible_collections.envelope.kms.plugins.plugin_utils import vault_client
from tests.harness import leaks
from tests.harness.vault_tree import CLIENT, ansible_vault, client_password, decrypt_vars, digests, encrypt, \
    make_tree, non_vault_lines, payload_label, payloads, read_bytes, vault_env, vault_lib

OLD = "old-vault-password-3c9e1a"
THIRD = "third-password-not-given-77"
PATTERN = "inventory/**/*.yml"


def rekey_task(**args):
    return {"name": "Rekey", "envelope.kms.vault_rekey": dict(dict(paths=[PATTERN], vault_id="prod"), **args),
            "register": "out"}


def setup_tree(playbook, kms, key_arn):
    """The tree under inventory/ (20 whole-file vaults, 3 inline files under OLD), old.txt, and
    the envelope of vault id prod where the client looks (vault-passwords/prod.enc)."""
    tree = make_tree(os.path.join(playbook.workdir, "inventory"), OLD)
    old_file = os.path.join(playbook.workdir, "old.txt")
    with open(old_file, "w", encoding="utf-8") as handle:
        handle.write(OLD + "\n")
    envelope = os.path.join(playbook.workdir, "vault-passwords", "prod.enc")
    assert vault_client.create_password_file("prod", envelope, Engine(kms), [key_arn])
    return tree, old_file


def rekey(playbook, old_file, *args, **task_args):
    return playbook.run([rekey_task(**task_args)], "--vault-password-file", old_file, *args)


def matched(tree, relative):
    return os.path.join(tree.root, relative)


def assert_rekeyed(tree, relative, new_lib, old_lib):
    """Every payload of the file is under vault id prod, opens with the new password and not with
    the old one; the file holds what it held."""
    data = read_bytes(tree.path(relative))
    found = payloads(data)
    assert len(found) == (1 if relative in tree.whole else 4), relative
    for payload in found:
        assert payload_label(payload) == "prod", relative
        with pytest.raises(AnsibleError):
            old_lib.decrypt(payload.encode())
    assert decrypt_vars(data, new_lib) == tree.expected(relative), relative


def is_rekeyed(tree, relative, new_lib):
    try:
        return all(payload_label(p) == "prod" for p in payloads(read_bytes(tree.path(relative)))) and \
            decrypt_vars(read_bytes(tree.path(relative)), new_lib) == tree.expected(relative)
    except AnsibleError:
        return False


@pytest.mark.slow
def test_rekey_a_tree_check_mode_then_for_real_then_unchanged(playbook, kms, kms_server, app_key):
    tree, old_file = setup_tree(playbook, kms, app_key.arn)
    before = digests(tree.root)
    texts = {relative: read_bytes(tree.path(relative)).decode() for relative in tree.inline}
    every_file = [matched(tree, relative) for relative in tree.files]

    kms_server.start_recording()
    checked = rekey(playbook, old_file, "--check").assert_ok().result("Rekey")
    assert kms_server.kms_calls() == {"Decrypt": 1}  # the envelope, once
    assert checked["changed"] is True
    assert checked["rekeyed"] == every_file
    assert checked["values_rekeyed"] == tree.payload_count == 32
    assert digests(tree.root) == before, "check mode wrote"

    kms_server.start_recording()
    run = rekey(playbook, old_file).assert_ok()
    assert kms_server.kms_calls() == {"Decrypt": 1}
    result = run.result("Rekey")
    assert result["changed"] is True and result["vault_id"] == "prod"
    assert result["rekeyed"] == every_file
    assert result["values_rekeyed"] == 32
    assert result["envelope"] == os.path.join(playbook.workdir, "vault-passwords", "prod.enc")
    assert sorted((item["path"], item["kind"], item["values"], item["rekeyed"], item["changed"])
                  for item in result["files"]) == sorted(
        [(matched(tree, rel), "file", 1, 1, True) for rel in tree.whole]
        + [(matched(tree, rel), "inline", 4, 4, True) for rel in tree.inline])

    new_password = client_password(vault_env(playbook), playbook.workdir, "prod")
    assert not leaks.Needles().add("new", new_password).add("old", OLD).search(run.stdout + run.stderr)
    new_lib, old_lib = vault_lib(new_password, labels=["prod"]), vault_lib(OLD)
    after = digests(tree.root)
    assert sorted(after) == sorted(before), "files appeared or went away"
    for relative in tree.files:
        assert after[relative] != before[relative], relative
        assert_rekeyed(tree, relative, new_lib, old_lib)
        assert os.stat(tree.path(relative)).st_mode & 0o777 == 0o644, relative
    for relative, text in texts.items():
        assert non_vault_lines(read_bytes(tree.path(relative)).decode()) == non_vault_lines(text), relative

    # ansible-vault itself opens a rekeyed file with the client
    whole = tree.path("host_vars/h12/vault.yml")
    viewed = ansible_vault(vault_env(playbook), playbook.workdir, "view", "--vault-id", f"prod@{CLIENT}", whole)
    assert viewed.returncode == 0, viewed.stderr
    assert decrypt_vars(viewed.stdout, vault_lib()) == tree.whole["host_vars/h12/vault.yml"]

    # again (the old secret still given): nothing to do, nothing written
    again = rekey(playbook, old_file).assert_ok()
    assert again.changed() == 0
    assert again.result("Rekey")["rekeyed"] == [] and again.result("Rekey")["values_rekeyed"] == 0
    assert digests(tree.root) == after


@pytest.mark.slow
def test_one_undecryptable_file_fails_the_task_and_changes_nothing(playbook, kms, kms_server, app_key):
    tree, old_file = setup_tree(playbook, kms, app_key.arn)
    bad = tree.path("group_vars/g05_other.yml")
    with open(bad, "w", encoding="utf-8") as handle:
        handle.write(encrypt("other: value\n", THIRD) + "\n")
    before = digests(tree.root)

    failed = rekey(playbook, old_file)
    assert failed.returncode != 0
    message = failed.result("Rekey")["msg"]
    assert message.startswith(f"1 of {len(tree.files) + 1} files cannot be rekeyed, none was changed: {bad}: "
                              "cannot decrypt with the vault secrets given to this run"), message
    assert "Traceback" not in message and "\n" not in message.strip()
    assert digests(tree.root) == before

    # an inline value no secret opens, in a file of its own: the same
    os.remove(bad)
    inline_bad = tree.path("group_vars/inline_0.yml")
    text = read_bytes(inline_bad).decode()
    mixed = text.replace("# trailing comment\n", "") + "other_secret: !vault |\n" + "".join(
        f"          {line}\n" for line in encrypt("x", THIRD).splitlines())
    with open(inline_bad, "w", encoding="utf-8") as handle:
        handle.write(mixed)
    before = digests(tree.root)
    failed = rekey(playbook, old_file)
    message = failed.result("Rekey")["msg"]
    assert failed.returncode != 0
    assert message.startswith(f"1 of {len(tree.files)} files cannot be rekeyed, none was changed: {inline_bad}: "
                              "line "), message
    assert digests(tree.root) == before

    # no vault secret given to the run at all
    failed = playbook.run([rekey_task()])
    assert "no vault secret was given to this run" in failed.result("Rekey")["msg"]
    assert digests(tree.root) == before


def _chattr(flag, path):
    return subprocess.run(["chattr", flag, path], capture_output=True, check=False).returncode == 0


def _block_writes(directory):
    """Make ``directory`` refuse new files; returns the undo function, or skips the test."""
    if os.geteuid() != 0:
        os.chmod(directory, 0o500)
        return lambda: os.chmod(directory, 0o755)
    if not shutil.which("chattr") or not _chattr("+i", directory):
        pytest.skip("running as root (permissions do not stop writes) and chattr +i is not available here")
    try:
        open(os.path.join(directory, "probe"), "w", encoding="utf-8").close()
    except PermissionError:
        return lambda: _chattr("-i", directory)
    os.remove(os.path.join(directory, "probe"))
    _chattr("-i", directory)
    pytest.skip("chattr +i does not stop writes on this file system")
    return None


@pytest.mark.slow
def test_a_failure_while_writing_leaves_each_file_old_or_new(playbook, kms, kms_server, app_key):
    tree, old_file = setup_tree(playbook, kms, app_key.arn)
    before = digests(tree.root)
    blocked = tree.path("host_vars/h15")
    undo = _block_writes(blocked)
    try:
        failed = rekey(playbook, old_file)
    finally:
        undo()
    assert failed.returncode != 0
    message = failed.result("Rekey")["msg"]
    assert f"cannot write in {blocked}" in message, message
    assert "Traceback" not in message

    new_lib = vault_lib(client_password(vault_env(playbook), playbook.workdir, "prod"), labels=["prod"])
    after = digests(tree.root)
    assert sorted(after) == sorted(before), "a temp file was left behind, or a file went away"
    old_files = [rel for rel in tree.files if after[rel] == before[rel]]
    new_files = [rel for rel in tree.files if is_rekeyed(tree, rel, new_lib)]
    assert sorted(old_files + new_files) == tree.files, "a file is neither as it was nor wholly rekeyed"
    assert "host_vars/h15/vault.yml" in old_files
    assert new_files, "the files before the blocked one were written"

    # once the folder takes writes again, a re-run finishes the job (the written files are kept)
    done = rekey(playbook, old_file).assert_ok().result("Rekey")
    assert done["rekeyed"] == [matched(tree, rel) for rel in old_files]
    assert all(digests(tree.root)[rel] == after[rel] for rel in new_files)
    assert all(is_rekeyed(tree, rel, new_lib) for rel in tree.files)
