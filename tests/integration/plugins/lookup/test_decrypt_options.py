"""envelope.kms.decrypt (lookup): options it does not know and files that are not regular files.

A misspelled option (``encryption_contex=``) must not be silently ignored: that would decrypt with
no context check at all (fail open). Paths that are not regular files (a FIFO, a device, a
directory) must be refused at once: opening a FIFO for reading blocks until a writer comes.
"""

import os


from tests.harness import esdk
from tests.harness.kms_server import REGION
from tests.harness.playbook import run_bounded

SECRET = "db_password=correct horse battery staple\n"
CONTEXT = {"app": "billing"}
TIMEOUT = 60  # seconds: a run takes a few; a hang on a FIFO never ends by itself


def fact_task(name, expression, **extra):
    return {"name": name, "ansible.builtin.set_fact": {"value": expression}, **extra}


def lookup(*terms, **options):
    args = [repr(term) for term in terms] + [f"{key}={value!r}" for key, value in options.items()]
    return "{{ lookup('envelope.kms.decrypt', " + ", ".join(args) + ") }}"


def test_unknown_options_are_refused_before_any_kms_call(playbook, kms_server, app_key):
    path = esdk.encrypt_file(kms_server, app_key.arn, SECRET, os.path.join(playbook.workdir, "s.enc"), CONTEXT)
    refused = {
        # the typo would otherwise decrypt a file of ANY context: fail open
        "Misspelled context": lookup(path, encryption_contex={"app": "other"}),
        "Misspelled keys": lookup(path, allowed_key_arn=[app_key.arn]),
        "Two unknown": lookup(path, encoding="text", strip=True, regoin=REGION),
    }
    tasks = [fact_task(name, expression, ignore_errors=True) for name, expression in refused.items()]
    # aliases of the AWS options are options too
    tasks.append(fact_task("Alias of region", lookup(path, aws_region=REGION, encryption_context=CONTEXT)))
    kms_server.start_recording()
    run = playbook.run(tasks)
    calls = kms_server.kms_calls()
    assert run.returncode == 0, run.stdout[-3000:]

    assert run.result("Alias of region")["ansible_facts"]["value"] == SECRET.rstrip()
    for name in refused:
        assert run.result(name).get("failed") is True, (name, "an unknown option was ignored")
    messages = {name: run.result(name)["msg"] for name in refused}
    for name, message in messages.items():
        assert "Traceback" not in message and SECRET.strip() not in message, (name, message)
        assert message.startswith("envelope.kms.decrypt lookup: unknown option(s) ") or \
            ": envelope.kms.decrypt lookup: unknown option(s) " in message, (name, message)
        # the valid options are named, so the typo is easy to fix
        assert "encryption_context" in message and "allowed_key_arns" in message, (name, message)
    assert "unknown option(s) encryption_contex;" in messages["Misspelled context"], messages["Misspelled context"]
    assert "unknown option(s) allowed_key_arn;" in messages["Misspelled keys"], messages["Misspelled keys"]
    assert "unknown option(s) regoin, strip;" in messages["Two unknown"], messages["Two unknown"]
    # only the lookup with valid options decrypted
    assert calls == {"Decrypt": 1}, calls


def test_paths_that_are_not_regular_files_fail_quickly(playbook, kms_server, app_key):
    files = os.path.join(playbook.workdir, "files")
    os.makedirs(os.path.join(files, "folder.enc"))
    fifo = os.path.join(files, "pipe.enc")
    os.mkfifo(fifo)
    tasks = [
        fact_task("FIFO", lookup("pipe.enc"), ignore_errors=True),
        fact_task("FIFO by path", lookup(fifo, encoding="base64"), ignore_errors=True),
        fact_task("Device", lookup("/dev/null"), ignore_errors=True),
        fact_task("Directory", lookup("folder.enc"), ignore_errors=True),
    ]
    kms_server.start_recording()
    run = run_bounded(playbook, tasks, timeout=TIMEOUT, fifos=[fifo])
    assert run.returncode == 0, run.stdout[-3000:]
    for name in ("FIFO", "FIFO by path", "Device", "Directory"):
        result = run.result(name)
        assert result["failed"] is True, (name, result)
        assert "not a regular file" in result["msg"], (name, result["msg"])
        assert "Traceback" not in result["msg"], name
    assert "pipe.enc" in run.result("FIFO")["msg"]
    assert not kms_server.kms_calls(), "nothing to decrypt: no KMS call"
