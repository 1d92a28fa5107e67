"""Atomicity: SIGKILL at several points of a 200 MiB decrypt, rewrap and copy leaves dest either the
old or the new complete file, never a partial one, and the next run leaves no temp file behind
(the stale temp file of the killed run is proven ours and dead, and removed).

The engine runs in a child process (as the decrypt and rewrap modules run it on a host); copy runs
through the real ansible-playbook, killed with its whole process group (the module processes too).
"""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from ansible_collections.envelope.kms.plugins.module_utils.envelope import Engine
from tests.harness.playbook import ANSIBLE_PLAYBOOK

SIZE = 200 * 1024 * 1024
POINTS = (0.1, 0.5, 0.9)  # fractions of the output written when the kill comes
CONTEXT = {"app": "billing"}

pytestmark = pytest.mark.slow

CHILD = r"""
import json, sys
import boto3
sys.path[:0] = json.loads(sys.argv[1])
from ansible_collections.envelope.kms.plugins.module_utils.envelope import Engine
job = json.loads(sys.argv[2])
client = boto3.client("kms", endpoint_url=job["url"], region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
engine = Engine(client)
if job["what"] == "decrypt":
    engine.decrypt_file(job["src"], job["dest"], {"app": "billing"})
else:
    engine.rewrap_file(job["src"], [job["key"]])
"""


def sha(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def temp_files(directory):
    return [os.path.join(directory, name) for name in os.listdir(directory) if name.endswith(".tmp")]


def temp_sizes(directory):
    """Sizes of the temp files beside a destination."""
    return [os.path.getsize(path) for path in temp_files(directory) if os.path.exists(path)]


def tree_sizes(directory):
    """Sizes of every file under directory (the controller's scratch dirs)."""
    sizes = []
    for root, _dirs, files in os.walk(directory):
        for name in files:
            try:
                sizes.append(os.path.getsize(os.path.join(root, name)))
            except OSError:
                pass
    return sizes


def kill_when_written(command, directory, target_size, point, env=None, sizes=temp_sizes):
    """Start command in a session of its own; SIGKILL the whole group once a file ``sizes`` finds in
    directory holds point * target_size bytes. Returns the size seen (0 when the run ended before)."""
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    seen = 0
    try:
        deadline = time.monotonic() + 300
        while child.poll() is None and time.monotonic() < deadline:
            seen = max(sizes(directory), default=0)
            if seen >= point * target_size:
                break
            time.sleep(0.005)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    return seen


@pytest.fixture(scope="module")
def big(tmp_path_factory, kms_server):
    """A 200 MiB plaintext and its envelope, made once for the module's tests."""
    import boto3  # pylint: disable=import-outside-toplevel

    kms_server.reset()
    client = boto3.client("kms", endpoint_url=kms_server.url, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    key = client.create_key()["KeyMetadata"]["Arn"]
    second = client.create_key()["KeyMetadata"]["Arn"]
    client.create_alias(AliasName="alias/app", TargetKeyId=key)
    directory = tmp_path_factory.mktemp("atomicity")
    plaintext = directory / "plain.bin"
    with open(plaintext, "wb") as handle:
        for _block in range(SIZE // (1 << 23)):
            handle.write(os.urandom(1 << 23))
    envelope = directory / "plain.bin.enc"
    Engine(client).encrypt_file(str(plaintext), str(envelope), [key], CONTEXT)
    return dict(plaintext=str(plaintext), envelope=str(envelope), key=key, second=second, url=kms_server.url,
                sha=sha(plaintext), directory=directory)


def child_command(job):
    return [sys.executable, "-c", CHILD, json.dumps(sys.path[:4]), json.dumps(job)]


def test_sigkill_during_decrypt_leaves_old_or_new_and_no_temp_after_the_next_run(big, tally, tmp_path):
    dest = tmp_path / "plain.out"
    dest.write_bytes(b"the old plaintext\n")
    old = sha(dest)
    job = dict(what="decrypt", url=big["url"], src=big["envelope"], dest=str(dest))
    for point in POINTS:
        seen = kill_when_written(child_command(job), str(tmp_path), SIZE, point)
        tally.case("atomicity", 0 < seen < SIZE, f"the kill at {point} did not land while the plaintext was written")
        tally.case("atomicity", sha(dest) in (old, big["sha"]),
                   f"decrypt killed at {seen} bytes: dest is neither the old nor the new file")
        stale = temp_files(str(tmp_path))
        tally.case("atomicity", all(".envelope-kms-" in path for path in stale), f"unexpected temp files {stale}")
    # the next run completes and removes what the killed ones left
    subprocess.run(child_command(job), check=True, timeout=300)
    tally.case("atomicity", sha(dest) == big["sha"], "the next run did not write the new file")
    tally.case("atomicity", temp_files(str(tmp_path)) == [], f"temp files left: {temp_files(str(tmp_path))}")


def test_sigkill_during_rewrap_leaves_old_or_new_envelope(big, tally, tmp_path):
    envelope = tmp_path / "data.enc"
    envelope.write_bytes(open(big["envelope"], "rb").read())  # pylint: disable=consider-using-with
    old = sha(envelope)
    size = os.path.getsize(envelope)
    job = dict(what="rewrap", url=big["url"], src=str(envelope), key=big["second"])
    for point in POINTS:
        seen = kill_when_written(child_command(job), str(tmp_path), size, point)
        tally.case("atomicity", 0 < seen < size, f"the kill at {point} did not land while the envelope was written")
        tally.case("atomicity", sha(envelope) == old, f"rewrap killed at {seen} bytes changed the envelope")
    subprocess.run(child_command(job), check=True, timeout=300)
    tally.case("atomicity", sha(envelope) != old and temp_files(str(tmp_path)) == [],
               "the next rewrap did not complete cleanly")
    out = tmp_path / "check.bin"
    import boto3  # pylint: disable=import-outside-toplevel

    client = boto3.client("kms", endpoint_url=big["url"], region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    facts = Engine(client).decrypt_file(str(envelope), str(out), CONTEXT)
    tally.case("atomicity", facts.key_arns == (big["second"],) and sha(out) == big["sha"],
               "the rewrapped envelope does not decrypt to the plaintext under the new key")


def test_sigkill_during_copy_leaves_old_or_new_envelope(big, tally, playbook, app_key):
    """Killed while the controller encrypts (scratch file in the local temp dir) or while the host
    writes: dest stays the old envelope or is the new one; the scratch files only ever held ciphertext."""
    dest = os.path.join(playbook.workdir, "hosts", "localhost", "plain.bin.enc")
    with open(dest, "wb") as handle:
        handle.write(b"not yet an envelope\n")
    old = sha(dest)
    tasks = [{"name": "Copy", "envelope.kms.copy": dict(src=big["plaintext"], dest=dest, key_id=app_key.arn,
                                                        encryption_context=CONTEXT)}]
    path = playbook.write(json.dumps([{"hosts": "targets", "gather_facts": False, "tasks": tasks}]))
    command = [ANSIBLE_PLAYBOOK, "-i", playbook.inventory, path]
    local_tmp = os.path.join(playbook.workdir, "controller-tmp")
    os.makedirs(local_tmp, exist_ok=True)
    env = playbook.env()
    for point in POINTS:
        seen = kill_when_written(command, local_tmp, SIZE, point, env, sizes=tree_sizes)
        tally.case("atomicity", 0 < seen < SIZE, f"the kill at {point} did not land while the scratch file was written")
        tally.case("atomicity", sha(dest) == old or envelope_of(dest, app_key.arn),
                   f"copy killed at {seen} bytes left a partial dest")
    run = playbook.run(path).assert_ok()
    tally.case("atomicity", envelope_of(dest, app_key.arn), f"the next copy did not deploy: {run.result('Copy')}")
    leftovers = [name for name in os.listdir(os.path.dirname(dest)) if name.endswith(".tmp") or name.startswith(".ansible_tmp")]
    tally.case("atomicity", leftovers == [], f"temp files beside dest: {leftovers}")
    marker = open(big["plaintext"], "rb").read(4096)  # pylint: disable=consider-using-with
    for root, _dirs, files in os.walk(local_tmp):
        for name in files:
            with open(os.path.join(root, name), "rb") as handle:
                tally.case("atomicity", marker not in handle.read(), f"plaintext in controller temp file {name}")


def envelope_of(dest, key_arn):
    from ansible_collections.envelope.kms.plugins.module_utils.envelope import inspect_header  # pylint: disable=import-outside-toplevel

    try:
        return inspect_header(dest).key_arns == (key_arn,) and os.path.getsize(dest) > SIZE
    except Exception:  # pylint: disable=broad-except
        return False
