"""The playbooks under playbooks/ through the real ansible-playbook against the local KMS endpoint."""

import json
import os
import subprocess
import sys

import pytest

from ansible_collections.envelope.kms.plugins.module_utils.envelope import inspect_header

pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PLAYBOOKS = os.path.join(ROOT, "playbooks")


def test_demo_runs_the_whole_workflow_and_prints_the_summary(playbook, kms, monkeypatch, tmp_path):
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the demo's folders (tempfile) go under the test's
    run = playbook.run(os.path.join(PLAYBOOKS, "demo.yml")).assert_ok()
    summary = run.result("Show what was done")["msg"]
    text = "\n".join(summary)
    v1 = kms.describe_key(KeyId="alias/envelope-demo-v1")["KeyMetadata"]
    v2 = kms.describe_key(KeyId="alias/envelope-demo-v2")["KeyMetadata"]
    assert (v1["KeyState"], v2["KeyState"]) == ("Disabled", "Enabled")
    assert kms.describe_key(KeyId="alias/envelope-demo")["KeyMetadata"]["Arn"] == v2["Arn"]
    assert f"alias/envelope-demo-v1: {v1['Arn']} (Disabled)" in text
    assert f"alias/envelope-demo, alias/envelope-demo-v2: {v2['Arn']} (Enabled)" in text
    assert "Automatic rotation of alias/envelope-demo-v2: on, every 180 days" in text
    assert "3 cached files rewrapped" in text
    assert "Files deployed: 3 on each of web1, web2, web3" in text
    assert "s3://envelope-kms-demo/envelope-demo/app.env.enc" in text
    # KMS calls by step, from the endpoint's recorder: one data key per secret, none on the re-run.
    steps = {line.split(":")[0].strip(): line for line in summary if line.startswith("  ")
             and line.strip()[:2] in ("1.", "2.", "3.")}
    assert "GenerateDataKey 3" in steps["1. deploy"]
    assert "GenerateDataKey" not in steps["2. re-deploy"]
    assert "GenerateDataKey 3" in steps["3. rotate"]
    for host in ("web1", "web2", "web3"):
        assert run.result("Compare with the secrets", host)["msg"] == f"{host}: 3 files decrypt to their secrets"
    demo_dirs = [name for name in os.listdir(tmp_path) if name.startswith("envelope-kms-demo-")]
    assert len(demo_dirs) == 1
    deployed = os.path.join(tmp_path, demo_dirs[0], "hosts", "web3", "app.env.enc")
    assert inspect_header(deployed).key_arns == (v2["Arn"],)
    assert "demo-password" not in run.stdout


def test_deploy_secrets_then_rotate(playbook, kms, kms_server, tmp_path):
    playbook.set_hosts(["app1", "app2"])
    settings = {
        "envelope_kms_hosts": "targets",
        "lifecycle_name": "payroll",
        "lifecycle_cache_dir": str(tmp_path / "cache"),
        "lifecycle_files": [{"content": "token=7e1f\n", "dest": "{{ host_dir }}/token.enc",
                             "encryption_context": {"app": "payroll"}}],
    }
    deploy = os.path.join(PLAYBOOKS, "deploy_secrets.yml")
    rotate = os.path.join(PLAYBOOKS, "rotate.yml")

    first, second = playbook.run_idempotent(deploy, extra_vars=settings)
    v1 = kms.describe_key(KeyId="alias/payroll-v1")["KeyMetadata"]
    assert first.changed("app2") == 1
    assert f"alias/payroll -> alias/payroll-v1 ({v1['Arn']})" in first.result("Summarize", "app1")["msg"]
    assert "Encrypted now: nothing (all up to date)" in second.result("Summarize", "app1")["msg"]

    rotated, again = playbook.run_idempotent(
        rotate, extra_vars=dict(settings, lifecycle_rotation_id="q3", lifecycle_disable_previous_key=True))
    v2 = kms.describe_key(KeyId="alias/payroll-v2")["KeyMetadata"]
    assert kms.describe_key(KeyId="alias/payroll-v1")["KeyMetadata"]["KeyState"] == "Disabled"
    summary = rotated.result("Summarize", "app1")["msg"]
    assert "Rotation q3: new" in summary
    assert f"Previous key disabled: {v1['Arn']}" in summary
    assert "Rotation q3: resume" in again.result("Summarize", "app1")["msg"]
    for host in ("app1", "app2"):
        assert inspect_header(os.path.join(playbook.workdir, "hosts", host, "token.enc")).key_arns == (v2["Arn"],)


def test_example_inventory_parses():
    inventory = os.path.join(PLAYBOOKS, "inventory", "example.yml")
    command = [os.path.join(os.path.dirname(sys.executable), "ansible-inventory"), "-i", inventory, "--list"]
    done = subprocess.run(command, capture_output=True, text=True, check=True,
                          env=dict(os.environ, ANSIBLE_INVENTORY_UNPARSED_FAILED="1"))
    data = json.loads(done.stdout)
    assert data["secrets"]["hosts"] == ["app1.example.com", "app2.example.com", "app3.example.com"]
    host_vars = data["_meta"]["hostvars"]["app1.example.com"]
    assert host_vars["lifecycle_name"] == "billing"
    assert [entry["dest"] for entry in host_vars["lifecycle_files"]] == [
        "/etc/billing/billing.env.enc", "/etc/billing/api-token.enc"]
