"""Multi-Region-key-aware decrypt through the real plugins, during an outage of the primary's region.

A multi-Region primary in us-east-1 (the harness REGION) with a replica in us-west-2; a file is
encrypted under the primary ARN by envelope.kms.copy straight against the local endpoint. Then every
task runs in us-west-2 through a fault proxy that refuses every request signed for us-east-1 (the
outage): the decrypt module (discovery, and strict with the primary ARN allowed), rewrap to a
us-west-2 key and the decrypt lookup must all succeed, decrypting through the replica. The proxy's
per-region counters prove it: no us-east-1 call got through, the Decrypts went to us-west-2.
A file under a single-Region us-east-1 key fails in one line through the same proxy, and a file
under a multi-Region key with no replica in the caller's region still decrypts (through the key's
own region) when that region is up.

moto 5.2.5 cannot decrypt anything wrapped under a multi-Region key, in any region: its ciphertext
blob (its own simple format, "not what KMS actually does") keeps 36 bytes of key id, and mrk- key ids
have 40, so Decrypt looks up a truncated id and answers AccessDeniedException. These tests run their
own moto server, in this process, with that blob format widened to 40 bytes (``mrk_endpoint``):
everything else is moto's, and the playbooks reach it over HTTP as they reach the harness's server.
"""

import logging
import os
import struct
import urllib.request

import boto3
import pytest

from tests.harness.fault_proxy import REGION_REFUSED_CODE, KmsFaultProxy
from tests.harness.kms_server import REGION, free_port
from tests.harness.playbook import PlaybookRunner

WEST = "us-west-2"
SECRET = "api_token=s3cr3t-from-the-primary-region\n"
CONTEXT = {"app": "billing"}


KEY_ID_BYTES = 40  # len("mrk-") + a UUID


class Endpoint:
    """The local endpoint of these tests: its ``url`` and the environment that points plugins at it."""

    def __init__(self, url):
        self.url = url

    def environment(self):
        return {"AWS_ENDPOINT_URL": self.url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION}


@pytest.fixture(scope="module")
def mrk_endpoint():
    """A moto server in this process whose ciphertext blobs hold 40-byte key ids (see the docstring)."""
    from moto.kms import utils as moto_kms  # pylint: disable=import-outside-toplevel
    from moto.server import ThreadedMotoServer  # pylint: disable=import-outside-toplevel

    header = f">{KEY_ID_BYTES}s{moto_kms.IV_LEN}s{moto_kms.TAG_LEN}s"

    def serialize(ciphertext):
        return struct.pack(header, ciphertext.key_id.encode(), ciphertext.iv, ciphertext.tag) + ciphertext.ciphertext

    def deserialize(ciphertext_blob):  # moto passes both by keyword
        size = struct.calcsize(header)
        key_id, iv, tag = struct.unpack(header, ciphertext_blob[:size])
        return moto_kms.Ciphertext(key_id=key_id.rstrip(b"\0").decode(), iv=iv, ciphertext=ciphertext_blob[size:],
                                   tag=tag)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(logging.getLogger("werkzeug"), "level", logging.ERROR)  # a line per request otherwise
        patch.setattr(moto_kms, "_serialize_ciphertext_blob", serialize)
        patch.setattr(moto_kms, "_deserialize_ciphertext_blob", deserialize)
        port = free_port()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        try:
            yield Endpoint(f"http://127.0.0.1:{port}")
        finally:
            server.stop()


def client(endpoint, region):
    return boto3.client("kms", endpoint_url=endpoint.url, region_name=region,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture
def kms_server(mrk_endpoint):
    """This module's endpoint, reset, under the harness's name."""
    urllib.request.urlopen(urllib.request.Request(mrk_endpoint.url + "/moto-api/reset", data=b"", method="POST"),
                           timeout=30).close()
    return mrk_endpoint


@pytest.fixture
def kms(kms_server):
    return client(kms_server, REGION)


@pytest.fixture
def playbook(kms_server, tmp_path):
    return PlaybookRunner(tmp_path, kms_server.environment())


def host_path(playbook, name):
    return os.path.join(playbook.workdir, "hosts", "localhost", name)


def read(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()


@pytest.fixture
def mrk(kms, kms_server):
    """(primary ARN in us-east-1, replica ARN in us-west-2) of a fresh multi-Region key."""
    primary = kms.create_key(MultiRegion=True, Description="app secrets")["KeyMetadata"]
    replica = kms.replicate_key(KeyId=primary["KeyId"], ReplicaRegion=WEST)["ReplicaKeyMetadata"]
    assert replica["Arn"] == primary["Arn"].replace(f":{REGION}:", f":{WEST}:")
    return primary["Arn"], replica["Arn"]


def copy_task(name, dest, key_id):
    """envelope.kms.copy in us-east-1, straight to the local endpoint (the environment's)."""
    return {"name": name, "envelope.kms.copy": {"content": SECRET, "dest": dest, "key_id": key_id,
                                                "encryption_context": CONTEXT}}


def west(proxy, **args):
    """The AWS options of a task in us-west-2 whose requests go through ``proxy``."""
    return dict(args, region=WEST, endpoint_url=proxy.url)


def lookup(path, proxy):
    return (f"{{{{ lookup('envelope.kms.decrypt', '{path}', region='{WEST}', endpoint_url='{proxy.url}', "
            f"encryption_context={CONTEXT!r}) }}}}")


def test_decrypt_rewrap_and_lookup_go_through_the_replica_while_the_primary_region_is_out(playbook, kms_server,
                                                                                          mrk):
    primary_arn, replica_arn = mrk
    other_west = client(kms_server, WEST).create_key(Description="rewrap target")["KeyMetadata"]["Arn"]
    src, rewrapped = host_path(playbook, "secret.enc"), host_path(playbook, "rewrapped.enc")
    playbook.run([copy_task("Copy", src, primary_arn), copy_task("Copy again", rewrapped, primary_arn)]).assert_ok()

    with KmsFaultProxy(kms_server.url, refuse_regions=[REGION]) as proxy:
        run = playbook.run([
            {"name": "Discovery", "envelope.kms.decrypt": west(proxy, src=src, dest=host_path(playbook, "d.txt"),
                                                               encryption_context=CONTEXT)},
            {"name": "Strict", "envelope.kms.decrypt": west(proxy, src=src, dest=host_path(playbook, "s.txt"),
                                                            allowed_key_arns=[primary_arn])},
            {"name": "Strict replica", "envelope.kms.decrypt": west(proxy, src=src, dest=host_path(playbook, "r.txt"),
                                                                    allowed_key_arns=[replica_arn])},
            {"name": "Rewrap", "envelope.kms.rewrap": west(proxy, path=rewrapped, key_id=[other_west])},
            {"name": "Lookup", "ansible.builtin.set_fact": {"value": lookup(src, proxy)}},
        ]).assert_ok()
    assert read(host_path(playbook, "d.txt")) == SECRET
    assert read(host_path(playbook, "s.txt")) == SECRET
    assert run.result("Discovery")["key_arns"] == [primary_arn]  # the header names the primary
    assert run.result("Strict")["key_arns"] == [primary_arn]
    assert read(host_path(playbook, "r.txt")) == SECRET  # the replica's ARN allows the primary's file
    assert run.result("Rewrap")["changed"] is True
    assert run.result("Lookup")["ansible_facts"]["value"] == SECRET.rstrip("\n")

    # Not one call reached us-east-1, none was even tried: each of the five decrypts went to
    # us-west-2 (the replica) first, and succeeded there.
    assert not [call for call in proxy.forwarded_regions if call[0] == REGION], proxy.forwarded_regions
    assert proxy.forwarded_regions[WEST, "Decrypt"] == 5, proxy.forwarded_regions
    assert proxy.refused_regions[REGION, "Decrypt"] == 0, proxy.refused_regions

    # The rewrapped file is under the us-west-2 key only, and decrypts there.
    check = playbook.run([{"name": "Check", "envelope.kms.decrypt": {
        "src": rewrapped, "dest": host_path(playbook, "w.txt"), "region": WEST, "allowed_key_arns": [other_west]}}])
    assert check.assert_ok().result("Check")["key_arns"] == [other_west]
    assert read(host_path(playbook, "w.txt")) == SECRET


def test_single_region_key_fails_in_one_line_while_its_region_is_out(playbook, kms_server, kms):
    east_key = kms.create_key()["KeyMetadata"]["Arn"]
    src = host_path(playbook, "single.enc")
    playbook.run([copy_task("Copy", src, east_key)]).assert_ok()
    with KmsFaultProxy(kms_server.url, refuse_regions=[REGION]) as proxy:
        run = playbook.run([
            {"name": "Discovery", "envelope.kms.decrypt": west(proxy, src=src, dest=host_path(playbook, "d.txt")),
             "ignore_errors": True},
            {"name": "Strict", "envelope.kms.decrypt": west(proxy, src=src, dest=host_path(playbook, "s.txt"),
                                                            allowed_key_arns=[east_key]), "ignore_errors": True},
        ])
    run.assert_failed_with({"Discovery": REGION_REFUSED_CODE, "Strict": REGION_REFUSED_CODE})
    for name in ("Discovery", "Strict"):
        message = run.result(name)["msg"]
        assert "\n" not in message and east_key in message, message
    # Only us-east-1 could decrypt it: one attempt per task, refused; nothing tried in us-west-2.
    assert proxy.refused_regions[REGION, "Decrypt"] == 2, proxy.refused_regions
    assert proxy.forwarded_regions[WEST, "Decrypt"] == 0, proxy.forwarded_regions
    assert not os.path.exists(host_path(playbook, "d.txt")) and not os.path.exists(host_path(playbook, "s.txt"))


def test_multi_region_key_without_a_local_replica_decrypts_through_its_own_region(playbook, kms_server, kms):
    lonely = kms.create_key(MultiRegion=True)["KeyMetadata"]["Arn"]  # no replica in us-west-2
    src = host_path(playbook, "lonely.enc")
    playbook.run([copy_task("Copy", src, lonely)]).assert_ok()
    with KmsFaultProxy(kms_server.url) as proxy:  # every region up
        run = playbook.run([
            {"name": "Discovery", "envelope.kms.decrypt": west(proxy, src=src, dest=host_path(playbook, "d.txt"))},
            {"name": "Strict", "envelope.kms.decrypt": west(proxy, src=src, dest=host_path(playbook, "s.txt"),
                                                            allowed_key_arns=[lonely])},
        ]).assert_ok()
    assert run.result("Discovery")["key_arns"] == [lonely]
    assert read(host_path(playbook, "d.txt")) == read(host_path(playbook, "s.txt")) == SECRET
    # Each decrypt: first the caller's region (no replica there: refused by KMS), then us-east-1.
    assert proxy.forwarded_regions[WEST, "Decrypt"] == 2, proxy.forwarded_regions
    assert proxy.forwarded_regions[REGION, "Decrypt"] == 2, proxy.forwarded_regions


def test_copy_wraps_under_a_multi_region_key_as_given(playbook, kms_server, mrk):
    """Encrypting is unchanged: the header names the ARN the task gave, in its own region, and a
    re-run (which decrypts to compare) changes nothing."""
    primary_arn, replica_arn = mrk
    dest = host_path(playbook, "west.enc")
    task = {"name": "Copy", "envelope.kms.copy": {"content": SECRET, "dest": dest, "key_id": replica_arn,
                                                  "region": WEST, "encryption_context": CONTEXT}}
    first, _second = playbook.run_idempotent([task])
    assert first.result("Copy")["key_arns"] == [replica_arn]
    playbook.run([{"name": "Back", "envelope.kms.decrypt": {  # in us-east-1, through the primary
        "src": dest, "dest": host_path(playbook, "back.txt"), "allowed_key_arns": [primary_arn]}}]).assert_ok()
    assert read(host_path(playbook, "back.txt")) == SECRET
