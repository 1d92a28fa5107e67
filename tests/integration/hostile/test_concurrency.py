"""Hostile input, concurrency: many hosts writing envelopes at once against one KMS endpoint, and
two ansible-playbook processes racing to write the same file.

A race must end like one of the runs alone: the file holds one complete, valid envelope (or, for
decrypt, one complete plaintext) of one of the two runs, nothing else is left beside it, and each
run ends with success (changed or not). The racing runs meet at a barrier (a file the test creates
once both are waiting), so their writes really overlap instead of being seconds apart.
"""

import os
import subprocess
import time
import uuid

import pytest
import yaml

from ansible_collections.envelope.kms.plugins.module_utils.envelope import inspect_header
from tests.harness import esdk
from tests.harness.playbook import ANSIBLE_PLAYBOOK, PlaybookRun

CATEGORY = "concurrency"
CONTEXT = {"app": "billing", "suite": "hostile-concurrency"}
HOSTS = 20
FILES_PER_HOST = 10
FORKS = 10
ROUNDS = 3
RACE_TIMEOUT = 240  # seconds for one racing ansible-playbook run, on a busy machine


def read(path):
    with open(path, "rb") as handle:
        return handle.read()


def mode_of(path):
    return oct(os.stat(path).st_mode & 0o777)


@pytest.mark.slow
def test_twenty_hosts_ten_forks_two_hundred_files(playbook, kms_server, app_key, tally):
    hosts = [f"host{index:02d}" for index in range(HOSTS)]
    playbook.set_hosts(hosts)  # each host: ansible_connection=local and a dest root of its own (host_dir)
    token = uuid.uuid4().hex
    tasks = [{"name": "Copy", "envelope.kms.copy": {
        "content": "{{ inventory_hostname }} file {{ item }} " + token + "\n",
        "dest": "{{ host_dir }}/f{{ item }}.enc", "key_id": "alias/app", "encryption_context": CONTEXT,
        "mode": "0640"}, "loop": list(range(FILES_PER_HOST))}]
    run = playbook.run(tasks, "--forks", str(FORKS)).assert_ok()
    assert sorted(run.stats) == hosts
    assert all(run.stats[host]["failures"] == 0 and run.stats[host]["changed"] == 1 for host in hosts), run.stats

    provider = esdk.provider(kms_server, app_key.arn)  # one set of library clients for the 200 reads
    library = esdk.client()
    names = [f"f{index}.enc" for index in range(FILES_PER_HOST)]
    for host in hosts:
        host_dir = os.path.join(playbook.workdir, "hosts", host)
        listing = sorted(os.listdir(host_dir))
        for index, name in enumerate(names):
            path = os.path.join(host_dir, name)
            problems = []
            if listing != names:
                problems.append(f"{host_dir} holds {listing}")
            try:
                plaintext, header = library.decrypt(source=read(path), key_provider=provider)
                if plaintext.decode() != f"{host} file {index} {token}\n":
                    problems.append(f"holds {plaintext[:60]!r}")
                if {key: header.encryption_context.get(key) for key in CONTEXT} != CONTEXT:
                    problems.append(f"context {header.encryption_context}")
                if mode_of(path) != "0o640":
                    problems.append(f"mode {mode_of(path)}")
            except Exception as error:  # pylint: disable=broad-exception-caught  # one bad file is one case
                problems.append(f"{type(error).__name__}: {error}")
            tally.case(CATEGORY, not problems, f"{host}/{name}: {'; '.join(problems)}")


# -- two processes racing on one file


def race(playbook, barrier, task_of, labels):
    """Start one ansible-playbook per label (``task_of(label)`` is its main task), let them all
    reach the barrier, release them at once, and return their PlaybookRuns by label."""
    os.makedirs(barrier, exist_ok=True)
    go = os.path.join(barrier, "go")
    processes = {}
    for label in labels:
        ready = os.path.join(barrier, f"ready-{label}")
        plays = [{"name": f"Racer {label}", "hosts": "targets", "gather_facts": False, "tasks": [
            {"name": "Barrier", "ansible.builtin.command": {"argv": [
                "sh", "-c", 'touch "$1"; while [ ! -e "$2" ]; do sleep 0.01; done', "barrier", ready, go]},
             "changed_when": False},
            dict(task_of(label), name="Race"),
        ]}]
        path = playbook.write(yaml.safe_dump(plays, sort_keys=False), name=f"race-{label}-{uuid.uuid4().hex[:8]}.yml")
        processes[label] = subprocess.Popen(  # pylint: disable=consider-using-with  # waited for below
            [ANSIBLE_PLAYBOOK, "-i", playbook.inventory, path], env=playbook.env(), cwd=playbook.workdir,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + RACE_TIMEOUT
        while not all(os.path.exists(os.path.join(barrier, f"ready-{label}")) for label in labels):
            crashed = [label for label, process in processes.items() if process.poll() is not None]
            assert not crashed and time.monotonic() < deadline, f"racers never reached the barrier: {crashed}"
            time.sleep(0.02)
        with open(go, "w", encoding="utf-8"):
            pass
        runs = {}
        for label, process in processes.items():
            stdout, stderr = process.communicate(timeout=RACE_TIMEOUT)
            runs[label] = PlaybookRun(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr))
        return runs
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
        for name in os.listdir(barrier):
            os.unlink(os.path.join(barrier, name))


def run_problems(label, run):
    """Why a racing run is not a success (an empty list when it is one)."""
    problems = []
    if run.returncode != 0 or run.failed():
        problems.append(f"run {label} rc={run.returncode} {run.stats}: "
                        f"{[hosts for _name, hosts in run.tasks()][-1:]} {run.stderr[-400:]}")
    else:
        result = run.result("Race")
        if result.get("failed") or "changed" not in result:
            problems.append(f"run {label}: {result}")
    if "Traceback" in run.stdout + run.stderr:
        problems.append(f"run {label} printed a traceback")
    return problems


def test_two_playbooks_racing_to_copy_one_dest(playbook, kms_server, app_key, tally):
    dest_dir = os.path.join(playbook.workdir, "hosts", "localhost", "race")
    os.makedirs(dest_dir)
    dest = os.path.join(dest_dir, "secret.enc")
    barrier = os.path.join(playbook.workdir, "barrier")
    provider = esdk.provider(kms_server, app_key.arn)
    for round_number in range(ROUNDS):
        contents = {label: f"round {round_number} racer {label} {uuid.uuid4().hex}\n" for label in "AB"}

        def copy_task(label, contents=contents):
            return {"envelope.kms.copy": {"content": contents[label], "dest": dest, "key_id": "alias/app",
                                          "encryption_context": CONTEXT, "mode": "0640"}}

        runs = race(playbook, barrier, copy_task, "AB")
        problems = [problem for label, run in runs.items() for problem in run_problems(label, run)]
        try:
            plaintext, header = esdk.client().decrypt(source=read(dest), key_provider=provider)
            if plaintext.decode() not in contents.values():
                problems.append(f"dest holds {plaintext[:80]!r}, neither racer's plaintext")
            if {key: header.encryption_context.get(key) for key in CONTEXT} != CONTEXT:
                problems.append(f"context {header.encryption_context}")
            if inspect_header(dest).key_arns != (app_key.arn,):
                problems.append(f"wrapped under {inspect_header(dest).key_arns}")
            if mode_of(dest) != "0o640":
                problems.append(f"mode {mode_of(dest)}")
        except Exception as error:  # pylint: disable=broad-exception-caught  # a broken dest is a failed case
            problems.append(f"dest: {type(error).__name__}: {error}")
        if os.listdir(dest_dir) != ["secret.enc"]:
            problems.append(f"left beside dest: {sorted(os.listdir(dest_dir))}")
        tally.case(CATEGORY, not problems, f"copy race round {round_number}: {'; '.join(problems)}")


def test_two_playbooks_racing_to_decrypt_into_one_dest(playbook, kms_server, app_key, tally):
    sources = os.path.join(playbook.workdir, "hosts", "localhost", "envelopes")
    dest_dir = os.path.join(playbook.workdir, "hosts", "localhost", "plain")
    os.makedirs(sources)
    os.makedirs(dest_dir)
    dest = os.path.join(dest_dir, "secret.txt")
    barrier = os.path.join(playbook.workdir, "barrier")
    for round_number in range(ROUNDS):
        # sizes differ from round to round and racer to racer, so every round replaces dest
        contents = {label: f"round {round_number} racer {label} {uuid.uuid4().hex}\n" * (1 + 40 * round_number + n)
                    for n, label in enumerate("AB")}
        envelopes = {label: esdk.encrypt_file(kms_server, app_key.arn, text, os.path.join(sources, f"{label}.enc"),
                                              CONTEXT, frame_length=1024)
                     for label, text in contents.items()}

        def decrypt_task(label, envelopes=envelopes):
            return {"envelope.kms.decrypt": {"src": envelopes[label], "dest": dest, "encryption_context": CONTEXT,
                                             "allowed_key_arns": [app_key.arn]}}

        runs = race(playbook, barrier, decrypt_task, "AB")
        problems = [problem for label, run in runs.items() for problem in run_problems(label, run)]
        try:
            if read(dest).decode() not in contents.values():
                problems.append(f"dest holds {read(dest)[:80]!r}, neither racer's plaintext")
            if mode_of(dest) != "0o600":
                problems.append(f"mode {mode_of(dest)} (a decrypted file is 0600 by default)")
        except OSError as error:
            problems.append(f"dest: {error}")
        if os.listdir(dest_dir) != ["secret.txt"]:
            problems.append(f"left beside dest: {sorted(os.listdir(dest_dir))}")
        tally.case(CATEGORY, not problems, f"decrypt race round {round_number}: {'; '.join(problems)}")
