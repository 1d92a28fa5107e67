"""envelope.kms.copy through the real ansible-playbook against the local KMS endpoint."""

import base64
import os
import subprocess
import sys

import pytest

from ansible_collections.envelope.kms.plugins.module_utils.envelope import inspect_header
from tests.harness import esdk

SECRET = "db_password=correct horse battery staple\n"


def copy_task(name="Copy", **args):
    return {"name": name, "envelope.kms.copy": args, "register": "out"}


def dest_of(playbook, name="secret.env"):
    return os.path.join(playbook.workdir, "hosts", "localhost", name)


def decrypt_with_library(kms_server, path, context):
    """Decrypt with the reference library alone (tests/harness/esdk.py); the context must hold `context`."""
    plaintext, header = esdk.decrypt(kms_server, path)
    for key, value in context.items():
        assert header.encryption_context[key] == value
    return plaintext.decode()


def test_deploy_then_rerun_is_unchanged_without_new_data_key(playbook, kms, kms_server, app_key):
    dest = dest_of(playbook)
    tasks = [copy_task(content=SECRET, dest=dest, key_id="alias/app", encryption_context={"app": "billing"},
                       mode="0640")]
    first = playbook.run(tasks).assert_ok()
    result = first.result("Copy")
    assert result["changed"] is True
    assert result["key_arns"] == [app_key["Arn"]]
    assert result["encryption_context"] == {"app": "billing"}
    assert result["algorithm"] == "AES_256_GCM_HKDF_SHA512_COMMIT_KEY"
    assert result["mode"] == "0640"
    assert oct(os.stat(dest).st_mode & 0o777) == "0o640"
    with open(dest, "rb") as handle:
        ciphertext = handle.read()
    assert SECRET.encode() not in ciphertext
    assert decrypt_with_library(kms_server, dest, {"app": "billing"}) == SECRET
    facts = inspect_header(dest)
    assert facts.key_arns == (app_key["Arn"],)
    assert facts.algorithm_id == 0x0478

    kms_server.start_recording()
    second = playbook.run(tasks).assert_ok()
    calls = kms_server.kms_calls()
    assert second.changed() == 0
    assert calls["GenerateDataKey"] == 0
    assert calls["Decrypt"] == 1, calls
    with open(dest, "rb") as handle:
        assert handle.read() == ciphertext, "an unchanged re-run must not rewrite the file"


def test_changes_that_re_encrypt(playbook, kms, app_key):
    dest = dest_of(playbook)
    base = dict(content=SECRET, dest=dest, key_id="app", encryption_context={"app": "billing"})
    playbook.run([copy_task(**base)]).assert_ok()

    changed_content = playbook.run([copy_task(**{**base, "content": SECRET + "more\n"})]).assert_ok()
    assert changed_content.changed() == 1
    changed_context = playbook.run([copy_task(**{**base, "encryption_context": {"app": "other"}})]).assert_ok()
    assert changed_context.changed() == 1
    assert inspect_header(dest).encryption_context == {"app": "other"}

    # manual rotation: the alias now points at a new key, so the file must be re-encrypted under it
    new_key = kms.create_key()["KeyMetadata"]
    kms.update_alias(AliasName="alias/app", TargetKeyId=new_key["KeyId"])
    first = playbook.run_idempotent([copy_task(**{**base, "encryption_context": {"app": "other"}})])[0]
    assert first.changed() == 1
    assert first.result("Copy")["key_arns"] == [new_key["Arn"]]
    assert inspect_header(dest).key_arns == (new_key["Arn"],)


def test_several_keys_each_decrypts(playbook, kms, kms_server, app_key):
    dr_key = kms.create_key()["KeyMetadata"]
    dest = dest_of(playbook)
    playbook.run_idempotent([copy_task(content=SECRET, dest=dest, key_id=["alias/app", dr_key["Arn"]])])
    assert inspect_header(dest).key_arns == tuple(sorted([app_key["Arn"], dr_key["Arn"]]))
    kms.disable_key(KeyId=app_key["KeyId"])  # moto still lets it work; the header check above is the real proof
    assert decrypt_with_library(kms_server, dest, {}) == SECRET


def test_check_mode_generates_no_data_key_and_writes_nothing(playbook, kms, kms_server, app_key):
    dest = dest_of(playbook)
    tasks = [copy_task(content=SECRET, dest=dest, key_id="alias/app")]
    kms_server.start_recording()
    predicted = playbook.run(tasks, "--check").assert_ok()
    assert predicted.result("Copy")["changed"] is True
    assert not os.path.exists(dest)
    assert kms_server.kms_calls()["GenerateDataKey"] == 0

    playbook.run(tasks).assert_ok()
    with open(dest, "rb") as handle:
        ciphertext = handle.read()
    unchanged = playbook.run(tasks, "--check").assert_ok()
    assert unchanged.changed() == 0
    kms_server.start_recording()
    change = playbook.run([copy_task(content="new", dest=dest, key_id="alias/app")], "--check").assert_ok()
    assert change.changed() == 1
    assert kms_server.kms_calls()["GenerateDataKey"] == 0
    with open(dest, "rb") as handle:
        assert handle.read() == ciphertext


def test_diff_shows_metadata_never_plaintext_unless_asked(playbook, app_key):
    dest = dest_of(playbook)
    playbook.run([copy_task(content=SECRET, dest=dest, key_id="alias/app")]).assert_ok()
    run = playbook.run([copy_task(content="new " + SECRET, dest=dest, key_id="alias/app",
                                  encryption_context={"env": "prod"})], "--diff").assert_ok()
    diff = run.result("Copy")["diff"]
    assert len(diff) == 1
    assert 'encryption_context: {"env": "prod"}' in diff[0]["after"]
    assert "encryption_context: {}" in diff[0]["before"]
    assert app_key["Arn"] in diff[0]["after"]
    assert "correct horse" not in run.stdout

    shown = playbook.run([copy_task(content="third " + SECRET, dest=dest, key_id="alias/app",
                                    diff_plaintext=True)], "--diff").assert_ok()
    plaintext_diff = shown.result("Copy")["diff"][1]
    assert plaintext_diff["before"] == "new " + SECRET
    assert plaintext_diff["after"] == "third " + SECRET


def test_backup_owner_group_and_src_lookup(playbook, app_key):
    files = os.path.join(playbook.workdir, "files")
    os.makedirs(files)
    with open(os.path.join(files, "app.env"), "w") as handle:
        handle.write(SECRET)
    dest_dir = os.path.join(playbook.workdir, "hosts", "localhost") + "/"
    user = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()
    group = subprocess.run(["id", "-gn"], capture_output=True, text=True, check=True).stdout.strip()
    tasks = [copy_task(src="app.env", dest=dest_dir, key_id="alias/app", owner=user, group=group, mode="0600",
                       backup=True)]
    first = playbook.run_idempotent(tasks)[0]
    result = first.result("Copy")
    assert result["dest"] == dest_dir + "app.env"
    assert (result["owner"], result["group"], result["mode"]) == (user, group, "0600")

    with open(os.path.join(files, "app.env"), "a") as handle:
        handle.write("extra=1\n")
    changed = playbook.run(tasks).assert_ok().result("Copy")
    assert changed["changed"] is True
    assert os.path.exists(changed["backup_file"])
    assert inspect_header(changed["backup_file"]).key_arns == (app_key["Arn"],)


def test_vault_encrypted_source(playbook, kms_server, app_key):
    vault_pass = os.path.join(playbook.workdir, "vault-pass")
    with open(vault_pass, "w") as handle:
        handle.write("vault-password\n")
    source = os.path.join(playbook.workdir, "vaulted.env")
    with open(source, "w") as handle:
        handle.write(SECRET)
    ansible_vault = os.path.join(os.path.dirname(sys.executable), "ansible-vault")
    subprocess.run([ansible_vault, "encrypt", "--vault-password-file", vault_pass, source], check=True,
                   capture_output=True)
    dest = dest_of(playbook)
    tasks = [copy_task(src=source, dest=dest, key_id="alias/app")]
    playbook.run_idempotent(tasks, "--vault-password-file", vault_pass)
    assert decrypt_with_library(kms_server, dest, {}) == SECRET


def test_signed_suite_and_frame_length(playbook, kms_server, app_key):
    dest = dest_of(playbook)
    content = "x" * 5000
    tasks = [copy_task(content=content, dest=dest, key_id="alias/app", frame_length=1024,
                       algorithm="AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384")]
    playbook.run_idempotent(tasks)
    facts = inspect_header(dest)
    assert (facts.algorithm_id, facts.frame_length, facts.signed) == (0x0578, 1024, True)
    assert decrypt_with_library(kms_server, dest, {}) == content
    # a different frame length is a different desired file
    assert playbook.run([copy_task(content=content, dest=dest, key_id="alias/app", frame_length=2048,
                                   algorithm="AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384")]).changed() == 1


def test_big_file_whose_size_proves_a_change_is_not_fetched(playbook, app_key):
    source = os.path.join(playbook.workdir, "big.bin")
    with open(source, "wb") as handle:
        handle.write(os.urandom(3 * 1024 * 1024))
    dest = dest_of(playbook, "big.enc")
    tasks = [copy_task(src=source, dest=dest, key_id="alias/app")]
    playbook.run_idempotent(tasks)
    with open(source, "ab") as handle:
        handle.write(os.urandom(1024 * 1024))
    run = playbook.run(tasks, "-vvv").assert_ok()
    assert run.changed() == 1
    assert "PUT " in run.stdout, "the -vvv output should show the connection's transfers"
    assert f"FETCH {dest}" not in run.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (dict(content="x", remote_src=True), "remote_src is not supported"),
        (dict(content="x", key_id="alias/missing"), "alias/missing"),
        (dict(src="/nonexistent/file"), "Could not find or access"),
        (dict(content="x", encryption_context={"aws-crypto-public-key": "x"}), "reserved"),
        (dict(content="x", algorithm="AES_128_GCM_IV12_TAG16"), "value of algorithm must be one of"),
        (dict(content="x", src="y"), "mutually exclusive"),
    ],
)
def test_bad_inputs_fail_clearly(playbook, app_key, args, message):
    task_args = dict(dest=dest_of(playbook), key_id="alias/app")
    task_args.update(args)
    run = playbook.run([copy_task(**task_args)])
    assert run.returncode != 0
    result = run.result("Copy")
    assert result["failed"] is True
    assert message in result["msg"], result["msg"]
    assert "Traceback" not in result["msg"]
    assert not os.path.exists(dest_of(playbook))


def test_no_plaintext_or_data_key_in_temp_dirs_or_verbose_output(playbook, kms, app_key, monkeypatch):
    dest = dest_of(playbook)
    marker = "PLAINTEXT-MARKER-7f3a9c"
    monkeypatch.setenv("ANSIBLE_KEEP_REMOTE_FILES", "1")
    run = playbook.run([copy_task(content=marker, dest=dest, key_id="alias/app", encryption_context={"a": "b"})],
                       "-vvv")
    run.assert_ok()
    # The data key, recovered from the envelope's wrapped key with KMS, must appear nowhere either.
    from aws_encryption_sdk.internal.formatting.deserialize import deserialize_header

    with open(dest, "rb") as handle:
        header = deserialize_header(handle)[0]
    (wrapped,) = header.encrypted_data_keys
    data_key = kms.decrypt(CiphertextBlob=wrapped.encrypted_data_key,
                           EncryptionContext=dict(header.encryption_context))["Plaintext"]
    needles = [marker.encode(), data_key, base64.b64encode(data_key), data_key.hex().encode()]
    output = (run.stdout + run.stderr).encode()
    for needle in needles:
        assert needle not in output
    scanned = 0
    for folder in ("controller-tmp", "remote-tmp", "ansible-home"):
        for root, _dirs, names in os.walk(os.path.join(playbook.workdir, folder)):
            for name in names:
                with open(os.path.join(root, name), "rb") as handle:
                    data = handle.read()
                scanned += 1
                for needle in needles:
                    assert needle not in data, os.path.join(root, name)
    assert scanned > 0, "ANSIBLE_KEEP_REMOTE_FILES should have left the module files to scan"
