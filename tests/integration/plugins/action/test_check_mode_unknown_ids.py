"""Check mode with the ids of keys that earlier tasks only predict (issue #14, point 3), for the
controller actions envelope.kms.copy, envelope.kms.encrypt and envelope.kms.vars_file.

In check mode envelope.kms.key returns key_id and key_arn as null for a key it would create, so a
later task gets null, or an alias the real run would create. The actions must then report that the
file would be encrypted and written, with a warning naming the key, make no KMS call that changes
anything and write nothing; outside check mode a null id is one clear line before any KMS call.
(The modules' side is tests/integration/plugins/modules/test_check_mode_unknown_ids.py.)
"""

import os

import pytest
import yaml

from tests.harness import esdk, leaks
from tests.harness.vars_files import header_key_arns

SECRET = "db_password=check-mode-4be1f2a9c07d\n"
UNKNOWN = "assuming an earlier task creates that key in the real run (check mode)"
NULL_ID = f"key_id is null or empty: {UNKNOWN}"
NOT_YET = f"Key alias/not-yet (key_id) was not found: {UNKNOWN}"
# KMS actions that change nothing (Decrypt reads an existing file to compare it).
READ_ONLY = {"DescribeKey", "Decrypt"}


def host_dir(playbook):
    return os.path.join(playbook.workdir, "hosts", "localhost")


def read(path):
    with open(path, "rb") as handle:
        return handle.read()


def warnings_of(result):
    return result.get("warnings") or []


def no_secret_in(run, *secrets):
    needles = leaks.Needles()
    for secret in secrets:
        needles.add(secret, secret)
    assert not needles.search(run.stdout + run.stderr)


@pytest.mark.parametrize("diff", [False, True], ids=["check", "check-diff"])
def test_copy_and_encrypt_accept_predicted_ids_in_check_mode(playbook, kms, kms_server, app_key, diff):
    folder = host_dir(playbook)
    # an envelope of the same plaintext under alias/app: without the unknown key it would be "the same"
    existing = esdk.encrypt_file(kms_server, app_key.arn, SECRET, os.path.join(folder, "existing.enc"))
    controller_existing = esdk.encrypt_file(kms_server, app_key.arn, SECRET, os.path.join(folder, "local.enc"))
    before = {path: read(path) for path in (existing, controller_existing)}
    new_files = [os.path.join(folder, name) for name in ("new.enc", "alias.enc", "enc-new.enc", "enc-null.enc")]
    tasks = [
        {"name": "Create", "envelope.kms.key": {"alias": "app-next"}, "register": "k"},
        {"name": "Copy predicted id", "envelope.kms.copy": {"content": SECRET, "dest": new_files[0],
                                                            "key_id": "{{ k.key_id }}"}},
        {"name": "Copy predicted entry", "envelope.kms.copy": {"content": SECRET, "dest": existing,
                                                               "key_id": ["alias/app", "{{ k.key_arn }}"]}},
        {"name": "Copy alias not yet", "envelope.kms.copy": {"content": SECRET, "dest": new_files[1],
                                                             "key_id": "alias/not-yet"}},
        {"name": "Encrypt predicted id", "envelope.kms.encrypt": {"content": SECRET, "dest": new_files[2],
                                                                  "key_id": "{{ k.key_id }}"}},
        {"name": "Encrypt null entry", "envelope.kms.encrypt": {"content": SECRET, "dest": new_files[3],
                                                                "key_id": ["{{ none }}"]}},
        {"name": "Encrypt alias not yet", "envelope.kms.encrypt": {"content": SECRET, "dest": controller_existing,
                                                                   "key_id": ["alias/app", "alias/not-yet"]}},
    ]
    expected = {
        "Copy predicted id": ([NULL_ID], [None]),
        "Copy predicted entry": ([NULL_ID], [app_key.arn, None]),
        "Copy alias not yet": ([NOT_YET], [None]),
        "Encrypt predicted id": ([NULL_ID], [None]),
        "Encrypt null entry": ([NULL_ID], [None]),
        "Encrypt alias not yet": ([NOT_YET], [app_key.arn, None]),
    }

    kms_server.start_recording()
    run = playbook.run(tasks, "--check", *(["--diff"] if diff else [])).assert_ok()
    calls = kms_server.kms_calls()
    # the key task's lookup of its alias, alias/app twice and alias/not-yet twice: nothing else (no
    # GenerateDataKey, and no Decrypt: the existing envelopes are not under the keys wanted)
    assert calls == {"DescribeKey": 5}, calls

    assert run.changed() == 1 + len(expected)
    for name, (warnings, key_arns) in expected.items():
        result = run.result(name)
        assert result["changed"] is True, (name, result)
        assert warnings_of(result) == warnings, (name, result)
        assert result["key_arns"] == key_arns, (name, result)
        assert "checksum" not in result or name.startswith("Copy"), (name, result)  # encrypt: nothing written
        assert bool(result.get("diff")) is diff, (name, result.get("diff"))
    for path in new_files:
        assert not os.path.exists(path), path
    for path, data in before.items():
        assert read(path) == data, path
    assert sorted(os.listdir(folder)) == ["existing.enc", "local.enc"]  # no temp file left either
    assert [key["KeyId"] for key in kms.list_keys()["Keys"]] == [app_key.key_id]
    no_secret_in(run, SECRET.strip())

    if diff:
        copied = run.result("Copy predicted entry")["diff"][0]
        assert f'key_arns: ["{app_key.arn}"]' in copied["before"]
        assert f'key_arns: ["{app_key.arn}", null]' in copied["after"]
        assert "size: null" in copied["after"]  # check mode encrypts nothing
        encrypted = run.result("Encrypt predicted id")["diff"]
        assert encrypted["before"] == "" and "key_arns: [null]" in encrypted["after"]


def test_null_key_ids_fail_in_one_line_before_any_kms_call_outside_check_mode(playbook, kms, kms_server, app_key):
    """The same ids outside check mode: a null or empty one is refused before any KMS call; an alias
    that does not exist keeps its one line, after DescribeKey only."""
    folder = host_dir(playbook)
    null = "key_id is null or empty: "
    not_found = "cannot resolve KMS key alias/nope: the KMS key or alias does not exist (NotFoundException"

    def envelope(action, name, key_id):
        return f"envelope.kms.{action}", {"content": SECRET, "dest": f"{folder}/{name}", "key_id": key_id}

    tasks = {
        "Copy null": envelope("copy", "a.enc", "{{ no_key }}"),
        "Copy null entry": envelope("copy", "b.enc", ["alias/app", "{{ no_key }}"]),
        "Copy blank": envelope("copy", "c.enc", " "),
        "Encrypt null": envelope("encrypt", "d.enc", "{{ no_key }}"),
        "Encrypt null entry": envelope("encrypt", "e.enc", ["{{ none }}"]),
        "Vars file null": ("envelope.kms.vars_file", {"path": f"{folder}/f.kms.yml", "values": {"db": SECRET},
                                                      "key_id": "{{ no_key }}"}),
        "Copy unknown": envelope("copy", "g.enc", "alias/nope"),
        "Encrypt unknown": envelope("encrypt", "h.enc", "alias/nope"),
    }
    messages = dict.fromkeys(tasks, null)
    messages.update({"Copy null entry": "key_id is null or empty (entry 2 of 2): ", "Copy unknown": not_found,
                     "Encrypt unknown": not_found})
    play = [{"name": "Test", "hosts": "targets", "gather_facts": False, "vars": {"no_key": None},
             "tasks": [{"name": name, action: args, "ignore_errors": True} for name, (action, args) in tasks.items()]}]

    kms_server.start_recording()
    run = playbook.run(yaml.safe_dump(play, sort_keys=False))
    calls = kms_server.kms_calls()
    run.assert_failed_with(messages)
    for name in messages:
        assert "\n" not in run.result(name)["msg"].strip(), (name, run.result(name)["msg"])
    assert calls == {"DescribeKey": 2}, calls  # the two unknown aliases; the null ids made no call
    assert os.listdir(folder) == []
    no_secret_in(run, SECRET.strip())


def test_vars_file_accepts_predicted_ids_in_check_mode(playbook, kms, kms_server, app_key):
    folder = host_dir(playbook)
    existing = os.path.join(folder, "app.kms.yml")
    write = {"path": existing, "key_id": "alias/app", "values": {"db": SECRET}}
    playbook.run([{"name": "Write", "envelope.kms.vars_file": write}]).assert_ok()
    before = read(existing)
    tasks = [
        {"name": "Create", "envelope.kms.key": {"alias": "app-next"}, "register": "k"},
        {"name": "New file", "envelope.kms.vars_file": {"path": f"{folder}/new.kms.yml", "values": {"db": SECRET},
                                                        "key_id": "{{ k.key_id }}"}},
        {"name": "Rewrap", "envelope.kms.vars_file": {"path": existing, "key_id": ["alias/app", "alias/not-yet"]}},
    ]

    kms_server.start_recording()
    run = playbook.run(tasks, "--check", "--diff").assert_ok()
    calls = kms_server.kms_calls()
    assert set(calls) <= READ_ONLY, calls
    # the key task's alias, alias/app and alias/not-yet; the existing file is decrypted once to rewrap it
    assert calls == {"DescribeKey": 3, "Decrypt": 1}, calls

    new = run.result("New file")
    assert (new["changed"], warnings_of(new), new["key_arns"], new["added"]) == (True, [NULL_ID], [None], ["db"])
    rewrap = run.result("Rewrap")
    assert (rewrap["changed"], warnings_of(rewrap), rewrap["rewrapped"]) == (True, [NOT_YET], ["db"])
    assert rewrap["key_arns"] == [app_key.arn, None]
    assert not os.path.exists(f"{folder}/new.kms.yml")
    assert read(existing) == before
    assert {key: list(arns) for key, arns in header_key_arns(existing).items()} == {"db": [app_key.arn]}
    no_secret_in(run, SECRET.strip())
