"""Rewrap: path selection, the header-only plan and results.

The module's main() with a stubbed KMS (a disabled old key, which moto cannot play) is in
tests/unit/plugins/modules/test_rewrap.py.
"""

import os

import pytest

from ansible_collections.envelope.kms.plugins.module_utils import rewrap as plan
from ansible_collections.envelope.kms.plugins.module_utils.envelope import EnvelopeError, EnvelopeFacts, decrypt_policy

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
def test_wrapped_as(found, key_arns, context, reasons):
    assert found.wrapped_as(key_arns, context) == reasons


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
