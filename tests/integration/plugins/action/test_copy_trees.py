"""envelope.kms.copy: a directory src in one task, a dest that is a directory, and re-runs that do
not hand over to ansible.builtin.copy (attributes applied as copy applies them when checksums
match; a big envelope proved the same from its sha1 on the host, without reading it back)."""

import os
import stat

from ansible_collections.envelope.kms.plugins.module_utils.envelope import inspect_header
from tests.harness import esdk

CONTEXT = {"app": "billing"}


def copy_task(name="Copy", **args):
    return {"name": name, "envelope.kms.copy": dict({"key_id": "alias/app", "encryption_context": CONTEXT}, **args),
            "register": "out"}


def host(playbook, *parts):
    return os.path.join(playbook.workdir, "hosts", "localhost", *parts)


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)
    return path


def make_tree(root):
    """conf/ with two files, a subfolder with one, an empty subfolder and a symlink to a file."""
    write(os.path.join(root, "conf", "app.env"), b"password=one\n")
    write(os.path.join(root, "conf", "db.env"), b"password=two\n")
    write(os.path.join(root, "conf", "sub", "deep.env"), b"password=three\n")
    os.makedirs(os.path.join(root, "conf", "empty"))
    os.symlink(os.path.join(root, "conf", "app.env"), os.path.join(root, "conf", "alias.env"))
    return os.path.join(root, "conf")


def snapshot(folder):
    return {os.path.relpath(os.path.join(base, name), folder): os.stat(os.path.join(base, name)).st_mtime_ns
            for base, _dirs, files in os.walk(folder) for name in files}


def plaintext_of(kms_server, path):
    data, header = esdk.decrypt(kms_server, path)
    assert dict(header.encryption_context).items() >= CONTEXT.items()
    return data


def test_a_directory_src_is_encrypted_file_by_file_with_one_data_key_per_changed_file(playbook, kms_server, app_key):
    src = make_tree(playbook.workdir)
    dest = host(playbook, "etc")
    tasks = [copy_task(src=src, dest=dest, mode="0600", directory_mode="0750")]

    kms_server.start_recording()
    predicted = playbook.run(tasks, "--check", "--diff").assert_ok()
    assert predicted.changed() == 1 and not os.path.exists(dest)
    assert "GenerateDataKey" not in kms_server.kms_calls()

    kms_server.start_recording()
    first = playbook.run(tasks).assert_ok()
    calls = kms_server.kms_calls()
    assert first.changed() == 1
    assert calls["GenerateDataKey"] == 4 and calls.get("DescribeKey", 0) <= 1, calls
    # no trailing '/': the folder itself goes below dest, as for ansible.builtin.copy
    files = {"conf/app.env": b"password=one\n", "conf/db.env": b"password=two\n",
             "conf/sub/deep.env": b"password=three\n", "conf/alias.env": b"password=one\n"}
    assert set(snapshot(dest)) == set(files)
    for relative, plaintext in files.items():
        path = os.path.join(dest, relative)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and not os.path.islink(path)
        assert plaintext_of(kms_server, path) == plaintext
        assert inspect_header(path).key_arns == (app_key.arn,)
    for folder in ("conf", "conf/sub", "conf/empty"):
        assert stat.S_IMODE(os.stat(os.path.join(dest, folder)).st_mode) == 0o750, folder
    result = first.result("Copy")
    assert sorted(item["dest"] for item in result["files"]) == sorted(os.path.join(dest, name) for name in files)
    assert all(item["encrypted"] and item["changed"] for item in result["files"])

    before = snapshot(dest)
    kms_server.start_recording()
    again = playbook.run(tasks).assert_ok()
    calls = kms_server.kms_calls()
    assert again.changed() == 0, again.result("Copy")
    assert "GenerateDataKey" not in calls and calls["Decrypt"] == 4, calls
    assert snapshot(dest) == before

    # one file changes: one data key, only that file rewritten
    write(os.path.join(src, "db.env"), b"password=changed\n")
    kms_server.start_recording()
    changed = playbook.run(tasks).assert_ok()
    assert changed.changed() == 1 and kms_server.kms_calls()["GenerateDataKey"] == 1
    after = snapshot(dest)
    assert [name for name in after if after[name] != before[name]] == ["conf/db.env"]
    assert plaintext_of(kms_server, os.path.join(dest, "conf", "db.env")) == b"password=changed\n"
    flags = {os.path.basename(item["dest"]): item["encrypted"] for item in changed.result("Copy")["files"]}
    assert flags == {"app.env": False, "db.env": True, "deep.env": False, "alias.env": False}

    # a FIFO where one envelope should be: refused before any data key, the other files untouched
    fifo = os.path.join(dest, "conf", "sub", "deep.env")
    os.unlink(fifo)
    os.mkfifo(fifo)
    before = snapshot(dest)
    kms_server.start_recording()
    refused = playbook.run([dict(tasks[0], ignore_errors=True)])
    assert refused.result("Copy")["msg"] == f"dest {fifo} is a FIFO, not a regular file"
    assert "GenerateDataKey" not in kms_server.kms_calls() and snapshot(dest) == before


def test_a_trailing_slash_copies_the_contents(playbook, kms_server, app_key):
    src = make_tree(playbook.workdir)
    dest = host(playbook, "contents")
    playbook.run([copy_task(src=src + "/", dest=dest + "/")]).assert_ok()
    assert sorted(snapshot(dest)) == ["alias.env", "app.env", "db.env", "sub/deep.env"]
    assert os.path.isdir(os.path.join(dest, "empty"))
    assert plaintext_of(kms_server, os.path.join(dest, "sub", "deep.env")) == b"password=three\n"
    assert playbook.run([copy_task(src=src + "/", dest=dest + "/")]).assert_ok().changed() == 0


def test_a_dest_that_is_a_directory_means_the_file_of_src_in_it(playbook, kms_server, app_key):
    src = write(os.path.join(playbook.workdir, "files", "app.env"), b"password=one\n")
    dest = host(playbook, "etc")
    os.makedirs(dest)
    tasks = [copy_task(src=src, dest=dest, mode="0640")]
    first = playbook.run(tasks).assert_ok()
    target = os.path.join(dest, "app.env")
    assert first.changed() == 1 and first.result("Copy")["dest"] == target
    assert plaintext_of(kms_server, target) == b"password=one\n"
    mtime = os.stat(target).st_mtime_ns
    kms_server.start_recording()
    again = playbook.run(tasks).assert_ok()
    assert again.changed() == 0 and "GenerateDataKey" not in kms_server.kms_calls()
    assert again.result("Copy")["dest"] == target and os.stat(target).st_mtime_ns == mtime
    # content has no name to put in a directory: refused as copy refuses it, before any KMS call
    kms_server.start_recording()
    refused = playbook.run([dict(copy_task(content="x", dest=dest), ignore_errors=True)])
    assert "can not use content with a dir as dest" in refused.result("Copy")["msg"]
    assert not kms_server.kms_calls()


def test_an_unchanged_envelope_gets_its_attributes_without_copy(playbook, kms_server, app_key):
    dest = host(playbook, "secret.env")
    tasks = [copy_task(content="password=one\n", dest=dest, mode="0600")]
    playbook.run(tasks).assert_ok()
    envelope = open(dest, "rb").read()

    # same mode: neither copy's stat nor the file module runs, only the read command
    again = playbook.run(tasks, "-vvv").assert_ok()
    assert again.changed() == 0
    assert "AnsiballZ_stat.py" not in again.stdout and "AnsiballZ_file.py" not in again.stdout
    assert again.result("Copy")["mode"] == "0600" and again.result("Copy")["checksum"]

    # another mode: the file module applies it (check mode predicts it), the envelope stays
    moded = [copy_task(content="password=one\n", dest=dest, mode="0640")]
    predicted = playbook.run(moded, "--check").assert_ok()
    assert predicted.changed() == 1 and stat.S_IMODE(os.stat(dest).st_mode) == 0o600
    kms_server.start_recording()
    applied = playbook.run(moded, "-vvv").assert_ok()
    assert applied.changed() == 1 and stat.S_IMODE(os.stat(dest).st_mode) == 0o640
    assert "AnsiballZ_file.py" in applied.stdout and "AnsiballZ_copy.py" not in applied.stdout
    assert "GenerateDataKey" not in kms_server.kms_calls()
    assert open(dest, "rb").read() == envelope

    # a symbolic link at dest with follow=false is replaced by a file, as copy replaces it
    link = host(playbook, "link.env")
    os.symlink(dest, link)
    replaced = playbook.run([copy_task(content="password=one\n", dest=link, mode="0640")]).assert_ok()
    assert replaced.changed() == 1 and not os.path.islink(link) and os.path.islink(dest) is False
    kept = playbook.run([copy_task(content="password=one\n", dest=dest, mode="0640", follow=True)]).assert_ok()
    assert kept.changed() == 0


def test_a_big_envelope_is_proved_the_same_from_its_sha1_without_being_read_back(playbook, kms_server, app_key):
    src = write(os.path.join(playbook.workdir, "files", "big.bin"), os.urandom(3 * 1024 * 1024 + 5))
    dest = host(playbook, "big.bin.enc")
    tasks = [copy_task(src=src, dest=dest, mode="0600")]
    playbook.run(tasks).assert_ok()
    mtime = os.stat(dest).st_mtime_ns
    kms_server.start_recording()
    again = playbook.run(tasks, "-vvv").assert_ok()
    assert again.changed() == 0 and os.stat(dest).st_mtime_ns == mtime
    assert kms_server.kms_calls().get("Decrypt") == 1 and "GenerateDataKey" not in kms_server.kms_calls()
    assert f"FETCH {dest}" not in again.stdout and "AnsiballZ_slurp.py" not in again.stdout
    # one byte changed on the host: its sha1 differs, so the envelope is written again
    with open(dest, "r+b") as handle:
        handle.seek(2 * 1024 * 1024)
        byte = handle.read(1)
        handle.seek(2 * 1024 * 1024)
        handle.write(bytes([byte[0] ^ 1]))
    fixed = playbook.run(tasks).assert_ok()
    assert fixed.changed() == 1
    assert plaintext_of(kms_server, dest) == open(src, "rb").read()


def test_mode_preserve_takes_the_mode_of_src_and_a_link_loop_is_refused(playbook, kms_server, app_key):
    src = write(os.path.join(playbook.workdir, "files", "keep", "app.env"), b"password=one\n")
    os.chmod(src, 0o640)
    single = host(playbook, "single.env")
    tree = host(playbook, "tree")
    tasks = [copy_task("One", src=src, dest=single, mode="preserve"),
             copy_task("Tree", src=os.path.dirname(src) + "/", dest=tree + "/", mode="preserve")]
    playbook.run(tasks).assert_ok()
    assert stat.S_IMODE(os.stat(single).st_mode) == 0o640
    assert stat.S_IMODE(os.stat(os.path.join(tree, "app.env")).st_mode) == 0o640
    assert playbook.run(tasks).assert_ok().changed() == 0

    looped = os.path.join(playbook.workdir, "files", "looped")
    os.makedirs(os.path.join(looped, "sub"))
    write(os.path.join(looped, "a.env"), b"a\n")
    os.symlink(looped, os.path.join(looped, "sub", "back"))
    kms_server.start_recording()
    refused = playbook.run([dict(copy_task(src=looped, dest=host(playbook, "looped")), ignore_errors=True)])
    assert "makes a loop" in refused.result("Copy")["msg"]
    assert not kms_server.kms_calls() and not os.path.exists(host(playbook, "looped"))
