import io

import boto3
import pytest
from botocore.config import Config

from ansible_collections.envelope.kms.plugins.module_utils.envelope import Engine, EnvelopeError
from ansible_collections.envelope.kms.plugins.module_utils.kms import (
    KMS_RETRIES,
    KmsInputError,
    is_alias_reference,
    key_summary,
    kms_client,
    normalize_alias,
    supports_rotation,
)
from tests.harness.fault_proxy import KmsFaultProxy


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


# --- the one client factory and its retry policy ----------------------------------------------


class FakeAws:
    """Stands in for an AnsibleAWSModule or amazon.aws plugin: ``client(service, **params)`` as
    amazon.aws makes it (its own region unless ``region`` is given; ``config`` merged in)."""

    def __init__(self, url, region="us-east-1"):
        self.url, self.region, self.calls = url, region, []

    def client(self, service, region=None, config=None, **params):
        self.calls.append(dict(service=service, region=region, config=config, **params))
        return boto3.client(service, endpoint_url=self.url, region_name=region or self.region, config=config,
                            aws_access_key_id="testing", aws_secret_access_key="testing")


def test_kms_client_gives_every_client_the_retry_policy():
    aws = FakeAws("http://127.0.0.1:1")
    client = kms_client(aws)
    other = kms_client(aws, "eu-west-1")
    assert [call["region"] for call in aws.calls] == [None, "eu-west-1"]
    for made in (client, other):
        assert made.meta.config.retries == {"mode": "standard", "total_max_attempts": 10} == KMS_RETRIES
    assert other.meta.region_name == "eu-west-1"


@pytest.mark.parametrize("code, status", [("ThrottlingException", 400), ("KMSInternalException", 500)])
def test_engine_kms_calls_made_by_the_library_are_retried(kms_server, app_key, code, status):
    """GenerateDataKey and Decrypt are made by the AWS Encryption SDK with the engine's clients: they
    retry throttling and KMS's transient errors like every other call of the collection."""
    operations = ("DescribeKey", "GenerateDataKey", "Decrypt")
    with KmsFaultProxy(kms_server.url, fail=operations, code=code, status=status, first=2) as proxy:
        engine = Engine.for_aws(FakeAws(proxy.url))
        key_arn = engine.resolve_key_arn(app_key.alias)
        envelope = io.BytesIO()
        engine._encrypt_stream(io.BytesIO(b"secret"), envelope.write, [key_arn], {"app": "x"}, None, None, "test")
        plaintext, facts = engine.decrypt_bytes(envelope.getvalue(), allowed_key_arns=[key_arn])
    assert (plaintext, facts.key_arns) == (b"secret", (key_arn,))
    assert proxy.refused == dict.fromkeys(operations, 2)
    assert proxy.forwarded == dict.fromkeys(operations, 1)


def test_without_the_policy_a_throttled_data_key_fails(kms_server, app_key, tmp_path):
    """The control for the test above: a client with no retries meets the throttling."""
    with KmsFaultProxy(kms_server.url, fail="GenerateDataKey", first=1) as proxy:
        client = boto3.client("kms", endpoint_url=proxy.url, region_name="us-east-1",
                              config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        with pytest.raises(EnvelopeError) as raised:
            Engine(client).encrypt_bytes(b"secret", str(tmp_path / "never-written"), app_key.arn)
    assert raised.value.kind == "throttled"
    assert list(tmp_path.iterdir()) == []
    assert proxy.refused["GenerateDataKey"] == 1
