"""Unit tests for the decrypt policy (plugins/module_utils/_envelope/policy.py): one object built
from options, one argument spec, checked on header facts without KMS."""

import pytest

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.envelope.kms.plugins.module_utils.envelope import (
    DecryptPolicy,
    EnvelopeError,
    EnvelopeFacts,
    decrypt_policy,
    decrypt_policy_argument_spec,
)

ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
OTHER_ACCOUNT_ARN = "arn:aws:kms:us-east-1:444455556666:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def facts(key_arns=(ARN,), context=None):
    return EnvelopeFacts(key_arns=tuple(key_arns), encryption_context=dict(context or {"app": "billing"}),
                         algorithm="AES_256_GCM_HKDF_SHA512_COMMIT_KEY", algorithm_id=0x0478, signed=False,
                         frame_length=4096, message_id="00", data_key_count=len(key_arns))


def test_from_options_validates_and_normalises():
    policy = DecryptPolicy.from_options({"encryption_context": {"n": 1}, "allowed_key_arns": [ARN, ARN],
                                         "discovery_account_ids": None}, "us-east-1")
    assert policy == DecryptPolicy({"n": "1"}, (ARN,), (), "aws")
    assert DecryptPolicy.from_options({}, "cn-north-1") == DecryptPolicy({}, (), (), "aws-cn")
    assert DecryptPolicy.from_options({}, "us-gov-west-1").discovery_partition == "aws-us-gov"
    named = DecryptPolicy.from_options({"required_encryption_context": {"a": "b"}}, None, "required_encryption_context")
    assert named.required_context == {"a": "b"}


def test_account_ids_are_twelve_digits():
    policy = DecryptPolicy.from_options({"discovery_account_ids": ["123456789012", 12345678901]})
    assert policy.discovery_account_ids == ("012345678901", "123456789012")
    for bad in (["12345"], ["12345678901a"], [True]):
        with pytest.raises(EnvelopeError, match="12-digit") as raised:
            DecryptPolicy.from_options({"discovery_account_ids": bad})
        assert raised.value.kind == "invalid_argument"


@pytest.mark.parametrize("options, message", [
    ({"allowed_key_arns": ["alias/app"]}, "allowed keys must be key ARNs"),
    ({"allowed_key_arns": [ARN], "discovery_account_ids": ["111122223333"]}, "not both"),
    ({"encryption_context": {"aws-crypto-x": "y"}}, "reserved"),
    ({"encryption_context": {"a": ["list"]}}, "must be strings"),
])
def test_bad_options_are_refused(options, message):
    with pytest.raises(EnvelopeError, match=message):
        DecryptPolicy.from_options(options)


def test_check_on_header_facts():
    DecryptPolicy({"app": "billing"}, (ARN,)).check(facts(), "f")
    DecryptPolicy(discovery_account_ids=("111122223333",), discovery_partition="aws").check(facts(), "f")
    with pytest.raises(EnvelopeError, match="missing env") as raised:
        DecryptPolicy({"env": "prod"}).check(facts(), "f")
    assert raised.value.kind == "context_mismatch"
    with pytest.raises(EnvelopeError, match="different value for app"):
        DecryptPolicy({"app": "other"}).check(facts(), "f")
    with pytest.raises(EnvelopeError, match="none of the allowed keys") as raised:
        DecryptPolicy(allowed_key_arns=(OTHER_ACCOUNT_ARN,)).check(facts(), "f")
    assert raised.value.kind == "key_not_allowed"
    with pytest.raises(EnvelopeError, match="none in the allowed accounts 444455556666"):
        DecryptPolicy(discovery_account_ids=("444455556666",), discovery_partition="aws").check(facts(), "f")
    with pytest.raises(EnvelopeError, match="partition aws-cn"):
        DecryptPolicy(discovery_account_ids=("111122223333",), discovery_partition="aws-cn").check(facts(), "f")


def test_strict_policy_for_idempotence_checks():
    assert DecryptPolicy.strict([ARN, ARN], {"a": "b"}) == DecryptPolicy({"a": "b"}, (ARN,))


def test_argument_spec_rules():
    spec = decrypt_policy_argument_spec()
    validator = ArgumentSpecValidator(spec["argument_spec"], mutually_exclusive=spec["mutually_exclusive"],
                                      required_by=spec["required_by"])
    assert validator.validate({"allowed_key_arns": [ARN]}).error_messages == []
    assert "mutually exclusive" in validator.validate(
        {"allowed_key_arns": [ARN], "discovery_account_ids": ["111122223333"]}).error_messages[0]
    assert "discovery_account_ids" in validator.validate({"discovery_partition": "aws"}).error_messages[0]
    renamed = decrypt_policy_argument_spec("required_encryption_context", context_default={})
    assert renamed["argument_spec"]["required_encryption_context"] == {"type": "dict", "default": {}}
    assert "encryption_context" not in renamed["argument_spec"]


def test_partition_comes_from_the_engine_region_when_options_are_checked_first():
    early = DecryptPolicy.from_options({"discovery_account_ids": ["111122223333"]})  # no client yet
    assert early.discovery_partition is None
    assert decrypt_policy(early, region="cn-north-1").discovery_partition == "aws-cn"
    given = DecryptPolicy.from_options({"discovery_account_ids": ["111122223333"], "discovery_partition": "aws"})
    assert decrypt_policy(given, region="cn-north-1") is given
    with pytest.raises(EnvelopeError, match="discovery_partition needs discovery_account_ids"):
        DecryptPolicy.from_options({"discovery_partition": "aws"})
