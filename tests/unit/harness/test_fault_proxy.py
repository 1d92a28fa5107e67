"""KmsFaultProxy against the local moto server, driven by boto3: each rule, the counts, the stop."""

import socket

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.harness.fault_proxy import KmsFaultProxy
from tests.harness.kms_server import REGION


def client(url, service="kms", retries=None):
    config = Config(retries=retries) if retries else None
    return boto3.client(service, endpoint_url=url, region_name=REGION, aws_access_key_id="testing",
                        aws_secret_access_key="testing", config=config)


def single_attempt(url):
    return client(url, retries={"total_max_attempts": 1})


@pytest.fixture
def key_arn(app_key):
    return app_key.arn


def generate(kms, messages=None):
    """One GenerateDataKey: True if it went through, else the error's (code, HTTP status)."""
    try:
        kms.generate_data_key(KeyId="alias/app", KeySpec="AES_256")
        return True
    except ClientError as error:
        if messages is not None:
            messages.append(error.response["Error"]["Message"])
        return error.response["Error"]["Code"], error.response["ResponseMetadata"]["HTTPStatusCode"]


def test_first_calls_throttled_then_default_retries_get_through(kms_server, kms, key_arn):
    rule = dict(code="ThrottlingException", status=400, first=2)
    with KmsFaultProxy(kms_server.url, fail=("GenerateDataKey", "Decrypt"), **rule) as proxy:
        one_retry = client(proxy.url, retries={"max_attempts": 1})  # botocore: retries after the first attempt
        assert generate(one_retry) == ("ThrottlingException", 400)
        blob = kms.generate_data_key(KeyId=key_arn, KeySpec="AES_256")["CiphertextBlob"]  # not proxied
        once = single_attempt(proxy.url)
        for _attempt in range(2):  # each operation has its own count
            with pytest.raises(ClientError, match="ThrottlingException.*injected by the test: Decrypt refused"):
                once.decrypt(CiphertextBlob=blob)
        assert once.decrypt(CiphertextBlob=blob)["KeyId"] == key_arn
        assert generate(once) is True
    assert proxy.refused == {"GenerateDataKey": 2, "Decrypt": 2}
    assert proxy.forwarded == {"GenerateDataKey": 1, "Decrypt": 1}

    with KmsFaultProxy(kms_server.url, fail="GenerateDataKey", **rule) as proxy:
        assert generate(client(proxy.url)) is True, "botocore's default retries get through"
    assert proxy.refused == {"GenerateDataKey": 2} and proxy.forwarded == {"GenerateDataKey": 1}


def test_every_kth_call_and_other_operations_untouched(kms_server, key_arn):
    with KmsFaultProxy(kms_server.url, fail="TrentService.GenerateDataKey", code="KMSInternalException",
                       message="try later", status=500, every=3) as proxy:
        kms = single_attempt(proxy.url)
        outcomes, messages = [], []
        for _attempt in range(7):
            outcomes.append(generate(kms, messages))
            kms.describe_key(KeyId="alias/app")
    refused = ("KMSInternalException", 500)
    assert outcomes == [True, True, refused, True, True, refused, True]
    assert messages == ["try later", "try later"]
    assert proxy.refused == {"GenerateDataKey": 2}
    assert proxy.forwarded == {"GenerateDataKey": 5, "DescribeKey": 7}


def offline_pattern(kms_server, calls, **rule):
    """What the rule decides for `calls` GenerateDataKey calls, asked directly (nothing served)."""
    with KmsFaultProxy(kms_server.url, fail="GenerateDataKey", **rule) as proxy:
        return [proxy.should_refuse("GenerateDataKey") for _call in range(calls)]


def test_seeded_random_fraction_is_deterministic(kms_server, key_arn):
    with KmsFaultProxy(kms_server.url, fail="GenerateDataKey", probability=0.5, seed=7) as proxy:
        kms = single_attempt(proxy.url)
        pattern = [generate(kms) is not True for _call in range(12)]
    assert 0 < sum(pattern) < len(pattern)
    assert proxy.refused == {"GenerateDataKey": sum(pattern)}
    assert proxy.forwarded == {"GenerateDataKey": len(pattern) - sum(pattern)}
    assert offline_pattern(kms_server, 12, probability=0.5, seed=7) == pattern, "same seed, same refusals"
    assert offline_pattern(kms_server, 12, probability=0.5, seed=8) != pattern
    assert not any(offline_pattern(kms_server, 12, probability=0, seed=7))
    assert all(offline_pattern(kms_server, 12, probability=1, seed=7))


def test_after_an_operation_succeeded(kms_server, kms, app_key):
    new_key = kms.create_key()["KeyMetadata"]
    with KmsFaultProxy(kms_server.url, fail="GenerateDataKey", code="AccessDeniedException",
                       after="UpdateAlias") as proxy:
        through = single_attempt(proxy.url)
        assert generate(through) is True and proxy.armed is False
        with pytest.raises(ClientError):  # a failed UpdateAlias does not arm the rule
            through.update_alias(AliasName="alias/app", TargetKeyId="no-such-key")
        assert generate(through) is True and proxy.armed is False
        through.update_alias(AliasName="alias/app", TargetKeyId=new_key["KeyId"])
        assert proxy.armed is True
        assert generate(through) == ("AccessDeniedException", 400)
        assert generate(through) == ("AccessDeniedException", 400)
    assert proxy.forwarded == {"GenerateDataKey": 2, "UpdateAlias": 2}
    assert proxy.refused == {"GenerateDataKey": 2}
    assert kms.describe_key(KeyId="alias/app")["KeyMetadata"]["Arn"] == new_key["Arn"]


def test_other_services_pass_uncounted_and_the_proxy_stops(kms_server, kms):
    with KmsFaultProxy(kms_server.url, fail="GenerateDataKey") as proxy:
        s3 = client(proxy.url, "s3")
        s3.create_bucket(Bucket="through-the-proxy")
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["through-the-proxy"]
        port = int(proxy.url.rsplit(":", 1)[1])
    assert not proxy.forwarded and not proxy.refused
    assert not proxy._thread.is_alive()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


@pytest.mark.parametrize("rules", [dict(first=1, every=2), dict(every=0), dict(probability=1.5)])
def test_bad_rules(kms_server, rules):
    with pytest.raises(ValueError):
        KmsFaultProxy(kms_server.url, fail="Decrypt", **rules)
