"""Every plugin type without its dependencies: one line naming what is missing and how to get it.

The collection is built and installed with ``ansible-galaxy collection install --no-deps`` into a
collections path of its own (nothing else on it but ansible.posix, for the json callback these
tests read), so amazon.aws is missing as it is for a user who installed it that way. The controller
libraries (boto3 and botocore, the AWS Encryption SDK) are hidden by packages on PYTHONPATH whose
import fails, with amazon.aws present (modules run on the host, with its own libraries: not in
those runs). No plugin may get as far as KMS: the endpoint is a closed port, which would show.
"""

import os
import subprocess
import sys

import pytest

from ansible_collections.envelope.kms.plugins.plugin_utils import requirements
from tests.harness.playbook import COLLECTIONS_PATH, ROOT, PlaybookRunner
from tests.harness.vars_files import ANSIBLE_INVENTORY, VARS_ENABLED, write_text

pytestmark = pytest.mark.slow  # six ansible runs and a build: about a minute on a busy machine

ANSIBLE_GALAXY = os.path.join(os.path.dirname(sys.executable), "ansible-galaxy")
ACTIONS = ("copy", "encrypt", "vars_file", "load_vars", "vault_rekey")
CLIENT = os.path.join(COLLECTIONS_PATH, "ansible_collections", "envelope", "kms", "scripts", "envelope_kms_client.py")
SEALED = 'token: "envelope-kms:v1:AAAA"\n'  # any sealed value makes the vars plugin want the engine


class Runner(PlaybookRunner):
    """ansible-playbook and ansible-inventory on one collections path, with PYTHONPATH."""

    def __init__(self, workdir, collections, pythonpath=None):
        super().__init__(workdir, {
            "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing-access", "AWS_SECRET_ACCESS_KEY": "testing-secret",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # closed: a KMS call fails the assertions on messages
        })
        self.collections = collections
        self.pythonpath = pythonpath

    def env(self):
        env = super().env()
        env.update(ANSIBLE_COLLECTIONS_PATH=self.collections, ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false")
        env.pop("PYTHONPATH", None)
        if self.pythonpath:
            env["PYTHONPATH"] = self.pythonpath
        return env

    def inventory_list(self):
        return subprocess.run([ANSIBLE_INVENTORY, "-i", self.inventory, "--list"], env=dict(self.env(),
                              ANSIBLE_VARS_ENABLED=VARS_ENABLED), cwd=self.workdir, capture_output=True, text=True,
                              check=False)


def tasks(workdir, modules=True):
    """One failing task per plugin (and the vault_password_file lookup, which needs nothing)."""
    def task(name, action, args):
        return {"name": name, action: args, "ignore_errors": True}

    dest = os.path.join(workdir, "out")
    controller = [
        task("copy", "envelope.kms.copy", dict(src=os.path.join(workdir, "plain.txt"), dest=dest + ".copy",
                                               key_id="alias/app")),
        task("encrypt", "envelope.kms.encrypt", dict(content="x", dest=dest + ".enc", key_id="alias/app")),
        task("vars_file", "envelope.kms.vars_file", dict(path=dest + ".kms.yml", values={"a": "b"}, key_id="alias/app")),
        task("load_vars", "envelope.kms.load_vars", dict(file=os.path.join(workdir, "sealed.kms.yml"))),
        task("vault_rekey", "envelope.kms.vault_rekey", dict(paths=[os.path.join(workdir, "plain.txt")],
                                                             vault_id="prod")),
        task("lookup", "ansible.builtin.set_fact", {"value": "{{ lookup('envelope.kms.decrypt', 'plain.txt') }}"}),
        task("filter", "ansible.builtin.set_fact", {"value": "{{ 'envelope-kms:v1:AAAA' | envelope.kms.decrypt }}"}),
        task("vault_password_file", "ansible.builtin.set_fact",
             {"value": "{{ lookup('envelope.kms.vault_password_file', 'prod') }}"}),
    ]
    if not modules:
        return controller
    return controller + [
        task("key_info", "envelope.kms.key_info", {}),
        task("decrypt module", "envelope.kms.decrypt", dict(src=dest + ".enc", return_content=True)),
    ]


def plugin_name(task_name):
    """How the plugin a task of tasks() runs names itself in its messages."""
    return {"lookup": "envelope.kms.decrypt lookup", "filter": "envelope.kms.decrypt filter"}.get(
        task_name, f"envelope.kms.{task_name}")


def prepare(workdir):
    write_text(os.path.join(workdir, "plain.txt"), "x\n")
    write_text(os.path.join(workdir, "sealed.kms.yml"), SEALED)
    write_text(os.path.join(workdir, "group_vars", "all.kms.yml"), SEALED)


def assert_one_line(run, names, line_of):
    """Each task in ``names`` failed with exactly ``line_of(name)`` in its one-line message."""
    for name in names:
        result = run.result(name)
        assert result.get("failed") is True, (name, result)
        assert line_of(name) in result["msg"], (name, result["msg"])
        assert "\n" not in result["msg"], (name, result["msg"])


def assert_no_traceback(*outputs):
    for output in outputs:
        assert "Traceback" not in output
        assert "probably a bug" not in output


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A collections path holding envelope.kms installed from its built tarball with --no-deps,
    and ansible.posix (a link) for the json callback; no amazon.aws."""
    base = tmp_path_factory.mktemp("no-deps")
    dist = base / "dist"
    built = subprocess.run([ANSIBLE_GALAXY, "collection", "build", "--force", "--output-path", str(dist), ROOT],
                           capture_output=True, text=True, check=False)
    assert built.returncode == 0, built.stdout + built.stderr
    (tarball,) = dist.glob("envelope-kms-*.tar.gz")
    collections = base / "collections"
    # only this path configured: else a copy installed elsewhere (.build/collections) is "already installed"
    done = subprocess.run([ANSIBLE_GALAXY, "collection", "install", "--no-deps", "--offline", "-p", str(collections),
                           str(tarball)], capture_output=True, text=True, check=False,
                          env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections),
                                   ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false"))
    assert done.returncode == 0, done.stdout + done.stderr
    namespaces = collections / "ansible_collections"
    assert sorted(os.listdir(namespaces)) == ["envelope"]
    (namespaces / "ansible").mkdir()
    os.symlink(os.path.join(COLLECTIONS_PATH, "ansible_collections", "ansible", "posix"), namespaces / "ansible" / "posix")
    return str(collections)


def test_without_amazon_aws_each_plugin_says_so_in_one_line(installed, tmp_path):
    runner = Runner(tmp_path, installed)
    prepare(runner.workdir)
    run = runner.run(tasks(runner.workdir))
    assert_no_traceback(run.stdout, run.stderr)

    def ours(name):
        return requirements.missing_collection(plugin_name(name), ModuleNotFoundError(
            "No module named 'ansible_collections.amazon'", name="ansible_collections.amazon"))

    assert_one_line(run, ACTIONS + ("lookup", "filter"), ours)
    assert ours("copy") == ("envelope.kms.copy needs the amazon.aws collection (>= 9.0.0), which is not installed: "
                            "ansible-galaxy collection install amazon.aws (or pip install ansible)")
    # modules: ansible-core refuses to build them, in one line naming the collection, before they run
    assert_one_line(run, ("key_info", "decrypt module"), lambda name: "unable to locate collection amazon.aws")
    # makes no AWS call, needs nothing of amazon.aws
    assert run.result("vault_password_file")["ansible_facts"]["value"].endswith("/vault-passwords/prod.enc")

    inventory = runner.inventory_list()
    assert inventory.returncode != 0
    assert inventory.stderr.strip().splitlines() == [f"[ERROR]: {ours('vars')}"], inventory.stderr
    assert_no_traceback(inventory.stdout, inventory.stderr)


def hide(folder, modules):
    """A PYTHONPATH folder on which importing any of ``modules`` fails as if it were not installed."""
    for module in modules:
        write_text(os.path.join(folder, module, "__init__.py"),
                   f"raise ModuleNotFoundError(\"No module named '{module}' (hidden for this test)\", name={module!r})\n")
    return folder


@pytest.mark.parametrize("hidden, named", [
    (("boto3", "botocore"), "the Python libraries boto3 and botocore on the controller, which are not installed for "),
    (("aws_encryption_sdk",), "the Python library aws-encryption-sdk (>= 3.3.0) on the controller, which is not "
                              "installed for "),
], ids=["boto3-botocore", "aws-encryption-sdk"])
def test_without_the_controller_libraries_each_plugin_says_so_in_one_line(tmp_path, hidden, named):
    runner = Runner(tmp_path, COLLECTIONS_PATH, hide(str(tmp_path / "hidden"), hidden))
    prepare(runner.workdir)
    run = runner.run(tasks(runner.workdir, modules=False))
    assert_no_traceback(run.stdout, run.stderr)
    assert_one_line(run, ACTIONS + ("lookup", "filter"), lambda name: f"{plugin_name(name)} needs {named}")
    install = "-m pip install " + ("boto3 botocore" if "boto3" in hidden else "'aws-encryption-sdk>=3.3.0'")
    assert install in run.result("copy")["msg"]
    assert run.result("vault_password_file")["ansible_facts"]["value"].endswith("/vault-passwords/prod.enc")

    inventory = runner.inventory_list()
    assert inventory.returncode != 0
    (line,) = inventory.stderr.strip().splitlines()
    assert line.startswith(f"[ERROR]: envelope.kms.vars needs {named}"), inventory.stderr
    assert_no_traceback(inventory.stdout, inventory.stderr)

    # the vault password client (no amazon.aws needed) says the same in its own words
    write_text(os.path.join(runner.workdir, "vault-passwords", "prod.enc"), "not read\n")
    client = subprocess.run([sys.executable, CLIENT, "--vault-id", "prod"], env=runner.env(), cwd=runner.workdir,
                            capture_output=True, text=True, check=False)
    assert client.returncode == 1
    assert client.stderr.startswith(f"envelope-kms-client: the vault password client needs {named}"), client.stderr
    assert client.stderr.count("\n") == 1
