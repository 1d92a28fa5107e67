"""envelope.kms.import_openssl through the real ansible-playbook against the local KMS endpoint,
with legacy files made exactly as the recipe makes them: `aws kms generate-data-key` (here boto3,
same call), the CiphertextBlob decoded into .key/encrypted_data_key, the base64 Plaintext passed
to `openssl enc -e -aes256 -k`."""

import hashlib
import os
import shutil

import pytest

from ansible_collections.envelope.kms.plugins.module_utils.envelope import inspect_header
from tests.harness import esdk
from tests.harness.openssl_recipe import Recipe

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")

CONTEXT = {"app": "billing"}
SIZES = [0, 1, 15, 16, 17, 5 * 1024 * 1024]
# openssl flags -> the module's options
SETTINGS = {
    "sha256": ((), {}),
    "md5": (("-md", "md5"), {"digest": "md5"}),
    "pbkdf2": (("-pbkdf2",), {"pbkdf2": True}),
    "iter": (("-pbkdf2", "-iter", "2000"), {"iterations": 2000}),
    "md5-pbkdf2": (("-pbkdf2", "-md", "md5"), {"digest": "md5", "pbkdf2": True}),
}


def import_task(name, register, **args):
    return {"name": name, "envelope.kms.import_openssl": args, "register": register}


def leftovers(directory):
    return sorted(name for name in os.listdir(directory) if name.endswith(".tmp"))


def test_recipe_files_of_every_size_and_setting_import_and_decrypt(playbook, kms, kms_server, app_key, tmp_path):
    recipe = Recipe(kms, str(tmp_path / "legacy"), app_key.alias)
    out = tmp_path / "envelopes"
    out.mkdir()
    items = []
    for setting, (flags, _options) in SETTINGS.items():
        for size in SIZES:
            name = f"{setting}-{size}"
            items.append(dict(src=recipe.encrypt(name, os.urandom(size), *flags), dest=str(out / f"{name}.kms"),
                              name=name, setting=setting))
    # One task per setting, its files in one list (files): the blob is decrypted once per task.
    tasks = [
        {"name": f"Import {setting}", "envelope.kms.import_openssl": {
            "files": [dict(src=item["src"], dest=item["dest"]) for item in items if item["setting"] == setting],
            "encrypted_data_key_file": recipe.blob_file, "key_id": app_key.alias, "encryption_context": CONTEXT,
            **SETTINGS[setting][1]}}
        for setting in SETTINGS
    ]
    # envelope.kms.decrypt reads what was written (one setting, every size)
    tasks.append({"name": "Decrypt", "loop": [item for item in items if item["setting"] == "md5"],
                  "loop_control": {"label": "{{ item.name }}"},
                  "envelope.kms.decrypt": {"src": "{{ item.dest }}", "dest": "{{ item.dest }}.plain",
                                           "encryption_context": CONTEXT, "allowed_key_arns": [app_key["Arn"]]}})
    kms_server.start_recording()
    first = playbook.run(tasks).assert_ok()
    calls = kms_server.kms_calls()
    # One GenerateDataKey per file; Decrypt: the blob once per task, and once per file that
    # envelope.kms.decrypt read.
    assert calls["GenerateDataKey"] == len(items)
    assert calls["Decrypt"] == len(SETTINGS) + len(SIZES), calls
    by_dest = {}
    for setting, (_flags, options) in SETTINGS.items():
        task = first.result(f"Import {setting}")
        assert task["data_key_arn"] == app_key["Arn"] and task["key_arns"] == [app_key["Arn"]]
        pbkdf2 = bool(options.get("pbkdf2") or options.get("iterations"))
        assert task["legacy"] == {"cipher": "aes-256-cbc", "digest": options.get("digest", "sha256"),
                                  "kdf": "pbkdf2" if pbkdf2 else "EVP_BytesToKey",
                                  "iterations": options.get("iterations", 10000 if pbkdf2 else None)}
        assert "src" not in task and "plaintext_size" not in task
        # Without a checksum, the import warns that only the padding proved it, naming the files.
        assert any("has no integrity protection" in warning and task["results"][0]["src"] in warning
                   for warning in task.get("warnings", [])), task
        by_dest.update((result["dest"], result) for result in task["results"])
    for item in items:
        result = by_dest[item["dest"]]
        assert result["changed"] is True and result["failed"] is False, result
        assert result["verified"] == "padding" and result["base64"] is False
        assert result["plaintext_size"] == len(recipe.plaintexts[item["name"]])
        plaintext, header = esdk.decrypt(kms_server, item["dest"], [app_key["Arn"]])  # the plain library
        assert plaintext == recipe.plaintexts[item["name"]], item["name"]
        assert header.encryption_context["app"] == "billing"
        assert oct(os.stat(item["dest"]).st_mode & 0o777) == "0o600"
        assert result["size"] == os.path.getsize(item["dest"])
    for item in items:
        if item["setting"] == "md5":
            with open(item["dest"] + ".plain", "rb") as handle:
                assert handle.read() == recipe.plaintexts[item["name"]]
    assert leftovers(str(out)) == []
    # The legacy files and the blob stay.
    assert sorted(os.listdir(recipe.folder)) == sorted([".key"] + [f"{item['name']}.enc" for item in items])

    # Re-run: nothing written, no new data key; each file costs the blob's Decrypt and one compare Decrypt.
    mtimes = {item["dest"]: os.stat(item["dest"]).st_mtime_ns for item in items}
    kms_server.start_recording()
    second = playbook.run(tasks[:-1]).assert_ok()
    assert second.changed() == 0
    calls = kms_server.kms_calls()
    assert "GenerateDataKey" not in calls and calls["Decrypt"] == len(SETTINGS) + len(items), calls
    assert {item["dest"]: os.stat(item["dest"]).st_mtime_ns for item in items} == mtimes


def test_checksums_base64_blob_armored_files_check_mode_and_diff(playbook, kms, kms_server, app_key, tmp_path):
    recipe = Recipe(kms, str(tmp_path / "legacy"), app_key["KeyId"])
    plaintext = b"API_TOKEN=0123456789abcdef\n"
    src = recipe.encrypt("app.env", plaintext, "-a")  # base64 output (openssl enc -a)
    dest = str(tmp_path / "app.env.kms")
    sha256 = "sha256:" + hashlib.sha256(plaintext).hexdigest()
    common = dict(src=src, dest=dest, encrypted_data_key=recipe.blob_text, key_id=[app_key.alias],
                  encryption_context=CONTEXT, legacy_key_id=app_key["Arn"])
    kms_server.start_recording()
    checked = playbook.run([import_task("Check", "out", checksum=sha256, **common)], "--check", "--diff").assert_ok()
    result = checked.result("Check")
    assert result["changed"] is True and result["verified"] == "checksum" and result["base64"] is True
    assert result["diff"]["before"] == {"path": dest, "state": "absent"}
    assert result["diff"]["after"]["plaintext_size"] == len(plaintext)
    assert "API_TOKEN" not in checked.stdout
    assert not os.path.exists(dest) and leftovers(str(tmp_path)) == []
    assert kms_server.kms_calls() == {"DescribeKey": 1, "Decrypt": 1}

    # Check mode with a key an earlier task would create: a warning naming it, a predicted change.
    later = playbook.run([import_task("Later", "out", **{**common, "key_id": ["alias/created-later"]})],
                         "--check").assert_ok().result("Later")
    assert later["changed"] is True and later["key_arns"] == [None]
    assert any("alias/created-later (key_id) was not found: assuming an earlier task creates that key" in warning
               for warning in later["warnings"]), later["warnings"]

    # A checksum that does not match: one line, nothing written, and no data key generated... after the work.
    wrong = "sha256:" + hashlib.sha256(b"other").hexdigest()
    refused = playbook.run([import_task("Wrong checksum", "out", checksum=wrong, **common)])
    assert refused.returncode != 0
    message = refused.result("Wrong checksum")["msg"]
    assert message.startswith(f"cannot import {src}: the decrypted content does not match checksum {wrong}")
    assert "\n" not in message and "API_TOKEN" not in refused.stdout
    assert not os.path.exists(dest) and leftovers(str(tmp_path)) == []

    written = playbook.run([import_task("Import", "out", checksum=sha256, mode="0640", **common)], "--diff").assert_ok()
    result = written.result("Import")
    assert result["changed"] is True and result["verified"] == "checksum"
    assert not result.get("warnings"), result.get("warnings")  # proved by the checksum: no integrity warning
    assert oct(os.stat(dest).st_mode & 0o777) == "0o640"
    assert inspect_header(dest).key_arns == (app_key["Arn"],)
    assert esdk.decrypt(kms_server, dest)[0] == plaintext

    # Re-run with --check: nothing to do; another context: rewritten (checked first in check mode).
    again = playbook.run([import_task("Import", "out", checksum=sha256, mode="0640", **common)], "--check").assert_ok()
    assert again.result("Import")["changed"] is False
    other = {**common, "encryption_context": {"app": "billing", "env": "prod"}}
    kms_server.start_recording()
    moved = playbook.run([import_task("Import", "out", **other)], "--diff").assert_ok().result("Import")
    assert moved["changed"] is True
    assert moved["diff"]["before"]["encryption_context"] == CONTEXT
    assert moved["diff"]["after"]["encryption_context"] == {"app": "billing", "env": "prod"}
    assert kms_server.kms_calls() == {"DescribeKey": 1, "Decrypt": 1, "GenerateDataKey": 1}  # header differs: no compare
    assert oct(os.stat(dest).st_mode & 0o777) == "0o640"  # an existing file of ours keeps its mode
    assert esdk.decrypt(kms_server, dest)[1].encryption_context["env"] == "prod"

    # Up to date but the checksum is wrong: fails, dest untouched. Only the mode differs: changed, no
    # integrity warning (nothing was written).
    before = os.stat(dest).st_mtime_ns
    tasks = [import_task("Wrong", "out", checksum=wrong, **other) | {"ignore_errors": True},
             import_task("Mode only", "out", mode="0600", **other)]
    run = playbook.run(tasks)
    assert "does not match checksum" in run.result("Wrong")["msg"]
    mode_only = run.result("Mode only")
    assert mode_only["changed"] is True and not mode_only.get("warnings"), mode_only
    assert os.stat(dest).st_mtime_ns == before and oct(os.stat(dest).st_mode & 0o777) == "0o600"

    # dest a link: follow=true writes its target and keeps the link; follow=false (the default)
    # replaces the link. A dest that is not an envelope is replaced.
    target = tmp_path / "target.kms"
    target.write_bytes(b"not an envelope\n")
    link = tmp_path / "link.kms"
    link.symlink_to(target)
    followed = playbook.run([import_task("Follow", "out", **{**common, "dest": str(link), "follow": True})],
                            "--diff").assert_ok().result("Follow")
    assert followed["diff"]["before"] == {"path": str(target), "state": "file", "envelope": False, "size": 16}
    assert link.is_symlink() and esdk.decrypt(kms_server, str(target))[0] == plaintext
    replaced = playbook.run([import_task("Replace", "out", **{**common, "dest": str(link)})],
                            "--diff").assert_ok().result("Replace")
    assert replaced["changed"] is True and replaced["diff"]["before"] == {"path": str(link), "state": "link"}
    assert not link.is_symlink() and esdk.decrypt(kms_server, str(link))[0] == plaintext


def test_wrong_settings_and_bad_options_fail_in_one_line_with_nothing_written(playbook, kms, kms_server, app_key,
                                                                              tmp_path):
    recipe = Recipe(kms, str(tmp_path / "legacy"), app_key.alias)
    src = recipe.encrypt("db.env", b"DB_PASSWORD=hunter2\n" * 3)  # sha256, EVP_BytesToKey
    other_key = kms.create_key()["KeyMetadata"]
    dest = str(tmp_path / "db.env.kms")
    common = dict(src=src, dest=dest, encrypted_data_key_file=recipe.blob_file, key_id=[app_key.alias])
    cases = {
        "md5 for a sha256 file": (dict(digest="md5"), "the padding is wrong after decryption"),
        "pbkdf2 for EVP_BytesToKey": (dict(pbkdf2=True), "the padding is wrong after decryption"),
        "the blob of another key": (dict(legacy_key_id=other_key["Arn"]), "cannot decrypt the encrypted data key"),
        "dest is src": (dict(dest=src), "is the src file itself"),
        "dest is the blob": (dict(dest=recipe.blob_file), "is the encrypted_data_key_file file itself"),
        "bad checksum form": (dict(checksum="abc"), "checksum must be <algorithm>:<hex digest>"),
        "zero iterations": (dict(iterations=0), "iterations must be a whole number of 1 or more"),
        "bad mode": (dict(mode="0999"), "is not an octal number"),
        "no such owner": (dict(owner="no-such-user-here"), "does not exist on this host"),
        "not an openssl file": (dict(src=recipe.blob_file), "does not start with Salted__"),
        "null key id": (dict(key_id=None), "key_id is required"),
        "blob not base64": (dict(encrypted_data_key_file=None, encrypted_data_key="not base64!"), "is not base64 text"),
        "dest folder missing": (dict(dest=str(tmp_path / "nowhere" / "x.kms")), "does not exist: create it first"),
        "misspelled option": (dict(digests="md5"), "Unsupported parameters"),
        "src without dest": (dict(dest=None), "parameters are required together: src, dest"),
    }
    tasks = []
    for name, (change, _expected) in cases.items():
        args = {key: value for key, value in dict(common, **change).items() if value is not None or key == "key_id"}
        tasks.append({"name": name, "envelope.kms.import_openssl": args, "ignore_errors": True})
    kms_server.start_recording()
    run = playbook.run(tasks)
    calls = kms_server.kms_calls()
    for name, (_change, expected) in cases.items():
        result = run.result(name)
        assert result.get("failed") is True, (name, result)
        assert expected in result["msg"], (name, result["msg"])
        assert "\n" not in result["msg"].strip() and "hunter2" not in result["msg"], (name, result["msg"])
    assert "hunter2" not in run.stdout + run.stderr
    assert "GenerateDataKey" not in calls, calls
    assert not os.path.exists(dest) and leftovers(str(tmp_path)) == [] and leftovers(recipe.folder) == []
    with open(recipe.blob_file, "rb") as handle:
        assert handle.read()[:1] != b"S"  # the blob file was not overwritten


def test_one_file_failing_leaves_its_dest_and_the_others_are_imported(playbook, kms, kms_server, app_key, tmp_path):
    recipe = Recipe(kms, str(tmp_path / "legacy"), app_key.alias)
    good, bad = b"GOOD=1\n", b"BAD=2\n"
    files = [dict(src=recipe.encrypt("good", good), dest=str(tmp_path / "good.kms"),
                  checksum="sha256:" + hashlib.sha256(good).hexdigest()),
             dict(src=recipe.encrypt("bad", bad), dest=str(tmp_path / "bad.kms"),
                  checksum="sha256:" + hashlib.sha256(b"not it").hexdigest())]
    with open(files[1]["dest"], "w", encoding="utf-8") as handle:
        handle.write("left as it was\n")
    run = playbook.run([import_task("Import", "out", files=files, encrypted_data_key_file=recipe.blob_file,
                                    key_id=[app_key.alias])])
    assert run.returncode != 0
    result = run.result("Import")
    assert result["msg"].startswith(f"1 of 2 files could not be imported (their dest left as it was): cannot import "
                                    f"{files[1]['src']}: the decrypted content does not match checksum")
    assert [(entry["changed"], entry["failed"]) for entry in result["results"]] == [(True, False), (False, True)]
    assert esdk.decrypt(kms_server, files[0]["dest"])[0] == good
    with open(files[1]["dest"], encoding="utf-8") as handle:
        assert handle.read() == "left as it was\n"
    assert leftovers(str(tmp_path)) == []
    # One entry's dest is another's src: refused before any KMS call, the legacy file kept.
    with open(files[1]["src"], "rb") as handle:
        legacy_bytes = handle.read()
    kms_server.start_recording()
    crossed = playbook.run([import_task("Crossed", "out", files=[dict(files[0], dest=files[1]["src"]), files[1]],
                                        encrypted_data_key_file=recipe.blob_file, key_id=[app_key.alias])])
    assert "files entry 1: dest " + files[1]["src"] + " is the src of entry 2" in crossed.result("Crossed")["msg"]
    assert kms_server.kms_calls() == {}
    with open(files[1]["src"], "rb") as handle:
        assert handle.read() == legacy_bytes
    # Two entries with one dest: refused before any KMS call.
    kms_server.start_recording()
    twice = playbook.run([import_task("Twice", "out", files=[files[0], dict(files[0], src=files[1]["src"])],
                                      encrypted_data_key_file=recipe.blob_file, key_id=[app_key.alias])])
    assert "files entry 2: dest" in twice.result("Twice")["msg"]
    assert kms_server.kms_calls() == {}
