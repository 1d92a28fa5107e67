import pytest

from ansible_collections.envelope.kms.plugins.module_utils.kms import (
    KmsInputError,
    is_alias_reference,
    key_summary,
    normalize_alias,
    supports_rotation,
)


@pytest.mark.parametrize("given", ["app", "alias/app"])
def test_normalize_alias_adds_prefix_once(given):
    assert normalize_alias(given) == "alias/app"


@pytest.mark.parametrize("given", ["", "aws/ebs", "alias/aws/s3", "bad name", "alias/é", "x" * 251])
def test_normalize_alias_refuses(given):
    with pytest.raises(KmsInputError):
        normalize_alias(given)


@pytest.mark.parametrize(
    "ref, expected",
    [
        ("alias/app", True),
        ("arn:aws:kms:us-east-1:111122223333:alias/app", True),
        ("1234abcd-12ab-34cd-56ef-1234567890ab", False),
        ("arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", False),
    ],
)
def test_is_alias_reference(ref, expected):
    assert is_alias_reference(ref) is expected


@pytest.mark.parametrize(
    "metadata, expected",
    [
        ({"KeySpec": "SYMMETRIC_DEFAULT", "KeyUsage": "ENCRYPT_DECRYPT", "Origin": "AWS_KMS"}, True),
        ({"KeySpec": "RSA_2048", "KeyUsage": "ENCRYPT_DECRYPT", "Origin": "AWS_KMS"}, False),
        ({"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC", "Origin": "AWS_KMS"}, False),
        ({"KeySpec": "SYMMETRIC_DEFAULT", "KeyUsage": "ENCRYPT_DECRYPT", "Origin": "EXTERNAL"}, False),
    ],
)
def test_supports_rotation(metadata, expected):
    assert supports_rotation(metadata) is expected


def test_key_summary_snake_cases_and_keeps_account_id():
    import datetime

    created = datetime.datetime(2019, 1, 19, 15, 24, 12, tzinfo=datetime.timezone.utc)
    summary = key_summary({"AWSAccountId": "123411223344", "KeyId": "k", "CreationDate": created}, ["alias/a"])
    assert summary == {
        "aws_account_id": "123411223344",
        "key_id": "k",
        "creation_date": "2019-01-19T15:24:12+00:00",
        "aliases": ["alias/a"],
    }
