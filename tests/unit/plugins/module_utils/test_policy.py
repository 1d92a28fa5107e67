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
from ansible_collections.envelope.kms.plugins.module_utils._envelope.policy import (
    is_multi_region_key_arn,
    key_arn_in_region,
    key_arns_match,
)
from ansible_collections.envelope.kms.plugins.module_utils._envelope.providers import (
    encrypt_provider_spec,
    mrk_decrypt_key_ids,
    provider_spec,
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


# -- multi-Region keys: an allowed MRK ARN also allows its related keys in other regions

MRK = "arn:aws:kms:us-east-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab"
MRK_WEST = MRK.replace(":us-east-1:", ":us-west-2:")
OTHER_MRK = "arn:aws:kms:us-east-1:111122223333:key/mrk-0987dcba09fe87dc65baab0987654321"
ARN_WEST = ARN.replace(":us-east-1:", ":us-west-2:")
MRK_CASES = [
    (MRK, MRK, True),
    (MRK, MRK_WEST, True),  # related keys: only the region differs
    (MRK_WEST, MRK, True),
    (MRK, OTHER_MRK, False),
    (MRK, MRK.replace("111122223333", "444455556666").replace(":us-east-1:", ":us-west-2:"), False),
    (MRK, MRK.replace("arn:aws:", "arn:aws-cn:").replace(":us-east-1:", ":cn-north-1:"), False),
    (ARN, ARN, True),
    (ARN, ARN_WEST, False),  # single-Region keys: exact equality, even with the same id
    (MRK, ARN, False),
    (MRK.replace(":key/", ":alias/"), MRK_WEST.replace(":key/", ":alias/"), False),  # aliases are not keys
]


@pytest.mark.parametrize("first, second, related", MRK_CASES)
def test_key_arns_match_is_the_library_mrk_match(first, second, related):
    from aws_encryption_sdk.key_providers.kms import _check_mrk_arns_equal  # pylint: disable=import-outside-toplevel

    assert key_arns_match(first, second) is related
    assert _check_mrk_arns_equal(first, second) is related  # the same answer as the library's


def test_multi_region_key_arns_and_their_related_arns():
    assert is_multi_region_key_arn(MRK) and not is_multi_region_key_arn(ARN)
    assert not is_multi_region_key_arn("mrk-1234abcd12ab34cd56ef1234567890ab")  # a key id, not an ARN
    assert not is_multi_region_key_arn(MRK.replace(":key/", ":alias/"))
    assert key_arn_in_region(MRK, "us-west-2") == MRK_WEST


def test_check_allows_related_multi_region_keys_only():
    DecryptPolicy(allowed_key_arns=(MRK_WEST,)).check(facts((MRK,)), "f")  # file under the primary, replica allowed
    DecryptPolicy(allowed_key_arns=(MRK,)).check(facts((MRK_WEST, ARN)), "f")
    for allowed, wrapped in (((OTHER_MRK,), (MRK,)), ((ARN_WEST,), (ARN,)), ((MRK,), (ARN,))):
        with pytest.raises(EnvelopeError, match="none of the allowed keys") as raised:
            DecryptPolicy(allowed_key_arns=allowed).check(facts(wrapped), "f")
        assert raised.value.kind == "key_not_allowed"


def test_strict_decrypt_is_configured_with_the_related_keys_of_the_engine_region():
    # The keys the files name, in their own regions, are the provider's second pass, not configured.
    assert mrk_decrypt_key_ids((MRK,), "us-west-2") == [MRK_WEST]
    assert mrk_decrypt_key_ids((MRK,), "us-east-1") == [MRK]  # already in the engine's region
    assert mrk_decrypt_key_ids((ARN, MRK, MRK_WEST), "us-west-2") == [ARN, MRK_WEST]  # once each
    assert mrk_decrypt_key_ids((ARN,), "us-west-2") == [ARN]  # single-Region keys as given


def test_provider_specs_keep_single_region_keys_as_they_were():
    strict = provider_spec(DecryptPolicy(allowed_key_arns=(ARN,)), "us-west-2")
    assert strict[0] == ("strict", ARN) and strict[1].__name__ == "StrictProvider"
    assert strict[2] == {"key_ids": [ARN]}
    mrk = provider_spec(DecryptPolicy(allowed_key_arns=(MRK,)), "us-west-2")
    assert mrk[0] == ("mrk-strict", MRK_WEST) and mrk[1].__name__ == "MrkStrictProvider"
    assert mrk[2] == {"key_ids": [MRK_WEST], "allowed_key_arns": (MRK,), "local_region": "us-west-2"}
    # The encrypt spec never expands: a file is wrapped under exactly the keys given.
    assert encrypt_provider_spec([MRK]) == (("strict", MRK), strict[1], {"key_ids": [MRK]})
    discovery = provider_spec(DecryptPolicy(), "us-west-2")
    assert discovery[0] == ("discovery",)
    assert discovery[2] == {"discovery_region": "us-west-2", "local_region": "us-west-2"}
