"""envelope.kms.vars_file (action) through the real ansible-playbook against the local KMS endpoint.

The action writes envelope vars files on the controller; every file is then read back here, with
the reference library (tests/harness/esdk.py) or the collection's parser, and compared line by line.
"""

import json
import os

from ansible_collections.envelope.kms.plugins.module_utils import vars_file
from ansible_collections.envelope.kms.plugins.module_utils.envelope import DecryptPolicy, Engine
from tests.harness import esdk, leaks
from tests.harness.vars_files import header_key_arns, load_tree, message_of, read_text, sealed_value, write_text, \
    write_vars_file

PASSWORD = "vf-password-6d2b91e04c"
NEW_PASSWORD = "vf-new-password-0a7c33f1"
TOKEN = "vf-token-93be7d10a2f5"
CONTEXT = {"app": "billing"}


def vars_file_task(name, **args):
    return {"name": name, "envelope.kms.vars_file": args, "register": "out"}


def decrypted(kms, path):
    """The decrypted mapping of an envelope vars file (collection's reader, any key)."""
    return vars_file.decrypt_tree(Engine(kms), load_tree(path), path, DecryptPolicy()).tree


def secrets_in(run, *secrets):
    needles = leaks.Needles()
    for secret in secrets:
        needles.add(secret, secret)
    return needles.search(run.stdout + run.stderr)


def test_create_then_rerun_unchanged_and_values_decrypt_with_the_library(playbook, kms, kms_server, app_key):
    os.makedirs(os.path.join(playbook.workdir, "secrets"))
    path = os.path.join(playbook.workdir, "secrets", "app.kms.yml")
    task = vars_file_task("Write", path="secrets/app.kms.yml", key_id="alias/app", encryption_context=CONTEXT,
                          values={"db": {"password": PASSWORD, "port": 5432}, "api_token": TOKEN,
                                  "flags": [1, "two", True]},
                          clear_values={"db": {"host": "db.example.com"}})

    kms_server.start_recording()
    first, second = playbook.run_idempotent([task])
    calls = kms_server.kms_calls()

    result = first.result("Write")
    assert result["changed"] is True and result["path"] == path
    assert sorted(result["added"]) == ["api_token", "db.host", "db.password", "db.port", "flags"]
    assert result["updated"] == result["removed"] == result["rewrapped"] == []
    assert result["key_arns"] == [app_key.arn] and result["encryption_context"] == CONTEXT
    again = second.result("Write")
    assert sorted(again["unchanged"]) == ["api_token", "db.host", "db.password", "db.port", "flags"]
    assert again["added"] == again["updated"] == []
    # one data key for the whole file; the re-run decrypts it once to compare and generates nothing
    assert calls["GenerateDataKey"] == 1 and calls["Decrypt"] == 1, calls
    assert not secrets_in(first, PASSWORD, TOKEN) and not secrets_in(second, PASSWORD, TOKEN)
    assert f"{os.stat(path).st_mode & 0o777:04o}" == "0600"

    tree = load_tree(path)
    assert tree["db"]["host"] == "db.example.com"
    assert {key for key, value in vars_file.leaves(tree) if vars_file.is_sealed(value)} == \
        {("db", "password"), ("db", "port"), ("api_token",), ("flags",)}
    # The reference library alone decrypts a value: base64 after the marker, plaintext {"path", "value"}
    headers = []
    for key, expected in ((["db", "password"], PASSWORD), (["db", "port"], 5432), (["flags"], [1, "two", True])):
        plaintext, header = esdk.decrypt(kms_server, message_of(sealed_value(path, ".".join(key))),
                                         key_ids=[app_key.arn])
        assert json.loads(plaintext) == {"path": key, "value": expected}
        assert header.encryption_context["app"] == "billing"
        headers.append(header)
    assert json.loads(esdk.decrypt(kms_server, message_of(sealed_value(path, "db.port")))[0])["value"] == 5432
    assert len({frozenset(header.encrypted_data_keys) for header in headers}) == 1  # the same wrapped data key


def test_edit_remove_check_mode_src_with_diff(playbook, kms, kms_server, app_key):
    folder = os.path.join(playbook.workdir, "vars")
    files = {name: os.path.join(folder, f"{name}.kms.yml") for name in ("edit", "remove", "check", "new", "src")}
    original = {}
    for name in ("edit", "remove", "check"):
        original[name] = write_vars_file(kms, files[name], {"db": {"password": PASSWORD, "user": "app"},
                                                            "api": {"token": TOKEN}}, {"port": 5432},
                                         key_arns=[app_key.arn], encryption_context=CONTEXT)
    plain = write_text(os.path.join(folder, "plain.yml"),
                       "db:\n  password: src-password-51fe0c\n  host: db.internal\nport: 6432\ndebug: true\n")
    tasks = [
        vars_file_task("Edit", path=files["edit"], values={"db": {"password": NEW_PASSWORD}, "api": {"token": TOKEN}},
                       key_id="alias/app"),
        vars_file_task("Remove", path=files["remove"], remove=["db.user", "not.there"]),
        dict(vars_file_task("Check existing", path=files["check"], values={"extra": "check-secret-44a1"},
                            allowed_key_arns=[app_key.arn]),
             check_mode=True),
        dict(vars_file_task("Check new", path=files["new"], key_id="alias/app", values={"a": "check-secret-44a1"}),
             check_mode=True),
        vars_file_task("From src", path=files["src"], src=plain, clear_keys=["db.host", ["port"]], key_id="alias/app"),
    ]

    kms_server.start_recording()
    run = playbook.run(tasks, "--diff").assert_ok()
    calls = kms_server.kms_calls()

    # Edit: exactly the edited value's line changed; the value kept with the same plaintext kept its text
    edit = run.result("Edit")
    assert (edit["changed"], edit["updated"], edit["unchanged"], edit["added"]) == \
        (True, ["db.password"], ["api.token"], [])
    before, after = original["edit"].splitlines(), read_text(files["edit"]).splitlines()
    assert len(before) == len(after)
    changed_lines = [(old, new) for old, new in zip(before, after) if old != new]
    assert len(changed_lines) == 1 and changed_lines[0][1].startswith("  password: envelope-kms:v1:"), changed_lines
    assert decrypted(kms, files["edit"]) == {"db": {"password": NEW_PASSWORD, "user": "app"}, "api": {"token": TOKEN},
                                             "port": 5432}
    diff = edit["diff"]
    assert diff["before"].count("\n") == diff["after"].count("\n") == 4
    assert [line for line in diff["after"].splitlines() if line not in diff["before"].splitlines()] == \
        [line for line in diff["after"].splitlines() if line.startswith("db.password: encrypted ")]

    # Remove: the line gone, every other line as it was; a missing key is not an error
    removed = run.result("Remove")
    assert (removed["changed"], removed["removed"]) == (True, ["db.user"])
    assert read_text(files["remove"]).splitlines() == \
        [line for line in original["remove"].splitlines() if not line.startswith("  user: ")]

    # Check mode: reported, nothing written, nothing encrypted
    checked, new = run.result("Check existing"), run.result("Check new")
    assert (checked["changed"], checked["added"], new["changed"], new["added"]) == (True, ["extra"], True, ["a"])
    assert read_text(files["check"]) == original["check"]
    assert not os.path.exists(files["new"])

    # From src: every value encrypted but the clear keys, which keep their text and type
    from_src = run.result("From src")
    assert sorted(from_src["added"]) == ["db.host", "db.password", "debug", "port"]
    tree = load_tree(files["src"])
    assert (tree["db"]["host"], tree["port"]) == ("db.internal", 6432)
    assert vars_file.is_sealed(tree["db"]["password"]) and vars_file.is_sealed(tree["debug"])
    assert decrypted(kms, files["src"]) == {"db": {"password": "src-password-51fe0c", "host": "db.internal"},
                                            "port": 6432, "debug": True}
    assert read_text(plain).startswith("db:\n  password: src-password-51fe0c")  # src left as it was

    # One GenerateDataKey (the src file's): edits join the file's data key, check mode encrypts
    # nothing; one Decrypt per existing file (edit, remove, check)
    assert calls["GenerateDataKey"] == 1 and calls["Decrypt"] == 3, calls
    # --diff shows keys and hashes, never a value
    assert not secrets_in(run, PASSWORD, NEW_PASSWORD, TOKEN, "check-secret-44a1", "src-password-51fe0c")


def test_rewrap_after_the_alias_moved_to_a_new_key(playbook, kms, kms_server, app_key):
    path = os.path.join(playbook.workdir, "app.kms.yml")
    write_vars_file(kms, path, {"db": {"password": PASSWORD}, "api": {"token": TOKEN}}, {"port": 5432},
                    key_arns=[app_key.arn], encryption_context=CONTEXT)
    new_key = kms.create_key()["KeyMetadata"]
    kms.update_alias(AliasName="alias/app", TargetKeyId=new_key["KeyId"])
    tasks = [
        vars_file_task("Rewrap", path=path, key_id="alias/app"),
        vars_file_task("Rewrap again", path=path, key_id="alias/app"),
        {"name": "Load", "envelope.kms.load_vars": {"file": path, "allowed_key_arns": [new_key["Arn"]]}},
        {"name": "Loaded", "ansible.builtin.set_fact": {
            "ok": "{{ db.password == '" + PASSWORD + "' and api.token == '" + TOKEN + "' and port == 5432 }}"}},
    ]
    run = playbook.run(tasks).assert_ok()

    rewrap = run.result("Rewrap")
    assert rewrap["changed"] is True
    assert sorted(rewrap["rewrapped"]) == ["api.token", "db.password"]
    assert rewrap["key_arns"] == [new_key["Arn"]] and rewrap["encryption_context"] == CONTEXT
    again = run.result("Rewrap again")
    assert (again["changed"], again["rewrapped"]) == (False, [])
    assert header_key_arns(path) == {"db.password": (new_key["Arn"],), "api.token": (new_key["Arn"],)}
    assert load_tree(path)["port"] == 5432
    assert run.result("Loaded")["ansible_facts"]["ok"] is True


def test_bad_options_fail_before_any_kms_call_and_write_nothing(playbook, kms, kms_server, app_key):
    folder = os.path.join(playbook.workdir, "vars")
    existing = os.path.join(folder, "existing.kms.yml")
    text = write_vars_file(kms, existing, {"db": {"password": PASSWORD}}, key_arns=[app_key.arn])
    new = os.path.join(folder, "new.kms.yml")
    secret = "bad-option-secret-7e51c0"
    cases = {
        "Unknown option": (dict(path=new, key_id="alias/app", values={"a": secret}, colour="red"),
                           "Unsupported parameters for (envelope.kms.vars_file) module: colour"),
        "Values not a dict": (dict(path=new, key_id="alias/app", values=[secret]),
                              "argument 'values' is of type list and we were unable to convert to dict"),
        "No key for a new file": (dict(path=new, values={"a": secret}), "key_id is required"),
        "Clear and secret": (dict(path=existing, key_id="alias/app", values={"db": {"password": secret}},
                                  clear_values={"db": {"password": "x"}}),
                             "key db.password is in both values and clear_values"),
        "Set and removed": (dict(path=existing, values={"db": {"password": secret}}, remove=["db.password"]),
                            "key db.password is both set and removed"),
    }
    tasks = [dict(vars_file_task(name, **args), ignore_errors=True) for name, (args, _message) in cases.items()]

    kms_server.start_recording()
    run = playbook.run(tasks)
    calls = kms_server.kms_calls()

    for name, (_args, message) in cases.items():
        result = run.result(name)
        assert result.get("failed") is True, (name, result)
        assert message in result["msg"], (name, result["msg"])
        assert "Traceback" not in result["msg"] and "\n" not in result["msg"].strip(), (name, result["msg"])
    assert sum(calls.values()) == 0, calls
    assert sorted(os.listdir(folder)) == ["existing.kms.yml"]
    assert read_text(existing) == text
    assert not secrets_in(run, secret, PASSWORD)
