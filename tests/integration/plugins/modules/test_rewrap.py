"""envelope.kms.rewrap through the real ansible-playbook against the local KMS endpoint.

moto 5.2.5 lets disabled keys generate and decrypt data keys, so a disabled key cannot fail a
rewrap here; the engine's translation of KMS's DisabledException is tested with a Stubber in
tests/unit/plugins/module_utils/test_envelope.py, and the module's handling of any engine failure
(file named, left untouched, other files still done) is tested here with tampered files.
"""

import os

import pytest
from aws_encryption_sdk.identifiers import Algorithm

from ansible_collections.envelope.kms.plugins.module_utils.envelope import inspect_header
from tests.harness import esdk

SECRET = "db_password=correct horse battery staple\n"
CONTEXT = {"app": "billing"}


def rewrap_task(name="Rewrap", **args):
    return {"name": name, "envelope.kms.rewrap": args, "register": "out"}


def copy_task(name, **args):
    return {"name": name, "envelope.kms.copy": args}


def host_dir(playbook):
    return os.path.join(playbook.workdir, "hosts", "localhost")


def read(path):
    with open(path, "rb") as handle:
        return handle.read()


def decrypt_with_library(kms_server, path):
    """(plaintext, encryption context) as the reference library alone reads the file (tests/harness/esdk.py)."""
    plaintext, header = esdk.decrypt(kms_server, path)
    context = {k: v for k, v in header.encryption_context.items() if not k.startswith("aws-crypto-")}
    return plaintext.decode(), context


@pytest.fixture
def keys(kms, app_key):
    """The key alias/app points at (old), and another one (new)."""
    return app_key, kms.create_key()["KeyMetadata"]


def test_rotation_scenario(playbook, kms, kms_server, keys):
    """copy under A -> alias re-pointed to B -> rewrap -> header shows B -> still decrypts -> re-run unchanged."""
    old, new = keys
    folder = host_dir(playbook)
    files = [os.path.join(folder, name) for name in ("one.env.enc", "two.env.enc")]
    playbook.run(
        [copy_task(f"Copy {i}", content=f"{SECRET}{i}\n", dest=path, key_id="alias/app", encryption_context=CONTEXT,
                   mode="0640") for i, path in enumerate(files)]
        + [{"name": "Rotate", "envelope.kms.alias": {"name": "app", "target_key_id": new["KeyId"]}}]
    ).assert_ok()
    assert all(inspect_header(path).key_arns == (old["Arn"],) for path in files)
    before = [read(path) for path in files]
    tasks = [rewrap_task(paths=[os.path.join(folder, "*.enc")], key_id="alias/app")]

    kms_server.start_recording()
    predicted = playbook.run(tasks, "--check", "--diff").assert_ok().result("Rewrap")
    assert dict(kms_server.kms_calls()) == {"DescribeKey": 1}, "check mode reads headers only"
    assert [read(path) for path in files] == before
    assert predicted["changed"] is True
    assert [r["changed"] for r in predicted["results"]] == [True, True]
    assert predicted["diff"][0]["before"] == f'encryption_context: {{"app": "billing"}}\nkey_arns: ["{old["Arn"]}"]\n'
    assert predicted["diff"][0]["after"] == f'encryption_context: {{"app": "billing"}}\nkey_arns: ["{new["Arn"]}"]\n'

    run = playbook.run(tasks, "--diff").assert_ok()
    assert "correct horse" not in run.stdout + run.stderr
    result = run.result("Rewrap")
    assert result["changed"] is True
    assert result["key_arns"] == [new["Arn"]]
    assert [r["path"] for r in result["results"]] == files
    for entry, path, i in zip(result["results"], files, range(2)):
        assert entry["changed"] is True and entry["failed"] is False
        assert entry["previous_key_arns"] == [old["Arn"]] and entry["key_arns"] == [new["Arn"]]
        assert entry["previous_encryption_context"] == CONTEXT and entry["encryption_context"] == CONTEXT
        assert entry["algorithm"] == "AES_256_GCM_HKDF_SHA512_COMMIT_KEY"
        assert inspect_header(path).key_arns == (new["Arn"],)
        assert oct(os.stat(path).st_mode & 0o777) == "0o640", "rewrap keeps the mode"
        assert decrypt_with_library(kms_server, path) == (f"{SECRET}{i}\n", CONTEXT)
    assert len(result["diff"]) == 2
    assert sorted(os.listdir(folder)) == ["one.env.enc", "two.env.enc"], "no temp file left behind"

    rewrapped = [read(path) for path in files]
    kms_server.start_recording()
    again = playbook.run(tasks).assert_ok()
    assert dict(kms_server.kms_calls()) == {"DescribeKey": 1}, "an unchanged re-run reads headers only"
    assert again.changed() == 0
    assert [r["changed"] for r in again.result("Rewrap")["results"]] == [False, False]
    assert [read(path) for path in files] == rewrapped


def test_context_replaced_only_where_required_pairs_match(playbook, kms, kms_server, keys):
    old = keys[0]
    folder = host_dir(playbook)
    billing, other = os.path.join(folder, "billing.enc"), os.path.join(folder, "other.enc")
    playbook.run([copy_task("Billing", content=SECRET, dest=billing, key_id="alias/app", encryption_context=CONTEXT),
                  copy_task("Other", content=SECRET, dest=other, key_id="alias/app",
                            encryption_context={"app": "other"})]).assert_ok()
    other_before = read(other)
    new_context = {"app": "billing", "env": "prod"}
    tasks = [rewrap_task(paths=[billing, other], key_id=old["Arn"], encryption_context=new_context,
                         required_encryption_context=CONTEXT)]
    run = playbook.run(tasks)
    assert run.returncode != 0
    result = run.result("Rewrap")
    assert result["failed"] is True and result["changed"] is True
    assert result["msg"].startswith("1 of 2 files could not be rewrapped (left as they were): ")
    assert f"cannot rewrap {other}: encryption context does not match the required pairs" in result["msg"]
    done, refused = result["results"]
    assert done["changed"] is True and done["encryption_context"] == new_context
    assert done["key_arns"] == done["previous_key_arns"] == [old["Arn"]]
    assert refused["failed"] is True and refused["changed"] is False
    assert refused["previous_encryption_context"] == {"app": "other"}
    assert read(other) == other_before
    assert decrypt_with_library(kms_server, billing) == (SECRET, new_context)

    # done files are not re-checked against the required pairs: the re-run is clean and unchanged
    again = playbook.run([rewrap_task(path=billing, key_id=old["Arn"], encryption_context=new_context,
                                      required_encryption_context=CONTEXT)]).assert_ok()
    assert again.changed() == 0


def test_failing_files_are_named_left_untouched_and_the_rest_done(playbook, kms, keys):
    old, new = keys
    folder = host_dir(playbook)
    names = ["good", "tampered", "trailing", "plain", "other-key"]
    paths = {name: os.path.join(folder, f"{name}.enc") for name in names}
    playbook.run([copy_task(name, content=SECRET * 50, dest=paths[name], key_id="alias/app", frame_length=1024)
                  for name in names if name != "plain"]).assert_ok()
    data = bytearray(read(paths["tampered"]))
    data[-40] ^= 0x01  # inside the last frame
    with open(paths["tampered"], "wb") as handle:
        handle.write(data)
    with open(paths["trailing"], "ab") as handle:
        handle.write(b"extra")
    with open(paths["plain"], "w") as handle:
        handle.write(SECRET)
    before = {name: read(path) for name, path in paths.items()}
    missing = os.path.join(folder, "missing.enc")
    run = playbook.run([
        dict(rewrap_task("Not allowed", path=paths["other-key"], key_id=new["Arn"], allowed_key_arns=[new["Arn"]]),
             ignore_errors=True),
        rewrap_task(paths=[paths[n] for n in names[:4]] + [missing], key_id=new["Arn"]),
    ])
    assert run.returncode != 0
    result = run.result("Rewrap")
    assert result["failed"] is True and result["changed"] is True
    by_path = {r["path"]: r for r in result["results"]}
    assert by_path[paths["good"]]["changed"] is True
    assert inspect_header(paths["good"]).key_arns == (new["Arn"],)
    expected = {
        paths["tampered"]: "corrupt",
        paths["trailing"]: "unexpected data after the end of the envelope",
        paths["plain"]: "not an AWS Encryption SDK message",
        missing: "no such file",
    }
    for path, message in expected.items():
        entry = by_path[path]
        assert entry["failed"] is True and entry["changed"] is False
        assert entry["msg"].startswith(f"cannot rewrap {path}: ") and message in entry["msg"], entry["msg"]
        assert entry["msg"] in result["msg"]
        assert "Traceback" not in entry["msg"]
    assert result["msg"].startswith("4 of 5 files could not be rewrapped")
    for name in ("tampered", "trailing", "plain"):
        assert read(paths[name]) == before[name], f"{name} must be left untouched"
    refused = run.result("Not allowed")
    assert refused["failed"] is True
    assert f"none of the allowed keys {new['Arn']}" in refused["msg"]
    assert read(paths["other-key"]) == before["other-key"]
    assert not [n for n in os.listdir(folder) if n.endswith(".tmp")], "no temp file left behind"


def test_library_file_several_keys_suite_and_frames_kept(playbook, kms, kms_server, keys):
    """A signed, 1 KiB-framed file written by the library's own stream API, reached through a
    symbolic link and a ** pattern, rewrapped under two keys; the link stays a link."""
    old, new = keys
    folder = os.path.join(host_dir(playbook), "deep", "er")
    os.makedirs(folder)
    target = os.path.join(folder, "lib.enc")
    esdk.encrypt_file(kms_server, old["Arn"], b"x" * 5000, target, {"app": "billing"}, frame_length=1024,
                      algorithm=Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384)
    link = os.path.join(host_dir(playbook), "link.enc")
    os.symlink(target, link)
    tasks = [rewrap_task("Link", path=link, key_id=["alias/app", new["Arn"]], backup=True),
             rewrap_task("Pattern", path=os.path.join(host_dir(playbook), "**", "*.enc"),
                         key_id=[new["Arn"], "alias/app"]),
             rewrap_task("Nothing", path=os.path.join(host_dir(playbook), "*.none"), key_id="alias/app")]
    first, second = playbook.run_idempotent(tasks)
    linked = first.result("Link")
    assert linked["changed"] is True
    assert linked["results"][0]["key_arns"] == sorted([old["Arn"], new["Arn"]])
    assert linked["results"][0]["algorithm"] == "AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384"
    backup = linked["results"][0]["backup_file"]
    assert inspect_header(backup).key_arns == (old["Arn"],)
    assert first.result("Pattern")["changed"] is False, "same file via the pattern: already done"
    assert [r["path"] for r in first.result("Pattern")["results"]] == [target]
    assert "matched no files" in " ".join(map(str, first.result("Nothing").get("warnings", [])))
    assert os.path.islink(link)
    facts = inspect_header(target)
    assert facts.key_arns == tuple(sorted([old["Arn"], new["Arn"]]))
    assert (facts.algorithm_id, facts.frame_length, facts.data_key_count) == (0x0578, 1024, 2)
    assert decrypt_with_library(kms_server, target) == ("x" * 5000, CONTEXT)
    assert second.result("Link")["results"][0]["changed"] is False


def test_bad_inputs_fail_clearly(playbook, kms, keys):
    path = os.path.join(host_dir(playbook), "x.enc")
    cases = {
        "unknown key": (dict(path=path, key_id="alias/missing"), "alias/missing"),
        "not an arn": (dict(path=path, key_id="alias/app", allowed_key_arns=["alias/app"]), "must be key ARNs"),
        "reserved": (dict(path=path, key_id="alias/app", encryption_context={"aws-crypto-x": "1"}), "reserved"),
    }
    run = playbook.run([dict(rewrap_task(label, **case[0]), ignore_errors=True)
                        for label, case in cases.items()])
    run.assert_failed_with({label: case[1] for label, case in cases.items()})


def test_a_hostile_file_fails_alone_and_every_reader_says_tampered(playbook, kms, kms_server, keys):
    """Three files under a tree with a symbolic link loop (certs/loop -> ..); the middle one's key
    ARN holds a byte that is not UTF-8. The ** walk ends; the first and last files are rewrapped and
    reported, the middle one fails with the tampering line, and the decrypt module and lookup read
    it the same way (it used to be a codec error everywhere, and abort the rewrap batch)."""
    old, new = keys
    folder = os.path.join(host_dir(playbook), "certs")
    os.makedirs(folder)
    os.symlink("..", os.path.join(folder, "loop"))
    paths = [os.path.join(folder, f"{name}.enc") for name in ("1-first", "2-middle", "3-last")]
    for path in paths:
        esdk.encrypt_file(kms_server, old["Arn"], SECRET, path, CONTEXT)
    data = bytearray(read(paths[1]))
    data[data.index(old["Arn"].encode()) + len(old["Arn"]) - 1] = 0xFF
    with open(paths[1], "wb") as handle:
        handle.write(bytes(data))
    hostile = bytes(data)
    lookup = "{{ lookup('envelope.kms.decrypt', '" + paths[1] + "') }}"
    run = playbook.run([
        dict(rewrap_task(paths=[os.path.join(host_dir(playbook), "**", "*.enc")], key_id=new["Arn"]),
             ignore_errors=True),
        {"name": "Decrypt", "envelope.kms.decrypt": {"src": paths[1], "dest": os.path.join(folder, "plain")},
         "ignore_errors": True},
        {"name": "Lookup", "ansible.builtin.set_fact": {"value": lookup}, "ignore_errors": True},
    ])
    assert run.returncode == 0, run.stderr  # every failure was ignored
    tampered = "the envelope header is tampered or corrupt (a wrapped data key's KMS key ARN is not printable UTF-8 text)"
    result = run.result("Rewrap")
    assert result["failed"] is True and result["changed"] is True
    assert [entry["path"] for entry in result["results"]] == paths, "each file once: the loop is not followed"
    first, middle, last = result["results"]
    for entry in (first, last):
        assert entry["changed"] is True and entry["failed"] is False and entry["key_arns"] == [new["Arn"]]
    assert middle["failed"] is True and middle["changed"] is False
    assert middle["msg"] == f"cannot rewrap {paths[1]}: {tampered}"
    assert result["msg"] == f"1 of 3 files could not be rewrapped (left as they were): {middle['msg']}"
    assert inspect_header(paths[0]).key_arns == inspect_header(paths[2]).key_arns == (new["Arn"],)
    assert decrypt_with_library(kms_server, paths[2]) == (SECRET, CONTEXT)
    assert read(paths[1]) == hostile
    run.assert_failed_with({"Decrypt": f"cannot decrypt {paths[1]}: {tampered}", "Lookup": tampered})
    for name in ("Rewrap", "Decrypt", "Lookup"):
        assert "codec" not in run.result(name)["msg"]
    assert not os.path.exists(os.path.join(folder, "plain"))
    assert sorted(os.listdir(folder)) == ["1-first.enc", "2-middle.enc", "3-last.enc", "loop"]
