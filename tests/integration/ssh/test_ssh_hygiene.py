"""No plaintext or data key in the remote temp dirs of any user over ssh, with the module files
kept (ANSIBLE_KEEP_REMOTE_FILES=1, which also turns pipelining off): the login user's, root's (become)
and the unprivileged become user's, which ansible-core puts in the system temp dirs (here the one
shared remote temp folder, tests/harness/ssh_hosts.py)."""

import json
import os
import subprocess

import pytest

from tests.harness import leaks
from tests.harness.ssh_hosts import APP_USER, DEPLOY_USER
from tests.integration.ssh.test_ssh_fleet import APP_BYTES, APP_FILE, CONTEXT, SECRETS, prepare

pytestmark = pytest.mark.slow


def test_remote_temp_dirs_of_every_user_hold_no_plaintext_or_data_key(become_fleet, kms, kms_server):
    fleet = become_fleet
    fleet.set_hosts(["web1"])
    site = prepare(fleet, kms, kms_server)
    remote_tmp = fleet.server.remote_tmp
    before = set(os.listdir(remote_tmp))
    fleet.environment = dict(fleet.environment, ANSIBLE_KEEP_REMOTE_FILES="1")
    run = fleet.run(site, "-vvv").assert_ok()
    assert run.changed("web1") == 9, run.stats

    kept = sorted(set(os.listdir(remote_tmp)) - before)
    owners = {fleet.server.owner(os.path.join(remote_tmp, name))[0] for name in kept}
    # every user's temp dirs were kept: the login user's (its own tasks and become root) and the
    # become user's (the system temp dir ansible-core uses to become an unprivileged user)
    assert DEPLOY_USER in owners and len(kept) >= 8, (owners, kept)
    modules = [path for path in leaks.files_under(remote_tmp) if os.path.basename(path).startswith("AnsiballZ_")]
    assert {os.path.basename(path) for path in modules} >= {
        "AnsiballZ_copy.py", "AnsiballZ_decrypt.py", "AnsiballZ_rewrap.py", "AnsiballZ_data_key.py"}, modules
    # ansible-core hands a temp dir to an unprivileged become user with an ACL (setfacl, package acl)
    acls = {name: subprocess.run(["getfacl", "-cp", os.path.join(remote_tmp, name)], capture_output=True, text=True,
                                 check=True).stdout for name in kept}
    assert [name for name, acl in acls.items() if f"user:{APP_USER}:" in acl], acls

    needles = leaks.Needles()
    for name, value in SECRETS.items():
        needles.add(name, value)
    needles.add("the app file", APP_BYTES[-4096:])
    # the data keys of every envelope the run wrote, and of the data key file
    for root in fleet.roots.values():
        for path in leaks.files_under(root):
            header = leaks.envelope_header(path)
            if header is not None:
                for index, key in enumerate(leaks.envelope_data_keys(header, kms)):
                    needles.add(f"data key {index} of {os.path.relpath(path, root)}", key)
        plain_key = leaks.wrapped_data_key(os.path.join(root, "app", "data.key"), kms, CONTEXT)
        assert plain_key is not None
        needles.add("the data key file's key", plain_key)
    assert len(needles) >= 8

    found = [hit for path in leaks.files_under(remote_tmp) for hit in leaks.scan_file(path, needles)]
    assert found == []
    output = leaks.Needles()
    for name, value in SECRETS.items():
        output.add(name, value)
    assert output.search(run.stdout + run.stderr) == []
    # the needles find what they are for: the app file on the controller, a module's arguments
    assert leaks.scan_file(os.path.join(fleet.workdir, APP_FILE), needles)
    assert output.search(json.dumps({"content": SECRETS["plain"]})) == ["plain (JSON-escaped)", "plain (line 1)"]
