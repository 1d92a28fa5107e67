"""envelope.kms.copy (and encrypt) against hostile or mistaken input, through the real ansible-playbook.

Each refusal must come before any KMS call and before anything is written; nothing may hang on a
FIFO or read a device forever; a diff never shows the plaintext of an envelope the task's own
keys and context do not vouch for; whatever sits at dest is fetched back only as far as an
envelope of the task's plaintext could reach.
"""

import grp
import hashlib
import os
import pwd
import subprocess


from ansible_collections.envelope.kms.plugins.module_utils.envelope import ALGORITHMS, envelope_could_hold, inspect_header
from tests.harness import esdk
from tests.harness.playbook import run_bounded

SECRET = "db_password=correct horse battery staple\n"
CONTEXT = {"app": "billing"}
TIMEOUT = 60  # seconds for one ansible-playbook run; a hang on a FIFO never ends by itself


def copy_task(name, ignore_errors=False, **args):
    task = {"name": name, "envelope.kms.copy": args, "register": "out"}
    if ignore_errors:
        task["ignore_errors"] = True
    return task


def encrypt_task(name, ignore_errors=False, **args):
    task = {"name": name, "envelope.kms.encrypt": args, "register": "out"}
    if ignore_errors:
        task["ignore_errors"] = True
    return task


def host_path(playbook, name):
    return os.path.join(playbook.workdir, "hosts", "localhost", name)


def write(path, data):
    with open(path, "wb" if isinstance(data, bytes) else "w") as handle:
        handle.write(data)
    return path


def read(path):
    with open(path, "rb") as handle:
        return handle.read()


def assert_refused(run, names, message):
    for name in names:
        result = run.result(name)
        assert result.get("failed") is True, (name, result)
        assert message in result["msg"], (name, result["msg"])
        assert "Traceback" not in result["msg"] and "\n" not in result["msg"].strip(), (name, result["msg"])


# -- 1, 2: options


def test_unknown_options_and_contexts_that_are_not_mappings(playbook, kms_server, app_key):
    dests = {name: host_path(playbook, name + ".enc") for name in ("typo", "etypo", "s", "l", "n", "j", "es", "f")}
    base = dict(content=SECRET, key_id="alias/app")
    tasks = [
        # a misspelled option must not be ignored (here: the context would silently be empty)
        copy_task("Copy typo", True, dest=dests["typo"], encryption_contex=CONTEXT, **base),
        encrypt_task("Encrypt typo", True, dest=dests["etypo"], encryption_contex=CONTEXT, **base),
        # Ansible's dict type would turn "app=billing" (or a JSON string) into a dict: refused instead
        copy_task("Copy string", True, dest=dests["s"], encryption_context="app=billing", **base),
        copy_task("Copy list", True, dest=dests["l"], encryption_context=["app", "billing"], **base),
        copy_task("Copy number", True, dest=dests["n"], encryption_context=5, **base),
        copy_task("Copy JSON string", True, dest=dests["j"], encryption_context='{"app": "billing"}', **base),
        encrypt_task("Encrypt string", True, dest=dests["es"], encryption_context="app=billing", **base),
        copy_task("Copy frame length 0", True, dest=dests["f"], frame_length=0, **base),
        # numbers as values are fine: they become strings
        copy_task("Copy number values", dest=host_path(playbook, "ok.enc"), encryption_context={"app": "billing", "n": 5},
                  **base),
    ]
    kms_server.start_recording()
    run = playbook.run(tasks)
    calls = kms_server.kms_calls()
    assert run.returncode == 0, run.stdout[-3000:]
    assert_refused(run, ["Copy typo"], "Unsupported parameters for (envelope.kms.copy) module: encryption_contex")
    assert_refused(run, ["Encrypt typo"], "Unsupported parameters for (envelope.kms.encrypt) module: encryption_contex")
    assert_refused(run, ["Copy string", "Copy list", "Copy number", "Copy JSON string", "Encrypt string"],
                   "encryption_context must be a dictionary")
    assert_refused(run, ["Copy frame length 0"], "frame length must be a multiple of 128")
    assert "not str" in run.result("Copy string")["msg"]
    assert "not list" in run.result("Copy list")["msg"]
    assert "not int" in run.result("Copy number")["msg"]
    for dest in dests.values():
        assert not os.path.exists(dest), dest
    assert run.result("Copy number values")["encryption_context"] == {"app": "billing", "n": "5"}
    assert inspect_header(host_path(playbook, "ok.enc")).encryption_context == {"app": "billing", "n": "5"}
    # only the one good task used KMS (each task is a worker of its own: one DescribeKey each)
    assert calls == {"DescribeKey": 1, "GenerateDataKey": 1}, calls


# -- 3: src and dest the same file


def test_src_that_is_dest_is_refused_before_anything_is_written(playbook, kms_server, app_key):
    folder = os.path.join(playbook.workdir, "hosts", "localhost")
    os.makedirs(os.path.join(folder, "sub"))
    src = write(os.path.join(folder, "app.env"), SECRET)
    write(os.path.join(folder, "real.env"), SECRET)
    os.symlink(src, os.path.join(folder, "link-to-src.env"))
    os.symlink(os.path.join(folder, "real.env"), os.path.join(folder, "link-to-real.env"))
    cases = {
        "Same path": dict(src=src, dest=src),
        "Dotdot": dict(src=src, dest=os.path.join(folder, "sub", "..", "app.env")),
        "Dest into the folder": dict(src=src, dest=folder + "/"),
        "Dest is the folder": dict(src=src, dest=folder),  # copy writes into an existing directory
        "Dest is a link to src": dict(src=src, dest=os.path.join(folder, "link-to-src.env")),
        "Src is a link to dest": dict(src=os.path.join(folder, "link-to-real.env"),
                                      dest=os.path.join(folder, "real.env")),
    }
    tasks = [copy_task(name, True, key_id="alias/app", **args) for name, args in cases.items()]
    tasks.append(encrypt_task("Encrypt dotdot", True, key_id="alias/app", src=src,
                              dest=os.path.join(folder, "sub", "..", "app.env")))
    kms_server.start_recording()
    run = playbook.run(tasks)
    assert run.returncode == 0, run.stdout[-3000:]
    assert_refused(run, list(cases) + ["Encrypt dotdot"], "src and dest are the same file")
    assert read(src) == SECRET.encode(), "the plaintext source was overwritten"
    assert read(os.path.join(folder, "real.env")) == SECRET.encode(), "the plaintext source was overwritten"
    assert os.path.islink(os.path.join(folder, "link-to-src.env"))
    assert sorted(os.listdir(folder)) == ["app.env", "link-to-real.env", "link-to-src.env", "real.env", "sub"]
    assert not kms_server.kms_calls()


# -- 4: diff_plaintext over envelopes the task's policy does not vouch for


def test_plaintext_diff_only_shows_envelopes_of_the_tasks_keys_and_context(playbook, kms, kms_server, app_key):
    other_key = kms.create_key()["KeyMetadata"]
    foreign_secret = "FOREIGN-SECRET-of-another-key\n"
    wrong_context_secret = "WRONG-CONTEXT-SECRET\n"
    binary = b"\xff\xfe\x00\x80 not text \xc3\x28" * 10
    dests = {
        "Foreign key": esdk.encrypt_file(kms_server, other_key["Arn"], foreign_secret,
                                         host_path(playbook, "foreign.enc"), CONTEXT),
        "Wrong context": esdk.encrypt_file(kms_server, app_key.arn, wrong_context_secret,
                                           host_path(playbook, "context.enc"), {"app": "other"}),
        "Binary": esdk.encrypt_file(kms_server, app_key.arn, binary, host_path(playbook, "binary.enc"),
                                    dict(CONTEXT, extra="pairs are fine")),
        "Own": esdk.encrypt_file(kms_server, app_key.arn, "old text\n", host_path(playbook, "own.enc"), CONTEXT),
        "Not an envelope": write(host_path(playbook, "junk.enc"), b"\x02\x05\x78JUNKDATA" * 50),
    }
    new_binary = b"\x00\xff\xfe binary \x80" * 3
    binary_src = write(os.path.join(playbook.workdir, "new.bin"), new_binary)
    tasks = [copy_task(name, content="new text\n", dest=dest, key_id="alias/app", encryption_context=CONTEXT,
                       diff_plaintext=True) for name, dest in dests.items()]
    tasks.append(copy_task("New binary", src=binary_src, dest=host_path(playbook, "new.enc"), key_id="alias/app",
                           diff_plaintext=True))
    kms_server.start_recording()
    run = playbook.run(tasks, "--diff")
    calls = kms_server.kms_calls()
    run.assert_ok()
    assert foreign_secret.strip() not in run.stdout and wrong_context_secret.strip() not in run.stdout
    before = {name: run.result(name)["diff"][1]["before"] for name in dests}
    assert before["Foreign key"].startswith("(old plaintext not shown: "), before
    assert "none of the allowed keys" in before["Foreign key"], before
    assert before["Wrong context"].startswith("(old plaintext not shown: "), before
    assert "different value for app" in before["Wrong context"], before
    assert before["Binary"] == f"(old plaintext not shown: binary data, {len(binary)} bytes)\n", before
    assert before["Own"] == "old text\n"
    assert before["Not an envelope"].startswith("(old plaintext not shown: "), before
    assert "JUNKDATA" not in before["Not an envelope"]
    # the scratch file's name means nothing to the user: the message names dest
    assert all("existing.envelope" not in text for text in before.values()), before
    new_diff = run.result("New binary")["diff"][1]
    assert new_diff["after"] == f"(new plaintext not shown: binary data, {len(new_binary)} bytes)\n"
    assert all(run.result(name)["diff"][1]["after"] == "new text\n" for name in dests)
    # the refused envelopes were never sent to KMS: only Binary and Own were decrypted
    assert calls["Decrypt"] == 2, calls


# -- 5: what is fetched back from dest


def test_dest_too_big_for_the_plaintext_is_never_fetched(playbook, kms_server, app_key):
    junk = os.urandom(4 * 1024 * 1024)
    dest = write(host_path(playbook, "big.enc"), junk)
    tasks = [copy_task("Copy", content="a 20 byte secret...\n", dest=dest, key_id="alias/app", diff_plaintext=True)]
    # force=false leaves an existing dest alone: no data key for it either
    keep = copy_task("Keep", content="a 20 byte secret...\n", dest=dest, key_id="alias/app", force=False)
    kms_server.start_recording()
    run = playbook.run([keep] + tasks, "-vvv", "--diff").assert_ok()
    assert kms_server.kms_calls()["GenerateDataKey"] == 1
    assert run.result("Keep")["changed"] is False
    assert run.result("Copy")["changed"] is True
    assert run.result("Copy")["diff"][1]["before"].startswith("(old plaintext not shown: dest was not read back")
    assert "PUT " in run.stdout, "the -vvv output should show the connection's transfers"
    assert f"FETCH {dest}" not in run.stdout
    assert inspect_header(dest).key_arns == (app_key.arn,)

    # an unchanged re-run reads the envelope back with one command (no separate size check or fetch)
    again = playbook.run(tasks, "-vvv").assert_ok()
    assert again.changed() == 0
    assert f"FETCH {dest}" not in again.stdout
    reads = [line for line in again.stdout.splitlines() if "EXEC" in line and "envelope.kms" in line]
    assert len(reads) == 1, reads


def bounded_read():
    from ansible_collections.envelope.kms.plugins.action import copy  # pylint: disable=import-outside-toplevel

    return copy.read_command, copy.parse_read


def test_the_size_range_is_the_one_envelope_could_hold_accepts():
    from ansible_collections.envelope.kms.plugins.action.copy import envelope_size_range  # pylint: disable=import-outside-toplevel

    for algorithm in ALGORITHMS:
        for size, frame in [(0, 4096), (20, 262144), (4096, 4096), (4097, 4096), (3 * 1024 * 1024, 262144)]:
            low, high = envelope_size_range(size, frame, algorithm)
            assert 0 < low < high, (size, frame, algorithm)
            assert envelope_could_hold(low, size, frame, algorithm) and envelope_could_hold(high, size, frame, algorithm)
            assert not envelope_could_hold(low - 1, size, frame, algorithm), (size, frame, algorithm)
            assert not envelope_could_hold(high + 1, size, frame, algorithm), (size, frame, algorithm)


def run_read(entries, inline_limit=1024 * 1024, prefix_limit=64, name=None):
    read_command, parse_read = bounded_read()
    completed = subprocess.run(["/bin/sh", "-c", read_command(entries, inline_limit, prefix_limit, name)],
                               capture_output=True, timeout=30, check=False)
    return completed.returncode, parse_read(completed.stdout.decode(), len(entries)), completed.stdout


def test_the_read_command(tmp_path):
    """The shell command the action runs on the host: what it says about each kind of dest."""
    _command, parse_read = bounded_read()
    data = bytes(range(256)) * 3
    small = write(str(tmp_path / "it's a \"file\" $(x).enc"), data)
    os.chmod(small, 0o640)
    rc, (read,), _out = run_read([(small, 700, 800)])
    assert rc == 0 and (read.kind, read.size, read.content, read.prefix, read.link) == ("file", 768, data, None, False)
    owner = pwd.getpwuid(os.getuid()).pw_name
    assert read.attrs == ("-rw-r-----", owner, grp.getgrgid(os.getgid()).gr_name, str(os.getuid()), str(os.getgid()))
    # a size outside [low, high] is told without any content
    for low, high in ((100, 700), (800, 900)):
        assert run_read([(small, low, high)])[1][0].content is None
    # within the bounds but above the inline limit: its first bytes and its sha1, never the rest
    rc, (read,), out = run_read([(small, 700, 800)], inline_limit=500, prefix_limit=64)
    assert (read.content, read.prefix, read.sha1) == (None, data[:64], hashlib.sha1(data).hexdigest())
    assert len(out) < 1000
    big = write(str(tmp_path / "big"), b"\0" * (3 * 1024 * 1024))
    rc, (read,), out = run_read([(big, 100, 1000)])
    assert len(out) < 300, "a file too big for the envelope must not be read out"
    assert (read.kind, read.size, read.content, read.prefix, read.sha1) == ("file", 3 * 1024 * 1024, None, None, None)
    # no file, or not a regular file: nothing to compare with (and no hang on a FIFO); many in one command
    os.mkfifo(tmp_path / "fifo")
    entries = [(str(tmp_path / "missing"), 0, 100), (str(tmp_path / "fifo"), 0, 100), ("/dev/zero", 0, 100),
               (str(tmp_path), 0, 100), (write(str(tmp_path / "empty"), b""), 0, 100)]
    rc, reads, _out = run_read(entries)
    assert [read.kind for read in reads] == ["missing", "fifo", "device", "directory", "file"]
    assert reads[4].content == b""
    # a link is said to be one (its target is read); a directory with name means the file in it
    os.symlink(small, tmp_path / "link")
    assert run_read([(str(tmp_path / "link"), 700, 800)])[1][0].link is True
    folder = tmp_path / "folder"
    folder.mkdir()
    write(str(folder / "app.env"), b"abc")
    (read,) = run_read([(str(folder), 0, 10)], name="app.env")[1]
    assert (read.into_directory, read.kind, read.content) == (True, "file", b"abc")
    (read,) = run_read([(str(folder / "app.env"), 0, 10)], name="app.env")[1]
    assert (read.into_directory, read.content) == (False, b"abc")
    # output that is not ours (a broken shell, a login banner alone) is no answer
    assert [read.kind for read in parse_read("", 2)] == [None, None]
    assert parse_read("Welcome!\n", 1)[0].kind is None


# -- 6: sources that are not regular files


def test_sources_that_are_not_regular_files_are_refused_quickly(playbook, kms_server, app_key):
    fifo = os.path.join(playbook.workdir, "pipe.env")
    os.mkfifo(fifo)
    folder = os.path.join(playbook.workdir, "a-folder")
    os.makedirs(folder)
    cases = {
        "FIFO": dict(src=fifo, dest=host_path(playbook, "fifo.enc")),
        "Device": dict(src="/dev/null", dest=host_path(playbook, "null.enc")),
        "Directory": dict(src=folder, dest=host_path(playbook, "dir.enc")),
    }
    # a directory src is a tree for copy (its files are checked one by one, a FIFO among them included)
    os.mkfifo(os.path.join(folder, "inner-pipe"))
    tasks = [copy_task("Copy " + name, True, key_id="alias/app", **args) for name, args in cases.items()]
    tasks += [encrypt_task("Encrypt " + name, True, key_id="alias/app", src=args["src"],
                           dest=os.path.join(playbook.workdir, name + ".enc")) for name, args in cases.items()]
    kms_server.start_recording()
    run = run_bounded(playbook, tasks, timeout=TIMEOUT, fifos=[fifo])
    assert run.returncode == 0, run.stdout[-3000:]
    assert_refused(run, ["Copy " + name for name in cases] + ["Encrypt " + name for name in cases],
                   "not a regular file")
    assert "is a FIFO" in run.result("Copy FIFO")["msg"]
    assert "is a device" in run.result("Copy Device")["msg"]
    assert run.result("Copy Directory")["msg"] == f"src {os.path.join(folder, 'inner-pipe')} is a FIFO, not a regular file"
    for name, args in cases.items():
        assert not os.path.exists(args["dest"]), name
        assert not os.path.exists(os.path.join(playbook.workdir, name + ".enc")), name
    assert not kms_server.kms_calls()
