"""playbooks/import_legacy.yml (ansible-playbook envelope.kms.import_legacy) on a folder made by
the openssl recipe: check mode, the import, the re-run, and what it leaves."""

import hashlib
import json
import os
import shlex
import shutil
import subprocess

import pytest

from tests.harness import esdk
from tests.harness.openssl_recipe import Recipe
from tests.harness.playbook import ANSIBLE_PLAYBOOK, PlaybookRun

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PLAYBOOK = os.path.join(ROOT, "playbooks", "import_legacy.yml")


def report(run):
    return run.result("Report")["msg"]


def test_a_recipe_folder_is_imported_once_and_left_in_place(playbook, kms, kms_server, app_key, tmp_path):
    legacy = tmp_path / "secrets"
    recipe = Recipe(kms, str(legacy), app_key.alias)
    db, api = b"DB_PASSWORD=hunter2\n", b"API_TOKEN=abc123\n"
    recipe.encrypt("db.env", db)
    recipe.encrypt("api.env", api, "-md", "md5")  # another digest: refused by the padding, see below
    recipe.encrypt("cert.pem", b"-----BEGIN CERTIFICATE-----\n")
    # legacy_dir relative, as the README gives it: from ansible-playbook's current directory (the test's folder)
    assert playbook.workdir == str(tmp_path)
    settings = {"legacy_dir": "secrets", "key_id": app_key.alias, "legacy_patterns": ["db.env.enc", "cert.pem.enc"],
                "checksums": {"db.env.enc": "sha256:" + hashlib.sha256(db).hexdigest()},
                "encryption_context": {"app": "billing"}}
    envelopes = legacy / "envelopes"

    kms_server.start_recording()
    checked = playbook.run(PLAYBOOK, "--check", extra_vars=settings).assert_ok()
    lines = report(checked)
    assert lines[0].startswith(f"Would import 2 of 2 files into {envelopes} (0 already done), wrapped under ")
    assert not envelopes.exists()
    assert "GenerateDataKey" not in kms_server.kms_calls()
    warnings = checked.result("Import the files (one KMS Decrypt for the data key)")["warnings"]
    assert any(f"the folder of dest {envelopes}/db.env.enc does not exist: assuming an earlier task creates it"
               in warning for warning in warnings), warnings

    first = playbook.run(PLAYBOOK, extra_vars=settings).assert_ok()
    lines = report(first)
    assert lines[0] == f"Imported 2 of 2 files into {envelopes} (0 already done), wrapped under {app_key['Arn']}"
    assert lines[1] == "Proved by checksum: 1. By padding only (give -e checksums to prove them): cert.pem.enc"
    assert lines[2].startswith(f"Left for you to remove once the envelopes are deployed: the legacy files in {legacy}")
    assert sorted(os.listdir(envelopes)) == ["cert.pem.enc", "db.env.enc"]
    assert oct(os.stat(envelopes).st_mode & 0o777) == "0o700"
    plaintext, header = esdk.decrypt(kms_server, str(envelopes / "db.env.enc"), [app_key["Arn"]])
    assert plaintext == db and header.encryption_context["app"] == "billing"
    assert "hunter2" not in first.stdout + first.stderr
    # The legacy files and the blob stay.
    assert sorted(os.listdir(legacy)) == [".key", "api.env.enc", "cert.pem.enc", "db.env.enc", "envelopes"]
    assert os.path.isfile(recipe.blob_file)

    kms_server.start_recording()
    again = playbook.run(PLAYBOOK, extra_vars=settings).assert_ok()
    assert again.changed() == 0
    assert report(again)[0].startswith("Imported 0 of 2 files") and "(2 already done)" in report(again)[0]
    assert "GenerateDataKey" not in kms_server.kms_calls()

    # The md5 file with the default digest: the padding refuses it, nothing is written for it.
    only_api = {key: value for key, value in settings.items() if key != "checksums"}
    wrong = playbook.run(PLAYBOOK, extra_vars=dict(only_api, legacy_patterns=["api.env.enc"]))
    assert wrong.returncode != 0
    assert "the padding is wrong after decryption" in wrong.result("Import the files (one KMS Decrypt for the data key)")["msg"]
    assert not (envelopes / "api.env.enc").exists()
    right = playbook.run(PLAYBOOK, extra_vars=dict(only_api, legacy_patterns=["api.env.enc"], digest="md5")).assert_ok()
    assert report(right)[0].startswith("Imported 1 of 1 files")
    assert esdk.decrypt(kms_server, str(envelopes / "api.env.enc"))[0] == api


@pytest.mark.parametrize("settings, message", [
    ({}, "give -e legacy_dir=<the recipe's folder> -e key_id=<KMS key for the envelopes>"),
    ({"legacy_patterns": ["*.nothing"]}, "no file matching *.nothing in "),
    ({"checksums": {"typo.enc": "sha256:00"}}, "checksums names files that were not found: typo.enc"),
    ({"digest": "sha3"}, "digest one of sha256, md5, sha1, sha512"),
    ({"iterations": "0"}, "iterations a whole number above 0"),
    ({"checksums": {"db.env.enc": "9f86d081"}}, "checksums must be sha256:<hex> (or sha512, sha384, sha1, md5): db.env.enc"),
    ({"data_key_file": "/nonexistent/blob"}, "the data key file /nonexistent/blob is missing or not a file"),
], ids=["no-variables", "no-match", "checksum-typo", "digest", "iterations", "checksum-form", "no-data-key"])
def test_bad_variables_stop_before_anything_is_written(playbook, kms, kms_server, app_key, tmp_path, settings, message):
    legacy = tmp_path / "secrets"
    Recipe(kms, str(legacy), app_key.alias).encrypt("db.env", b"x")
    variables = {} if not settings else dict({"legacy_dir": str(legacy), "key_id": app_key.alias}, **settings)
    kms_server.start_recording()
    run = playbook.run(PLAYBOOK, extra_vars=variables)
    assert run.returncode != 0
    (failed,) = [(name, hosts["localhost"]) for name, hosts in run.tasks() if hosts.get("localhost", {}).get("failed")]
    assert message in failed[1]["msg"], failed
    assert not (legacy / "envelopes").exists()
    assert kms_server.kms_calls() == {}


def readme_command():
    """The README's command of "Coming from the openssl recipe", as arguments."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
        section = handle.read().split("## Coming from the openssl recipe", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    return shlex.split(block.replace("\\\n", " "))


def test_the_readme_command_runs_as_written(playbook, kms, kms_server, tmp_path):
    command = readme_command()
    assert command[:2] == ["ansible-playbook", "envelope.kms.import_legacy"], command
    key = kms.create_key()["KeyMetadata"]
    kms.create_alias(AliasName="alias/app-secrets", TargetKeyId=key["KeyId"])
    recipe = Recipe(kms, str(tmp_path / "secrets"), "alias/app-secrets")
    recipe.encrypt("db.env", b"test")  # the README's checksum is the sha256 of "test"
    run = subprocess.run([ANSIBLE_PLAYBOOK, "-i", playbook.inventory, *command[1:]], env=playbook.env(),
                         cwd=playbook.workdir, capture_output=True, text=True, check=False)
    lines = PlaybookRun(run).assert_ok().result("Report")["msg"]
    assert lines[0].startswith(f"Imported 1 of 1 files into {tmp_path / 'secrets' / 'envelopes'} (0 already done)")
    assert lines[1] == "Proved by checksum: 1.", json.dumps(lines)
    assert esdk.decrypt(kms_server, str(tmp_path / "secrets" / "envelopes" / "db.env.enc"))[0] == b"test"
