"""The envelope-kms-client vault password client script with the real ansible-playbook and
ansible-vault (issue #13), against the local KMS endpoint.

ansible-core runs the script as ``--vault-id prod@<script>`` (or from ``vault_identity_list`` in
ansible.cfg) and reads the password on its stdout; the password sits in a KMS envelope whose
encryption context ``ansible-vault-id=<label>`` is checked on every read. Vault files are made here
with ansible-core's VaultLib and the password the client prints.
"""

import os
import shutil
import subprocess

import pytest

from ansible_collections.envelope.kms.plugins.module_utils.envelope import Engine, inspect_header
from tests.harness import leaks
from tests.harness.playbook import ANSIBLE_PLAYBOOK
from tests.harness.vars_files import write_text as write
from tests.harness.vault_tree import CLIENT, PROG, ansible_vault, client_error_line, client_password, encrypt, \
    in_ansible_error, inline, isolated_collection, no_credentials, read_bytes, run_client, vault_env

WHOLE = "whole_secret: whole-file value 7f2c\nwhole_port: 5432\n"
INLINE_SECRET = "inline value 93ab"
DEV_SECRET = "dev only value 51e0"
CONTEXT_KEY = "ansible-vault-id"
OTHER_ARN = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000"


def write_bytes(path, data):
    with open(path, "wb") as handle:
        handle.write(data)
    return path


def create(env, cwd, label, key):
    """Make the envelope of ``label`` with the client's --create; returns its path."""
    done = run_client(env, cwd, "--vault-id", label, "--create", "--key-id", key)
    path = os.path.join(cwd, "vault-passwords", f"{label}.enc")
    assert (done.returncode, done.stdout) == (0, ""), done.stderr
    assert done.stderr == f"{PROG}created envelope for vault id {label}: {path}\n"
    return path


def facts_of(kms, path, label):
    """(password bytes, key ARNs) of an envelope, read with the collection's engine and the
    context the client requires."""
    plaintext, facts = Engine(kms).decrypt_bytes(path, {CONTEXT_KEY: label})
    return plaintext, list(facts.key_arns)


def vaulted_group_vars(playbook, password, label="prod"):
    """group_vars/targets/ beside the runner's inventory: vault.yml (a whole-file vault) and
    main.yml (a clear value and an inline !vault value)."""
    group = os.path.join(playbook.workdir, "group_vars", "targets")
    vault_file = write(os.path.join(group, "vault.yml"), encrypt(WHOLE, password, label) + "\n")
    write(os.path.join(group, "main.yml"),
          "plain_value: clear 12\n" + inline("inline_secret", INLINE_SECRET, password, vault_id=label))
    return vault_file


def raw_playbook(playbook, env, *args):
    """ansible-playbook on a play printing plain_value, as a CompletedProcess (for runs that fail
    before the callback prints anything)."""
    path = playbook.write("- hosts: targets\n  gather_facts: false\n  tasks:\n"
                          "    - ansible.builtin.debug: var=plain_value\n")
    return subprocess.run([ANSIBLE_PLAYBOOK, "-i", playbook.inventory, path, *args], env=env, cwd=playbook.workdir,
                          capture_output=True, text=True, check=False)


def check_vars_tasks(**expected):
    return [{"name": f"Check {name}", "ansible.builtin.assert": {"that": [f"{name} == {value!r}"], "quiet": True}}
            for name, value in expected.items()]


PROD_VARS = dict(whole_secret="whole-file value 7f2c", whole_port=5432, plain_value="clear 12",
                 inline_secret=INLINE_SECRET)


@pytest.mark.slow
def test_playbook_and_ansible_vault_read_vaulted_vars_through_the_client(playbook, kms, kms_server, app_key):
    env = vault_env(playbook)
    workdir = playbook.workdir
    envelope = create(env, workdir, "prod", app_key.alias)
    assert oct(os.stat(envelope).st_mode & 0o777) == "0o600"
    created = read_bytes(envelope)
    kept = run_client(env, workdir, "--vault-id", "prod", "--create", "--key-id", app_key.alias)
    assert (kept.returncode, kept.stdout) == (0, "")
    assert kept.stderr == f"{PROG}kept the existing envelope for vault id prod: {envelope}\n"
    assert read_bytes(envelope) == created

    kms_server.start_recording()
    password = client_password(env, workdir, "prod")
    assert kms_server.kms_calls() == {"Decrypt": 1}
    plaintext, key_arns = facts_of(kms, envelope, "prod")
    assert plaintext == password.encode() and len(password) == 64
    assert key_arns == [app_key.arn]

    vault_file = vaulted_group_vars(playbook, password)
    kms_server.start_recording()
    run = playbook.run(check_vars_tasks(**PROD_VARS), "--vault-id", f"prod@{CLIENT}").assert_ok()
    assert kms_server.kms_calls() == {"Decrypt": 1}  # the client ran once for the whole run
    assert not leaks.Needles().add("password", password).search(run.stdout + run.stderr)

    viewed = ansible_vault(env, workdir, "view", "--vault-id", f"prod@{CLIENT}", vault_file)
    assert (viewed.returncode, viewed.stdout) == (0, WHOLE), viewed.stderr

    # vault_identity_list in an ansible.cfg named by ANSIBLE_CONFIG (elsewhere): its
    # [envelope_kms_vault] password_file is relative to it
    config = write(os.path.join(workdir, "conf", "ansible.cfg"),
                   f"[defaults]\nvault_identity_list = prod@{CLIENT}\n\n"
                   "[envelope_kms_vault]\npassword_file = ../vault-passwords/{label}.enc\n")
    by_config = vault_env(playbook, ANSIBLE_CONFIG=config)
    viewed = ansible_vault(by_config, os.path.join(workdir, "conf"), "view", vault_file)
    assert (viewed.returncode, viewed.stdout) == (0, WHOLE), viewed.stderr

    # ... and an ansible.cfg in the current directory (the envelope beside it by default)
    write(os.path.join(workdir, "ansible.cfg"), f"[defaults]\nvault_identity_list = prod@{CLIENT}\n")
    viewed = ansible_vault(env, workdir, "view", vault_file)
    assert (viewed.returncode, viewed.stdout) == (0, WHOLE), viewed.stderr
    playbook.run(check_vars_tasks(**PROD_VARS)).assert_ok()


class TwoVaultIds:
    """The password envelopes of vault ids prod (under app_key) and dev (under a second key)."""

    def __init__(self, playbook, kms, app_key):
        self.env = vault_env(playbook)
        self.workdir = playbook.workdir
        self.dev_key = kms.create_key()["KeyMetadata"]
        self.prod_envelope = create(self.env, self.workdir, "prod", app_key.arn)
        self.dev_envelope = create(self.env, self.workdir, "dev", self.dev_key["Arn"])


@pytest.fixture
def two_vault_ids(playbook, kms, app_key):
    return TwoVaultIds(playbook, kms, app_key)


@pytest.mark.slow
def test_two_vault_ids_under_two_keys_in_one_run(playbook, kms_server, app_key, two_vault_ids):
    env, workdir, dev_key = two_vault_ids.env, two_vault_ids.workdir, two_vault_ids.dev_key
    prod_envelope, dev_envelope = two_vault_ids.prod_envelope, two_vault_ids.dev_envelope
    assert list(inspect_header(read_bytes(prod_envelope)).key_arns) == [app_key.arn]
    assert list(inspect_header(read_bytes(dev_envelope)).key_arns) == [dev_key["Arn"]]
    assert inspect_header(read_bytes(dev_envelope)).encryption_context == {CONTEXT_KEY: "dev"}
    prod_password = client_password(env, workdir, "prod")
    dev_password = client_password(env, workdir, "dev")
    assert prod_password != dev_password

    vaulted_group_vars(playbook, prod_password)
    dev_file = write(os.path.join(workdir, "group_vars", "targets", "dev.yml"),
                     encrypt(f"dev_secret: {DEV_SECRET}\n", dev_password, "dev") + "\n")
    tasks = check_vars_tasks(dev_secret=DEV_SECRET, **PROD_VARS)

    kms_server.start_recording()
    playbook.run(tasks, "--vault-id", f"dev@{CLIENT}", "--vault-id", f"prod@{CLIENT}").assert_ok()
    assert kms_server.kms_calls() == {"Decrypt": 2}  # each label's client once

    viewed = ansible_vault(env, workdir, "view", "--vault-id", f"prod@{CLIENT}", "--vault-id", f"dev@{CLIENT}",
                           dev_file)
    assert (viewed.returncode, viewed.stdout) == (0, f"dev_secret: {DEV_SECRET}\n"), viewed.stderr

    # prod's password alone does not open dev's file
    only_prod = raw_playbook(playbook, env, "--vault-id", f"prod@{CLIENT}")
    assert only_prod.returncode != 0
    assert "Decryption failed (no vault secrets were found that could decrypt)" in only_prod.stderr


def test_envelope_path_rules(playbook):
    """--print-path (no KMS call): the variable, ansible.cfg's password_file, the inventory that
    ANSIBLE_INVENTORY or ansible.cfg names, ansible.cfg's folder, else the current directory."""
    env = vault_env(playbook)
    workdir = playbook.workdir

    def path_of(label="prod", cwd=workdir, **changes):
        done = run_client(dict(env, **changes), cwd, "--vault-id", label, "--print-path")
        assert (done.returncode, done.stderr) == (0, ""), done.stderr
        return done.stdout

    assert path_of() == os.path.join(workdir, "vault-passwords", "prod.enc") + "\n"
    assert path_of("dev.eu-1") == os.path.join(workdir, "vault-passwords", "dev.eu-1.enc") + "\n"
    assert path_of(ENVELOPE_KMS_VAULT_PASSWORD_FILE="/srv/pw/{label}.kms") == "/srv/pw/prod.kms\n"
    assert path_of(ENVELOPE_KMS_VAULT_PASSWORD_FILE="keys/{label}.kms") == os.path.join(workdir, "keys",
                                                                                        "prod.kms") + "\n"
    os.makedirs(os.path.join(workdir, "inv"))
    write(os.path.join(workdir, "inv", "hosts.ini"), "localhost\n")
    assert path_of(ANSIBLE_INVENTORY=os.path.join(workdir, "inv", "hosts.ini")) == os.path.join(
        workdir, "inv", "vault-passwords", "prod.enc") + "\n"
    assert path_of(ANSIBLE_INVENTORY=os.path.join(workdir, "inv")) == os.path.join(
        workdir, "inv", "vault-passwords", "prod.enc") + "\n"

    config = write(os.path.join(workdir, "conf", "ansible.cfg"), "[defaults]\ninventory = ../inv/hosts.ini\n")
    assert path_of(ANSIBLE_CONFIG=config) == os.path.join(workdir, "inv", "vault-passwords", "prod.enc") + "\n"
    write(config, "[defaults]\nforks = 5\n")
    assert path_of(ANSIBLE_CONFIG=config) == os.path.join(workdir, "conf", "vault-passwords", "prod.enc") + "\n"
    write(config, "[defaults]\ninventory = ../inv\n[envelope_kms_vault]\npassword_file = secrets/{label}.env\n")
    assert path_of(ANSIBLE_CONFIG=config) == os.path.join(workdir, "conf", "secrets", "prod.env") + "\n"
    assert path_of(ANSIBLE_CONFIG=config, ENVELOPE_KMS_VAULT_PASSWORD_FILE="/srv/{label}") == "/srv/prod\n"
    # an ansible.cfg in the current directory is the one in use
    shutil.copy(config, os.path.join(workdir, "inv", "ansible.cfg"))
    assert path_of(cwd=os.path.join(workdir, "inv")) == os.path.join(workdir, "inv", "secrets", "prod.env") + "\n"


def test_bad_arguments_give_one_line(playbook):
    env = vault_env(playbook)
    for args, message in [
        (["--vault-id", "../prod"], "invalid vault id '../prod'"),
        (["--vault-id", "prod/x", "--print-path"], "invalid vault id 'prod/x'"),
        (["--vault-id", "prod", "--create"], "--create needs --key-id"),
        (["--vault-id", "prod", "--bogus"], "unrecognized arguments: --bogus"),
    ]:
        done = run_client(env, playbook.workdir, *args)
        assert done.returncode == 1, args
        assert message in client_error_line(done), (args, done.stderr)
    assert not os.path.exists(os.path.join(playbook.workdir, "vault-passwords"))


@pytest.mark.slow
def test_each_failure_is_one_line_from_the_client_and_inside_ansibles_error(playbook, kms, kms_server, app_key,
                                                                            two_vault_ids):
    env, workdir, other_key = two_vault_ids.env, two_vault_ids.workdir, two_vault_ids.dev_key
    prod_envelope, dev_envelope = two_vault_ids.prod_envelope, two_vault_ids.dev_envelope
    secret_file = write(os.path.join(workdir, "secret.yml"),
                        encrypt(WHOLE, client_password(env, workdir, "prod"), "prod") + "\n")
    tampered = {}
    for where, offset in (("middle", len(read_bytes(prod_envelope)) // 2), ("end", -1)):
        data = bytearray(read_bytes(prod_envelope))
        data[offset] ^= 0x01
        tampered[where] = write_bytes(os.path.join(workdir, f"tampered-{where}.enc"), bytes(data))

    cases = [
        # (what, label, env, status, text the line holds)
        ("dev's envelope read as prod's", "prod", dict(env, ENVELOPE_KMS_VAULT_PASSWORD_FILE=dev_envelope), 1,
         f"cannot decrypt {dev_envelope}: encryption context does not match the required pairs (different value "
         f"for {CONTEXT_KEY})"),
        ("no envelope", "qa", env, 2,
         f"no envelope for vault id qa at {os.path.join(workdir, 'vault-passwords', 'qa.enc')}"),
        ("a flipped byte in the wrapped data key", "prod",
         dict(env, ENVELOPE_KMS_VAULT_PASSWORD_FILE=tampered["middle"]), 1,
         f"cannot decrypt {tampered['middle']}: KMS rejected the wrapped data key: tampered file or wrong context"),
        ("a flipped last byte", "prod", dict(env, ENVELOPE_KMS_VAULT_PASSWORD_FILE=tampered["end"]), 1,
         f"cannot decrypt {tampered['end']}: the envelope is tampered or corrupt"),
        ("a key not allowed", "prod", dict(env, ENVELOPE_KMS_VAULT_ALLOWED_KEY_ARNS=other_key["Arn"]), 1,
         f"cannot decrypt {prod_envelope}: wrapped under {app_key.arn}, none of the allowed keys {other_key['Arn']}"),
        ("no credentials", "prod", no_credentials(env), 1,
         f"cannot decrypt {prod_envelope}: no usable AWS credentials found"),
    ]
    for what, label, case_env, status, text in cases:
        kms_server.start_recording()
        direct = run_client(case_env, workdir, "--vault-id", label)
        line = client_error_line(direct)
        assert direct.returncode == status, (what, direct.returncode, line)
        assert text in line, (what, line)
        if what == "a key not allowed":
            assert kms_server.kms_calls() == {}, "a key outside the allowed ARNs was asked"

        viewed = ansible_vault(case_env, workdir, "view", "--vault-id", f"{label}@{CLIENT}", secret_file)
        assert viewed.returncode != 0 and viewed.stdout == "", (what, viewed.stdout)
        assert in_ansible_error(line, viewed.stderr), (what, line, viewed.stderr)
        assert "Traceback" not in viewed.stderr, what
        if status == 2:
            assert f"did not find a secret for vault-id={label}" in viewed.stderr, viewed.stderr
    # the envelopes were only read
    assert "whole_secret" not in read_bytes(secret_file).decode()


def test_playbook_run_reports_the_clients_line(playbook, kms, app_key):
    """A run whose client fails stops before any play, with the client's line in its error."""
    env = vault_env(playbook)
    create(env, playbook.workdir, "prod", app_key.arn)
    vaulted_group_vars(playbook, client_password(env, playbook.workdir, "prod"))
    not_allowed = vault_env(playbook, ENVELOPE_KMS_VAULT_ALLOWED_KEY_ARNS=OTHER_ARN)
    line = client_error_line(run_client(not_allowed, playbook.workdir, "--vault-id", "prod"))
    done = raw_playbook(playbook, not_allowed, "--vault-id", f"prod@{CLIENT}")
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert in_ansible_error(line, output), (line, output[-3000:])
    assert "Traceback" not in output and "plain_value" not in done.stdout


CREATE_TASK = "Create the envelope unless it exists"


def test_vault_password_playbook_creates_the_envelope_once(playbook, kms, kms_server, app_key):
    workdir = playbook.workdir
    envelope = os.path.join(workdir, "vault-passwords", "prod.enc")
    # an absolute envelope path: the default one is the subject of the next test
    playbook.environment = dict(playbook.environment, ENVELOPE_KMS_VAULT_PASSWORD_FILE=os.path.join(
        workdir, "vault-passwords", "{label}.enc"))
    extra = {"vault_id": "prod", "key_id": app_key.alias}
    kms_server.start_recording()
    first = playbook.run("envelope.kms.vault_password", extra_vars=extra).assert_ok()
    assert kms_server.kms_calls() == {"GenerateDataKey": 1}
    assert first.result(CREATE_TASK)["changed"] is True and first.changed() == 1
    assert first.result("Report")["msg"] == f"created envelope for vault id prod: {envelope}"
    assert oct(os.stat(envelope).st_mode & 0o777) == "0o600"
    assert oct(os.stat(os.path.dirname(envelope)).st_mode & 0o777) == "0o700"
    created = read_bytes(envelope)
    header = inspect_header(created)
    assert list(header.key_arns) == [app_key.arn] and header.encryption_context == {CONTEXT_KEY: "prod"}
    password, _arns = facts_of(kms, envelope, "prod")
    assert len(password) == 64 and password.decode() == client_password(vault_env(playbook), workdir, "prod")

    kms_server.start_recording()
    second = playbook.run("envelope.kms.vault_password", extra_vars=extra).assert_ok()
    assert kms_server.kms_calls() == {}, "an existing envelope is kept without a KMS call"
    assert second.changed() == 0
    assert second.result("Report")["msg"] == f"kept the existing envelope for vault id prod: {envelope}"
    assert read_bytes(envelope) == created

    missing = playbook.run("envelope.kms.vault_password", extra_vars={"vault_id": "dev"})
    assert missing.returncode != 0
    assert "give -e vault_id=<label, such as prod> -e key_id=" in missing.result("Check the variables")["msg"]
    assert not os.path.exists(os.path.join(workdir, "vault-passwords", "dev.enc"))
    needles = leaks.Needles().add("password", password)
    for run in (first, second, missing):
        assert not needles.search(run.stdout + run.stderr)


def test_vault_password_playbook_default_envelope_is_where_the_client_looks(playbook, kms, app_key, tmp_path):
    """Without ENVELOPE_KMS_VAULT_PASSWORD_FILE, run from a project folder: the envelope must be
    the one a later --vault-id prod@client run from that folder reads. (The collection is a copy
    under tmp_path, so a wrong location is not in the repository.)"""
    collections = isolated_collection(str(tmp_path / "collections"))
    env = dict(playbook.env(), ANSIBLE_COLLECTIONS_PATH=collections)
    command = [ANSIBLE_PLAYBOOK, "envelope.kms.vault_password", "-e", "vault_id=prod", "-e", f"key_id={app_key.alias}"]
    done = subprocess.run(command, env=env, cwd=playbook.workdir, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    wrong = os.path.join(str(tmp_path / "collections"), "ansible_collections", "envelope", "kms", "playbooks",
                         "vault-passwords", "prod.enc")
    where = run_client(vault_env(playbook), playbook.workdir, "--vault-id", "prod", "--print-path").stdout.strip()
    assert where == os.path.join(playbook.workdir, "vault-passwords", "prod.enc")
    assert not os.path.exists(wrong), f"the envelope went into the collection: {wrong}"
    assert os.path.exists(where)


def test_client_runs_with_the_ansible_python_when_python3_lacks_the_libraries(playbook, kms, app_key):
    """The launcher takes the python3 on PATH; with a system python3 without boto3 (ansible in a
    virtualenv), the client re-runs with the Python of the ansible command that called it."""
    if not os.path.exists("/usr/bin/python3") or subprocess.run(
            ["/usr/bin/python3", "-c", "import boto3"], capture_output=True, check=False).returncode == 0:
        pytest.skip("needs a /usr/bin/python3 without boto3")
    env = vault_env(playbook)
    create(env, playbook.workdir, "prod", app_key.arn)
    secret_file = write(os.path.join(playbook.workdir, "secret.yml"),
                        encrypt(WHOLE, client_password(env, playbook.workdir, "prod"), "prod") + "\n")
    system = dict(env, PATH="/usr/bin:/bin")
    viewed = ansible_vault(system, playbook.workdir, "view", "--vault-id", f"prod@{CLIENT}", secret_file)
    assert (viewed.returncode, viewed.stdout) == (0, WHOLE), viewed.stderr
    # called by something that is not a Python (a shell that stays the parent): no other Python
    # to take, one line says why
    done = subprocess.run(["/bin/sh", "-c", f"'{CLIENT}' --vault-id prod; exit $?"], env=system, cwd=playbook.workdir,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 1
    line = client_error_line(done)
    assert "the vault password client needs the Python libraries boto3" in line and " botocore " in line, line
    assert "on the controller, which are not installed for /usr/bin/python3: /usr/bin/python3 -m pip install boto3 " in line
