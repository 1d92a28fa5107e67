"""Data keys: the pure helpers, then the module's KMS calls driven by botocore's Stubber.

moto 5.2.5 (the integration tests' endpoint) lets disabled keys generate and decrypt data keys and
never denies access, so KMS refusing a call (a key disabled between DescribeKey and the call, access
denied to ReEncrypt, a blob whose key is disabled) is tested here: real KMS error responses stubbed
on a real boto3 client, through the module's main(). Those tests prove the module's handling of the
error codes, not KMS's behaviour.
"""

import base64
import json
import os

import boto3
import pytest
from botocore.stub import Stubber

from ansible.module_utils.common import warnings as core_warnings
from ansible.module_utils.testing import patch_module_args

from ansible_collections.envelope.kms.plugins.module_utils import data_key as dk
from ansible_collections.envelope.kms.plugins.module_utils.kms import KmsInputError
from ansible_collections.envelope.kms.plugins.modules import data_key as data_key_module

KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
KEY_ARN = f"arn:aws:kms:us-east-1:111122223333:key/{KEY_ID}"
OLD_ARN = "arn:aws:kms:us-east-1:111122223333:key/0987dcba-09fe-87dc-65ba-ab0987654321"
METADATA = {"KeyId": KEY_ID, "Arn": KEY_ARN, "KeySpec": "SYMMETRIC_DEFAULT", "KeyUsage": "ENCRYPT_DECRYPT",
            "KeyState": "Enabled", "Enabled": True}
BLOB = b"\x01\x02\x02\x00x" + bytes(range(200))  # binary, like a real KMS CiphertextBlob
DATA_KEY = b"K" * 32


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
        dk.check_key(dict(METADATA, **change), "alias/app")


def test_check_key():
    assert dk.check_key(METADATA, "alias/app") == KEY_ARN
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
    assert dk.classify(found, KEY_ARN, 32, "raw") == state


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


def test_write_atomic_new_file_is_0600_and_a_replaced_one_keeps_its_mode(tmp_path):
    dest = tmp_path / "key.bin"
    dk.write_atomic(str(dest), b"one")
    assert dest.read_bytes() == b"one" and oct(dest.stat().st_mode & 0o777) == "0o600"
    dest.chmod(0o640)
    dk.write_atomic(str(dest), b"two")
    assert dest.read_bytes() == b"two" and oct(dest.stat().st_mode & 0o777) == "0o640"
    assert os.listdir(tmp_path) == ["key.bin"]


def test_write_atomic_failure_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch):
    dest = tmp_path / "key.bin"
    dest.write_bytes(b"old")

    def broken(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(dk.os, "replace", broken)
    with pytest.raises(OSError):
        dk.write_atomic(str(dest), b"new")
    assert dest.read_bytes() == b"old" and os.listdir(tmp_path) == ["key.bin"]


# --- KMS calls on a stubbed real client ---------------------------------------------------------


@pytest.fixture
def stubbed():
    client = boto3.client("kms", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


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


# --- the whole module against stubbed KMS answers -----------------------------------------------


def run_module(monkeypatch, capsys, setup, check_mode=False, no_log=False, **args):
    """Run data_key.main() against a stubbed client; every stubbed call must happen, and no other."""
    client = boto3.client("kms", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    stubber = Stubber(client)
    setup(stubber)
    monkeypatch.setattr(core_warnings, "_global_warnings", {})
    monkeypatch.setattr(data_key_module, "kms_client", lambda module: client)
    args.update(_ansible_check_mode=check_mode, _ansible_no_log=no_log)
    with stubber, patch_module_args(args), pytest.raises(SystemExit):
        data_key_module.main()
    stubber.assert_no_pending_responses()
    return json.loads(capsys.readouterr().out)


def describe(stubber, metadata=None):
    stubber.add_response("describe_key", {"KeyMetadata": metadata or METADATA}, {"KeyId": "alias/app"})


def no_calls(stubber):
    """No KMS call at all."""


@pytest.mark.parametrize("args, message", [
    (dict(number_of_bytes=2000), "number_of_bytes must be between 1 and 1024, got 2000"),
    (dict(key_spec="AES_256", number_of_bytes=32), "mutually exclusive"),
    (dict(dest="{tmp}/missing/key.bin"), "The directory {tmp}/missing of dest does not exist"),
    (dict(dest="{tmp}"), "dest {tmp} is a directory"),
    (dict(return_plaintext=True), "set no_log: true on the task"),
    (dict(encryption_context={"a": [1]}), "must be strings"),
])
def test_module_refuses_bad_input_before_any_kms_call(monkeypatch, capsys, tmp_path, args, message):
    args = {name: value.format(tmp=tmp_path) if isinstance(value, str) else value for name, value in args.items()}
    args = dict(dict(dest=str(tmp_path / "key.bin"), key_id="alias/app"), **args)
    result = run_module(monkeypatch, capsys, no_calls, **args)
    assert result["failed"] is True and message.format(tmp=tmp_path) in result["msg"]
    assert not (tmp_path / "key.bin").exists()


def test_module_key_disabled_after_describe(monkeypatch, capsys, tmp_path):
    """DescribeKey said Enabled, then KMS refuses GenerateDataKeyWithoutPlaintext: nothing is written."""
    def setup(stubber):
        describe(stubber)
        stubber.add_client_error("generate_data_key_without_plaintext", service_error_code="DisabledException",
                                 service_message=f"{KEY_ARN} is disabled.", http_status_code=400)

    dest = tmp_path / "key.bin"
    result = run_module(monkeypatch, capsys, setup, dest=str(dest), key_id="alias/app")
    assert result["failed"] is True
    assert result["msg"].startswith(f"Cannot make the data key for {dest} with KMS key {KEY_ARN}: ")
    assert "DisabledException" in result["msg"] and result["error"]["code"] == "DisabledException"
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("code", ["DisabledException", "AccessDeniedException", "KMSInvalidStateException"])
def test_module_leaves_a_blob_it_cannot_check(monkeypatch, capsys, tmp_path, code):
    def setup(stubber):
        describe(stubber)
        stubber.add_client_error("decrypt", service_error_code=code, service_message="no", http_status_code=400)

    dest = tmp_path / "key.bin"
    dest.write_bytes(BLOB)
    result = run_module(monkeypatch, capsys, setup, dest=str(dest), key_id="alias/app")
    assert result["failed"] is True
    assert result["msg"].startswith(f"Cannot check the existing data key in {dest}, so it was left as it is")
    assert code in result["msg"]
    assert dest.read_bytes() == BLOB and os.listdir(tmp_path) == ["key.bin"]


def test_module_reencrypt_refused(monkeypatch, capsys, tmp_path):
    def setup(stubber):
        describe(stubber)
        stubber.add_response("decrypt", {"KeyId": OLD_ARN, "Plaintext": DATA_KEY})
        stubber.add_client_error("re_encrypt", service_error_code="AccessDeniedException",
                                 service_message="not authorized to perform kms:ReEncryptFrom", http_status_code=400)

    dest = tmp_path / "key.bin"
    dest.write_bytes(BLOB)
    result = run_module(monkeypatch, capsys, setup, dest=str(dest), key_id="alias/app")
    assert result["failed"] is True and "kms:ReEncryptFrom" in result["msg"]
    assert DATA_KEY.decode() not in json.dumps(result)
    assert dest.read_bytes() == BLOB


def test_module_reencrypt_sends_the_context_both_ways(monkeypatch, capsys, tmp_path):
    context = {"app": "billing"}

    def setup(stubber):
        describe(stubber)
        stubber.add_response("decrypt", {"KeyId": OLD_ARN, "Plaintext": DATA_KEY},
                             {"CiphertextBlob": BLOB, "EncryptionContext": context})
        stubber.add_response("re_encrypt", {"CiphertextBlob": b"new blob", "KeyId": KEY_ARN, "SourceKeyId": OLD_ARN},
                             {"CiphertextBlob": BLOB, "SourceEncryptionContext": context, "DestinationKeyId": KEY_ARN,
                              "DestinationEncryptionContext": context})

    dest = tmp_path / "key.bin"
    dest.write_bytes(base64.b64encode(BLOB))
    result = run_module(monkeypatch, capsys, setup, no_log=True, dest=str(dest), key_id="alias/app",
                        encryption_context=context, encoding="base64", return_plaintext=True)
    assert result["changed"] is True and result["operation"] == "reencrypt"
    assert dest.read_bytes() == base64.b64encode(b"new blob") + b"\n"
    assert base64.b64decode(result["plaintext"]) == DATA_KEY, "the same data key, from the checking Decrypt"


def test_module_return_plaintext_uses_generate_data_key(monkeypatch, capsys, tmp_path):
    def setup(stubber):
        describe(stubber)
        stubber.add_response("generate_data_key", {"KeyId": KEY_ARN, "Plaintext": DATA_KEY[:16],
                                                   "CiphertextBlob": BLOB},
                             {"KeyId": KEY_ARN, "EncryptionContext": {}, "NumberOfBytes": 16})

    dest = tmp_path / "key.bin"
    result = run_module(monkeypatch, capsys, setup, no_log=True, dest=str(dest), key_id="alias/app",
                        number_of_bytes=16, return_plaintext=True)
    assert result["changed"] is True and result["operation"] == "generate"
    assert base64.b64decode(result["plaintext"]) == DATA_KEY[:16]
    assert dest.read_bytes() == BLOB and oct(dest.stat().st_mode & 0o777) == "0o600"


def test_module_check_mode_checks_but_calls_nothing_that_writes(monkeypatch, capsys, tmp_path):
    def setup(stubber):
        describe(stubber)
        stubber.add_response("decrypt", {"KeyId": OLD_ARN, "Plaintext": DATA_KEY})

    dest = tmp_path / "key.bin"
    dest.write_bytes(BLOB)
    result = run_module(monkeypatch, capsys, setup, check_mode=True, no_log=True, dest=str(dest), key_id="alias/app",
                        return_plaintext=True)
    assert result["changed"] is True and result["operation"] == "reencrypt"
    assert result["ciphertext_blob"] is None
    assert dest.read_bytes() == BLOB
