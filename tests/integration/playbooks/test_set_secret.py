"""The envelope.kms.set_secret playbook asked for a value on a real terminal (no echo), and the
one-command encryption of a plain vars file (ad-hoc envelope.kms.vars_file)."""

import os
import subprocess

import pexpect
import yaml

from ansible_collections.envelope.kms.plugins.module_utils import vars_file as vf
from ansible_collections.envelope.kms.plugins.module_utils.envelope import DecryptPolicy, Engine
from tests.harness.playbook import ANSIBLE_PLAYBOOK


def _bin(name):
    return os.path.join(os.path.dirname(ANSIBLE_PLAYBOOK), name)


def _load(kms, path, key_arn):
    with open(path, "rb") as handle:
        tree = vf.parse(handle.read(), path)
    return vf.decrypt_tree(Engine(kms), tree, path, DecryptPolicy.strict([key_arn])).tree


def _set_secret(playbook, workdir, answers, *extra):
    child = pexpect.spawn(_bin("ansible-playbook"), ["envelope.kms.set_secret", "-e", "file=group_vars/prod/secrets.kms.yml",
                                                     *extra],
                          cwd=workdir, env=playbook.env(), encoding="utf-8", timeout=120)
    transcript = []
    for prompt, answer in answers:
        child.expect(prompt)
        transcript.append(child.before + child.after)
        child.sendline(answer)
    child.expect(pexpect.EOF)
    transcript.append(child.before)
    child.close()
    return child.exitstatus, "".join(transcript)


def test_set_secret_prompts_without_echo_and_keeps_other_values(playbook, kms, app_key, tmp_path):
    os.makedirs(tmp_path / "group_vars" / "prod")
    secret, other = "marker-Zq81-first", "marker-Zq81-second"
    status, output = _set_secret(playbook, tmp_path, [("Value of db.password", secret), ("confirm", secret)],
                                 "-e", "key=db.password", "-e", "key_id=alias/app")
    assert status == 0, output
    assert secret not in output  # not echoed, not printed
    path = str(tmp_path / "group_vars" / "prod" / "secrets.kms.yml")
    first_text = open(path, encoding="utf-8").read()
    assert _load(kms, path, app_key.arn) == {"db": {"password": secret}}

    # an existing file: its keys are trusted only when key_id or allowed_key_arns vouches for them
    status, output = _set_secret(playbook, tmp_path, [("Value of token", other), ("confirm", other)], "-e", "key=token")
    assert status != 0 and "give key_id (or allowed_key_arns)" in output, output
    assert other not in output
    playbook.environment["ENVELOPE_KMS_VARS_ALLOWED_KEY_ARNS"] = app_key.arn  # as [envelope_kms_vars] would
    status, output = _set_secret(playbook, tmp_path, [("Value of token", other), ("confirm", other)], "-e", "key=token")
    assert status == 0, output
    assert other not in output and "token added to" in output
    assert _load(kms, path, app_key.arn) == {"db": {"password": secret}, "token": other}
    password_line = [line for line in first_text.splitlines() if line.strip().startswith("password:")]
    assert password_line and password_line[0] in open(path, encoding="utf-8").read().splitlines()  # kept byte for byte

    # a confirmation that differs is asked again, and nothing is written until it matches
    status, output = _set_secret(playbook, tmp_path, [("Value of token", "a"), ("confirm", "b"),
                                                      ("Value of token", other), ("confirm", other)],
                                 "-e", "key=token")
    assert status == 0 and "token unchanged in" in output, output


def test_set_secret_refuses_a_missing_key_before_any_kms_call(playbook, kms_server, kms, tmp_path):
    kms_server.start_recording()
    status, output = _set_secret(playbook, tmp_path, [("Value of", "x"), ("confirm", "x")])
    assert status != 0 and "give -e file=" in output
    assert kms_server.kms_calls() == {}
    assert not os.path.exists(tmp_path / "group_vars")


def test_one_command_encrypts_a_plain_vars_file(playbook, kms, app_key, tmp_path):
    plain = tmp_path / "secrets.yml"
    plain.write_text("db_host: db.internal\ndb_password: marker-plain-7731\nports: [5432]\n", encoding="utf-8")
    completed = subprocess.run(
        [_bin("ansible"), "localhost", "-m", "envelope.kms.vars_file", "-a",
         f"path={tmp_path}/secrets.kms.yml src={plain} key_id=alias/app clear_keys=db_host"],
        cwd=tmp_path, env=playbook.env(), capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "marker-plain-7731" not in completed.stdout + completed.stderr
    text = (tmp_path / "secrets.kms.yml").read_text(encoding="utf-8")
    raw = yaml.safe_load(text)
    assert raw["db_host"] == "db.internal" and raw["db_password"].startswith(vf.MARKER)
    assert "marker-plain-7731" not in text
    assert _load(kms, str(tmp_path / "secrets.kms.yml"), app_key.arn) == {
        "db_host": "db.internal", "db_password": "marker-plain-7731", "ports": [5432]}
    assert plain.read_text(encoding="utf-8").startswith("db_host")  # the plain file is left alone
