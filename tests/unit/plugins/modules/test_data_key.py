"""envelope.kms.data_key run in-process against KMS answers stubbed with botocore's Stubber.

moto 5.2.5 (the integration tests' endpoint) lets disabled keys generate and decrypt data keys and
never denies access, so KMS refusing a call (a key disabled between DescribeKey and the call, access
denied to ReEncrypt, a blob whose key is disabled) is tested here: real KMS error responses stubbed
on a real boto3 client, through the module's main(). Those tests prove the module's handling of the
error codes, not KMS's behaviour.
"""

import base64
import json
import os

import pytest

from ansible_collections.envelope.kms.plugins.modules import data_key as data_key_module
from tests.harness.stubbed_kms import BLOB, DATA_KEY, KEY_ARN, OLD_ARN, SYMMETRIC, run_main, stubbed_client


def run_module(monkeypatch, capsys, setup, check_mode=False, no_log=False, **args):
    """Run data_key.main() against a stubbed client; every stubbed call must happen, and no other."""
    client, stubber = stubbed_client()
    setup(stubber)
    monkeypatch.setattr(data_key_module, "kms_client", lambda module: client)
    args.update(_ansible_check_mode=check_mode, _ansible_no_log=no_log)
    return run_main(data_key_module, args, monkeypatch, capsys, stubber)


def describe(stubber, metadata=None):
    stubber.add_response("describe_key", {"KeyMetadata": metadata or SYMMETRIC}, {"KeyId": "alias/app"})


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
    result = run_module(monkeypatch, capsys, setup, dest=str(dest), key_id="alias/app", allowed_key_arns=[OLD_ARN])
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
                        encryption_context=context, encoding="base64", return_plaintext=True,
                        allowed_key_arns=[OLD_ARN])
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
                        return_plaintext=True, allowed_key_arns=[OLD_ARN])
    assert result["changed"] is True and result["operation"] == "reencrypt"
    assert result["ciphertext_blob"] is None
    assert dest.read_bytes() == BLOB
