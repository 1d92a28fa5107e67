"""The demo (playbooks/demo.yml, `make demo`) through the real ansible-playbook against the local KMS
endpoint: once from the installed collection as `envelope.kms.demo`, run by ansible-runner the way
AWX runs a job (a private data dir with a project playbook, an inventory and the AWS credential
injected as environment variables; the whole workflow), and when a step fails (from the checkout)."""

import json
import os
import re
import subprocess
import sys
import urllib.request

import pytest
import yaml

from tests.harness import leaks
from tests.harness.runner_job import Job, aws_credential

pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DEMO = os.path.join(ROOT, "playbooks", "demo.yml")
DEMO_VARS = os.path.join(ROOT, "playbooks", "vars", "demo.yml")
BIN = os.path.dirname(sys.executable)
DEPENDENCIES = os.path.join(ROOT, ".build", "collections", "ansible_collections")
# The compact output: what `make demo` sets, and what the demo documents for the installed collection.
COMPACT = {"ANSIBLE_DISPLAY_OK_HOSTS": "false", "ANSIBLE_DISPLAY_SKIPPED_HOSTS": "false"}
# The "Amazon Web Services" credential attached to the job: dummy values (moto takes any), with the
# STS token, the path of temporary credentials. The access key id is no secret (AWX shows it).
ACCESS_KEY = "AKIAAWXJOBCREDENTIAL"
SECRET_KEY = "awx-credential-secret-key-4e7b19d2c0"
SECURITY_TOKEN = "awx-credential-sts-token-93f1a6c8e5"
# Ansible's own notices for a run without an inventory (the implicit localhost): a job has one.
IMPLICIT_LOCALHOST = ("No inventory was parsed, only implicit localhost is available",
                      "provided hosts list is empty, only localhost is available")


def demo_folders(parent):
    return sorted(os.path.join(parent, name) for name in os.listdir(parent) if name.startswith("envelope-kms-demo-"))


def tree(path):
    """Every file and folder under path, with its size and modification time."""
    entries = {}
    for folder, dirs, files in os.walk(path):
        for name in dirs + files:
            stat = os.lstat(os.path.join(folder, name))
            entries[os.path.relpath(os.path.join(folder, name), path)] = (stat.st_size, stat.st_mtime_ns)
    return entries


@pytest.fixture
def installed(tmp_path):
    """envelope.kms built and installed from its tarball as a user would, and ANSIBLE_COLLECTIONS_PATH
    for it and its dependencies (amazon.aws, ansible.posix of .build/collections, without the
    checkout's own envelope.kms link): (the installed collection's folder, the path)."""
    deps = tmp_path / "deps" / "ansible_collections"
    deps.mkdir(parents=True)
    for namespace in ("amazon", "ansible"):
        (deps / namespace).symlink_to(os.path.join(DEPENDENCIES, namespace))
    dist = tmp_path / "dist"
    subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--force", "--output-path", str(dist),
                    ROOT], check=True, capture_output=True)
    (tarball,) = dist.glob("envelope-kms-*.tar.gz")
    collections = tmp_path / "collections"
    path = os.pathsep.join([str(collections), str(tmp_path / "deps")])
    subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", "--offline", "-p", str(collections),
                    str(tarball)], env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=path), check=True, capture_output=True)
    folder = collections / "ansible_collections" / "envelope" / "kms"
    assert (folder / "MANIFEST.json").is_file()
    return str(folder), path


def shown(stdout, task):
    """The result a task printed with the default callback: the JSON object after its `=> `."""
    block = stdout.split(f"TASK [{task}] ", 1)[1]
    start = block.index("=> {") + 3
    end = block.index("\n}\n", start) + 2
    return json.loads(block[start:end])


def signed_requests(kms_server):
    """The headers of every request the local endpoint recorded with an AWS signature (the demo
    starts the recording, and the test reads it after the run)."""
    with urllib.request.urlopen(kms_server.url + "/moto-api/recorder/download-recording", timeout=30) as response:
        requests = [json.loads(line) for line in response.read().decode().splitlines() if line.strip()]
    return [request["headers"] for request in requests if "Authorization" in (request.get("headers") or {})]


def demo_secrets():
    """Needles for the demo's secrets (playbooks/vars/demo.yml), in every form leaks.Needles knows."""
    with open(DEMO_VARS, encoding="utf-8") as handle:
        files = yaml.safe_load(handle)["lifecycle_files"]
    needles = leaks.Needles().add("demo-password", "demo-password")
    for entry in files:
        name = os.path.basename(entry["dest"])
        needles.add(name, entry["content"])
        for line in entry["content"].splitlines():
            if not line.startswith("-----"):
                needles.add(f"{name}: {line[:16]}", line)
    return needles


def test_demo_runs_from_the_installed_collection_compact_and_leaves_nothing_behind(
        installed, kms, kms_server, tmp_path):
    """One run of the whole demo as an AWX job: ansible-runner on a private data dir whose project
    playbook imports `envelope.kms.demo` from the installed tarball, with an inventory (AWX always
    gives one), the AWS credential injected as environment variables as AWX's credential type does
    and the compact output. The summary, the KMS state and calls by step, the requests signed with
    the injected credential, no secret in runner's artifacts, and nothing left behind."""
    collection, collections_path = installed
    with open(os.path.join(ROOT, "Makefile"), encoding="utf-8") as handle:
        make_demo = handle.read().split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    with open(DEMO, encoding="utf-8") as handle:
        documented = handle.read()
    compact = " ".join(f"{name}={value}" for name, value in COMPACT.items())
    assert compact in make_demo and f"{compact} ansible-playbook envelope.kms.demo" in documented
    before = tree(collection)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    endpoint = kms_server.environment()
    envvars = {
        # The "Amazon Web Services" credential attached to the job template.
        **aws_credential(ACCESS_KEY, SECRET_KEY, SECURITY_TOKEN),
        # The job's settings: in AWX the "Extra Environment Variables" setting (AWX_TASK_ENV) or a
        # custom credential type's env injector (the demo reads AWS_ENDPOINT_URL from the environment).
        "AWS_ENDPOINT_URL": endpoint["AWS_ENDPOINT_URL"],
        "AWS_REGION": endpoint["AWS_REGION"],
        # Where the installed collection is (AWX points ANSIBLE_COLLECTIONS_PATHS at the project's the same way).
        "ANSIBLE_COLLECTIONS_PATH": collections_path,
        # The compact output, and the test's own isolation (no colour, ansible's and the demo's files here).
        **COMPACT,
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
        "TMPDIR": str(scratch),
    }
    job = Job(tmp_path / "job", ident="1").lay_out(
        # AWX runs a playbook of the project: one that imports the collection's.
        project={"site.yml": "---\n- name: The envelope.kms demo\n"
                             "  ansible.builtin.import_playbook: envelope.kms.demo\n"},
        inventory=f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n",
        envvars=envvars,
        # AWX reads the output from the artifacts (the events), not from runner's own stdout.
        settings={"suppress_ansible_output": True, "job_timeout": 1200},
    )
    # Nothing of the test's own AWS or Ansible settings: the job's come from the private data dir only.
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ANSIBLE_", "AWS_"))}
    env["PATH"] = BIN + os.pathsep + env.get("PATH", "")

    job.run("site.yml", env=env, timeout=1500)
    assert (job.process.returncode, job.status, job.rc) == (0, "successful", 0), job.report()
    stdout = job.stdout

    # Every KMS and S3 request (the modules' and, in step 5, the vars plugin's) was signed with the
    # injected credential, in the job's region, and carried its STS token (read before the test's own calls).
    signed = signed_requests(kms_server)
    scopes = {re.search(r"Credential=([^/,]+)/\d{8}/([^/]+)/([^/]+)/", headers["Authorization"]).groups()
              for headers in signed}
    assert {service for _key, _region, service in scopes} == {"kms", "s3"}, scopes
    assert {(key, region) for key, region, _service in scopes} == {(ACCESS_KEY, endpoint["AWS_REGION"])}, scopes
    tokens = {headers.get("X-Amz-Security-Token") for headers in signed}
    assert tokens == {SECURITY_TOKEN}, f"requests not carrying the injected STS token: {tokens}"

    # The key versions: v1 disabled by the rotation, the alias on v2.
    v1 = kms.describe_key(KeyId="alias/envelope-demo-v1")["KeyMetadata"]
    v2 = kms.describe_key(KeyId="alias/envelope-demo-v2")["KeyMetadata"]
    assert (v1["KeyState"], v2["KeyState"]) == ("Disabled", "Enabled")
    assert kms.describe_key(KeyId="alias/envelope-demo")["KeyMetadata"]["Arn"] == v2["Arn"]
    summary = shown(stdout, "Show what was done")["msg"]
    text = "\n".join(summary)
    assert summary[0].startswith("Key versions (in the local endpoint http://127.0.0.1:")
    assert f"alias/envelope-demo-v1: {v1['Arn']} (Disabled)" in text
    assert f"alias/envelope-demo, alias/envelope-demo-v2: {v2['Arn']} (Enabled)" in text
    assert "Automatic rotation of alias/envelope-demo-v2: on, every 180 days" in text
    assert "3 cached files rewrapped" in text
    assert "Files deployed: 3 on each of web1, web2, web3" in text
    assert "s3://envelope-kms-demo/envelope-demo/app.env.enc" in text
    assert f"Demo folder {scratch}{os.sep}envelope-kms-demo-" in text
    # KMS calls by step, from the endpoint's recorder: one data key per secret, none on the re-run.
    steps = {line.split(":")[0].strip(): line for line in summary if re.match(r"  \d\. ", line)}
    assert sorted(steps) == ["1. deploy", "2. re-deploy", "3. rotate", "4. check", "5. variables"]
    assert "GenerateDataKey 3" in steps["1. deploy"]
    assert "GenerateDataKey" not in steps["2. re-deploy"]
    assert "GenerateDataKey 3" in steps["3. rotate"]
    assert steps["4. check"] == "  4. check: 9 (Decrypt 9)"  # 3 files on 3 hosts
    assert re.match(r"  5\. variables: \d+ \(", steps["5. variables"]), steps
    # Compact: changes and the summary, no ok or skipped results (468 lines before, 138 now).
    lines = stdout.splitlines()
    assert len(lines) < 200, stdout
    assert not [line for line in lines if line.startswith(("ok: ", "skipping: "))], stdout
    # Each step is announced; the re-deploy shows no change at all.
    redeploy = stdout.split("PLAY [2. Re-deploy - nothing to change, no new data key] *", 1)[1]
    assert "changed: " not in redeploy.split("PLAY [3. Rotate", 1)[0]
    # No warning at all: with an inventory, not even Ansible's about the implicit localhost (nor
    # anything about rotation periods). The job's stdout holds ansible's stderr too (one terminal).
    assert [line for line in lines if "[WARNING]" in line] == [], stdout
    assert not [known for known in IMPLICIT_LOCALHOST if known in stdout]
    # The events AWX stores tell the same story: the summary is the result of the last task.
    events = job.events()
    assert events[-1]["event"] == "playbook_on_stats" and not events[-1]["event_data"]["failures"]
    (result,) = [event["event_data"] for event in events
                 if event["event"] == "runner_on_ok" and event["event_data"]["task"] == "Show what was done"]
    assert result["host"] == "localhost" and result["res"]["msg"] == summary

    # No secret in what AWX keeps of a job (the stdout and the events it stores in its database) nor
    # anywhere in runner's artifacts: not the demo's secrets, nor the credential's secret key and
    # token. Runner itself writes artifacts/<ident>/command ({command, cwd, env}: the job's whole
    # environment, credential included), a file AWX does not keep: the one file left out here.
    # job_events/ also holds the *-partial.json events of step 5's nested ansible-playbook (it inherits
    # runner's awx_display callback and AWX_ISOLATED_DATA_DIR; nothing reads them): walked too.
    needles = demo_secrets().add("the secret key", SECRET_KEY).add("the STS token", SECURITY_TOKEN)
    found = [hit for path in leaks.files_under(job.artifacts, skip=[os.path.join(job.artifacts, "command")])
             for hit in leaks.scan_file(path, needles)]
    assert found == [], found
    # Step 5's random secrets (never known to the test): no rendered line of app.conf anywhere.
    rendered = re.compile(rb"(password|token) = (?!\{\{)\S")
    for path in leaks.files_under(job.artifacts):
        with open(path, "rb") as handle:
            assert not rendered.search(handle.read()), path
    assert not needles.search(job.process.stdout + job.process.stderr)

    # Nothing left behind: the demo's folder is gone, nothing written in the collection or in the
    # project folder (the job's working directory).
    assert demo_folders(scratch) == []
    assert tree(collection) == before
    assert os.listdir(os.path.join(job.folder, "project")) == ["site.yml"]


@pytest.mark.parametrize("keep", [False, True], ids=["removed", "kept"])
def test_demo_that_fails_stops_in_one_line_and_removes_its_folder_unless_kept(
        playbook, kms, monkeypatch, tmp_path, keep):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    # The role refuses a period under 90 days in step 1, before any KMS call.
    settings = {"lifecycle_rotation_period_days": 5, **({"demo_keep": True} if keep else {})}
    run = playbook.run(DEMO, extra_vars=settings)
    assert run.returncode != 0
    failed = [(name, hosts["web1"]) for name, hosts in run.tasks() if hosts.get("web1", {}).get("failed")]
    (role_task, role_result), (stop_task, stop_result) = failed
    assert "lifecycle_rotation_period_days must be from 90 to 2560 (it is 5)" in role_result["msg"]
    assert stop_task == "Stop the demo"
    message = stop_result["msg"]
    assert message.startswith(f"The demo stopped: the task '{role_task.split(' : ', 1)[1]}' failed (its error is above); ")
    folders = demo_folders(scratch)
    if keep:
        assert len(folders) == 1 and message.endswith(f"its folder is kept: {folders[0]}")
    else:
        assert folders == []
        assert re.search(r"its folder \S+/envelope-kms-demo-\w+ was removed \(-e demo_keep=true keeps it\)$", message)
    assert [play["play"]["name"] for play in run.data["plays"]][-1].startswith("1. Deploy")
    assert kms.list_keys()["Keys"] == []
