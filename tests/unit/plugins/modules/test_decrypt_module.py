"""envelope.kms.decrypt run in-process: the module's own argument checks, each failing before any
KMS call, and the missing-library message (the library is hidden by patching the module's flag;
the integration test hides it from a real host python instead)."""

import json

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.envelope.kms.plugins.modules import decrypt


def run_module(capsys, args, no_log=False):
    args = dict(args, region="us-east-1", access_key="testing", secret_key="testing",
                endpoint_url="http://127.0.0.1:1", _ansible_no_log=no_log)
    with patch_module_args(args), pytest.raises(SystemExit):
        decrypt.main()
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(
    "args, message",
    [
        (dict(src="/x.enc"), "one of dest or return_content=true is required"),
        (dict(src="/x.enc", return_content=True), "set no_log: true on the task"),
        (dict(src="/x.enc", dest="/tmp/x", discovery_account_ids=["12345"]), "12-digit AWS account ids"),
        (dict(src="/x.enc", dest="/tmp/x", allowed_key_arns=["a"], discovery_account_ids=["123456789012"]),
         "mutually exclusive"),
        (dict(src="/x.enc", dest="/tmp/x", discovery_partition="aws"), "discovery_account_ids"),
        (dict(src="/x.enc", dest="/tmp/x", content_encoding="hex"), "content_encoding"),
    ],
)
def test_argument_checks(capsys, args, message):
    result = run_module(capsys, args)
    assert result["failed"] is True
    assert message in result["msg"]


def test_allowed_keys_must_be_arns(capsys, tmp_path):
    src = tmp_path / "x.enc"
    src.write_bytes(b"anything")
    result = run_module(capsys, dict(src=str(src), dest=str(tmp_path / "x"), allowed_key_arns=["alias/app"]))
    assert "allowed keys must be key ARNs" in result["msg"]
    assert not (tmp_path / "x").exists()


def test_dest_directory_refused(capsys, tmp_path):
    src = tmp_path / "x.enc"
    src.write_bytes(b"anything")
    result = run_module(capsys, dict(src=str(src), dest=str(tmp_path)))
    assert result["msg"] == f"dest {tmp_path} is a directory: give the path of a file"


def test_missing_library(capsys, monkeypatch):
    monkeypatch.setattr(decrypt, "HAS_ESDK", False)
    monkeypatch.setattr(decrypt, "ESDK_IMPORT_ERROR", "ImportError: No module named 'aws_encryption_sdk'")
    result = run_module(capsys, dict(src="/x.enc", dest="/tmp/x"))
    assert "Failed to import the required Python library (aws-encryption-sdk)" in result["msg"]
