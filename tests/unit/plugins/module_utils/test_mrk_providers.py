"""Multi-Region-key-aware decrypt in the engine, on moto in this process (mock_aws), with outages
made at connection level: the paths the integration test's HTTP outage cannot reach.

moto 5.2.5 keeps 36 bytes of key id in its ciphertext blob and mrk- key ids have 40, so it cannot
decrypt under a multi-Region key at all: ``moto_mrk`` widens that one field (as
tests/integration/plugins/modules/test_mrk_decrypt.py does for its server).
"""

import io
import os
import struct

import boto3
import botocore.exceptions
import pytest

from ansible_collections.envelope.kms.plugins.module_utils._envelope import providers
from ansible_collections.envelope.kms.plugins.module_utils.envelope import Engine, EnvelopeError

EAST, WEST = "us-east-1", "us-west-2"
CONTEXT = {"app": "billing"}
# The library keeps a file's wrapped keys in a set, so their order in the header changes from one
# file to the next: several files cover both orders.
FILES = 6


@pytest.fixture
def moto_mrk(monkeypatch):
    from moto import mock_aws  # pylint: disable=import-outside-toplevel
    from moto.kms import utils as moto_kms  # pylint: disable=import-outside-toplevel

    header = f">40s{moto_kms.IV_LEN}s{moto_kms.TAG_LEN}s"

    def serialize(ciphertext):
        return struct.pack(header, ciphertext.key_id.encode(), ciphertext.iv, ciphertext.tag) + ciphertext.ciphertext

    def deserialize(ciphertext_blob):
        size = struct.calcsize(header)
        key_id, iv, tag = struct.unpack(header, ciphertext_blob[:size])
        return moto_kms.Ciphertext(key_id=key_id.rstrip(b"\0").decode(), iv=iv, ciphertext=ciphertext_blob[size:],
                                   tag=tag)

    monkeypatch.setattr(moto_kms, "_serialize_ciphertext_blob", serialize)
    monkeypatch.setattr(moto_kms, "_deserialize_ciphertext_blob", deserialize)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield boto3.client("kms", region_name=EAST)


def unreachable(region, attempts):
    """A KMS client whose every request fails as a region that cannot be reached does."""
    client = boto3.client("kms", region_name=region)

    def refuse(**kwargs):
        attempts.append(kwargs.get("event_name"))
        raise botocore.exceptions.EndpointConnectionError(endpoint_url=f"https://kms.{region}.amazonaws.com/")

    client.meta.events.register_first("before-send.kms", refuse)
    return client


def west_engine(down=(), attempts=None):
    """An engine in us-west-2; the regions in ``down`` cannot be reached."""
    attempts = [] if attempts is None else attempts
    return Engine(boto3.client("kms", region_name=WEST),
                  client_for_region=lambda region: unreachable(region, attempts) if region in down
                  else boto3.client("kms", region_name=region))


def mrk_with_replica(east):
    key = east.create_key(MultiRegion=True)["KeyMetadata"]
    east.replicate_key(KeyId=key["KeyId"], ReplicaRegion=WEST)
    return key["Arn"]


@pytest.mark.parametrize("mode", ["discovery", "strict", "accounts"])
def test_a_file_under_a_multi_region_and_a_single_region_key_decrypts_while_their_region_is_down(
        moto_mrk, tmp_path, mode):
    mrk, single = mrk_with_replica(moto_mrk), moto_mrk.create_key()["KeyMetadata"]["Arn"]
    options = {"discovery": {}, "strict": {"allowed_key_arns": [mrk, single]},
               "accounts": {"discovery_account_ids": [mrk.split(":")[4]]}}[mode]
    for number in range(FILES):
        path = str(tmp_path / f"{number}.enc")
        Engine(moto_mrk).encrypt_bytes(b"secret\n", path, [mrk, single] if number % 2 else [single, mrk], CONTEXT)
        plaintext, facts = west_engine(down={EAST}).decrypt_bytes(path, CONTEXT, **options)
        assert plaintext == b"secret\n", number
        assert set(facts.key_arns) == {mrk, single}


def test_strict_tries_the_engine_region_for_every_wrapped_key_before_any_other_region(moto_mrk, tmp_path):
    """A file under two multi-Region keys, only the second replicated here: no attempt on the region
    that is down when the local replica of the other key decrypts."""
    lonely = moto_mrk.create_key(MultiRegion=True)["KeyMetadata"]["Arn"]
    replicated = mrk_with_replica(moto_mrk)
    for number in range(FILES):
        path = str(tmp_path / f"{number}.enc")
        Engine(moto_mrk).encrypt_bytes(b"secret\n", path, [lonely, replicated], CONTEXT)
        for options in ({"allowed_key_arns": [lonely, replicated]}, {}):
            attempts = []
            plaintext = west_engine(down={EAST}, attempts=attempts).decrypt_bytes(path, CONTEXT, **options)[0]
            assert plaintext == b"secret\n"
            assert attempts == [], (number, options, attempts)


@pytest.mark.parametrize("allowed", ["primary", "local", "discovery"])
def test_without_a_replica_here_the_file_decrypts_through_the_region_it_names(moto_mrk, tmp_path, allowed):
    lonely = moto_mrk.create_key(MultiRegion=True)["KeyMetadata"]["Arn"]
    path = str(tmp_path / "lonely.enc")
    Engine(moto_mrk).encrypt_bytes(b"secret\n", path, lonely, CONTEXT)
    options = {"primary": {"allowed_key_arns": [lonely]},
               "local": {"allowed_key_arns": [lonely.replace(EAST, WEST)]}, "discovery": {}}[allowed]
    assert west_engine().decrypt_bytes(path, CONTEXT, **options)[0] == b"secret\n"
    with pytest.raises(EnvelopeError) as raised:  # and with that region down too: one line naming both
        west_engine(down={EAST}).decrypt_bytes(path, CONTEXT, **options)
    message = raised.value.message
    assert "\n" not in message
    assert "no wrapping key could decrypt the data key" in message, message
    assert "NotFoundException" in message and "cannot reach KMS" in message, message


def test_discovery_skips_a_wrapped_key_of_an_account_it_does_not_allow(moto_mrk, tmp_path):
    """The library refuses such a key with an error that ends the whole decrypt; it is left out, so
    the allowed key of the same file (here without a replica: the second pass) still decrypts."""
    from aws_encryption_sdk.internal.formatting.deserialize import deserialize_header  # pylint: disable=import-outside-toplevel
    from aws_encryption_sdk.structures import EncryptedDataKey, MasterKeyInfo  # pylint: disable=import-outside-toplevel

    lonely = moto_mrk.create_key(MultiRegion=True)["KeyMetadata"]["Arn"]
    path = str(tmp_path / "lonely.enc")
    Engine(moto_mrk).encrypt_bytes(b"secret\n", path, lonely, CONTEXT)
    with open(path, "rb") as handle:
        header, _size = deserialize_header(io.BytesIO(handle.read()))
    (real,) = header.encrypted_data_keys
    account = lonely.split(":")[4]
    other = EncryptedDataKey(MasterKeyInfo("aws-kms", lonely.replace(account, "111122223333").encode()), b"x" * 200)
    engine = west_engine()
    policy = engine.policy(CONTEXT, discovery_account_ids=[account])
    provider = engine._provider(providers.provider_spec(policy, WEST))  # pylint: disable=protected-access
    for keys in ([real, other], [other, real]):
        data_key = provider.decrypt_data_key_from_list(keys, header.algorithm, dict(header.encryption_context))
        assert data_key.key_provider.key_info == lonely.encode()
    # the excluded account's key is never tried, in its region or here
    assert all(account in key_id for key_id, _cause in engine._failures)  # pylint: disable=protected-access


def test_shared_key_messages_under_a_multi_region_key_decrypt_through_the_replica(moto_mrk):
    """Envelope vars files: one data key for many values, from the region the engine is in."""
    mrk = mrk_with_replica(moto_mrk)
    writer = Engine(moto_mrk)
    message = writer.encrypt_message(b"v1", writer.shared_key_manager(key_ids=[mrk]), CONTEXT)
    for options in ({}, {"allowed_key_arns": [mrk]}):
        engine = west_engine(down={EAST})
        policy = engine.policy(CONTEXT, **options)
        plaintext = engine.decrypt_message(message, engine.shared_key_manager(policy), policy, "vars")[0]
        assert plaintext == b"v1"
        assert engine.decrypt_message(message, engine.shared_key_manager(policy), policy, "vars")[0] == b"v1"
        assert engine.materials_cache.kms_decrypts == 1, "the second value came from the cache"


def test_the_outage_scenarios_need_the_widened_blob(tmp_path):
    """Without moto_mrk, moto cannot decrypt under a multi-Region key even in its own region: the
    reason the fixture exists (if moto fixes it, this fails and the fixture can go)."""
    from moto import mock_aws  # pylint: disable=import-outside-toplevel

    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    old = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        with mock_aws():
            east = boto3.client("kms", region_name=EAST)
            mrk = east.create_key(MultiRegion=True)["KeyMetadata"]["Arn"]
            path = str(tmp_path / "plain-moto.enc")
            Engine(east).encrypt_bytes(b"secret\n", path, mrk, CONTEXT)
            with pytest.raises(EnvelopeError):
                Engine(east).decrypt_bytes(path, CONTEXT)
    finally:
        for name, value in old.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
