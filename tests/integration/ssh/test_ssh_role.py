"""The lifecycle role over a real sshd with become: deploy, re-run, rotate, re-run on 3 hosts, and a
fleet of 20 hosts with forks 10 whose KMS calls are those of one host."""

import os

import pytest
import yaml

from ansible_collections.envelope.kms.plugins.module_utils.envelope import inspect_header
from tests.harness import esdk, leaks
from tests.integration.roles.test_lifecycle import ROLE_CONTEXT, SECRETS

pytestmark = pytest.mark.slow


def write_site(fleet, name, **settings):
    """Sources in files/, and a play that applies the role with become to every host; root owns the
    deployed files."""
    files_dir = os.path.join(fleet.workdir, "files")
    os.makedirs(files_dir, exist_ok=True)
    entries = []
    for dest, (source, plaintext, context) in SECRETS.items():
        entry = {"dest": "{{ host_root }}/root/" + dest, "owner": "root", "group": "root", "mode": "0640"}
        if source:
            with open(os.path.join(files_dir, source), "w", encoding="utf-8") as handle:
                handle.write(plaintext)
            entry["src"] = source
        else:
            entry["content"] = plaintext
        if context:
            entry["encryption_context"] = context
        entries.append(entry)
    variables = {"lifecycle_name": name, "lifecycle_files": entries, "lifecycle_encryption_context": ROLE_CONTEXT,
                 "lifecycle_rotation_period_days": 180, **settings}
    play = [{"name": "Lifecycle over ssh", "hosts": "targets", "gather_facts": False, "become": True,
             "roles": [{"role": "envelope.kms.lifecycle", "vars": variables}]}]
    return fleet.write(yaml.safe_dump(play, sort_keys=False), name=f"{name}.yml")


def assert_fleet(fleet, kms_server, name, key_arn):
    """Every host holds the controller's cached ciphertext of every secret, owned by root, under key_arn."""
    cache = os.path.join(fleet.workdir, ".envelope-kms", name)
    for root in fleet.roots.values():
        for dest, (_source, plaintext, _context) in SECRETS.items():
            path = os.path.join(root, "root", dest)
            assert fleet.server.owner(path) == ("root", "root", 0o640), path
            with open(path, "rb") as handle, open(os.path.join(cache, dest), "rb") as cached:
                assert handle.read() == cached.read(), f"{path} is not the cached ciphertext"
            assert inspect_header(path).key_arns == (key_arn,), path
            assert esdk.decrypt(kms_server, path)[0].decode() == plaintext, path


def key_arn(kms, alias):
    return kms.describe_key(KeyId=alias)["KeyMetadata"]["Arn"]


def test_role_over_ssh_three_hosts_deploy_rotate_rerun(fleet, kms, kms_server):
    hosts = ["web1", "web2", "web3"]
    fleet.set_hosts(hosts)
    site = write_site(fleet, "billing")

    kms_server.start_recording()
    first = fleet.run(site).assert_ok()
    assert kms_server.kms_calls()["GenerateDataKey"] == len(SECRETS)
    assert all(first.changed(host) > 0 for host in hosts)
    v1 = key_arn(kms, "alias/billing-v1")
    assert_fleet(fleet, kms_server, "billing", v1)

    # (the re-run after a deploy is the next test's, on 20 hosts)
    rotate = {"lifecycle_rotate": True, "lifecycle_rotation_id": "2026-12", "lifecycle_disable_previous_key": True}
    kms_server.start_recording()
    rotated = fleet.run(site, extra_vars=rotate).assert_ok()
    assert kms_server.kms_calls()["GenerateDataKey"] == len(SECRETS), "one data key per secret, not per host"
    assert all(rotated.changed(host) > 0 for host in hosts)
    v2 = key_arn(kms, "alias/billing-v2")
    assert key_arn(kms, "alias/billing") == v2 != v1
    assert kms.describe_key(KeyId=v1)["KeyMetadata"]["KeyState"] == "Disabled"
    assert_fleet(fleet, kms_server, "billing", v2)

    kms_server.start_recording()
    again = fleet.run(site, extra_vars=rotate).assert_ok()
    assert {host: again.changed(host) for host in hosts} == dict.fromkeys(hosts, 0), again.stats
    assert kms_server.kms_calls()["GenerateDataKey"] == 0
    needles = leaks.Needles()
    for dest, (_source, plaintext, _context) in SECRETS.items():
        needles.add(dest, plaintext)
    assert needles.search(first.stdout + first.stderr + rotated.stdout + rotated.stderr) == []


def test_role_on_twenty_hosts_with_forks_10_makes_the_kms_calls_of_one_host(fleet, kms, kms_server):
    """KMS calls grow with the secrets, not the hosts: a first run on 20 ssh hosts (forks 10) makes
    exactly the calls it makes on one host, and the re-run one Decrypt per secret."""
    fleet.pipelining = True  # as a fleet runs: one ssh round trip per module

    def deploy(name, hosts, *args):
        fleet.set_hosts(hosts)
        site = write_site(fleet, name)
        kms_server.start_recording()
        run = fleet.run(site, *args).assert_ok()
        assert sorted(run.stats) == sorted(hosts)
        assert all(run.failed(host) == 0 and run.changed(host) > 0 for host in hosts), run.stats
        return site, kms_server.kms_calls()

    _site, single = deploy("solo", ["solo"])
    hosts = [f"node{index:02d}" for index in range(1, 21)]
    site, calls = deploy("fleet", hosts, "--forks", "10")
    assert calls == single, (calls, single)
    assert single["GenerateDataKey"] == len(SECRETS), single
    assert_fleet(fleet, kms_server, "fleet", key_arn(kms, "alias/fleet"))

    # The re-run: nothing changes on any host; one Decrypt per secret (the cache's check), no data key.
    kms_server.start_recording()
    rerun = fleet.run(site, "--forks", "10").assert_ok()
    assert all(rerun.changed(host) == 0 for host in hosts), rerun.stats
    calls = kms_server.kms_calls()
    assert calls["Decrypt"] == len(SECRETS) and "GenerateDataKey" not in calls, calls
