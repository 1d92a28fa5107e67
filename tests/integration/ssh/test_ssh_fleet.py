"""envelope.kms over a real sshd: the copy action with and without become, the host-side modules,
the lookup feeding a template, pipelining off and on.

Every host is the same sshd reached through its own master connection, with its own folder; the
files land on this machine, so the tests read them directly: owner, group, mode, and the content
decrypted by the reference AWS Encryption SDK alone (tests/harness/esdk.py).
"""

import os

import pytest
import yaml

from tests.harness import esdk
from tests.harness.ssh_hosts import APP_USER, DEPLOY_USER

pytestmark = pytest.mark.slow

HOSTS = ["web1", "web2"]
CONTEXT = {"app": "billing"}
SECRETS = {
    "plain": "API_TOKEN=7d1f3c9a-ssh-plain-5e2b\n",
    "root": "db_password=ssh root secret 0c4e91\n",
    "template": "ssh-template-secret-a83f52",
}
# the become user's file: several frames, so the envelope is read back in more than one piece
APP_FILE = "app.bin"
APP_BYTES = (b"envelope.kms over ssh " * 4096)[:200000] + os.urandom(16)


def play(aws_environment):
    """The fleet play: every way a secret reaches a host over ssh. Tags: copy (controller-side
    encryption), host (modules run on the hosts), template (the lookup)."""
    tasks = [
        {"name": "Copy without become", "tags": ["copy"], "envelope.kms.copy": {
            "content": "{{ secret_plain }}", "dest": "{{ host_root }}/plain.env.enc", "key_id": "alias/app",
            "encryption_context": CONTEXT, "mode": "0600"}},
        {"name": "Copy with become to root", "tags": ["copy"], "become": True, "envelope.kms.copy": {
            "content": "{{ secret_root }}", "dest": "{{ host_root }}/root/root.env.enc", "key_id": "alias/app",
            "owner": "root", "group": "root", "mode": "0640"}},
        {"name": "Copy as the app user", "tags": ["copy"], "become": True, "become_user": APP_USER,
         "envelope.kms.copy": {"src": APP_FILE, "dest": "{{ host_root }}/app/app.bin.enc", "key_id": "alias/app",
                               "encryption_context": CONTEXT, "mode": "0600"}},
        {"name": "Copy the file to rewrap once", "tags": ["copy"], "envelope.kms.copy": {
            "content": "{{ secret_plain }}", "dest": "{{ host_root }}/rewrap.env.enc", "key_id": "alias/app",
            "encryption_context": CONTEXT, "force": False}},
        {"name": "Decrypt on the host as root", "tags": ["host"], "become": True, "envelope.kms.decrypt": {
            "src": "{{ host_root }}/root/root.env.enc", "dest": "{{ host_root }}/root/root.env", "mode": "0600"}},
        {"name": "Decrypt on the host as the app user", "tags": ["host"], "become": True, "become_user": APP_USER,
         "envelope.kms.decrypt": {"src": "{{ host_root }}/app/app.bin.enc", "dest": "{{ host_root }}/app/app.bin",
                                  "encryption_context": CONTEXT}},
        {"name": "Rewrap on the host", "tags": ["host"], "envelope.kms.rewrap": {
            "path": "{{ host_root }}/rewrap.env.enc", "key_id": "alias/next", "required_encryption_context": CONTEXT}},
        {"name": "Data key file for the app", "tags": ["host"], "become": True, "become_user": APP_USER,
         "envelope.kms.data_key": {"dest": "{{ host_root }}/app/data.key", "key_id": "alias/app",
                                   "encryption_context": CONTEXT}},
        {"name": "Template fed by the lookup", "tags": ["template"], "become": True, "ansible.builtin.template": {
            "src": "app.conf.j2", "dest": "{{ host_root }}/root/app.conf", "owner": "root", "mode": "0600"}},
    ]
    return [{"name": "Fleet over ssh", "hosts": "targets", "gather_facts": False,
             "environment": aws_environment, "vars": {f"secret_{name}": value for name, value in SECRETS.items()
                                                      if name != "template"}, "tasks": tasks}]


def prepare(fleet, kms, kms_server):
    """The keys (alias/app, alias/next), the controller's files and the play: the playbook's path."""
    kms.create_alias(AliasName="alias/app", TargetKeyId=kms.create_key()["KeyMetadata"]["KeyId"])
    kms.create_alias(AliasName="alias/next", TargetKeyId=kms.create_key()["KeyMetadata"]["KeyId"])
    write_sources(fleet, kms_server)
    return fleet.write(yaml.safe_dump(play(fleet.host_environment()), sort_keys=False), name="site.yml")


def write_sources(fleet, kms_server):
    """The controller's files: the app file, and an envelope the lookup decrypts into the template."""
    with open(os.path.join(fleet.workdir, APP_FILE), "wb") as handle:
        handle.write(APP_BYTES)
    with open(os.path.join(fleet.workdir, "template.enc"), "wb") as handle:
        handle.write(esdk.encrypt(kms_server, ["alias/app"], SECRETS["template"], CONTEXT))
    with open(os.path.join(fleet.workdir, "app.conf.j2"), "w", encoding="utf-8") as handle:
        handle.write("token={{ lookup('envelope.kms.decrypt', playbook_dir ~ '/template.enc',"
                     " encryption_context={'app': 'billing'}) }}\n")


def snapshot(roots):
    """Every file under the hosts' folders: (size, mtime_ns)."""
    found = {}
    for host, root in roots.items():
        for folder, _dirs, files in os.walk(root):
            for name in files:
                path = os.path.join(folder, name)
                stat = os.stat(path)
                found[(host, os.path.relpath(path, root))] = (stat.st_size, stat.st_mtime_ns)
    return found


def check_hosts(fleet, kms_server, kms):
    app_arn = kms.describe_key(KeyId="alias/app")["KeyMetadata"]["Arn"]
    next_arn = kms.describe_key(KeyId="alias/next")["KeyMetadata"]["Arn"]
    for root in fleet.roots.values():
        expected = {
            "plain.env.enc": ((DEPLOY_USER, DEPLOY_USER, 0o600), SECRETS["plain"].encode(), CONTEXT, app_arn),
            "root/root.env.enc": (("root", "root", 0o640), SECRETS["root"].encode(), {}, app_arn),
            "app/app.bin.enc": ((APP_USER, APP_USER, 0o600), APP_BYTES, CONTEXT, app_arn),
            "rewrap.env.enc": ((DEPLOY_USER, DEPLOY_USER, None), SECRETS["plain"].encode(), CONTEXT, next_arn),
        }
        for name, (owner, plaintext, context, arn) in expected.items():
            path = os.path.join(root, name)
            user, group, mode = fleet.server.owner(path)
            assert (user, group) == owner[:2], (path, user, group)
            if owner[2] is not None:
                assert mode == owner[2], (path, oct(mode))
            decrypted, header = esdk.decrypt(kms_server, path)
            assert decrypted == plaintext, path
            assert {k: v for k, v in header.encryption_context.items() if not k.startswith("aws-crypto-")} == context
            assert [key.key_provider.key_info.decode() for key in header.encrypted_data_keys] == [arn], path
        # what the host-side modules wrote, as the users they ran as
        for name, owner, content in (("root/root.env", ("root", "root", 0o600), SECRETS["root"].encode()),
                                     ("app/app.bin", (APP_USER, APP_USER, 0o600), APP_BYTES),
                                     ("root/app.conf", ("root", "root", 0o600),
                                      f"token={SECRETS['template']}\n".encode())):
            path = os.path.join(root, name)
            assert fleet.server.owner(path) == owner, (path, fleet.server.owner(path))
            with open(path, "rb") as handle:
                assert handle.read() == content, path
        data_key = os.path.join(root, "app", "data.key")
        assert fleet.server.owner(data_key)[:2] == (APP_USER, APP_USER)
        with open(data_key, "rb") as handle:
            blob = handle.read()
        plain = kms.decrypt(CiphertextBlob=blob, EncryptionContext=CONTEXT)
        assert plain["KeyId"] == app_arn and len(plain["Plaintext"]) == 32


@pytest.mark.parametrize("pipelining", [False, True], ids=["pipelining-off", "pipelining-on"])
def test_fleet_over_ssh_with_become_check_mode_and_idempotent_rerun(become_fleet, kms, kms_server, pipelining):
    fleet = become_fleet
    fleet.pipelining = pipelining
    fleet.set_hosts(HOSTS)
    site = prepare(fleet, kms, kms_server)

    # Check mode and diff before anything exists: every copy would change, nothing is written.
    kms_server.start_recording()
    checked = fleet.run(site, "--check", "--diff", "--tags", "copy").assert_ok()
    for host in HOSTS:
        assert checked.changed(host) == 4, checked.stats
    assert snapshot(fleet.roots) == {}
    assert set(kms_server.kms_calls()) <= {"DescribeKey", "ListAliases"}, kms_server.kms_calls()

    # The real run: everything in place, as the users it ran as.
    first = fleet.run(site).assert_ok()
    for host in HOSTS:
        assert first.changed(host) == 9, first.stats
    check_hosts(fleet, kms_server, kms)
    before = snapshot(fleet.roots)

    # Re-run: nothing changes, nothing is written, no data key is made.
    kms_server.start_recording()
    second = fleet.run(site).assert_ok()
    assert {host: second.changed(host) for host in HOSTS} == {host: 0 for host in HOSTS}, second.stats
    calls = kms_server.kms_calls()
    assert not [name for name in calls if name.startswith(("GenerateDataKey", "Encrypt", "ReEncrypt"))], calls
    assert snapshot(fleet.roots) == before

    # Check mode and diff with a new secret: the change is shown without the secret, nothing written.
    kms_server.start_recording()
    changed = fleet.run(site, "--check", "--diff", "--tags", "copy",
                        extra_vars={"secret_plain": "API_TOKEN=changed-over-ssh-91c4\n"}).assert_ok()
    for host in HOSTS:
        result = changed.result("Copy without become", host)
        assert result["changed"] is True and result.get("diff"), result
        assert changed.changed(host) == 1, changed.stats
    assert "changed-over-ssh-91c4" not in changed.stdout + changed.stderr
    assert not [name for name in kms_server.kms_calls() if name.startswith("GenerateDataKey")]
    assert snapshot(fleet.roots) == before
