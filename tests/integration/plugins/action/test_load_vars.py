"""envelope.kms.load_vars (action) through the real ansible-playbook against the local KMS endpoint."""

import os

from tests.harness import leaks
from tests.harness.vars_files import write_vars_file

PASSWORD = "lv-password-2f9d0b7a61"
TOKEN = "lv-token-c83e15aa09"
HOSTS = [f"node{number}" for number in range(5)]


def app_file(kms, app_key, folder):
    """vars/app.kms.yml: two secrets (one nested) and clear values, under the app key."""
    path = os.path.join(folder, "vars", "app.kms.yml")
    write_vars_file(kms, path, {"db": {"password": PASSWORD}, "api_token": TOKEN, "count": 41},
                    {"db_host": "db.internal", "ports": [80, 443]}, key_arns=[app_key.arn])
    return path


def check_task(name="Check", prefix=""):
    """True on a host when the loaded values are there (no secret printed by the check itself)."""
    return {"name": name, "ansible.builtin.set_fact": {"ok": (
        "{{ " + f"{prefix}db.password == '{PASSWORD}' and {prefix}api_token == '{TOKEN}' and {prefix}count + 1 == 42"
        f" and {prefix}db_host == 'db.internal' and {prefix}ports == [80, 443]" + " }}")}}


def test_loads_nests_and_decrypts_once_for_all_hosts_with_run_once(playbook, kms, kms_server, app_key):
    playbook.set_hosts(HOSTS)
    path = app_file(kms, app_key, playbook.workdir)
    tasks = [
        # a relative name is found like include_vars finds it (here: vars/ beside the playbook)
        {"name": "Load", "envelope.kms.load_vars": {"file": "app.kms.yml"}, "run_once": True},
        {"name": "Load nested", "envelope.kms.load_vars": {"file": path, "name": "app"}, "run_once": True},
        check_task("Check"),
        check_task("Check nested", prefix="app."),
    ]
    kms_server.start_recording()
    run = playbook.run(tasks).assert_ok()
    calls = kms_server.kms_calls()

    for host in HOSTS:
        assert run.result("Check", host)["ansible_facts"]["ok"] is True, host
        assert run.result("Check nested", host)["ansible_facts"]["ok"] is True, host
    load = run.result("Load", HOSTS[0])
    assert load["censored"].startswith("the output has been hidden"), load  # no_log, always
    assert calls == {"Decrypt": 2}, calls  # one per run_once task, not one per host
    assert not leaks.Needles().add("password", PASSWORD).add("token", TOKEN).search(run.stdout + run.stderr)


def test_refused_with_a_persistent_fact_cache_unless_allowed(playbook, kms, kms_server, app_key):
    cache = os.path.join(playbook.workdir, "fact-cache")
    playbook.environment = dict(playbook.environment, ANSIBLE_CACHE_PLUGIN="jsonfile",
                                ANSIBLE_CACHE_PLUGIN_CONNECTION=cache)
    path = app_file(kms, app_key, playbook.workdir)
    tasks = [
        {"name": "Refused", "envelope.kms.load_vars": {"file": path}, "ignore_errors": True},
        {"name": "Allowed", "envelope.kms.load_vars": {"file": path, "allow_fact_cache": True}},
        check_task(),
    ]
    kms_server.start_recording()
    run = playbook.run(tasks)
    calls = kms_server.kms_calls()

    refused = run.result("Refused")
    assert refused.get("failed") is True, refused
    assert "the fact cache plugin 'jsonfile' would store the decrypted values" in refused["msg"], refused["msg"]
    assert "Traceback" not in refused["msg"]
    assert run.stats["localhost"]["failures"] == 0 and run.stats["localhost"]["ignored"] == 1
    assert run.result("Check")["ansible_facts"]["ok"] is True
    assert calls == {"Decrypt": 1}, calls  # the refusal decrypted nothing
    # what the refusal protects against: once allowed, the cache on disk holds the plaintext
    cached = b"".join(open(os.path.join(root, name), "rb").read()
                      for root, _dirs, names in os.walk(cache) for name in names)
    assert PASSWORD.encode() in cached
