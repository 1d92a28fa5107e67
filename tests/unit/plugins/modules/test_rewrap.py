"""envelope.kms.rewrap run in-process against KMS answers stubbed with botocore's Stubber.

moto 5.2.5 lets disabled keys decrypt, so "the old key is disabled" during a rewrap is tested here:
a real boto3 client with botocore's Stubber answering DisabledException, through the module's main().
That proves the module's handling (file named, left untouched, the next file still rewrapped), not
KMS's behaviour.
"""

import os

from ansible_collections.envelope.kms.plugins.module_utils.envelope import Engine, inspect_header
from ansible_collections.envelope.kms.plugins.modules import rewrap as rewrap_module
from tests.harness.stubbed_kms import KEY_ARN as A
from tests.harness.stubbed_kms import OLD_ARN as B
from tests.harness.stubbed_kms import run_main, stubbed_client

CONTEXT = {"app": "billing"}


def test_named_messages():
    assert rewrap_module._named("cannot rewrap /real/a: tampered", "/link/a", "/real/a") == "cannot rewrap /link/a: tampered"
    assert rewrap_module._named("/real/a: not an AWS Encryption SDK message", "/l", "/real/a") == (
        "cannot rewrap /l: not an AWS Encryption SDK message")
    assert rewrap_module._named("something", "/l", "/r") == "cannot rewrap /l: something"


def seal(path, key_arn, data_key, blob):
    """An envelope under key_arn made by the engine with a stubbed GenerateDataKey."""
    client, stubber = stubbed_client()
    stubber.add_response("generate_data_key", {"KeyId": key_arn, "Plaintext": data_key, "CiphertextBlob": blob})
    with stubber:
        Engine(client).encrypt_bytes(b"secret\n", path, key_arn, CONTEXT)
    return str(path)


def run_module(monkeypatch, capsys, setup, check_mode=False, **args):
    client, stubber = stubbed_client()
    setup(stubber)
    monkeypatch.setattr(Engine, "for_aws", classmethod(lambda cls, module: cls(client)))
    args.update(_ansible_check_mode=check_mode)
    return run_main(rewrap_module, args, monkeypatch, capsys, stubber)


def test_module_disabled_old_key_fails_that_file_only(monkeypatch, capsys, tmp_path):
    first = seal(tmp_path / "a.enc", A, b"1" * 32, b"blob-a")
    second = seal(tmp_path / "b.enc", A, b"2" * 32, b"blob-b")
    before = open(first, "rb").read()

    def setup(stubber):
        stubber.add_response("describe_key", {"KeyMetadata": {"KeyId": B.rsplit("/", maxsplit=1)[-1], "Arn": B}},
                             {"KeyId": "alias/app"})
        stubber.add_client_error("decrypt", service_error_code="DisabledException",
                                 service_message=f"{A} is disabled.", http_status_code=400)
        stubber.add_response("decrypt", {"KeyId": A, "Plaintext": b"2" * 32})
        stubber.add_response("generate_data_key", {"KeyId": B, "Plaintext": b"3" * 32, "CiphertextBlob": b"blob-c"})

    result = run_module(monkeypatch, capsys, setup, paths=[str(tmp_path / "*.enc")], key_id=["alias/app"])
    assert result["failed"] is True and result["changed"] is True
    assert result["msg"].startswith(f"1 of 2 files could not be rewrapped (left as they were): cannot rewrap {first}: ")
    assert "disabled" in result["msg"] and "DisabledException" in result["msg"]
    failed, done = result["results"]
    assert failed["failed"] is True and failed["previous_key_arns"] == [A]
    assert done["changed"] is True and done["key_arns"] == [B]
    assert open(first, "rb").read() == before
    assert inspect_header(second).key_arns == (B,)
    assert sorted(os.listdir(tmp_path)) == ["a.enc", "b.enc"]


def test_module_check_mode_calls_describe_key_only(monkeypatch, capsys, tmp_path):
    path = seal(tmp_path / "a.enc", A, b"1" * 32, b"blob-a")

    def setup(stubber):
        stubber.add_response("describe_key", {"KeyMetadata": {"KeyId": "x", "Arn": B}}, {"KeyId": B})

    result = run_module(monkeypatch, capsys, setup, check_mode=True, path=path, key_id=[B],
                        encryption_context={"app": "new"}, _ansible_diff=True)
    assert result["changed"] is True
    assert result["results"][0]["key_arns"] == [B] and result["results"][0]["encryption_context"] == {"app": "new"}
    assert result["diff"][0]["after"] == f'encryption_context: {{"app": "new"}}\nkey_arns: ["{B}"]\n'
    assert inspect_header(path).key_arns == (A,)


def test_module_without_the_library(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(rewrap_module, "HAS_ESDK", False)
    result = run_module(monkeypatch, capsys, lambda stubber: None, path=str(tmp_path / "a.enc"), key_id=["alias/app"])
    assert result["failed"] is True
    assert "Failed to import the required Python library (aws-encryption-sdk)" in result["msg"]
