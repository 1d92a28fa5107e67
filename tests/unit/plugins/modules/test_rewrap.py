"""envelope.kms.rewrap run in-process against KMS answers stubbed with botocore's Stubber.

moto 5.2.5 lets disabled keys decrypt, so "the old key is disabled" during a rewrap is tested here:
a real boto3 client with botocore's Stubber answering DisabledException, through the module's main().
That proves the module's handling (file named, left untouched, the next file still rewrapped), not
KMS's behaviour.
"""

import errno
import os

from ansible_collections.envelope.kms.plugins.module_utils import rewrap as rewrap_plan
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


# --- one file's failure is that file's result --------------------------------------------------


def three_files(tmp_path):
    """first, middle, last: envelopes under A with their own data keys (stubbed GenerateDataKey)."""
    return [seal(tmp_path / f"{name}.enc", A, bytes([n + 1]) * 32, f"blob-{name}".encode())
            for n, name in enumerate(("1-first", "2-middle", "3-last"))]


def rewrap_answers(first_key, last_key):
    """KMS answers for: DescribeKey of the new key, then Decrypt + GenerateDataKey for the first and last file."""
    def setup(stubber):
        stubber.add_response("describe_key", {"KeyMetadata": {"KeyId": "x", "Arn": B}}, {"KeyId": B})
        for n, data_key in enumerate((first_key, last_key)):
            stubber.add_response("decrypt", {"KeyId": A, "Plaintext": data_key})
            stubber.add_response("generate_data_key", {"KeyId": B, "Plaintext": bytes([9 - n]) * 32,
                                                       "CiphertextBlob": f"new-{n}".encode()})
    return setup


def assert_middle_failed_alone(result, paths, words):
    first, middle, last = paths
    assert result["failed"] is True and result["changed"] is True
    assert [entry["path"] for entry in result["results"]] == paths
    done_first, failed, done_last = result["results"]
    assert done_first["changed"] is True and done_first["failed"] is False and done_first["key_arns"] == [B]
    assert done_last["changed"] is True and done_last["failed"] is False and done_last["key_arns"] == [B]
    assert failed["failed"] is True and failed["changed"] is False
    assert failed["msg"].startswith(f"cannot rewrap {middle}: ") and words in failed["msg"], failed["msg"]
    assert result["msg"] == f"1 of 3 files could not be rewrapped (left as they were): {failed['msg']}"
    assert "\n" not in result["msg"] and "Traceback" not in result["msg"]
    assert inspect_header(first).key_arns == (B,) and inspect_header(last).key_arns == (B,)


def test_a_hostile_file_in_the_middle_fails_alone(monkeypatch, capsys, tmp_path):
    """The middle file's key ARN holds a byte that is not UTF-8: it used to abort the whole batch
    with the codec's error (the first file rewrapped but not reported, the last never tried)."""
    paths = three_files(tmp_path)
    data = bytearray(open(paths[1], "rb").read())
    data[data.index(A.encode()) + len(A) - 1] = 0xFF
    with open(paths[1], "wb") as handle:
        handle.write(bytes(data))
    result = run_module(monkeypatch, capsys, rewrap_answers(b"\x01" * 32, b"\x03" * 32),
                        paths=[str(tmp_path / "*.enc")], key_id=[B])
    assert_middle_failed_alone(result, paths, "the envelope header is tampered or corrupt")
    assert "codec" not in result["msg"]
    assert open(paths[1], "rb").read() == bytes(data)
    assert sorted(os.listdir(tmp_path)) == ["1-first.enc", "2-middle.enc", "3-last.enc"]


def test_an_unexpected_library_exception_fails_that_file_alone(monkeypatch, capsys, tmp_path):
    """Whatever the library raises for one file (here: an error nobody translates) is that file's result."""
    paths = three_files(tmp_path)
    middle = open(paths[1], "rb").read()
    real_rewrap = Engine.rewrap_file

    def rewrap_file(self, src, *args, **kwargs):
        if src == paths[1]:
            raise RuntimeError("library bug: unexpected state\nsecond line")
        return real_rewrap(self, src, *args, **kwargs)

    monkeypatch.setattr(Engine, "rewrap_file", rewrap_file)
    result = run_module(monkeypatch, capsys, rewrap_answers(b"\x01" * 32, b"\x03" * 32),
                        paths=[str(tmp_path / "*.enc")], key_id=[B])
    assert_middle_failed_alone(result, paths, "unexpected error (RuntimeError: library bug: unexpected state second line)")
    assert result["results"][1]["previous_key_arns"] == [A]
    assert open(paths[1], "rb").read() == middle


def test_a_backup_that_cannot_be_written_fails_that_file_alone(monkeypatch, capsys, tmp_path):
    """ansible-core's backup_local raises a bare Exception when the copy fails (disk full here)."""
    from ansible.module_utils.basic import AnsibleModule

    paths = three_files(tmp_path)
    real_copy = AnsibleModule.preserved_copy

    def preserved_copy(self, src, dest):
        if src == paths[1]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), dest)
        return real_copy(self, src, dest)

    monkeypatch.setattr(AnsibleModule, "preserved_copy", preserved_copy)
    result = run_module(monkeypatch, capsys, rewrap_answers(b"\x01" * 32, b"\x03" * 32),
                        paths=[str(tmp_path / "*.enc")], key_id=[B], backup=True)
    assert_middle_failed_alone(result, paths, "cannot make the backup copy (No space left on device)")
    backups = [entry.get("backup_file") for entry in result["results"]]
    assert backups[1] is None and all(os.path.exists(backup) for backup in (backups[0], backups[2]))
    assert inspect_header(paths[1]).key_arns == (A,)


# --- bounds, before any KMS call ---------------------------------------------------------------


def test_too_many_files_fail_before_any_kms_call(monkeypatch, capsys, tmp_path):
    paths = three_files(tmp_path)
    before = [open(path, "rb").read() for path in paths]
    monkeypatch.setattr(rewrap_plan, "MAX_FILES", 2)
    result = run_module(monkeypatch, capsys, lambda stubber: None, paths=[str(tmp_path / "*.enc")], key_id=[B])
    assert result["failed"] is True and result.get("changed", False) is False
    assert result["msg"] == (f"cannot rewrap {tmp_path / '*.enc'}: the paths select more than 2 files, the most one "
                             "task rewraps; split the task or narrow the patterns")
    assert [open(path, "rb").read() for path in paths] == before


def test_an_encryption_context_too_large_fails_before_any_kms_call(monkeypatch, capsys, tmp_path):
    path = seal(tmp_path / "a.enc", A, b"1" * 32, b"blob-a")
    result = run_module(monkeypatch, capsys, lambda stubber: None, path=path, key_id=[B],
                        encryption_context={"big": "x" * 70000})
    assert result["failed"] is True
    assert result["msg"].startswith("cannot rewrap: the encryption context is larger than the 65535 bytes an envelope "
                                    "header holds")
    assert inspect_header(path).encryption_context == CONTEXT
