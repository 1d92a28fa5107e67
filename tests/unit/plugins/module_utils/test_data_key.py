"""Data keys: the pure helpers, then their KMS calls on a stubbed real client.

The module's main() against stubbed KMS answers (KMS refusing a call, which moto never does) is in
tests/unit/plugins/modules/test_data_key.py.
"""

import base64
import json
import os

import pytest

from ansible_collections.envelope.kms.plugins.module_utils import data_key as dk
from ansible_collections.envelope.kms.plugins.module_utils._envelope.io import write_file_atomic
from ansible_collections.envelope.kms.plugins.module_utils.kms import KmsInputError
from tests.harness.stubbed_kms import BLOB, DATA_KEY, KEY_ARN, OLD_ARN, SYMMETRIC


# --- pure helpers -------------------------------------------------------------------------------


@pytest.mark.parametrize("spec, count, length", [(None, None, 32), ("AES_256", None, 32), ("AES_128", None, 16),
                                                 (None, 1, 1), (None, 1024, 1024)])
def test_requested_length(spec, count, length):
    assert dk.requested_length(spec, count) == length


@pytest.mark.parametrize("spec, count, message", [(None, 0, "between 1 and 1024, got 0"),
                                                  (None, 1025, "between 1 and 1024, got 1025"),
                                                  ("AES_256", 32, "mutually exclusive"),
                                                  ("DES", None, "key_spec must be one of")])
def test_requested_length_refused(spec, count, message):
    with pytest.raises(KmsInputError, match=message):
        dk.requested_length(spec, count)


def test_size_request_never_sends_both():
    assert dk.size_request(None, None) == {"KeySpec": "AES_256"}
    assert dk.size_request("AES_128", None) == {"KeySpec": "AES_128"}
    assert dk.size_request(None, 7) == {"NumberOfBytes": 7}


def test_normalize_context():
    assert dk.normalize_context(None) == {}
    assert dk.normalize_context({"a": 1, "b": "x", "aws-crypto-ok": "kms allows it"}) == {
        "a": "1", "b": "x", "aws-crypto-ok": "kms allows it"}
    for bad in ({"a": True}, {"a": ["x"]}, {"a": None}):
        with pytest.raises(KmsInputError, match="must be strings"):
            dk.normalize_context(bad)


@pytest.mark.parametrize("change, message", [
    ({"KeyState": "Disabled", "Enabled": False}, "is Disabled: it cannot generate or decrypt data keys"),
    ({"KeyState": "PendingDeletion", "Enabled": False}, "is PendingDeletion"),
    ({"KeySpec": "RSA_2048", "KeyUsage": "ENCRYPT_DECRYPT"}, "is a RSA_2048 key for ENCRYPT_DECRYPT"),
    ({"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"}, "need a symmetric encryption key"),
])
def test_check_key_refuses_keys_without_data_keys(change, message):
    with pytest.raises(KmsInputError, match=message):
        dk.check_key(dict(SYMMETRIC, **change), "alias/app")


def test_check_key():
    assert dk.check_key(SYMMETRIC, "alias/app") == KEY_ARN
    with pytest.raises(KmsInputError, match="KMS key alias/app does not exist"):
        dk.check_key(None, "alias/app")


def test_decode_recognises_the_encoding():
    encoded = base64.b64encode(BLOB)
    assert dk.decode(BLOB) == (BLOB, "raw")
    assert dk.decode(encoded) == (BLOB, "base64")
    assert dk.decode(encoded + b"\n") == (BLOB, "base64")
    assert dk.decode(encoded[:40] + b"\n" + encoded[40:] + b"\r\n") == (BLOB, "base64")
    assert dk.decode(b"not a data key\n") == (b"not a data key\n", "raw")  # KMS decides
    assert dk.decode(b"") == (None, "the file is empty")
    assert dk.decode(b"x" * 9000) == (None, "the file holds more than the 6144 bytes of a KMS ciphertext blob")
    assert dk.decode(b"\x00" * 7000)[1] == "the file holds more than the 6144 bytes of a KMS ciphertext blob"
    assert "too large" in dk.decode(b"\x00" * 20000)[1]


def test_encode_round_trips():
    for encoding in dk.ENCODINGS:
        assert dk.decode(dk.encode(BLOB, encoding)) == (BLOB, encoding)
    assert dk.encode(BLOB, "base64").endswith(b"\n")


def existing(**kwargs):
    values = dict(exists=True, blob=BLOB, encoding="raw", key_arn=KEY_ARN, length=32)
    values.update(kwargs)
    return dk.ExistingBlob(**values)


@pytest.mark.parametrize("found, state", [
    (dk.ExistingBlob(False), dk.MISSING),
    (existing(), dk.VALID),
    (existing(encoding="base64"), dk.OTHER_ENCODING),
    (existing(key_arn=OLD_ARN), dk.OTHER_KEY),
    (existing(key_arn=OLD_ARN, encoding="base64"), dk.OTHER_KEY),
    (existing(length=16), dk.MISMATCH),
    (existing(key_arn=OLD_ARN, length=16), dk.MISMATCH),
    (existing(key_arn=None, length=None, problem="KMS cannot decrypt it"), dk.MISMATCH),
    (dk.ExistingBlob(True, problem="the file is empty"), dk.MISMATCH),
])
def test_classify(found, state):
    assert dk.classify(found, KEY_ARN, 32, "raw", allowed_key_arns=(OLD_ARN,)) == state


def test_a_blob_under_a_key_not_allowed_is_never_adopted():
    """A data-key file planted under a foreign key holds a data key its planter may know: without
    allowed_key_arns it is a MISMATCH (refused unless force), never rewrapped and reported ok."""
    planted = existing(key_arn=OLD_ARN)
    assert dk.classify(planted, KEY_ARN, 32, "raw") == dk.MISMATCH
    assert dk.plan(dk.classify(planted, KEY_ARN, 32, "raw"), False) is None
    assert "neither key_id nor one of allowed_key_arns" in dk.mismatch_problem(planted, 32, KEY_ARN)


def test_allowed_key_arns_must_be_key_arns():
    assert dk.allowed_arns([OLD_ARN]) == (OLD_ARN,)
    for bad in ("alias/app", "1234abcd-12ab-34cd-56ef-1234567890ab", "arn:aws:kms:eu-west-1:111122223333:alias/app"):
        with pytest.raises(dk.KmsInputError, match="allowed_key_arns must hold KMS key ARNs"):
            dk.allowed_arns([bad])


def test_plan_never_replaces_a_data_key_without_force():
    assert dk.plan(dk.MISSING, False) == dk.GENERATE
    assert dk.plan(dk.VALID, False) == dk.KEEP
    assert dk.plan(dk.OTHER_ENCODING, False) == dk.REENCODE
    assert dk.plan(dk.OTHER_KEY, False) == dk.REENCRYPT
    assert dk.plan(dk.MISMATCH, False) is None
    for state in (dk.MISSING, dk.VALID, dk.OTHER_ENCODING, dk.OTHER_KEY, dk.MISMATCH):
        assert dk.plan(state, True) == dk.GENERATE


def test_mismatch_problem():
    assert dk.mismatch_problem(existing(length=16), 32) == "it holds a 16-byte data key, 32 bytes were asked for"
    assert dk.mismatch_problem(dk.ExistingBlob(True, problem="the file is empty"), 32) == "the file is empty"


def test_diff_shows_metadata_and_whether_the_data_key_is_new():
    context = {"app": "billing"}
    created = dk.diff("/k", dk.ExistingBlob(False), dk.GENERATE, KEY_ARN, 32, "raw", context)
    assert created == {"before": {}, "after": {"path": "/k", "key_arn": KEY_ARN, "number_of_bytes": 32,
                                               "encoding": "raw", "encryption_context": context, "data_key": "new"}}
    moved = dk.diff("/k", existing(key_arn=OLD_ARN), dk.REENCRYPT, KEY_ARN, 32, "raw", context)
    assert moved["before"] == {"path": "/k", "key_arn": OLD_ARN, "number_of_bytes": 32, "encoding": "raw",
                               "encryption_context": context, "data_key": "existing"}
    assert moved["after"]["data_key"] == "existing" and moved["after"]["key_arn"] == KEY_ARN
    assert "blob" not in json.dumps(moved).lower()


def test_write_file_atomic_new_file_is_0600_and_a_replaced_one_keeps_its_mode(tmp_path):
    dest = tmp_path / "key.bin"
    write_file_atomic(str(dest), b"one")
    assert dest.read_bytes() == b"one" and oct(dest.stat().st_mode & 0o777) == "0o600"
    dest.chmod(0o640)
    write_file_atomic(str(dest), b"two")
    assert dest.read_bytes() == b"two" and oct(dest.stat().st_mode & 0o777) == "0o640"
    assert os.listdir(tmp_path) == ["key.bin"]


def test_write_file_atomic_failure_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch):
    dest = tmp_path / "key.bin"
    dest.write_bytes(b"old")

    def broken(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(dk.os, "replace", broken)
    with pytest.raises(OSError):
        write_file_atomic(str(dest), b"new")
    assert dest.read_bytes() == b"old" and os.listdir(tmp_path) == ["key.bin"]


# --- KMS calls on a stubbed real client ---------------------------------------------------------


def test_read_existing(stubbed):
    client, stubber = stubbed
    context = {"app": "billing"}
    stubber.add_response("decrypt", {"KeyId": OLD_ARN, "Plaintext": DATA_KEY},
                         {"CiphertextBlob": BLOB, "EncryptionContext": context})
    stubber.add_client_error("decrypt", service_error_code="InvalidCiphertextException", http_status_code=400)
    found, plaintext = dk.read_existing(client, base64.b64encode(BLOB), context)
    assert (found.key_arn, found.length, found.encoding, found.problem) == (OLD_ARN, 32, "base64", None)
    assert plaintext == DATA_KEY
    found, plaintext = dk.read_existing(client, BLOB, context)
    assert plaintext is None and "cannot decrypt it with this encryption context" in found.problem
    found, plaintext = dk.read_existing(client, None, context)
    assert found.exists is False and plaintext is None and found.facts() == {}
    assert dk.read_existing(client, b"", context)[0].problem == "the file is empty"  # no KMS call


def test_read_existing_raises_what_it_cannot_judge(stubbed):
    client, stubber = stubbed
    stubber.add_client_error("decrypt", service_error_code="AccessDeniedException", http_status_code=400)
    with pytest.raises(Exception) as error:
        dk.read_existing(client, BLOB, {})
    assert "AccessDeniedException" in str(error.value)
