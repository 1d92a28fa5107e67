"""The example inventory with the collection's own playbooks (envelope.kms.deploy_secrets and
envelope.kms.rotate, run by name as a user runs them from the installed collection), followed as its
header says: copied out of the collection, a files/billing.env beside it, the API token in an
ansible-vault file under group_vars/.

Nothing may land inside the collection (a reinstall would delete it, a build would ship it), a
missing secret must stop the run naming it, before any KMS call, and the summaries must say what
happened.
"""

import json
import os
import shutil
import subprocess
import sys
import tarfile

import pytest
import yaml

from tests.harness import esdk

pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
EXAMPLE = os.path.join(ROOT, "playbooks", "inventory", "example.yml")
BIN = os.path.dirname(sys.executable)
HOSTS = ("app1", "app2", "app3")
BILLING_ENV = "DB_PASSWORD=change-me\n"
API_TOKEN = "tok-5c1e9a0b7d"  # noqa: S105 - a test value
VAULT_PASSWORD = "example vault password"  # noqa: S105 - a test value


def collection_files():
    """Every file under the collection's playbooks/ and roles/ (what a run could write into)."""
    found = set()
    for top in ("playbooks", "roles"):
        for folder, _dirs, names in os.walk(os.path.join(ROOT, top)):
            found.update(os.path.join(folder, name) for name in names)
    return found


@pytest.fixture
def project(playbook, tmp_path):
    """The user's project, set up as example.yml's header says; the runner uses its inventory."""
    shutil.copy(EXAMPLE, tmp_path / "inventory.yml")
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "billing.env").write_text(BILLING_ENV)
    (tmp_path / "vault-password").write_text(VAULT_PASSWORD + "\n")
    vault_dir = tmp_path / "group_vars" / "secrets"
    vault_dir.mkdir(parents=True)
    (vault_dir / "vault.yml").write_text(yaml.safe_dump({"vault_billing_api_token": API_TOKEN}))
    subprocess.run([os.path.join(BIN, "ansible-vault"), "encrypt", "--vault-password-file",
                    str(tmp_path / "vault-password"), str(vault_dir / "vault.yml")],
                   check=True, capture_output=True, env=playbook.env())
    (tmp_path / "deployed").mkdir()
    playbook.inventory = str(tmp_path / "inventory.yml")
    return tmp_path


def run(playbook, project, name, *args, **extra_vars):
    """ansible-playbook -i inventory.yml envelope.kms.<name>, files under project/deployed."""
    extra_vars.setdefault("billing_dir", str(project / "deployed"))
    return playbook.run(f"envelope.kms.{name}", "--vault-password-file", str(project / "vault-password"),
                        *args, extra_vars=extra_vars)


def summary(result):
    return "\n".join(result.result("Summarize", "app1")["msg"])


def test_the_example_runs_as_written_and_writes_nothing_into_the_collection(playbook, project, kms, kms_server):
    before = collection_files()
    first = run(playbook, project, "deploy_secrets").assert_ok()
    v1 = kms.describe_key(KeyId="alias/billing-v1")["KeyMetadata"]
    assert f"alias/billing -> alias/billing-v1 ({v1['Arn']})" in summary(first)
    assert "Encrypted now: billing.env.enc, api-token.enc" in summary(first)
    for host in HOSTS:
        for name, plaintext in (("billing.env.enc", BILLING_ENV), ("api-token.enc", API_TOKEN)):
            path = project / "deployed" / f"{host}-{name}"
            assert oct(path.stat().st_mode & 0o777) == "0o640"
            decrypted, header = esdk.decrypt(kms_server, str(path))
            assert decrypted.decode() == plaintext
            assert header.encryption_context["app"] == "billing"
    # The ciphertext cache is beside the inventory, not in the collection's playbooks/ directory.
    assert sorted(os.listdir(project / ".envelope-kms" / "billing")) == ["api-token.enc", "billing.env.enc"]
    assert collection_files() == before
    assert API_TOKEN not in first.stdout

    again = run(playbook, project, "deploy_secrets").assert_ok()
    assert again.changed("app1") == 0
    assert "Encrypted now: nothing (all up to date)" in summary(again)

    rotated = run(playbook, project, "rotate", lifecycle_rotation_id="r1").assert_ok()
    assert "Rotation r1: new key version alias/billing-v2" in summary(rotated)
    assert "Previous key disabled: no" in summary(rotated)
    done = run(playbook, project, "rotate", lifecycle_rotation_id="r1").assert_ok()
    assert done.changed("app1") == 0
    assert "Rotation r1: done already, nothing left to do" in summary(done)
    assert collection_files() == before


def test_check_mode_on_a_new_name_says_nothing_exists_yet(playbook, project, kms, kms_server):
    kms_server.start_recording()
    checked = run(playbook, project, "deploy_secrets", "--check").assert_ok()
    text = summary(checked)
    assert "alias/billing -> alias/billing-v1 (does not exist yet: a real run creates it)" in text
    assert "Would encrypt: every file, once the key exists (check mode)" in text
    assert "Automatic rotation: on, every 180 days" in text
    assert "all up to date" not in text
    assert not kms.list_aliases()["Aliases"] or all(
        not alias["AliasName"].startswith("alias/billing") for alias in kms.list_aliases()["Aliases"])
    mutating = {call for call in kms_server.kms_calls() if not call.startswith(("Describe", "List", "Get"))}
    assert not mutating, mutating
    assert not os.listdir(project / "deployed")


@pytest.mark.parametrize(
    "breakage, message",
    [
        ("no vault file", "'vault_billing_api_token' is undefined"),
        ("no billing.env", "files/billing.env is not a readable file on the controller"),
        ("period 30", "lifecycle_rotation_period_days must be from 90 to 2560 (it is 30)"),
        ("no dest folder", "These folders of lifecycle_files dest do not exist on app1"),
    ],
)
def test_a_missing_secret_or_bad_setting_stops_before_any_kms_call(playbook, project, kms_server, breakage, message):
    extra = {}
    if breakage == "no vault file":
        os.remove(project / "group_vars" / "secrets" / "vault.yml")
    elif breakage == "no billing.env":
        os.remove(project / "files" / "billing.env")
    elif breakage == "no dest folder":
        extra["billing_dir"] = str(project / "deployed" / "missing")
    else:
        extra["lifecycle_rotation_period_days"] = 30
    kms_server.start_recording()
    result = run(playbook, project, "deploy_secrets", **extra)
    assert result.returncode != 0
    failed = json.dumps([r for _name, hosts in result.tasks() for r in hosts.values() if r.get("failed")])
    assert message in failed, failed
    assert "set vault_billing_api_token" not in result.stdout
    assert sum(kms_server.kms_calls().values()) == 0
    assert not os.listdir(project / "deployed")


def test_a_collection_playbook_with_a_host_list_inventory_asks_for_the_cache_dir(playbook, tmp_path, kms_server):
    """-i 'app1,' gives no inventory folder to keep the cache beside: one line, no KMS call, nothing
    written (it once landed in ./None/.envelope-kms)."""
    playbook.inventory = "app1,"
    kms_server.start_recording()
    result = playbook.run("envelope.kms.deploy_secrets", extra_vars={
        "envelope_kms_hosts": "all", "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
        "lifecycle_name": "hostlist", "lifecycle_files": [{"content": "x", "dest": str(tmp_path / "x.enc")}]})
    assert result.returncode != 0
    failed = json.dumps([r for _name, hosts in result.tasks() for r in hosts.values() if r.get("failed")])
    assert "set lifecycle_cache_dir" in failed, failed
    assert sum(kms_server.kms_calls().values()) == 0
    assert not [name for name in os.listdir(tmp_path) if name in ("None", ".envelope-kms", "x.enc")]


def test_example_inventory_parses():
    command = [os.path.join(BIN, "ansible-inventory"), "-i", EXAMPLE, "--list"]
    done = subprocess.run(command, capture_output=True, text=True, check=True,
                          env=dict(os.environ, ANSIBLE_INVENTORY_UNPARSED_FAILED="1"))
    data = json.loads(done.stdout)
    assert data["secrets"]["hosts"] == list(HOSTS)
    host_vars = data["_meta"]["hostvars"]["app1"]
    assert host_vars["lifecycle_name"] == "billing"
    assert [entry["name"] for entry in host_vars["lifecycle_files"]] == ["billing.env.enc", "api-token.enc"]


def test_a_build_after_following_the_example_ships_no_cache_and_no_secret(tmp_path):
    """What the example writes beside a copy of it left inside the collection stays out of the tarball."""
    tree = tmp_path / "envelope-kms"
    listed = subprocess.run(["git", "-C", ROOT, "ls-files", "-z"], capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        target = tree / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if os.path.isfile(os.path.join(ROOT, name)):
            shutil.copy2(os.path.join(ROOT, name), target)
    planted = [
        "playbooks/files/billing.env",
        "playbooks/.envelope-kms/billing/billing.env.enc",
        "playbooks/inventory/.envelope-kms/billing/api-token.enc",
        "playbooks/inventory/files/billing.env",
        "playbooks/inventory/group_vars/secrets/vault.yml",
        ".envelope-kms/billing/x.enc",
    ]
    for name in planted:
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text("secret\n")
    subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--output-path", str(tmp_path)],
                   cwd=tree, check=True, capture_output=True)
    (tarball,) = [path for path in tmp_path.iterdir() if path.name.endswith(".tar.gz")]
    with tarfile.open(tarball) as archive:
        names = set(archive.getnames())
    assert "playbooks/inventory/example.yml" in names and "roles/lifecycle/tasks/prepare.yml" in names
    assert not [name for name in names if ".envelope-kms" in name or name in planted
                or name.startswith(("playbooks/files", "playbooks/inventory/files", "playbooks/inventory/group_vars"))]
