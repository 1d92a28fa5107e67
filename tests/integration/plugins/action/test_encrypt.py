"""envelope.kms.encrypt through the real ansible-playbook against the local KMS endpoint.

The action writes on the controller: the "host" is localhost over the local connection, and the
-vvv output proves that the connection is never used (no module run, no transfer).
"""

import hashlib
import os
import subprocess
import sys

import pytest

from ansible_collections.envelope.kms.plugins.module_utils.envelope import inspect_header
from tests.harness import esdk

SECRET = "db_password=correct horse battery staple\n"
OTHER_SECRET = "api_token=4f8a2c7e-91d3-4b0f-a6c5-2e8d7f1b3a90\n"
CONTEXT = {"app": "billing"}


def encrypt_task(name="Encrypt", **args):
    return {"name": name, "envelope.kms.encrypt": args, "register": "out"}


def out_path(playbook, name="secret.enc"):
    folder = os.path.join(playbook.workdir, "cache")
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, name)


def write(path, text):
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


def read(path):
    with open(path, "rb") as handle:
        return handle.read()


def mode_of(path):
    return f"{os.stat(path).st_mode & 0o777:04o}"


def assert_decrypts(kms_server, path, plaintext, context):
    decrypted, header = esdk.decrypt(kms_server, path)
    assert decrypted == plaintext.encode()
    assert {key: value for key, value in header.encryption_context.items() if not key.startswith("aws-crypto-")} \
        == context


def assert_refused(run, message):
    assert run.returncode != 0
    result = run.result("Encrypt")
    assert result["failed"] is True
    assert message in result["msg"], result["msg"]
    assert "\n" not in result["msg"].strip() and "Traceback" not in result["msg"]


def test_writes_on_the_controller_then_rerun_costs_one_decrypt_per_file(playbook, kms_server, app_key):
    os.makedirs(os.path.join(playbook.workdir, "files"))
    write(os.path.join(playbook.workdir, "files", "api.env"), OTHER_SECRET)  # found like copy finds src
    content_dest, src_dest = out_path(playbook, "db.enc"), out_path(playbook, "api.enc")
    task = encrypt_task(
        src="{{ item.src | default(omit) }}", content="{{ item.content | default(omit) }}", dest="{{ item.dest }}",
        key_id="alias/app", encryption_context=CONTEXT)
    task["loop"] = [{"content": SECRET, "dest": content_dest}, {"src": "api.env", "dest": src_dest}]
    task["loop_control"] = {"label": "{{ item.dest }}"}

    kms_server.start_recording()
    first = playbook.run([task], "-vvv").assert_ok()
    assert kms_server.kms_calls()["GenerateDataKey"] == 2
    for marker in ("ESTABLISH LOCAL CONNECTION", "EXEC ", "PUT "):
        assert marker not in first.stdout, f"the connection was used: {marker!r}"
    results = first.result("Encrypt")["results"]
    assert [result["changed"] for result in results] == [True, True]
    for result, path, plaintext in zip(results, (content_dest, src_dest), (SECRET, OTHER_SECRET)):
        assert result["dest"] == path
        assert result["key_arns"] == [app_key["Arn"]]
        assert result["encryption_context"] == CONTEXT
        assert (result["algorithm"], result["frame_length"]) == ("AES_256_GCM_HKDF_SHA512_COMMIT_KEY", 262144)
        assert result["checksum"] == hashlib.sha1(read(path)).hexdigest()
        assert result["size"] == os.path.getsize(path)
        assert result["mode"] == mode_of(path) == "0600"
        assert plaintext.encode() not in read(path)
        assert_decrypts(kms_server, path, plaintext, CONTEXT)
        assert inspect_header(path).key_arns == (app_key["Arn"],)
    assert SECRET not in first.stdout and OTHER_SECRET not in first.stdout
    before = {path: read(path) for path in (content_dest, src_dest)}

    kms_server.start_recording()
    second = playbook.run([task]).assert_ok()
    calls = kms_server.kms_calls()
    assert second.changed() == 0
    assert calls["GenerateDataKey"] == 0
    assert calls["Decrypt"] == 2, "one Decrypt per file"
    assert [result["checksum"] for result in second.result("Encrypt")["results"]] == \
        [result["checksum"] for result in results]
    assert {path: read(path) for path in before} == before, "an unchanged re-run must not rewrite the files"


def test_mode_only_change_keeps_the_ciphertext(playbook, kms_server, app_key):
    dest = out_path(playbook)
    base = dict(content=SECRET, dest=dest, key_id="alias/app")
    playbook.run([encrypt_task(**base)]).assert_ok()
    ciphertext = read(dest)

    kms_server.start_recording()
    changed = playbook.run([encrypt_task(**base, mode="0640")]).assert_ok()
    assert changed.result("Encrypt")["changed"] is True
    assert kms_server.kms_calls()["GenerateDataKey"] == 0
    assert (mode_of(dest), read(dest)) == ("0640", ciphertext)
    # an int mode (YAML 0600 is the int 384) is taken as the permission bits
    playbook.run_idempotent([encrypt_task(**base, mode=0o600)])
    assert (mode_of(dest), read(dest)) == ("0600", ciphertext)


def test_changes_that_re_encrypt(playbook, kms, kms_server, app_key):
    dest = out_path(playbook)
    base = dict(content=SECRET, dest=dest, key_id="app", encryption_context=CONTEXT)
    playbook.run([encrypt_task(**base)]).assert_ok()

    kms_server.start_recording()
    changed_context = playbook.run([encrypt_task(**{**base, "encryption_context": {"app": "other"}})]).assert_ok()
    assert changed_context.changed() == 1
    assert kms_server.kms_calls()["GenerateDataKey"] == 1
    assert_decrypts(kms_server, dest, SECRET, {"app": "other"})

    changed_content = playbook.run([encrypt_task(**{**base, "content": OTHER_SECRET})]).assert_ok()
    assert changed_content.changed() == 1
    assert_decrypts(kms_server, dest, OTHER_SECRET, CONTEXT)

    # manual rotation: the alias now points at a new key, so the file is re-encrypted under it
    new_key = kms.create_key()["KeyMetadata"]
    kms.update_alias(AliasName="alias/app", TargetKeyId=new_key["KeyId"])
    first = playbook.run_idempotent([encrypt_task(**{**base, "content": OTHER_SECRET})])[0]
    assert first.result("Encrypt")["key_arns"] == [new_key["Arn"]]
    assert inspect_header(dest).key_arns == (new_key["Arn"],)


def test_check_mode_writes_nothing_and_generates_no_data_key(playbook, kms_server, app_key):
    dest = out_path(playbook)
    base = dict(content=SECRET, dest=dest, key_id="alias/app")
    kms_server.start_recording()
    predicted = playbook.run([encrypt_task(**base)], "--check").assert_ok().result("Encrypt")
    assert predicted["changed"] is True and "checksum" not in predicted
    assert not os.path.exists(dest)
    assert not os.listdir(os.path.dirname(dest)), "no temp file either"
    assert kms_server.kms_calls()["GenerateDataKey"] == 0

    playbook.run([encrypt_task(**base)]).assert_ok()
    ciphertext = read(dest)
    assert playbook.run([encrypt_task(**base)], "--check").assert_ok().changed() == 0
    kms_server.start_recording()
    for change in ({"content": OTHER_SECRET}, {"mode": "0644"}, {"encryption_context": {"a": "b"}}):
        assert playbook.run([encrypt_task(**{**base, **change})], "--check").assert_ok().changed() == 1, change
    assert kms_server.kms_calls()["GenerateDataKey"] == 0
    assert (read(dest), mode_of(dest)) == (ciphertext, "0600")


def test_vault_encrypted_source(playbook, kms_server, app_key):
    vault_pass = write(os.path.join(playbook.workdir, "vault-pass"), "vault-password\n")
    source = write(os.path.join(playbook.workdir, "vaulted.env"), SECRET)
    ansible_vault = os.path.join(os.path.dirname(sys.executable), "ansible-vault")
    subprocess.run([ansible_vault, "encrypt", "--vault-password-file", vault_pass, source], check=True,
                   capture_output=True)
    dest = out_path(playbook)
    first = playbook.run_idempotent([encrypt_task(src=source, dest=dest, key_id="alias/app")],
                                    "--vault-password-file", vault_pass)[0]
    assert_decrypts(kms_server, dest, SECRET, {})
    assert SECRET not in first.stdout
    assert SECRET.encode() not in b"".join(
        read(os.path.join(root, name)) for root, _dirs, names in os.walk(playbook.workdir) for name in names
        if os.path.join(root, name) != source), "the vault plaintext must never reach disk"


def test_force_false_leaves_an_existing_dest_alone(playbook, kms_server, app_key):
    dest = out_path(playbook)
    written = playbook.run([encrypt_task(content=SECRET, dest=dest, key_id="alias/app", force=False)]).assert_ok()
    assert written.changed() == 1
    ciphertext = read(dest)

    kms_server.start_recording()
    kept = playbook.run([encrypt_task(content=OTHER_SECRET, dest=dest, key_id="alias/app", mode="0644",
                                      force=False)]).assert_ok()
    assert kept.changed() == 0
    assert sum(kms_server.kms_calls().values()) == 0
    assert kept.result("Encrypt")["checksum"] == hashlib.sha1(ciphertext).hexdigest()
    assert (read(dest), mode_of(dest)) == (ciphertext, "0600")


def test_src_and_dest_the_same_file_is_refused(playbook, kms_server, app_key):
    source = write(os.path.join(playbook.workdir, "plain.env"), SECRET)
    link = os.path.join(playbook.workdir, "link.env")
    os.symlink(source, link)
    kms_server.start_recording()
    for dest in (source, link, playbook.workdir + "/"):
        run = playbook.run([encrypt_task(src=source, dest=dest, key_id="alias/app")])
        assert_refused(run, "src and dest are the same file")
    assert sum(kms_server.kms_calls().values()) == 0
    assert read(source) == SECRET.encode() and os.path.islink(link)


@pytest.mark.parametrize(
    "args, message",
    [
        (dict(dest="{{ playbook_dir }}"), "is a directory"),
        (dict(dest="{{ playbook_dir }}/missing/secret.enc"), "does not exist"),
        (dict(dest="{{ playbook_dir }}/"), "dest must be a file path when content is given"),
        (dict(mode="u=rw"), "mode must be an octal string"),
        (dict(encryption_context={"aws-crypto-public-key": "x"}), "reserved"),
        (dict(src="secret.env"), "mutually exclusive"),
        (dict(content=None, src="/nonexistent/file"), "Could not find or access"),
    ],
)
def test_bad_inputs_fail_before_any_kms_call(playbook, kms_server, app_key, args, message):
    task_args = dict(content=SECRET, dest=out_path(playbook), key_id="alias/app")
    task_args.update(args)
    task_args = {name: value for name, value in task_args.items() if value is not None}
    kms_server.start_recording()
    assert_refused(playbook.run([encrypt_task(**task_args)]), message)
    assert sum(kms_server.kms_calls().values()) == 0
    assert os.listdir(os.path.join(playbook.workdir, "cache")) == []


def test_diff_and_verbose_output_never_show_the_secret(playbook, app_key):
    dest = out_path(playbook)
    first = playbook.run([encrypt_task(content=SECRET, dest=dest, key_id="alias/app")], "-v", "--diff").assert_ok()
    diff = first.result("Encrypt")["diff"]
    assert diff["before"] == ""
    assert f"plaintext_size: {len(SECRET)}\n" in diff["after"]

    changed = playbook.run([encrypt_task(content=OTHER_SECRET, dest=dest, key_id="alias/app", mode="0640",
                                         encryption_context={"env": "prod"})], "-v", "--diff").assert_ok()
    diff = changed.result("Encrypt")["diff"]
    assert 'encryption_context: {}\n' in diff["before"] and 'mode: "0600"\n' in diff["before"]
    assert 'encryption_context: {"env": "prod"}\n' in diff["after"] and 'mode: "0640"\n' in diff["after"]
    assert f'key_arns: ["{app_key["Arn"]}"]\n' in diff["after"]
    assert f"\nsize: {os.path.getsize(dest)}\n" in diff["after"]
    for run in (first, changed):
        output = run.stdout + run.stderr
        assert SECRET not in output and OTHER_SECRET not in output
        assert "correct horse" not in output and "4f8a2c7e" not in output


def test_module_defaults_group_and_relative_dest(playbook, kms_server, app_key):
    """AWS options come from group/envelope.kms.kms; a relative dest is relative to the playbook."""
    play_dir = os.path.join(playbook.workdir, "play")
    os.makedirs(os.path.join(play_dir, "out"))
    playbook.environment = dict(playbook.environment, AWS_ENDPOINT_URL="http://127.0.0.1:9")  # nothing listens
    site = playbook.write(
        f"""
        - hosts: targets
          gather_facts: false
          module_defaults:
            group/envelope.kms.kms:
              endpoint_url: {kms_server.url}
          tasks:
            - name: Encrypt
              envelope.kms.encrypt:
                content: "{SECRET.strip()}"
                dest: out/secret.enc
                key_id: alias/app
        """,
        name="play/site.yml",
    )
    result = playbook.run(site).assert_ok().result("Encrypt")
    assert result["dest"] == os.path.join(play_dir, "out", "secret.enc")
    assert_decrypts(kms_server, result["dest"], SECRET.strip(), {})
