"""Rewrap: path selection, the header-only plan and results, then the module's main() with a stubbed KMS.

moto 5.2.5 lets disabled keys decrypt, so "the old key is disabled" during a rewrap is tested here:
a real boto3 client with botocore's Stubber answering DisabledException, through the module's main().
That proves the module's handling (file named, left untouched, the next file still rewrapped), not
KMS's behaviour.
"""

import json
import os

import boto3
import pytest
from botocore.stub import Stubber

from ansible.module_utils.common import warnings as core_warnings
from ansible.module_utils.testing import patch_module_args

from ansible_collections.envelope.kms.plugins.module_utils import rewrap as plan
from ansible_collections.envelope.kms.plugins.module_utils.envelope import (
    Engine,
    EnvelopeError,
    EnvelopeFacts,
    decrypt_policy,
    inspect_header,
)
from ansible_collections.envelope.kms.plugins.modules import rewrap as rewrap_module

A = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
B = "arn:aws:kms:us-east-1:111122223333:key/0987dcba-09fe-87dc-65ba-ab0987654321"
OTHER_ACCOUNT = "arn:aws:kms:us-east-1:444455556666:key/11111111-2222-3333-4444-555555555555"
CONTEXT = {"app": "billing"}


def facts(key_arns=(A,), context=None, data_key_count=None):
    return EnvelopeFacts(key_arns=tuple(sorted(key_arns)), encryption_context=dict(CONTEXT if context is None else context),
                         algorithm="AES_256_GCM_HKDF_SHA512_COMMIT_KEY", algorithm_id=0x0478, signed=False,
                         frame_length=262144, message_id="00",
                         data_key_count=len(key_arns) if data_key_count is None else data_key_count)


# --- paths ---------------------------------------------------------------------------------------


def touch(path, data=b"x"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)
    return str(path)


def test_expand_paths_order_patterns_links_and_problems(tmp_path):
    b = touch(tmp_path / "b.enc")
    a = touch(tmp_path / "a.enc")
    deep = touch(tmp_path / "sub" / "deeper" / "c.enc")
    os.symlink(a, tmp_path / "link.enc")
    os.makedirs(tmp_path / "dir.enc")
    entries, unmatched = plan.expand_paths([
        str(tmp_path / "missing.enc"), b, str(tmp_path / "*.enc"), str(tmp_path / "**" / "*.enc"),
        str(tmp_path / "sub"), str(tmp_path / "*.none"),
    ])
    assert entries == [
        (str(tmp_path / "missing.enc"), None, f"cannot rewrap {tmp_path / 'missing.enc'}: no such file"),
        (b, b, None),
        (a, a, None),  # the pattern's matches, sorted; b.enc already there; link.enc is a.enc; dir.enc skipped
        (deep, deep, None),
        (str(tmp_path / "sub"), None, f"cannot rewrap {tmp_path / 'sub'}: not a regular file"),
    ]
    assert unmatched == [str(tmp_path / "*.none")]


def test_expand_paths_follows_a_link_given_by_name(tmp_path):
    target = touch(tmp_path / "real" / "a.enc")
    os.symlink(target, tmp_path / "link.enc")
    assert plan.expand_paths([str(tmp_path / "link.enc")]) == ([(str(tmp_path / "link.enc"), target, None)], [])


def test_is_pattern():
    assert plan.is_pattern("/etc/*.enc") and plan.is_pattern("/etc/a?.enc") and plan.is_pattern("/etc/[ab].enc")
    assert not plan.is_pattern("/etc/app.enc")


# --- plan ----------------------------------------------------------------------------------------


def test_desired_context_keeps_or_replaces():
    assert plan.desired_context(facts(), None) == CONTEXT
    assert plan.desired_context(facts(), {}) == {}
    assert plan.desired_context(facts(), {"n": 1}) == {"n": "1"}
    with pytest.raises(EnvelopeError, match="reserved"):
        plan.desired_context(facts(), {"aws-crypto-public-key": "x"})


@pytest.mark.parametrize("found, key_arns, context, reasons", [
    (facts(), [A], CONTEXT, []),
    (facts(), [B], CONTEXT, ["key"]),
    (facts(), [A, B], CONTEXT, ["key"]),
    (facts([A, B]), [A], CONTEXT, ["key"]),
    (facts([A], data_key_count=2), [A], CONTEXT, ["key"]),  # also wrapped under a non-KMS key
    (facts(), [A], {}, ["context"]),
    (facts(), [B], {"app": "other"}, ["key", "context"]),
    (facts([B, A]), [A, B], CONTEXT, []),
])
def test_needs_rewrap(found, key_arns, context, reasons):
    assert plan.needs_rewrap(found, key_arns, context) == reasons


@pytest.mark.parametrize("found, required, allowed, accounts, problem", [
    (facts(), {}, [], [], None),
    (facts(), {"app": "billing"}, [], [], None),
    (facts(context={"app": "billing", "env": "prod"}), {"app": "billing"}, [], [], None),
    (facts(), {"env": "prod"}, [], [], "encryption context does not match the required pairs (missing env)"),
    (facts(), {"app": "other", "env": "x"}, [], [],
     "does not match the required pairs (missing env; different value for app)"),
    (facts([A, B]), {}, [B], [], None),
    (facts(), {}, [B], [], f"wrapped under {A}, none of the allowed keys {B}"),
    (facts(), {}, [], ["111122223333"], None),
    (facts([OTHER_ACCOUNT]), {}, [], ["111122223333"],
     f"wrapped under {OTHER_ACCOUNT}, none in the allowed accounts 111122223333 (partition aws)"),
])
def test_precondition_problem(found, required, allowed, accounts, problem):
    policy = decrypt_policy(required, allowed, accounts, None, "us-east-1")
    message = plan.precondition_problem("/f", found, policy)
    if problem is None:
        assert message is None
    else:
        assert message.startswith("cannot rewrap /f: ") and problem in message


def test_precondition_partition():
    """The discovery partition follows the region: an aws ARN is outside aws-cn's accounts."""
    china = decrypt_policy({}, [], ["111122223333"], None, "cn-north-1")
    assert china.discovery_partition == "aws-cn"
    assert plan.precondition_problem("/f", facts(), china) is not None
    assert decrypt_policy({}, [], ["111122223333"], None, "us-gov-west-1").discovery_partition == "aws-us-gov"
    assert plan.precondition_problem("/f", facts(), decrypt_policy({}, [], ["111122223333"], None, "eu-west-1")) is None


def test_results_and_diff():
    before = facts([A])
    predicted = plan.file_result("/f", before, [B], {"app": "new"}, changed=True)
    assert predicted == dict(path="/f", changed=True, failed=False, previous_key_arns=[A],
                             previous_encryption_context=CONTEXT, key_arns=[B], encryption_context={"app": "new"},
                             algorithm="AES_256_GCM_HKDF_SHA512_COMMIT_KEY")
    done = plan.file_result("/f", before, [B], {"app": "new"}, changed=True, new_facts=facts([B], {"app": "new"}))
    assert done == predicted
    diff = plan.file_diff(done)
    assert diff == dict(before_header="/f (envelope)", after_header="/f (envelope)",
                        before=f'encryption_context: {{"app": "billing"}}\nkey_arns: ["{A}"]\n',
                        after=f'encryption_context: {{"app": "new"}}\nkey_arns: ["{B}"]\n')
    failed = plan.failed_result("/g", "cannot rewrap /g: no such file")
    assert failed == dict(path="/g", changed=False, failed=True, msg="cannot rewrap /g: no such file")
    assert plan.failure_message([failed], 3) == (
        "1 of 3 files could not be rewrapped (left as they were): cannot rewrap /g: no such file")


def test_named_messages():
    assert rewrap_module._named("cannot rewrap /real/a: tampered", "/link/a", "/real/a") == "cannot rewrap /link/a: tampered"
    assert rewrap_module._named("/real/a: not an AWS Encryption SDK message", "/l", "/real/a") == (
        "cannot rewrap /l: not an AWS Encryption SDK message")
    assert rewrap_module._named("something", "/l", "/r") == "cannot rewrap /l: something"


# --- the whole module against stubbed KMS answers -----------------------------------------------


def new_stubbed_client():
    client = boto3.client("kms", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    return client, Stubber(client)


def seal(path, key_arn, data_key, blob):
    """An envelope under key_arn made by the engine with a stubbed GenerateDataKey."""
    client, stubber = new_stubbed_client()
    stubber.add_response("generate_data_key", {"KeyId": key_arn, "Plaintext": data_key, "CiphertextBlob": blob})
    with stubber:
        Engine(client).encrypt_bytes(b"secret\n", path, key_arn, CONTEXT)
    return str(path)


def run_module(monkeypatch, capsys, setup, check_mode=False, **args):
    client, stubber = new_stubbed_client()
    setup(stubber)
    monkeypatch.setattr(core_warnings, "_global_warnings", {})
    monkeypatch.setattr(Engine, "for_aws", classmethod(lambda cls, module: cls(client)))
    args.update(_ansible_check_mode=check_mode)
    with stubber, patch_module_args(args), pytest.raises(SystemExit):
        rewrap_module.main()
    stubber.assert_no_pending_responses()
    return json.loads(capsys.readouterr().out)


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
