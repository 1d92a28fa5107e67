"""envelope.kms.copy and envelope.kms.encrypt: what --diff says of sizes, and a folder as src of encrypt
(copy takes one: tests/integration/plugins/action/test_copy_trees.py).

Each side of an envelope's diff names the same two sizes: ``size`` (the bytes of the envelope file)
and ``plaintext_size``, null where not known (an old envelope is not decrypted for a diff; check mode
encrypts nothing), never one side's ciphertext size against the other's plaintext size.
"""

import json
import os

SECRET = "db_password=correct horse battery staple\n"
LONGER = SECRET * 3
ONE_FILE = "encrypts one file per task (loop over the files of ansible.builtin.find, or use with_fileglob)"


def task(action, name, **args):
    return {"name": name, f"envelope.kms.{action}": args, "register": "out"}


def sides(diff):
    """(before, after) of an envelope diff entry as dicts of its ``key: json`` lines."""
    def fields(text):
        return {key: json.loads(value) for key, value in (line.split(": ", 1) for line in text.splitlines())}

    return fields(diff["before"]), fields(diff["after"])


def test_copy_diff_compares_like_with_like(playbook, app_key):
    dest = os.path.join(playbook.workdir, "hosts", "localhost", "secret.env")
    playbook.run([task("copy", "Copy", content=SECRET, dest=dest, key_id="alias/app")]).assert_ok()
    old_size = os.path.getsize(dest)

    predicted = playbook.run([task("copy", "Copy", content=LONGER, dest=dest, key_id="alias/app")],
                             "--check", "--diff").assert_ok()
    before, after = sides(predicted.result("Copy")["diff"][0])
    assert set(before) == set(after)
    assert (before["size"], before["plaintext_size"]) == (old_size, None)
    assert (after["size"], after["plaintext_size"]) == (None, len(LONGER))  # check mode: nothing encrypted

    changed = playbook.run([task("copy", "Copy", content=LONGER, dest=dest, key_id="alias/app")],
                           "--diff").assert_ok()
    before, after = sides(changed.result("Copy")["diff"][0])
    assert set(before) == set(after)
    assert (before["size"], before["plaintext_size"]) == (old_size, None)
    assert (after["size"], after["plaintext_size"]) == (os.path.getsize(dest), len(LONGER))

    # the same plaintext, only the mode changes: its size is known on both sides
    mode_before = f"{os.stat(dest).st_mode & 0o7777:04o}"
    moded = playbook.run([task("copy", "Copy", content=LONGER, dest=dest, key_id="alias/app", mode="0640")],
                         "--diff").assert_ok()
    assert moded.changed() == 1
    before, after = sides(moded.result("Copy")["diff"][0])
    assert before == after
    # then the file module's own diff of what changed, as ansible.builtin.copy shows it
    assert [(entry["before"].get("mode"), entry["after"].get("mode")) for entry in moded.result("Copy")["diff"][1:]
            if isinstance(entry.get("before"), dict)] == [(mode_before, "0640")]
    assert (after["size"], after["plaintext_size"]) == (os.path.getsize(dest), len(LONGER))

    # not an envelope at dest: its size, nothing else is known of it
    with open(dest, "w", encoding="utf-8") as handle:
        handle.write("not an envelope\n")
    replaced = playbook.run([task("copy", "Copy", content=SECRET, dest=dest, key_id="alias/app")],
                            "--diff").assert_ok()
    before, after = sides(replaced.result("Copy")["diff"][0])
    assert before == {"size": len("not an envelope\n"), "plaintext_size": None}
    assert after["plaintext_size"] == len(SECRET)
    for run in (predicted, changed, moded, replaced):
        assert "correct horse" not in run.stdout + run.stderr


def test_encrypt_diff_compares_like_with_like(playbook, app_key):
    dest = os.path.join(playbook.workdir, "secret.enc")
    playbook.run([task("encrypt", "Encrypt", content=SECRET, dest=dest, key_id="alias/app")]).assert_ok()
    old_size = os.path.getsize(dest)
    for args in (("--check",), ()):  # check mode first: the real run makes LONGER the current content
        run = playbook.run([task("encrypt", "Encrypt", content=LONGER, dest=dest, key_id="alias/app")],
                           "--diff", *args).assert_ok()
        before, after = sides(run.result("Encrypt")["diff"])
        assert set(before) == set(after), args
        assert (before["size"], before["plaintext_size"]) == (old_size, None), args
        assert after["plaintext_size"] == len(LONGER)
        assert after["size"] == (None if args else os.path.getsize(dest)), args
        assert "correct horse" not in run.stdout + run.stderr


def test_a_folder_as_src_of_encrypt_is_refused_in_one_line_before_any_kms_call(playbook, kms_server, app_key):
    files = os.path.join(playbook.workdir, "files")
    os.makedirs(os.path.join(files, "conf.d"))
    with open(os.path.join(files, "conf.d", "app.env"), "w", encoding="utf-8") as handle:
        handle.write(SECRET)
    host = os.path.join(playbook.workdir, "hosts", "localhost")
    cases = {
        "Encrypt": ("encrypt", dict(src="conf.d", dest=os.path.join(playbook.workdir, "conf.d.enc")), "conf.d"),
    }
    tasks = [dict(task(action, name, key_id="alias/app", **args), ignore_errors=True)
             for name, (action, args, _src) in cases.items()]
    kms_server.start_recording()
    run = playbook.run(tasks)
    for name, (action, _args, src) in cases.items():
        result = run.result(name)
        assert result["failed"] is True, name
        assert result["msg"] == (f"src {os.path.join(files, src)} is a directory, not a regular file: "
                                 f"envelope.kms.{action} {ONE_FILE}"), name
    assert not kms_server.kms_calls()
    assert os.listdir(host) == []
    assert not os.path.exists(os.path.join(playbook.workdir, "conf.d.enc"))
