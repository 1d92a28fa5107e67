"""Check mode with the ids of keys that earlier tasks only predict (issue #14, point 3).

In check mode envelope.kms.key returns key_id and key_arn as null for a key it would create, so a
later task gets null, or an alias the real run would create. Every module must then report what it
would do, with a warning naming the key, and make no KMS call that changes anything; outside check
mode the same null or unknown id is one clear line, before any change.
"""

import os

import boto3
import pytest
import yaml

from tests.harness import esdk

# The README's example, verbatim (README.md, "Rotate the application key by hand").
README_EXAMPLE = """\
- name: Rotate the application key by hand
  hosts: localhost
  module_defaults:
    group/envelope.kms.kms:
      region: eu-west-1
  tasks:
    - name: Create the next key
      envelope.kms.key:
        alias: alias/app-v2
        description: application secrets, v2
      register: next_key

    - name: Re-point the stable alias to it
      envelope.kms.alias:
        name: alias/app
        target_key_id: "{{ next_key.key_id }}"
      register: moved

    - name: Turn on automatic rotation too
      envelope.kms.key_rotation:
        key_id: alias/app
        enabled: true
        rotation_period_days: 180
"""
README_TASKS = ("Create the next key", "Re-point the stable alias to it", "Turn on automatic rotation too")

# KMS actions that change nothing; anything else recorded during a check-mode run is a bug.
READ_ONLY = {"DescribeKey", "ListAliases", "ListKeys", "ListResourceTags", "GetKeyPolicy", "GetKeyRotationStatus",
             "ListKeyRotations"}
UNKNOWN = "assuming an earlier task creates that key in the real run (check mode)"


def client_in(kms_server, region):
    return boto3.client("kms", endpoint_url=kms_server.url, region_name=region, aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def warnings_of(result):
    return result.get("warnings") or []


def host_dir(playbook):
    return os.path.join(playbook.workdir, "hosts", "localhost")


def test_the_readme_shows_this_example():
    with open(os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "README.md"), encoding="utf-8") as handle:
        assert README_EXAMPLE in handle.read()


def test_readme_example_in_check_mode_then_for_real_then_unchanged(playbook, kms, kms_server):
    eu = client_in(kms_server, "eu-west-1")

    kms_server.start_recording()
    check = playbook.run(README_EXAMPLE, "--check").assert_ok()
    calls = kms_server.kms_calls()
    assert calls == {"DescribeKey": 3}, calls  # one per task, none that changes anything
    assert [check.result(name)["changed"] for name in README_TASKS] == [True, True, True]
    assert check.changed() == 3
    created, moved, rotation = (check.result(name) for name in README_TASKS)
    assert created["key_id"] is None and created["key_arn"] is None
    assert moved["target_key_id"] is None and moved["target_key_arn"] is None
    assert moved["previous_target_key_id"] is None
    assert warnings_of(moved) == [f"target_key_id is null or empty: {UNKNOWN}"]
    assert warnings_of(rotation) == [f"Key alias/app (key_id) was not found: {UNKNOWN}"]
    assert rotation["enabled"] is True and rotation["rotation_period_days"] == 180
    assert rotation["key_id"] is None and rotation["rotations"] == []
    assert eu.list_keys()["Keys"] == [] and kms.list_keys()["Keys"] == []  # nothing created, in any region

    real = playbook.run(README_EXAMPLE).assert_ok()
    assert real.changed() == 3
    key_id = real.result("Create the next key")["key_id"]
    assert eu.describe_key(KeyId="alias/app-v2")["KeyMetadata"]["KeyId"] == key_id
    assert eu.describe_key(KeyId="alias/app")["KeyMetadata"]["KeyId"] == key_id
    assert eu.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True
    assert not warnings_of(real.result("Re-point the stable alias to it"))

    kms_server.start_recording()
    again = playbook.run(README_EXAMPLE, "--check").assert_ok()
    assert again.changed() == 0
    assert set(kms_server.kms_calls()) <= READ_ONLY


def test_null_and_unknown_ids_fail_in_one_line_outside_check_mode(playbook, kms, kms_server):
    """The same null or unknown ids outside check mode: each task fails with one line naming the
    option or the key, before any KMS call that changes anything."""
    folder = host_dir(playbook)
    tasks = {
        "alias null": ("envelope.kms.alias", {"name": "app", "target_key_id": "{{ no_key }}"},
                       "target_key_id is required with state=present"),
        "alias unknown": ("envelope.kms.alias", {"name": "app", "target_key_id": "alias/nope"},
                          "Target key alias/nope does not exist"),
        "rotation null": ("envelope.kms.key_rotation", {"key_id": "{{ no_key }}"}, "key_id is required"),
        "rotation unknown": ("envelope.kms.key_rotation", {"key_id": "alias/nope"}, "Key alias/nope does not exist"),
        "key null": ("envelope.kms.key", {"key_id": "{{ no_key }}", "alias": "app"}, "key_id is null"),
        "key unknown": ("envelope.kms.key", {"key_id": "alias/nope", "alias": "app"}, "Key alias/nope does not exist"),
        "key_info null": ("envelope.kms.key_info", {"key_id": "{{ no_key }}"}, "key_id is null"),
        "data_key null": ("envelope.kms.data_key", {"key_id": "{{ no_key }}", "dest": f"{folder}/data.key"},
                          "key_id is required"),
        "data_key unknown": ("envelope.kms.data_key", {"key_id": "alias/nope", "dest": f"{folder}/data.key"},
                             "KMS key alias/nope does not exist"),
        "rewrap null": ("envelope.kms.rewrap", {"key_id": "{{ no_key }}", "path": f"{folder}/x.enc"},
                        "key_id is required"),
        "decrypt null allowed": ("envelope.kms.decrypt", {"src": f"{folder}/x.enc", "dest": f"{folder}/x.txt",
                                                          "allowed_key_arns": ["{{ no_key }}"]},
                                 "allowed_key_arns is null or holds a null or empty entry"),
    }
    esdk.encrypt_file(kms_server, kms.create_key()["KeyMetadata"]["Arn"], "secret", f"{folder}/x.enc")
    play = [{"name": "Test", "hosts": "targets", "gather_facts": False, "vars": {"no_key": None},
             "tasks": [{"name": name, module: args, "ignore_errors": True} for name, (module, args, _m) in tasks.items()]}]

    kms_server.start_recording()
    run = playbook.run(yaml.safe_dump(play, sort_keys=False))
    calls = kms_server.kms_calls()
    run.assert_failed_with({name: message for name, (_module, _args, message) in tasks.items()})
    for name in tasks:
        assert "\n" not in run.result(name)["msg"], (name, run.result(name)["msg"])
    assert set(calls) <= READ_ONLY, calls
    # Null ids are refused before any KMS call; unknown ones after reading only: the alias and its
    # target, the key and the alias it was to carry, the key whose rotation, the data key's key.
    assert calls == {"DescribeKey": 6}, calls
    assert not os.path.exists(f"{folder}/data.key") and not os.path.exists(f"{folder}/x.txt")
    assert [alias["AliasName"] for alias in kms.list_aliases()["Aliases"] if not alias["AliasName"].startswith("alias/aws/")] == []


def test_other_modules_accept_null_and_unknown_ids_in_check_mode(playbook, kms, kms_server):
    """data_key, rewrap, decrypt, key and key_info given a predicted (null) or not yet existing key in
    check mode: what they would do, a warning naming the key, no change and no KMS call that changes
    anything (no data key generated, nothing decrypted under a policy the real run would not have)."""
    folder = host_dir(playbook)
    old = kms.create_key()["KeyMetadata"]
    kms.create_key()  # another key, which key_info with a null key_id must not list
    envelope = esdk.encrypt_file(kms_server, old["Arn"], "secret", f"{folder}/x.enc")
    with open(envelope, "rb") as handle:
        before = handle.read()
    tasks = [
        {"name": "Create", "envelope.kms.key": {"alias": "app-v2"}, "register": "new"},
        {"name": "Key", "envelope.kms.key": {"key_id": "{{ new.key_id }}", "alias": "app", "description": "v2"}},
        {"name": "Key by unknown alias", "envelope.kms.key": {"key_id": "alias/app-v2", "enabled": False}},
        {"name": "Info", "envelope.kms.key_info": {"key_id": "{{ new.key_arn }}"}, "register": "info"},
        {"name": "Data key", "envelope.kms.data_key": {"key_id": "{{ new.key_arn }}", "dest": f"{folder}/data.key"}},
        {"name": "Data key by alias",
         "envelope.kms.data_key": {"key_id": "alias/app-v2", "dest": f"{folder}/data.key",
                                   "allowed_key_arns": ["{{ new.key_arn }}"]}},
        {"name": "Rewrap", "envelope.kms.rewrap": {"key_id": "{{ new.key_arn }}", "path": envelope}},
        {"name": "Rewrap to both", "envelope.kms.rewrap": {"key_id": [old["Arn"], "alias/app-v2"], "path": envelope}},
        {"name": "Decrypt", "envelope.kms.decrypt": {"src": envelope, "dest": f"{folder}/x.txt",
                                                     "allowed_key_arns": ["{{ new.key_arn }}"]}},
    ]
    kms_server.start_recording()
    run = playbook.run(tasks, "--check").assert_ok()
    calls = kms_server.kms_calls()
    assert set(calls) <= READ_ONLY, calls  # no CreateKey, GenerateDataKey*, ReEncrypt, Decrypt, ...

    null_id = f"key_id is null or empty: {UNKNOWN}"
    expected_warnings = {
        "Key": [null_id],
        "Key by unknown alias": [f"Key alias/app-v2 (key_id) was not found: {UNKNOWN}"],
        "Info": [null_id],
        "Data key": [null_id],
        "Data key by alias": [f"allowed_key_arns is null or holds a null or empty entry, left out: {UNKNOWN}",
                              f"Key alias/app-v2 (key_id) was not found: {UNKNOWN}"],
        "Rewrap": [null_id],
        "Rewrap to both": [f"Key alias/app-v2 (key_id) was not found: {UNKNOWN}"],
        "Decrypt": [f"allowed_key_arns is null or holds a null or empty entry, left out: {UNKNOWN}",
                    f"allowed_key_arns only names keys not known yet: {envelope} is not decrypted in check mode, "
                    "and is reported as changed"],
    }
    for name, warnings in expected_warnings.items():
        result = run.result(name)
        assert warnings_of(result) == warnings, (name, result)
        assert result["changed"] is (name != "Info"), (name, result)

    assert run.result("Info")["keys"] == [] and run.result("Info")["aliases"] == []
    assert run.result("Key")["previous_alias_target_key_id"] is None
    data_key = run.result("Data key")
    assert (data_key["key_id"], data_key["key_arn"], data_key["operation"]) == (None, None, "generate")
    rewrap = run.result("Rewrap")
    assert rewrap["key_arns"] == [None] and rewrap["results"][0]["changed"] is True
    assert rewrap["results"][0]["previous_key_arns"] == [old["Arn"]]
    assert run.result("Rewrap to both")["key_arns"] == [old["Arn"], None]
    decrypt = run.result("Decrypt")
    assert decrypt["key_arns"] == [old["Arn"]] and "content" not in decrypt

    assert not os.path.exists(f"{folder}/data.key") and not os.path.exists(f"{folder}/x.txt")
    with open(envelope, "rb") as handle:
        assert handle.read() == before
    assert len(kms.list_keys()["Keys"]) == 2


@pytest.mark.parametrize("enabled, changed", [(True, True), (False, False)])
def test_key_rotation_of_a_key_not_created_yet_is_predicted_for_a_new_key(playbook, kms, kms_server, enabled, changed):
    """A new key's automatic rotation is off: enabling it is a change, disabling it is not."""
    kms_server.start_recording()
    run = playbook.run([{"name": "Rotation", "envelope.kms.key_rotation": {"key_id": "alias/later", "enabled": enabled}}],
                       "--check").assert_ok()
    assert kms_server.kms_calls() == {"DescribeKey": 1}
    result = run.result("Rotation")
    assert result["changed"] is changed
    assert warnings_of(result) == [f"Key alias/later (key_id) was not found: {UNKNOWN}"]
    assert result["enabled"] is enabled and result["rotation_period_days"] == (365 if enabled else None)
