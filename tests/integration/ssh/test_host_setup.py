"""Role envelope.kms.host_setup over ssh with become: check mode, the real run, the re-run, and a
host-side module run as an unprivileged become user with the Python it prepared."""

import os

import pytest
import yaml

from tests.harness.ssh_hosts import APP_USER
from tests.integration.ssh.conftest import PIP_ENVIRONMENT, SYSTEM_PYTHON

pytestmark = pytest.mark.slow

ROLE_TASKS = ("Check the settings", "Install boto3, botocore and the AWS Encryption SDK",
              "Check that the prepared Python imports the libraries", "Record the prepared Python")


def test_host_setup_prepares_a_venv_idempotently_and_the_modules_run_with_it(fleet, kms, kms_server):
    venv = os.path.join(fleet.server.root, "venvs", os.path.basename(fleet.workdir)[-20:])
    python = os.path.join(venv, "bin", "python")
    # The inventory already names the virtualenv's Python, before it exists: the role runs with
    # host_setup_python (Debian's python3, which has no boto3), the module after it with the venv.
    fleet.python = python
    fleet.set_hosts(["app1"])
    key = kms.create_key()["KeyMetadata"]
    plays = [{
        "name": "Prepare the hosts", "hosts": "targets", "gather_facts": False, "become": True,
        "environment": PIP_ENVIRONMENT,
        "roles": [{"role": "envelope.kms.host_setup",
                   "vars": {"host_setup_virtualenv": venv, "host_setup_python": SYSTEM_PYTHON}}],
    }, {
        "name": "Use them", "hosts": "targets", "tags": ["use"], "gather_facts": False, "become": True, "become_user": APP_USER,
        "environment": fleet.host_environment(),
        "tasks": [{"name": "Data key file", "envelope.kms.data_key": {
            "dest": "{{ host_root }}/app/data.key", "key_id": key["Arn"]}}],
    }]
    site = fleet.write(yaml.safe_dump(plays, sort_keys=False), name="site.yml")
    data_key = os.path.join(fleet.roots["app1"], "app", "data.key")

    # (the second play is left out: in check mode its interpreter does not exist yet)
    checked = fleet.run(site, "--check", "--skip-tags", "use").assert_ok()
    assert checked.result("envelope.kms.host_setup : Install boto3, botocore and the AWS Encryption SDK",
                          "app1")["changed"] is True
    assert not os.path.exists(venv), "check mode created the virtualenv"
    assert checked.result("envelope.kms.host_setup : Check that the prepared Python imports the libraries",
                          "app1").get("skipped") is True
    assert not os.path.exists(data_key)
    # no virtualenv yet: nothing to point the interpreter at
    assert checked.result("envelope.kms.host_setup : Record the prepared Python",
                          "app1")["ansible_facts"]["host_setup_ready"] is False

    first = fleet.run(site).assert_ok()
    facts = first.result("envelope.kms.host_setup : Record the prepared Python", "app1")["ansible_facts"]
    assert facts["host_setup_interpreter"] == python and facts["host_setup_ready"] is True
    assert set(facts["host_setup_versions"]) == {"boto3", "botocore", "aws-encryption-sdk"}
    assert first.result("Data key file", "app1")["changed"] is True
    assert fleet.server.owner(data_key)[:2] == (APP_USER, APP_USER)
    assert fleet.server.owner(python)[0] == "root"
    assert os.stat(os.path.join(venv, "lib")).st_mode & 0o005 == 0o005, "the venv must be readable by any user"

    second = fleet.run(site).assert_ok()
    assert second.changed("app1") == 0, second.stats
    for task in ROLE_TASKS:
        assert second.result(f"envelope.kms.host_setup : {task}", "app1").get("failed") is not True


def test_host_setup_refuses_bad_settings_before_installing(fleet):
    fleet.set_hosts(["bad1"])
    run = fleet.run([{"name": "Prepare", "ansible.builtin.include_role": {"name": "envelope.kms.host_setup"},
                      "vars": {"host_setup_virtualenv": "relative/venv", "host_setup_packages": "boto3"}}])
    assert run.returncode != 0
    result = run.result("envelope.kms.host_setup : Check the settings", "bad1")
    assert result["failed"] is True
    assert "host_setup needs host_setup_python as an absolute path" in result["msg"]
    # stopped there: nothing installed
    assert [name.split(" : ")[-1] for name, hosts in run.tasks() if "bad1" in hosts][-1] == "Check the settings"


def test_a_host_without_the_libraries_gets_one_line_naming_them(fleet):
    """What host_setup is for: Debian's python3 has neither boto3 nor the Encryption SDK."""
    fleet.set_hosts(["bare1"])
    run = fleet.run([{"name": "Decrypt", "envelope.kms.decrypt": {
        "src": "{{ host_root }}/missing.enc", "dest": "{{ host_root }}/missing"}}])
    assert run.returncode != 0
    result = run.result("Decrypt", "bare1")
    assert result["failed"] is True
    assert "boto3" in result["msg"] and SYSTEM_PYTHON in result["msg"], result["msg"]
    assert "Traceback" not in result["msg"]
