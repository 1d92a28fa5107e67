"""envelope.kms.copy over a real sshd with become (pipelining on): a big envelope proved unchanged
from the host's sha1 (never read back: no slurp, no fetch), a directory src in one task, a dest that
is an existing directory; and a signed big envelope, which still has to come back (slurp)."""

import os

import pytest
import yaml

from tests.harness import esdk

pytestmark = pytest.mark.slow

CONTEXT = {"app": "billing"}
BIG = 3 * 1024 * 1024 + 11  # above the 1 MiB that comes back in the read command's output
SIGNED = "AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384"


def snapshot(root):
    return {os.path.relpath(os.path.join(base, name), root): os.stat(os.path.join(base, name)).st_mtime_ns
            for base, _dirs, files in os.walk(root) for name in files}


def test_copy_under_become_over_ssh_reads_nothing_back_on_a_rerun(fleet, kms, kms_server):
    kms.create_alias(AliasName="alias/app", TargetKeyId=kms.create_key()["KeyMetadata"]["KeyId"])
    fleet.pipelining = True
    fleet.set_hosts(["web1"])
    files = fleet.workdir
    big = os.urandom(BIG)
    with open(os.path.join(files, "big.bin"), "wb") as handle:
        handle.write(big)
    os.makedirs(os.path.join(files, "conf", "sub"))
    tree = {"conf/a.env": b"a=1\n", "conf/sub/b.env": b"b=2\n"}
    for relative, data in tree.items():
        with open(os.path.join(files, relative), "wb") as handle:
            handle.write(data)
    root = fleet.roots["web1"]
    os.makedirs(os.path.join(root, "root", "etc"))  # root's 0700 folder: only become reaches it
    common = {"key_id": "alias/app", "encryption_context": CONTEXT}
    tasks = [
        {"name": "Big", "envelope.kms.copy": dict(common, src="big.bin", dest="{{ host_root }}/root/big.bin.enc",
                                                  owner="root", mode="0640")},
        {"name": "Big signed", "envelope.kms.copy": dict(common, src="big.bin", dest="{{ host_root }}/root/signed.enc",
                                                         algorithm=SIGNED, mode="0600")},
        {"name": "Tree", "envelope.kms.copy": dict(common, src="conf/", dest="{{ host_root }}/root/conf/", mode="0600",
                                                   directory_mode="0700")},
        {"name": "Into a directory", "envelope.kms.copy": dict(common, src="conf/a.env",
                                                               dest="{{ host_root }}/root/etc", mode="0600")},
    ]
    site = fleet.write(yaml.safe_dump([{"name": "Copy paths", "hosts": "targets", "gather_facts": False,
                                        "become": True, "tasks": tasks}], sort_keys=False), name="site.yml")

    kms_server.start_recording()
    first = fleet.run(site).assert_ok()
    assert first.changed("web1") == 4
    assert kms_server.kms_calls()["GenerateDataKey"] == 5, kms_server.kms_calls()
    expected = {"big.bin.enc": big, "signed.enc": big, "conf/a.env": b"a=1\n", "conf/sub/b.env": b"b=2\n",
                "etc/a.env": b"a=1\n"}
    for relative, plaintext in expected.items():
        path = os.path.join(root, "root", relative)
        assert fleet.server.owner(path)[0] == "root", path
        decrypted, _header = esdk.decrypt(kms_server, path)
        assert decrypted == plaintext, path
    assert fleet.server.owner(os.path.join(root, "root", "big.bin.enc")) == ("root", "root", 0o640)
    assert fleet.server.owner(os.path.join(root, "root", "conf", "sub"))[2] == 0o700

    before = snapshot(os.path.join(root, "root"))
    kms_server.start_recording()
    again = fleet.run(site, "-vvv").assert_ok()
    assert again.changed("web1") == 0, again.stats
    calls = kms_server.kms_calls()
    assert "GenerateDataKey" not in calls and calls["Decrypt"] == 5, calls
    assert snapshot(os.path.join(root, "root")) == before
    # Modules the re-run ran ("Using module file" at -vvv, pipelined or not): one slurp, for the
    # signed envelope (its footer's signature cannot be rebuilt); the unsigned one never came back.
    # No stat and no copy module: every dest was proved right by the read command; the one file
    # module run is copy's for the tree's subfolder (directory_mode), as ansible.builtin.copy does.
    used = [line.rsplit("/", 1)[-1] for line in again.stdout.splitlines() if "Using module file" in line]
    assert sorted(used) == ["file.py", "slurp.py"], used
    assert "FETCH" not in again.stdout
