"""The SSH test tier: the real ansible-playbook over a real OpenSSH server on 127.0.0.1.

One sshd per xdist worker (tests/harness/ssh_hosts.py), users envelope-deploy (login, passwordless
sudo) and envelope-app (an unprivileged become user). The hosts' Python for the host-side modules
is a virtualenv that the role envelope.kms.host_setup builds from Debian's python3 (the machine's
own Python lives under /root, 0700, where the login and become users cannot reach it).

Without sshd, sudo or acl, or not as root, the tier is skipped, except in CI (CI set), where it
fails: `make integration` installs them (tools/system_packages.sh).
"""

import fcntl
import hashlib
import os
import subprocess

import pytest
import yaml

from tests.harness.playbook import PlaybookRunner
from tests.harness.ssh_hosts import SshServer, missing_tools

SYSTEM_PYTHON = "/usr/bin/python3"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
with open(os.path.join(ROOT, "requirements.txt"), "rb") as _requirements:
    # a new venv when the collection's requirements change
    HOST_VENV = "/opt/envelope-kms-tests/venv-" + hashlib.sha256(_requirements.read()).hexdigest()[:12]
HOST_PYTHON = HOST_VENV + "/bin/python"
# pip's settings of the machine (index, find-links, proxy), which sudo would drop on the way to the host
PIP_ENVIRONMENT = {name: value for name, value in os.environ.items()
                   if name.startswith("PIP_") or name.lower() in ("http_proxy", "https_proxy", "no_proxy")}


@pytest.fixture(scope="session")
def ssh_server():
    missing = missing_tools()
    if missing or os.geteuid() != 0:
        # every test here uses become; the harness's fallback for a user who is not root (sshd as
        # that user, no become) serves `ssh_hosts.py run` by hand
        message = (f"the SSH test tier needs {', '.join(missing)} (make system, as root)" if missing
                   else "the SSH test tier creates its users and becomes them: run as root")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with SshServer() as server:
        yield server


class SshRunner(PlaybookRunner):
    """PlaybookRunner whose hosts are the sshd's, each with its own folder ({{ host_root }})."""

    def __init__(self, workdir, environment, server, python):
        self.server = server
        self.python = python
        self.pipelining = False
        super().__init__(workdir, environment)

    def set_hosts(self, hosts):
        if hosts == ["localhost"]:  # PlaybookRunner's default, before the test names its hosts
            hosts = []
        # folders (and master connections) of this test's own: the same names in another test differ
        prefix = os.path.basename(self.workdir)[-20:].strip("_-[]").replace("[", "-").replace("]", "")
        folders = [f"{prefix}-{host}" for host in hosts]
        self.server.make_hosts(folders)
        with open(self.inventory, "w", encoding="utf-8") as handle:
            handle.write("\n".join(self.server.inventory_lines(hosts, self.python, folders=folders)) + "\n")
        self.roots = {host: self.server.host_root(folder) for host, folder in zip(hosts, folders)}

    def env(self):
        env = super().env()
        env.pop("ANSIBLE_REMOTE_TEMP")  # the inventory's ansible_remote_tmp: a folder every user reaches
        env.update({
            "ANSIBLE_PIPELINING": "1" if self.pipelining else "0",
            "ANSIBLE_HOST_KEY_CHECKING": "0",
            "ANSIBLE_SSH_CONTROL_PATH_DIR": self.server.control_dir,
        })
        return env

    def host_environment(self):
        """AWS settings for the modules that run on the hosts (a play's `environment:`)."""
        return dict(self.environment)


def build_host_python(server, kms_server):
    """The hosts' virtualenv, built once per machine by envelope.kms.host_setup over ssh (locked:
    the xdist workers share it)."""
    with open("/tmp/envelope-kms-host-venv.lock", "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(HOST_PYTHON):
            probe = subprocess.run([HOST_PYTHON, "-c", "import boto3, aws_encryption_sdk"], check=False)
            if probe.returncode == 0:
                return HOST_PYTHON
        workdir = os.path.join(server.root, "host-setup")
        os.makedirs(workdir)
        runner = SshRunner(workdir, kms_server.environment(), server, SYSTEM_PYTHON)
        runner.set_hosts(["setup"])
        site = runner.write(yaml.safe_dump([{
            "name": "Prepare the hosts' Python", "hosts": "targets", "gather_facts": False, "become": True,
            "environment": PIP_ENVIRONMENT,
            "roles": [{"role": "envelope.kms.host_setup", "vars": {"host_setup_virtualenv": HOST_VENV}}],
        }], sort_keys=False))
        run = runner.run(site)
        run.assert_ok()
        return HOST_PYTHON


@pytest.fixture(scope="session")
def host_python(ssh_server, kms_server):
    return build_host_python(ssh_server, kms_server)


@pytest.fixture
def fleet(ssh_server, kms, kms_server, tmp_path):
    """Runs playbooks over ssh against the (reset) local KMS endpoint; hosts use Debian's python3."""
    return SshRunner(tmp_path, kms_server.environment(), ssh_server, SYSTEM_PYTHON)


@pytest.fixture
def become_fleet(fleet, host_python):
    """As ``fleet``, with become possible and the hosts' Python able to run the host-side modules."""
    fleet.python = host_python
    return fleet
