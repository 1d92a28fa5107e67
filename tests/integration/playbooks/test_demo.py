"""The demo (playbooks/demo.yml, `make demo`) through the real ansible-playbook against the local KMS
endpoint: once from the installed collection as `ansible-playbook envelope.kms.demo` (the
whole workflow), and when a step fails (from the checkout)."""

import json
import os
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DEMO = os.path.join(ROOT, "playbooks", "demo.yml")
BIN = os.path.dirname(sys.executable)
DEPENDENCIES = os.path.join(ROOT, ".build", "collections", "ansible_collections")
# The compact output: what `make demo` sets, and what the demo documents for the installed collection.
COMPACT = {"ANSIBLE_DISPLAY_OK_HOSTS": "false", "ANSIBLE_DISPLAY_SKIPPED_HOSTS": "false"}
# Ansible's own notices for a run without an inventory (the implicit localhost), not the demo's.
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


def test_demo_runs_from_the_installed_collection_compact_and_leaves_nothing_behind(
        installed, kms, kms_server, tmp_path):
    """One run of the whole demo, as a user runs it: `ansible-playbook envelope.kms.demo` from the
    installed tarball, compact output, no inventory. The summary, the KMS state and calls by step,
    and nothing left behind."""
    collection, collections_path = installed
    with open(os.path.join(ROOT, "Makefile"), encoding="utf-8") as handle:
        make_demo = handle.read().split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    with open(DEMO, encoding="utf-8") as handle:
        documented = handle.read()
    compact = " ".join(f"{name}={value}" for name, value in COMPACT.items())
    assert compact in make_demo and f"{compact} ansible-playbook envelope.kms.demo" in documented
    before = tree(collection)
    scratch, work = tmp_path / "tmp", tmp_path / "work"
    scratch.mkdir()
    work.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ANSIBLE_", "AWS_"))}
    env.update(kms_server.environment())
    env.update(COMPACT)
    env.update({"ANSIBLE_COLLECTIONS_PATH": collections_path, "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
                "ANSIBLE_NOCOLOR": "1", "TMPDIR": str(scratch), "PATH": BIN + os.pathsep + env.get("PATH", "")})

    # No -i: the implicit localhost, as the demo's header documents.
    run = subprocess.run([os.path.join(BIN, "ansible-playbook"), "envelope.kms.demo"], cwd=work, env=env,
                         capture_output=True, text=True, check=False)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output

    # The key versions: v1 disabled by the rotation, the alias on v2.
    v1 = kms.describe_key(KeyId="alias/envelope-demo-v1")["KeyMetadata"]
    v2 = kms.describe_key(KeyId="alias/envelope-demo-v2")["KeyMetadata"]
    assert (v1["KeyState"], v2["KeyState"]) == ("Disabled", "Enabled")
    assert kms.describe_key(KeyId="alias/envelope-demo")["KeyMetadata"]["Arn"] == v2["Arn"]
    summary = shown(run.stdout, "Show what was done")["msg"]
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
    assert "demo-password" not in output
    # Compact: changes and the summary, no ok or skipped results (468 lines before, 138 now).
    lines = run.stdout.splitlines()
    assert len(lines) < 200, run.stdout
    assert not [line for line in lines if line.startswith(("ok: ", "skipping: "))], run.stdout
    # Each step is announced; the re-deploy shows no change at all.
    redeploy = run.stdout.split("PLAY [2. Re-deploy - nothing to change, no new data key] *", 1)[1]
    assert "changed: " not in redeploy.split("PLAY [3. Rotate", 1)[0]
    # No warning but Ansible's own about the implicit localhost (nothing about rotation periods).
    warnings = [line for line in output.splitlines() if "[WARNING]" in line]
    assert all(any(known in line for known in IMPLICIT_LOCALHOST) for line in warnings), warnings
    # Nothing left behind: the demo's folder is gone, nothing written in the collection or the cwd.
    assert demo_folders(scratch) == []
    assert tree(collection) == before
    assert os.listdir(work) == []


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
