"""The envelope.kms.migrate_vault playbook (vars_file with src_secrets=vaulted) through the real
ansible-playbook (issue #13): a tree of whole-file vaults and YAML files with inline !vault values,
opened with the vault password the envelope-kms-client prints (--vault-id prod@client), becomes
envelope vars files (*.kms.yml) beside them.

The old files are decrypted here with ansible-core's VaultLib, the new ones with the collection's
reader (vars_file.decrypt_tree) under the strict key policy, and the two mappings compared.
"""

import os

import pytest

from ansible_collections.envelope.kms.plugins.module_utils import vars_file
from ansible_collections.envelope.kms.plugins.module_utils.envelope import DecryptPolicy, Engine
from ansible_collections.envelope.kms.plugins.plugin_utils import vault_client
from tests.harness import leaks
from tests.harness.vault_tree import CLIENT, client_password, decrypt_vars, digests, make_tree, read_bytes, \
    vault_env, vault_lib

WRITE_TASK = "Write each one as an envelope vars file"


def kms_name(relative):
    return relative[: -len(".yml")] + ".kms.yml"


def was_vaulted(tree, relative, key_path):
    """Whether a leaf was vault-encrypted in the old file: every leaf of a whole-file vault; in an
    inline file, the top-level !vault values and the nested <name>_db.password."""
    if relative in tree.whole:
        return True
    return key_path[0] in tree.secret_keys[relative] and (len(key_path) == 1 or key_path[-1] == "password")


@pytest.mark.slow
def test_migrate_a_tree_of_vault_files_to_envelope_vars_files(playbook, kms, kms_server, app_key):
    workdir = playbook.workdir
    vault_key = kms.create_key()["KeyMetadata"]["Arn"]
    envelope = os.path.join(workdir, "vault-passwords", "prod.enc")
    assert vault_client.create_password_file("prod", envelope, Engine(kms), [vault_key])
    env = vault_env(playbook)
    password = client_password(env, workdir, "prod")
    tree = make_tree(os.path.join(workdir, "inventory"), password, vault_id="prod")
    old = digests(tree.root)
    # what the vault files hold, read with VaultLib and the client's password
    lib = vault_lib(password, labels=["prod"])
    expected = {relative: decrypt_vars(read_bytes(tree.path(relative)), lib) for relative in tree.files}
    assert expected == {relative: tree.expected(relative) for relative in tree.files}

    args = ("--vault-id", f"prod@{CLIENT}")
    extra = {"src": "inventory", "key_id": app_key.alias}
    kms_server.start_recording()
    run = playbook.run("envelope.kms.migrate_vault", *args, extra_vars=extra).assert_ok()
    calls = kms_server.kms_calls()
    # the client's one Decrypt, the alias resolved once, one data key per new file
    assert calls == {"Decrypt": 1, "DescribeKey": 1, "GenerateDataKey": len(tree.files)}, calls
    results = run.result(WRITE_TASK)["results"]
    assert [item["item"]["path"] for item in results] == [tree.path(relative) for relative in tree.files]
    assert [item["path"] for item in results] == [tree.path(kms_name(relative)) for relative in tree.files]
    assert all(item["changed"] for item in results)
    needles = leaks.Needles().add("password", password)
    for values in expected.values():
        for path, value in vars_file.leaves(values):
            if isinstance(value, str) and len(value) >= 12 and ("pw" in value or "secret" in value):
                needles.add(vars_file.dotted(path), value)
    assert not needles.search(run.stdout + run.stderr)

    after = digests(tree.root)
    assert sorted(after) == sorted(list(old) + [kms_name(relative) for relative in tree.files])
    assert {relative: after[relative] for relative in old} == old, "a vault file was changed"
    engine = Engine(kms)
    for relative in tree.files:
        path = tree.path(kms_name(relative))
        text = read_bytes(path).decode()
        sealed = vars_file.parse(text.encode(), path)
        assert list(sealed) == list(expected[relative]), f"{relative}: key order"
        decrypted = vars_file.decrypt_tree(engine, sealed, path, DecryptPolicy.strict([app_key.arn])).tree
        assert decrypted == expected[relative], relative
        leaves = list(vars_file.leaves(sealed))
        assert [key_path for key_path, _value in leaves] == [key_path for key_path, _value in
                                                             vars_file.leaves(expected[relative])]
        for key_path, value in leaves:
            dotted = vars_file.dotted(key_path)
            if was_vaulted(tree, relative, key_path):
                assert vars_file.is_sealed(value), f"{relative}: {dotted} is in clear text"
                plain = vars_file.get_leaf(expected[relative], key_path)
                assert isinstance(plain, int) or str(plain) not in text, f"{relative}: {dotted} leaked"
            else:
                assert value == vars_file.get_leaf(expected[relative], key_path), f"{relative}: {dotted}"
                assert not vars_file.is_sealed(value), f"{relative}: clear {dotted} was encrypted"
        if relative in tree.inline:
            assert sum(vars_file.is_sealed(value) for _path, value in leaves) == 4, relative
    first = digests(tree.root)

    kms_server.start_recording()
    again = playbook.run("envelope.kms.migrate_vault", *args, extra_vars=extra).assert_ok()
    assert again.changed() == 0
    assert not any(item["changed"] for item in again.result(WRITE_TASK)["results"])
    assert digests(tree.root) == first
    # the client, then each existing file's data key once to compare its values; no new data key
    assert kms_server.kms_calls() == {"Decrypt": 1 + len(tree.files), "DescribeKey": 1}
