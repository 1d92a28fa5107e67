"""envelope.kms.decrypt (module) through the real ansible-playbook against the local KMS endpoint."""

import base64
import os
import subprocess

from ansible_collections.envelope.kms.plugins.module_utils.envelope import inspect_header
from tests.harness import esdk

SECRET = "db_password=correct horse battery staple\n"
CONTEXT = {"app": "billing", "env": "prod"}
ACCOUNT = "123456789012"  # moto's default account


def host_path(playbook, name):
    return os.path.join(playbook.workdir, "hosts", "localhost", name)


def read(path, mode="r"):
    with open(path, mode) as handle:
        return handle.read()


def write(path, data):
    with open(path, "wb" if isinstance(data, bytes) else "w") as handle:
        handle.write(data)


def decrypt_task(name="Decrypt", register="out", **args):
    task = {"name": name, "envelope.kms.decrypt": args, "register": register}
    return task


def leftovers(directory):
    """Temp files the engine would leave beside a destination (.NAME.XXXX.tmp)."""
    return sorted(name for name in os.listdir(directory) if name.endswith(".tmp"))


def test_library_stream_file_decrypts_idempotently(playbook, kms_server, app_key):
    big = os.urandom(1000).hex() * 100  # 200 000 bytes: many 4 KiB frames of text
    src = esdk.encrypt_file(kms_server, app_key["Arn"], SECRET, host_path(playbook, "secret.enc"), CONTEXT)
    big_src = esdk.encrypt_file(kms_server, app_key["Arn"], big, host_path(playbook, "big.enc"), CONTEXT)
    dest = host_path(playbook, "secret.env")
    tasks = [
        decrypt_task("Strict", src=src, dest=dest, encryption_context={"app": "billing"},
                     allowed_key_arns=[app_key["Arn"]]),
        decrypt_task("Discovery", src=big_src, dest=host_path(playbook, "big.txt"), encryption_context=CONTEXT,
                     discovery_account_ids=[ACCOUNT]),
    ]
    first = playbook.run(tasks).assert_ok()
    result = first.result("Strict")
    assert result["changed"] is True
    assert result["dest"] == dest
    assert result["key_arns"] == [app_key["Arn"]]
    assert result["encryption_context"] == CONTEXT
    assert result["algorithm"] == "AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384"  # the library's default: signed
    assert (result["mode"], result["size"], result["state"]) == ("0600", len(SECRET), "file")
    assert "content" not in result
    assert read(dest) == SECRET
    assert oct(os.stat(dest).st_mode & 0o777) == "0o600"
    assert read(host_path(playbook, "big.txt")) == big
    assert first.result("Discovery")["changed"] is True
    assert SECRET.strip() not in first.stdout
    inode, mtime = os.stat(dest).st_ino, os.stat(dest).st_mtime_ns

    kms_server.start_recording()
    second = playbook.run(tasks).assert_ok()
    calls = kms_server.kms_calls()
    assert second.changed() == 0
    assert calls["Decrypt"] == 2, calls  # one per file, to compare; nothing else
    assert sum(calls.values()) == 2, calls
    assert (os.stat(dest).st_ino, os.stat(dest).st_mtime_ns) == (inode, mtime), "unchanged dest must not be rewritten"
    assert second.result("Strict")["key_arns"] == [app_key["Arn"]]
    assert leftovers(os.path.dirname(dest)) == []

    # A dest whose size proves a difference is replaced with a single Decrypt (no comparison first).
    write(host_path(playbook, "big.txt"), "stale\n")
    kms_server.start_recording()
    third = playbook.run(tasks[1:]).assert_ok()
    assert third.changed() == 1
    assert read(host_path(playbook, "big.txt")) == big
    assert kms_server.kms_calls()["Decrypt"] == 1

    # The same for a small file: the size is checked exactly against the envelope's own header
    # (a range of plausible headers could not tell a few bytes apart).
    write(dest, SECRET + "x")
    kms_server.start_recording()
    fourth = playbook.run(tasks[:1]).assert_ok()
    assert fourth.changed() == 1
    assert read(dest) == SECRET
    assert kms_server.kms_calls()["Decrypt"] == 1


def test_copy_round_trip_attributes_and_content(playbook, kms_server, app_key):
    source = os.path.join(playbook.workdir, "app.env")
    write(source, SECRET + "accent=\u00e9\n")
    envelope = host_path(playbook, "app.env.enc")
    dest = host_path(playbook, "app.env")
    binary = host_path(playbook, "binary.enc")
    blob = bytes(range(256)) * 3
    esdk.encrypt_file(kms_server, app_key["Arn"], blob, binary, {})
    user = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()
    group = subprocess.run(["id", "-gn"], capture_output=True, text=True, check=True).stdout.strip()
    tasks = [
        {"name": "Encrypt", "envelope.kms.copy": dict(src=source, dest=envelope, key_id="alias/app",
                                                      encryption_context={"app": "billing"})},
        decrypt_task(src=envelope, dest=dest, mode="0640", owner=user, group=group,
                     encryption_context={"app": "billing"}),
        # no allowed keys nor accounts: discovery with any key the credentials may use
        {**decrypt_task("Content", register="content", src=envelope, return_content=True), "no_log": True},
        {**decrypt_task("Binary", register="binary", src=binary, return_content=True, content_encoding="base64"),
         "no_log": True},
        {"name": "Check what was returned", "no_log": True, "ansible.builtin.assert": {"that": [
            "content.content == expected_text",
            "content.content_encoding == 'text'",
            "content.key_arns == [key_arn]",
            "content.changed == false",
            "binary.content == expected_base64",
            "binary.content_encoding == 'base64'",
        ]}},
    ]
    extra_vars = dict(expected_text=read(source), expected_base64=base64.b64encode(blob).decode(),
                      key_arn=app_key["Arn"])
    first = playbook.run(tasks, extra_vars=extra_vars).assert_ok()
    second = playbook.run(tasks[:2]).assert_ok()  # the re-run that matters: copy, then decrypt
    assert second.changed() == 0
    assert read(dest, "rb") == read(source, "rb")
    assert inspect_header(envelope).key_arns == (app_key["Arn"],)  # what copy wrote, decrypted above
    result = first.result("Decrypt")
    assert (result["changed"], result["mode"], result["owner"], result["group"]) == (True, "0640", user, group)
    assert oct(os.stat(dest).st_mode & 0o777) == "0o640"
    assert result["key_arns"] == [app_key["Arn"]]
    assert result["encryption_context"] == {"app": "billing"}
    assert second.result("Decrypt")["changed"] is False
    assert "content" not in first.result("Content"), "no_log must hide the result"
    assert "correct horse" not in first.stdout + second.stdout

    # Only the mode differs: it is managed without rewriting the file. New content replaces a file
    # atomically and keeps its mode.
    stale = host_path(playbook, "stale.env")
    write(stale, "stale\n")
    os.chmod(stale, 0o644)
    inode = os.stat(dest).st_ino
    run = playbook.run([
        decrypt_task("Mode", src=envelope, dest=dest, mode="u=rw,g=,o="),
        decrypt_task("Replace", src=envelope, dest=stale),
    ]).assert_ok()
    assert run.result("Mode")["changed"] is True
    assert oct(os.stat(dest).st_mode & 0o777) == "0o600"
    assert os.stat(dest).st_ino == inode
    assert run.result("Replace")["changed"] is True
    assert read(stale, "rb") == read(source, "rb")
    assert oct(os.stat(stale).st_mode & 0o777) == "0o644"
    assert leftovers(os.path.dirname(dest)) == []


def test_check_mode_and_diff(playbook, kms_server, app_key):
    src = esdk.encrypt_file(kms_server, app_key["Arn"], SECRET, host_path(playbook, "secret.enc"), CONTEXT)
    dest = host_path(playbook, "secret.env")
    other = host_path(playbook, "other.env")
    write(other, "old value\n")
    os.chmod(other, 0o600)
    kms_server.start_recording()
    run = playbook.run([
        decrypt_task("Absent", src=src, dest=dest, encryption_context={"app": "billing"}),
        decrypt_task("Different", src=src, dest=other, mode="0640"),
        {**decrypt_task("Content", register="content", src=src, dest=dest, return_content=True), "no_log": True},
        {"name": "Content in check mode", "no_log": True,
         "ansible.builtin.assert": {"that": ["content.content == expected", "content.changed"]}},
    ], "--check", "--diff", extra_vars={"expected": SECRET}).assert_ok()
    calls = kms_server.kms_calls()
    assert set(calls) == {"Decrypt"}, calls  # check mode verifies with Decrypt, never anything else
    assert not os.path.exists(dest)
    assert read(other) == "old value\n"
    assert oct(os.stat(other).st_mode & 0o777) == "0o600"
    assert leftovers(os.path.dirname(dest)) == []

    absent = run.result("Absent")
    assert absent["changed"] is True
    (diff,) = absent["diff"]
    assert diff["before"] == {"path": dest, "state": "absent"}
    assert diff["after"]["size"] == len(SECRET)
    assert diff["after"]["mode"] == "0600"
    assert diff["after"]["key_arns"] == [app_key["Arn"]]
    assert diff["after"]["encryption_context"] == CONTEXT
    assert diff["after"]["decrypted_from"] == src

    different = run.result("Different")
    assert different["changed"] is True
    (diff,) = different["diff"]
    assert (diff["before"]["size"], diff["before"]["mode"]) == (len("old value\n"), "0600")
    assert (diff["after"]["size"], diff["after"]["mode"]) == (len(SECRET), "0640")
    assert "correct horse" not in run.stdout and "old value" not in run.stdout

    # diff_plaintext shows both plaintexts when asked; then check mode of the same file is unchanged
    shown = playbook.run([
        decrypt_task(src=src, dest=other, diff_plaintext=True),
        {**decrypt_task("Unchanged", src=src, dest=other), "check_mode": True},
    ], "--diff").assert_ok()
    metadata, plaintext = shown.result("Decrypt")["diff"]
    assert (plaintext["before"], plaintext["after"]) == ("old value\n", SECRET)
    assert (metadata["before"]["size"], metadata["after"]["size"]) == (len("old value\n"), len(SECRET))
    assert read(other) == SECRET
    unchanged = shown.result("Unchanged")
    assert unchanged["changed"] is False
    assert "diff" not in unchanged


def make_broken_envelopes(kms_server, app_key, playbook):
    """A good envelope (several frames) and damaged copies of it, beside the destination."""
    good = esdk.encrypt_file(kms_server, app_key["Arn"], SECRET * 300, host_path(playbook, "good.enc"), CONTEXT)
    data = read(good, "rb")
    tampered = bytearray(data)
    tampered[len(data) // 2] ^= 0x01  # inside a frame
    files = {
        "tampered": bytes(tampered),
        "truncated": data[: len(data) - 100],
        "trailing": data + b"\x00junk",
        "foreign": b"just a plain text file\n",
    }
    for name, content in files.items():
        write(host_path(playbook, f"{name}.enc"), content)
    return good


def test_errors_leave_dest_untouched(playbook, kms, kms_server, app_key):
    good = make_broken_envelopes(kms_server, app_key, playbook)
    other_key = kms.create_key()["KeyMetadata"]
    dest = host_path(playbook, "secret.env")
    write(dest, "OLD CONTENT\n")
    # A python path entry that hides the library, as on a host without it.
    no_esdk = os.path.join(playbook.workdir, "no-esdk")
    os.makedirs(os.path.join(no_esdk, "aws_encryption_sdk"))
    write(os.path.join(no_esdk, "aws_encryption_sdk", "__init__.py"),
          "raise ImportError('No module named aws_encryption_sdk (hidden for this test)')\n")

    cases = {
        "tampered": (dict(src=host_path(playbook, "tampered.enc")), "tampered or corrupt"),
        "truncated": (dict(src=host_path(playbook, "truncated.enc")), "truncated or corrupt"),
        "trailing": (dict(src=host_path(playbook, "trailing.enc")), "unexpected data after the end of the envelope"),
        "foreign": (dict(src=host_path(playbook, "foreign.enc")), "not an AWS Encryption SDK message"),
        "wrong context": (dict(src=good, encryption_context={"app": "other", "tenant": "a"}),
                          "encryption context does not match the required pairs (missing tenant; "
                          "different value for app)"),
        "key not allowed": (dict(src=good, allowed_key_arns=[other_key["Arn"]]), "none of the allowed keys"),
        "account not allowed": (dict(src=good, discovery_account_ids=["210987654321"]),
                                "none in the allowed accounts 210987654321"),
        "content without no_log": (dict(src=good, return_content=True), "set no_log: true on the task"),
    }
    tasks = [{**decrypt_task(name, dest=dest, **args), "ignore_errors": True} for name, (args, msg) in cases.items()]
    tasks.append({**decrypt_task("missing library", src=good, dest=dest), "ignore_errors": True,
                  "environment": {"PYTHONPATH": no_esdk}})
    cases["missing library"] = (None, "Failed to import the required Python library (aws-encryption-sdk)")
    tasks.append({**decrypt_task("tampered in check mode", src=host_path(playbook, "tampered.enc"), dest=dest),
                  "ignore_errors": True, "check_mode": True})
    cases["tampered in check mode"] = (None, "tampered or corrupt")
    run = playbook.run(tasks)
    assert run.returncode == 0, run.stderr  # every failure was ignored

    for name, (args, message) in cases.items():
        result = run.result(name)
        assert result.get("failed") is True, (name, result)
        assert message in result["msg"], (name, result["msg"])
        assert "Traceback" not in result["msg"] and "\n" not in result["msg"], (name, result["msg"])
    assert read(dest) == "OLD CONTENT\n"
    assert leftovers(os.path.dirname(dest)) == []
    assert "correct horse" not in run.stdout
