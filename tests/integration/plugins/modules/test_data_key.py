"""envelope.kms.data_key through the real ansible-playbook against the local KMS endpoint.

moto 5.2.5 lets disabled keys generate and decrypt data keys, and answers Decrypt of a blob that is
not its own with AccessDeniedException (real KMS: InvalidCiphertextException). The module checks the
key state from DescribeKey itself (tested here against moto); KMS refusing a call anyway (a key
disabled in between, access denied, ReEncrypt refused) is tested with botocore's Stubber in
tests/unit/plugins/modules/test_data_key.py.
"""

import base64
import os


def data_key_task(name="Data key", **args):
    return {"name": name, "envelope.kms.data_key": args, "register": "out"}


def host_path(playbook, name):
    return os.path.join(playbook.workdir, "hosts", "localhost", name)


def read(path):
    with open(path, "rb") as handle:
        return handle.read()


def test_create_then_unchanged_and_blobs_decrypt(playbook, kms, kms_server, app_key):
    raw, b64, sized = (host_path(playbook, name) for name in ("key.bin", "key.b64", "key64"))
    tasks = [
        data_key_task("Raw", dest=raw, key_id="alias/app", encryption_context={"app": "billing", "n": 1}),
        data_key_task("Base64", dest=b64, key_id=app_key["Arn"], key_spec="AES_128", encoding="base64", mode="0640"),
        data_key_task("Sized", dest=sized, key_id=app_key["KeyId"], number_of_bytes=64),
    ]
    first = playbook.run(tasks).assert_ok()
    blobs = [read(path) for path in (raw, b64, sized)]
    kms_server.start_recording()
    second = playbook.run(tasks).assert_ok()
    calls = kms_server.kms_calls()
    assert second.changed() == 0
    assert dict(calls) == {"DescribeKey": 3, "Decrypt": 3}, "a re-run checks each blob with one Decrypt only"
    assert [read(path) for path in (raw, b64, sized)] == blobs

    result = first.result("Raw")
    assert result["changed"] is True and result["operation"] == "generate"
    assert (result["key_arn"], result["key_id"]) == (app_key["Arn"], app_key["KeyId"])
    assert (result["number_of_bytes"], result["key_spec"], result["encoding"]) == (32, "AES_256", "raw")
    assert result["encryption_context"] == {"app": "billing", "n": "1"}
    assert "plaintext" not in result
    assert base64.b64decode(result["ciphertext_blob"]) == blobs[0]
    assert result["mode"] == "0600" and oct(os.stat(raw).st_mode & 0o777) == "0o600"
    assert second.result("Raw")["operation"] == "none"
    assert second.result("Raw")["ciphertext_blob"] == result["ciphertext_blob"]

    decrypted = kms.decrypt(CiphertextBlob=blobs[0], EncryptionContext={"app": "billing", "n": "1"})
    assert decrypted["KeyId"] == app_key["Arn"] and len(decrypted["Plaintext"]) == 32
    assert blobs[1].endswith(b"\n") and b"\n" not in blobs[1][:-1]
    decrypted = kms.decrypt(CiphertextBlob=base64.b64decode(blobs[1]))
    assert len(decrypted["Plaintext"]) == 16
    assert oct(os.stat(b64).st_mode & 0o777) == "0o640"
    assert first.result("Base64")["key_spec"] == "AES_128"
    assert len(kms.decrypt(CiphertextBlob=blobs[2])["Plaintext"]) == 64
    assert first.result("Sized")["key_spec"] is None and first.result("Sized")["number_of_bytes"] == 64


def test_check_mode_generates_nothing(playbook, kms, kms_server, app_key):
    dest = host_path(playbook, "key.bin")
    kms_server.start_recording()
    run = playbook.run([data_key_task(dest=dest, key_id="alias/app")], "--check", "--diff").assert_ok()
    assert dict(kms_server.kms_calls()) == {"DescribeKey": 1}
    assert not os.path.exists(dest)
    result = run.result("Data key")
    assert result["changed"] is True and result["operation"] == "generate" and result["ciphertext_blob"] is None
    assert result["diff"]["before"] == {}
    assert result["diff"]["after"]["data_key"] == "new"
    assert result["diff"]["after"]["key_arn"] == app_key["Arn"]


def test_alias_repointed_rewraps_the_same_data_key_and_encoding_is_converted(playbook, kms, kms_server, app_key):
    dest, other = host_path(playbook, "key.bin"), host_path(playbook, "other.bin")
    context = {"app": "billing"}
    playbook.run([data_key_task("A", dest=dest, key_id="alias/app", encryption_context=context),
                  data_key_task("B", dest=other, key_id="alias/app")]).assert_ok()
    old_blob = read(dest)
    data_key = kms.decrypt(CiphertextBlob=old_blob, EncryptionContext=context)["Plaintext"]
    new_key = kms.create_key()["KeyMetadata"]
    kms.update_alias(AliasName="alias/app", TargetKeyId=new_key["KeyId"])
    tasks = [data_key_task("A", dest=dest, key_id="alias/app", encryption_context=context, backup=True,
                           allowed_key_arns=[app_key["Arn"]]),
             data_key_task("B", dest=other, key_id=app_key["Arn"], encoding="base64")]

    kms_server.start_recording()
    predicted = playbook.run(tasks, "--check", "--diff").assert_ok()
    assert "ReEncrypt" not in kms_server.kms_calls()
    assert predicted.result("A")["operation"] == "reencrypt" and predicted.result("A")["changed"] is True
    assert predicted.result("A")["diff"]["before"]["key_arn"] == app_key["Arn"]
    assert predicted.result("A")["diff"]["after"]["key_arn"] == new_key["Arn"]
    assert predicted.result("A")["diff"]["after"]["data_key"] == "existing"
    assert read(dest) == old_blob

    first, second = playbook.run_idempotent(tasks)
    rewrapped = first.result("A")
    assert rewrapped["changed"] is True and rewrapped["operation"] == "reencrypt"
    assert rewrapped["key_arn"] == new_key["Arn"]
    after = kms.decrypt(CiphertextBlob=read(dest), EncryptionContext=context)
    assert after["KeyId"] == new_key["Arn"]
    assert after["Plaintext"] == data_key, "the data key itself must not change"
    assert read(rewrapped["backup_file"]) == old_blob
    converted = first.result("B")
    assert converted["operation"] == "reencode"
    assert base64.b64decode(read(other)) == base64.b64decode(converted["ciphertext_blob"])
    assert second.result("A")["operation"] == "none" and second.result("B")["operation"] == "none"


def test_a_blob_that_cannot_be_kept_fails_unless_force(playbook, kms, app_key):
    dest, text = host_path(playbook, "key.bin"), host_path(playbook, "notes.txt")
    context = {"app": "billing"}
    playbook.run([data_key_task(dest=dest, key_id="alias/app", encryption_context=context)]).assert_ok()
    with open(text, "w") as handle:
        handle.write("not a data key\n")
    blob = read(dest)
    cases = {
        "other context": (dict(dest=dest, encryption_context={"app": "other"}),
                          "KMS cannot decrypt it with this encryption context"),
        "other length": (dict(dest=dest, encryption_context=context, key_spec="AES_128"),
                         "it holds a 32-byte data key, 16 bytes were asked for"),
        # real KMS answers InvalidCiphertextException ("cannot be kept"), moto sometimes AccessDenied ("Cannot check")
        "not a blob": (dict(dest=text), text),
    }
    tasks = [dict(data_key_task(label, key_id="alias/app", **case[0]), ignore_errors=True) for label, case in cases.items()]
    tasks.append(data_key_task("Force", dest=dest, key_id="alias/app", encryption_context={"app": "other"},
                               force=True, backup=True))
    run = playbook.run(tasks)
    for label, case in cases.items():
        result, message = run.result(label), case[1]
        assert result.get("failed") is True, (label, result)
        assert message in result["msg"], (label, result["msg"])
        assert "Traceback" not in result["msg"]
    assert all("left as it is" in run.result(label)["msg"] for label in cases)
    assert "force=true" in run.result("other length")["msg"]
    assert read(text) == b"not a data key\n"
    forced = run.result("Force")
    assert forced["changed"] is True and forced["operation"] == "generate"
    assert read(forced["backup_file"]) == blob
    assert kms.decrypt(CiphertextBlob=read(dest), EncryptionContext={"app": "other"})["KeyId"] == app_key["Arn"]
    # force always makes a new data key
    again = playbook.run([data_key_task(dest=dest, key_id="alias/app", encryption_context={"app": "other"},
                                        force=True)]).assert_ok()
    assert again.changed() == 1 and read(dest) != base64.b64decode(forced["ciphertext_blob"])


def test_plaintext_only_when_asked_and_with_no_log(playbook, kms, app_key):
    dest, quiet, dump = (host_path(playbook, name) for name in ("asked.bin", "quiet.bin", "plaintext.b64"))
    run = playbook.run([
        data_key_task("Quiet", dest=quiet, key_id="alias/app"),
        dict(data_key_task("Refused", dest=dest, key_id="alias/app", return_plaintext=True), ignore_errors=True),
        dict(data_key_task("Asked", dest=dest, key_id="alias/app", return_plaintext=True), no_log=True),
        {"name": "Use it", "ansible.builtin.copy": {"content": "{{ out.plaintext }}", "dest": dump, "mode": "0600"},
         "no_log": True},
    ], "-vvv")
    run.assert_ok()
    assert "set no_log: true on the task" in run.result("Refused")["msg"]
    plaintext = base64.b64decode(read(dump))
    assert plaintext == kms.decrypt(CiphertextBlob=read(dest))["Plaintext"]
    quiet_key = kms.decrypt(CiphertextBlob=read(quiet))["Plaintext"]
    output = (run.stdout + run.stderr).encode()
    for key in (plaintext, quiet_key):
        for needle in (key, base64.b64encode(key), key.hex().encode()):
            assert needle not in output
    for root, folders, names in os.walk(playbook.workdir):
        for name in names:
            path = os.path.join(root, name)
            if path == dump:
                continue
            data = read(path)
            for key in (plaintext, quiet_key):
                assert key not in data and base64.b64encode(key) not in data, path


def test_keys_that_cannot_make_data_keys_fail_clearly(playbook, kms, app_key):
    """(Inputs refused before any KMS call are tested in the unit tests, through main().)"""
    disabled = kms.create_key()["KeyMetadata"]
    kms.disable_key(KeyId=disabled["KeyId"])
    rsa = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    dest = host_path(playbook, "key.bin")
    cases = {
        "unknown key": (dict(dest=dest, key_id="alias/missing"), "KMS key alias/missing does not exist"),
        "disabled key": (dict(dest=dest, key_id=disabled["KeyId"]), "is Disabled: it cannot generate"),
        "rsa key": (dict(dest=dest, key_id=rsa["KeyId"]), "data keys need a symmetric encryption key"),
    }
    run = playbook.run([dict(data_key_task(label, **case[0]), ignore_errors=True)
                        for label, case in cases.items()])
    run.assert_failed_with({label: case[1] for label, case in cases.items()})
    assert not os.path.exists(dest)


def test_a_planted_blob_under_a_foreign_key_is_refused_and_links_are_not_followed(playbook, kms, kms_server, app_key):
    """Issue 11: a data-key file planted under another key (whose data key the planter knows) is never
    rewrapped and adopted; a link at dest is neither read nor written through unless follow=true."""
    foreign = kms.create_key()["KeyMetadata"]
    planted_response = kms.generate_data_key(KeyId=foreign["Arn"], KeySpec="AES_256")
    planted = host_path(playbook, "planted.bin")
    with open(planted, "wb") as handle:
        handle.write(planted_response["CiphertextBlob"])
    target = host_path(playbook, "target.bin")
    with open(target, "wb") as handle:
        handle.write(b"not a data key, someone else's file")
    os.chmod(target, 0o644)
    link = host_path(playbook, "link.bin")
    os.symlink(target, link)
    kms_server.start_recording()
    run = playbook.run([
        {**data_key_task("Planted", dest=planted, key_id="alias/app"), "ignore_errors": True},
        {**data_key_task("Link", dest=link, key_id="alias/app"), "ignore_errors": True},
        {**data_key_task("Bad mode", dest=host_path(playbook, "new.bin"), key_id="alias/app", mode="0999"),
         "ignore_errors": True},
    ])
    run.assert_failed_with({
        "Planted": "which is neither key_id nor one of allowed_key_arns",
        "Link": "is a symbolic link: set follow=true",
        "Bad mode": "mode '0999' is not an octal number",
    })
    calls = kms_server.kms_calls()
    assert "ReEncrypt" not in calls and "GenerateDataKeyWithoutPlaintext" not in calls, calls
    with open(planted, "rb") as handle:
        assert handle.read() == planted_response["CiphertextBlob"], "a refused file is left as it is"
    assert os.path.islink(link) and not os.path.exists(host_path(playbook, "new.bin"))

    replaced = playbook.run([data_key_task("Link", dest=link, key_id="alias/app", force=True)]).assert_ok()
    assert replaced.result("Link")["operation"] == "generate"
    assert not os.path.islink(link) and oct(os.stat(link).st_mode & 0o777) == "0o600"
    with open(target, "rb") as handle:
        assert handle.read() == b"not a data key, someone else's file", "force replaces the link, not its target"
    with open(link, "rb") as handle:
        assert kms.decrypt(CiphertextBlob=handle.read())["KeyId"] == app_key["Arn"]
