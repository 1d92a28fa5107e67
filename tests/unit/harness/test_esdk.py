"""The reference-library helpers against the local moto server: what they write, they (and the engine) read."""

import pytest
from aws_encryption_sdk.exceptions import DecryptKeyError
from aws_encryption_sdk.identifiers import Algorithm

from ansible_collections.envelope.kms.plugins.module_utils.envelope import inspect_header
from tests.harness import esdk


def test_round_trip_strict_and_discovery(kms_server, kms, app_key, tmp_path):
    path = esdk.encrypt_file(kms_server, app_key.alias, "x" * 5000, str(tmp_path / "x.enc"), {"app": "billing"},
                             frame_length=1024, algorithm=Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY)
    facts = inspect_header(path)
    assert (facts.key_arns, facts.frame_length, facts.algorithm_id) == ((app_key.arn,), 1024, 0x0478)
    for key_ids in (None, [app_key.arn], app_key.arn):
        plaintext, header = esdk.decrypt(kms_server, path, key_ids=key_ids)
        assert plaintext == b"x" * 5000
        assert dict(header.encryption_context) == {"app": "billing"}
    with open(path, "rb") as handle:
        assert esdk.decrypt(kms_server.url, handle.read())[0] == b"x" * 5000


def test_strict_decrypt_with_another_key_fails(kms_server, kms, app_key):
    other = kms.create_key()["KeyMetadata"]["Arn"]
    envelope = esdk.encrypt(kms_server, [app_key.arn], b"secret")
    header = esdk.decrypt(kms_server, envelope)[1]
    assert "aws-crypto-public-key" in header.encryption_context, "the library's default suite is signed"
    with pytest.raises(DecryptKeyError):
        esdk.decrypt(kms_server, envelope, key_ids=[other])
