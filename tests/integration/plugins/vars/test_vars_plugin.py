"""envelope.kms.vars (vars plugin) through the real ansible-playbook and ansible-inventory.

Every project is an INI inventory of local-connection hosts with group_vars/ and host_vars/ beside
it, written with the collection's own writer (tests/harness/vars_files.py), and the plugin enabled
with ANSIBLE_VARS_ENABLED=host_group_vars,envelope.kms.vars.
"""

import os

import pytest

from tests.harness import leaks
from tests.harness.vars_files import (
    Project,
    read_text,
    sealed_value,
    seen,
    values_of,
    vars_play,
    write_text,
    write_vars_file,
)

MARKER = "hygiene-marker-5c1e7a93d04b"  # a secret searched for in the output of runs


def only_error_line(completed, needle="envelope.kms.vars:"):
    """The one line of a failed run's output naming the plugin's error; no traceback anywhere."""
    output = completed.stdout + completed.stderr
    assert completed.returncode != 0, output
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if needle in line]
    assert len(lines) == 1, output
    return lines[0]


# -- precedence and types


def test_group_and_host_files_merge_with_group_vars_precedence(playbook, kms, kms_server, app_key):
    project = Project(playbook, {"child": ["h1", "h2"], "solo": ["h3"]}, {"parent": ["child"]})
    arns = [app_key.arn]
    write_vars_file(kms, project.group_file("all.kms.yml"), {"shared": "all-S", "only_all": "all-only-S", "count": 1},
                    {"tier": "all"}, key_arns=arns)
    write_vars_file(kms, project.group_file("parent.kms.yaml"), {"shared": "parent-S", "only_parent": 42},
                    {"tier": "parent"}, key_arns=arns)
    # several files in group_vars/child/, merged in name order (the later one wins, as host_group_vars does)
    write_vars_file(kms, project.group_file("child/10-app.kms.yml"),
                    {"shared": "child-S", "ports": [80, 443, "x"], "dup": "first", "db": {"password": "child-pw"}},
                    key_arns=arns)
    write_vars_file(kms, project.group_file("child/20-more.kms.json"), {"enabled": True, "dup": "second"},
                    {"tier": "child"}, key_arns=arns)
    write_text(project.group_file("child/plain.yml"), "plain_var: plain\n")  # the built-in plugin's file beside them
    write_text(project.group_file("child/notes.kms.txt"), "not: [valid")  # another extension: not read
    write_vars_file(kms, project.host_file("h1.kms.yml"), {"shared": "h1-S"}, key_arns=arns)
    assert read_text(project.group_file("child/20-more.kms.json")).lstrip().startswith("{")  # JSON indeed

    names = ["shared", "only_all", "only_parent", "count", "tier", "ports", "dup", "enabled", "plain_var"]
    expressions = dict(values_of(names), password="db.password | default('UNSET')",
                       sum="only_parent | default(0) + count", ports_count="ports | default([]) | length",
                       enabled_is_bool="enabled | default('no') is boolean")
    kms_server.start_recording()
    run = project.run(vars_play(expressions)).assert_ok()
    calls = kms_server.kms_calls()

    child = {"only_all": "all-only-S", "only_parent": 42, "count": 1, "tier": "child", "ports": [80, 443, "x"],
             "dup": "second", "enabled": True, "plain_var": "plain", "password": "child-pw", "sum": 43,
             "ports_count": 3, "enabled_is_bool": True}
    assert seen(run, "h1") == dict(child, shared="h1-S")  # host_vars beat every group
    assert seen(run, "h2") == dict(child, shared="child-S")  # the child group beats parent and all
    assert seen(run, "h3") == {"shared": "all-S", "only_all": "all-only-S", "only_parent": "UNSET", "count": 1,
                               "tier": "all", "ports": "UNSET", "dup": "UNSET", "enabled": "UNSET",
                               "plain_var": "UNSET", "password": "UNSET", "sum": 1, "ports_count": 0,
                               "enabled_is_bool": False}
    # types kept (True == 1 in Python: compare the types too)
    h2 = seen(run, "h2")
    assert [type(h2[name]).__name__ for name in ("only_parent", "count", "enabled")] == ["int", "int", "bool"]
    assert [type(port) for port in h2["ports"]] == [int, int, str]
    # one Decrypt per file holding encrypted values (five), whatever the hosts and evaluations
    assert calls == {"Decrypt": 5}, calls


# -- scale: KMS calls grow with files, not hosts


def test_twenty_hosts_ten_forks_one_decrypt_per_file(playbook, kms, kms_server, app_key):
    hosts = [f"host{number:02d}" for number in range(20)]
    project = Project(playbook, {"fleet": hosts}, {"region": ["fleet"]})
    arns = [app_key.arn]
    write_vars_file(kms, project.group_file("all.kms.yml"), {"all_secret": "S-all", "level": "all"}, key_arns=arns)
    write_vars_file(kms, project.group_file("region.kms.yml"), {"region_secret": "S-region", "level": "region"},
                    key_arns=arns)
    write_vars_file(kms, project.group_file("fleet/app.kms.json"), {"app": {"token": "S-token"}, "level": "fleet"},
                    key_arns=arns)
    write_vars_file(kms, project.host_file("host07.kms.yml"), {"level": "host07"}, key_arns=arns)
    expressions = {"all": "all_secret", "region": "region_secret", "token": "app.token", "level": "level"}
    play = vars_play(expressions)
    play[0]["tasks"].append({"name": "Again",
                             "ansible.builtin.set_fact": {"again": "{{ seen.level }}-{{ app.token }}"}})

    kms_server.start_recording()
    run = project.run(play, "-f", "10").assert_ok()
    calls = kms_server.kms_calls()

    for host in hosts:
        level = "host07" if host == "host07" else "fleet"
        assert seen(run, host) == {"all": "S-all", "region": "S-region", "token": "S-token", "level": level}, host
        assert run.result("Again", host)["ansible_facts"]["again"] == f"{level}-S-token"
    assert calls == {"Decrypt": 4}, calls  # 4 files; not 20 hosts x 2 tasks


# -- ansible-inventory (AWX inventory syncs)


def test_ansible_inventory_switch_loads_nothing_and_playbooks_still_load(playbook, kms, kms_server, app_key):
    project = Project(playbook, {"web": ["h1"]})
    write_vars_file(kms, project.group_file("web.kms.yml"), {"db_password": MARKER}, {"port": 5432},
                    key_arns=[app_key.arn], encryption_context={"app": "billing", "env": "prod"})

    kms_server.start_recording()
    skipped = project.inventory_list(env={"ENVELOPE_KMS_VARS_SKIP_ANSIBLE_INVENTORY": "true"})
    skipped_calls = kms_server.kms_calls()
    assert skipped.returncode == 0, skipped.stderr
    assert '"h1"' in skipped.stdout
    assert not leaks.Needles().add("the secret", MARKER).search(skipped.stdout + skipped.stderr)
    assert "db_password" not in skipped.stdout
    assert skipped_calls["Decrypt"] == 0 and sum(skipped_calls.values()) == 0, skipped_calls

    # the same search finds the secret when the switch is off: the check above can fail
    kms_server.start_recording()
    listed = project.inventory_list()
    assert listed.returncode == 0, listed.stderr
    assert MARKER in listed.stdout and '"port": 5432' in listed.stdout
    assert kms_server.kms_calls() == {"Decrypt": 1}

    # job runs (ansible-playbook) with the switch still load the files, here under a policy the
    # file meets (a required pair as JSON, a list of allowed keys holding the file's)
    other = kms.create_key()["KeyMetadata"]["Arn"]
    run = project.run(vars_play(values_of(["db_password", "port"])), env={
        "ENVELOPE_KMS_VARS_SKIP_ANSIBLE_INVENTORY": "true",
        "ENVELOPE_KMS_VARS_ENCRYPTION_CONTEXT": '{"env": "prod"}',
        "ENVELOPE_KMS_VARS_ALLOWED_KEY_ARNS": f"{other},{app_key.arn}",
    })
    assert seen(run.assert_ok(), "h1") == {"db_password": MARKER, "port": 5432}


# -- refusals: one line naming the file and the key


def flip_base64_char(value, offset=-12):
    """The value with one base64 character changed well inside the message (not a padding bit)."""
    position = len(value) + offset
    replacement = "A" if value[position] != "A" else "B"
    return value[:position] + replacement + value[position + 1:]


def tampered(project, kms, app_key, path):
    value = sealed_value(path, "db.user")
    write_text(path, read_text(path).replace(value, flip_base64_char(value)))
    return "db.user", "the envelope is tampered or corrupt", {}, 1


def swapped(project, kms, app_key, path):
    password, user = sealed_value(path, "db.password"), sealed_value(path, "db.user")
    text = read_text(path).replace(password, "@@P@@").replace(user, password).replace("@@P@@", user)
    write_text(path, text)
    return "db.password", "the value was encrypted for key db.user: values were moved or swapped", {}, 1


def pasted(project, kms, app_key, path):
    other = project.path("elsewhere", "other.kms.yml")
    write_vars_file(kms, other, {"db": {"password": "o1", "user": "o2"}, "api": {"token": "o3"}},
                    key_arns=[app_key.arn], encryption_context={"app": "billing"})
    write_text(path, read_text(path).replace(sealed_value(path, "api.token"), sealed_value(other, "api.token")))
    return "api.token", "it is not under this file's data key and context", {}, 2  # each file's data key


def wrong_context(project, kms, app_key, path):
    return ("db.password", "encryption context does not match the required pairs (missing env)",
            {"ENVELOPE_KMS_VARS_ENCRYPTION_CONTEXT": "app=billing,env=prod"}, 0)  # refused on the header


def key_not_allowed(project, kms, app_key, path):
    other = kms.create_key()["KeyMetadata"]["Arn"]
    return "db.password", f"none of the allowed keys {other}", {"ENVELOPE_KMS_VARS_ALLOWED_KEY_ARNS": other}, 0


@pytest.mark.parametrize("break_it", [tampered, swapped, pasted, wrong_context, key_not_allowed],
                         ids=lambda function: function.__name__)
def test_broken_files_and_policy_refusals_are_one_line(playbook, kms, kms_server, app_key, break_it):
    project = Project(playbook, {"web": ["h1"]})
    path = project.group_file("all.kms.yml")
    secrets = {"db": {"password": MARKER, "user": "user-" + MARKER}, "api": {"token": "token-" + MARKER}}
    write_vars_file(kms, path, secrets, {"port": 5432}, key_arns=[app_key.arn],
                    encryption_context={"app": "billing"})
    key, reason, env, decrypts = break_it(project, kms, app_key, path)

    kms_server.start_recording()
    completed = project.run_raw(vars_play(values_of(["port"])), env=env)
    calls = kms_server.kms_calls()

    line = only_error_line(completed)
    assert f"envelope.kms.vars: cannot decrypt {path}: key {key}: " in line, line
    assert reason in line, line
    assert not leaks.Needles().add("the secret", MARKER).search(completed.stdout + completed.stderr)
    assert calls["Decrypt"] == decrypts and set(calls) <= {"Decrypt"}, calls


# -- secret hygiene


def test_secrets_never_in_output_at_vvv_with_diff_and_never_templated(playbook, kms, kms_server, app_key):
    project = Project(playbook, {"web": ["h1"]})
    write_vars_file(kms, project.group_file("web.kms.yml"), {"app_secret": MARKER, "templated": "{{ 6*7 }}"},
                    {"app_name": "billing-app"}, key_arns=[app_key.arn])
    out = project.path("out")
    os.makedirs(out)
    write_text(project.path("templates", "app.conf.j2"), "secret={{ app_secret }}\nliteral={{ templated }}\n")
    play = [{"name": "Use", "hosts": "all", "gather_facts": False, "tasks": [
        {"name": "Not a secret", "ansible.builtin.debug": {"msg": "name is {{ app_name }}"}},
        {"name": "Non-secret file (its diff shows)", "ansible.builtin.copy": {
            "content": "name={{ app_name }}\n", "dest": f"{out}/name.conf"}},
        # A template's diff shows the rendered file: Ansible prints that by design, so this task
        # opts out like a user's would; what is tested is that nothing else prints the secret.
        {"name": "Secret file", "ansible.builtin.template": {"src": "app.conf.j2", "dest": f"{out}/app.conf"},
         "diff": False},
    ]}]

    completed = project.run_raw(play, "-vvv", "--diff")
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output[-3000:]
    assert "name is billing-app" in output and "+name=billing-app" in output  # the search sees values and diffs
    assert not leaks.Needles().add("the secret", MARKER).search(output)
    assert read_text(os.path.join(out, "app.conf")) == f"secret={MARKER}\nliteral={{{{ 6*7 }}}}\n"
