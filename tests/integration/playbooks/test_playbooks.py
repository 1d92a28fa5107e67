"""deploy_secrets.yml and rotate.yml through the real ansible-playbook against the local KMS endpoint
(the demo: test_demo.py; the example inventory: test_example_playbooks.py)."""

import os

import pytest

from ansible_collections.envelope.kms.plugins.module_utils.envelope import inspect_header

pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PLAYBOOKS = os.path.join(ROOT, "playbooks")


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
    assert "Rotation q3: new key version alias/payroll-v2" in summary
    assert f"Previous key disabled: {v1['Arn']} (now)" in summary
    # The re-run with nothing left to do says so (it used to say "resume" and "disabled" again).
    summary_again = again.result("Summarize", "app1")["msg"]
    assert "Rotation q3: done already, nothing left to do" in summary_again
    assert f"Previous key disabled: {v1['Arn']} (already)" in summary_again
    for host in ("app1", "app2"):
        assert inspect_header(os.path.join(playbook.workdir, "hosts", host, "token.enc")).key_arns == (v2["Arn"],)
