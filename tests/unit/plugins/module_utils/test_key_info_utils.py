"""Unit tests for the key_info read helpers.

The pure choices (alias names, tag matching, which keys and aliases) are tested directly; `gather`
is tested with botocore's Stubber for what the moto server cannot do: refuse a detail with
AccessDeniedException, lose a key between ListKeys and the next call, report a key as AWS managed
(moto reports the lazily created alias/aws/... keys as CUSTOMER), and prove which requests are made
(a Stubber fails on any request it was not told to expect).
"""

import datetime
import json

import pytest

from ansible_collections.envelope.kms.plugins.module_utils.key_info import (
    alias_reference,
    alias_summary,
    aliases_by_key,
    aws_managed_key_ids,
    gather,
    keep_key,
    keys_to_describe,
    select_aliases,
    tags_match,
)
from ansible_collections.envelope.kms.plugins.module_utils.kms import KmsInputError

ARN = "arn:aws:kms:us-east-1:111122223333"
UTC = datetime.timezone.utc


@pytest.mark.parametrize(
    "given, expected",
    [
        ("app", "alias/app"),
        ("alias/app", "alias/app"),
        ("aws/ebs", "alias/aws/ebs"),
        ("alias/aws/ebs", "alias/aws/ebs"),
        (f"{ARN}:alias/app", f"{ARN}:alias/app"),
    ],
)
def test_alias_reference_accepts_names_and_arns_reserved_included(given, expected):
    assert alias_reference(given) == expected


@pytest.mark.parametrize("given", ["", "bad name", "alias/", "alias/é", "x" * 251, f"{ARN}:key/abc", "arn:nonsense"])
def test_alias_reference_refuses_invalid(given):
    with pytest.raises(KmsInputError):
        alias_reference(given)


@pytest.mark.parametrize(
    "actual, wanted, expected",
    [
        ({"env": "prod", "team": "a"}, {"env": "prod"}, True),
        ({"env": "prod", "team": "a"}, {"env": "prod", "team": "a"}, True),
        ({"env": "prod"}, {"env": "dev"}, False),
        ({"env": "prod"}, {"env": "prod", "team": "a"}, False),
        ({"port": "8080"}, {"port": 8080}, True),
        ({}, {}, True),
        ({}, None, True),
        (None, None, True),
        (None, {"env": "prod"}, False),
    ],
)
def test_tags_match(actual, wanted, expected):
    assert tags_match(actual, wanted) is expected


ALIASES = [
    {"AliasName": "alias/b", "AliasArn": f"{ARN}:alias/b", "TargetKeyId": "k1"},
    {"AliasName": "alias/a", "AliasArn": f"{ARN}:alias/a", "TargetKeyId": "k1"},
    {"AliasName": "alias/c", "AliasArn": f"{ARN}:alias/c", "TargetKeyId": "k2"},
    {"AliasName": "alias/aws/ebs", "AliasArn": f"{ARN}:alias/aws/ebs", "TargetKeyId": "aws1"},
    {"AliasName": "alias/aws/s3", "AliasArn": f"{ARN}:alias/aws/s3"},  # predefined, not created yet
]


def test_aliases_by_key_sorts_and_skips_untargeted():
    assert aliases_by_key(ALIASES) == {"k1": ["alias/a", "alias/b"], "k2": ["alias/c"], "aws1": ["alias/aws/ebs"]}


def test_aws_managed_keys_are_recognised_by_their_reserved_alias():
    assert aws_managed_key_ids(ALIASES) == {"aws1"}
    assert keys_to_describe(["k1", "aws1", "k2", "k3"], ALIASES, False) == ["k1", "k2", "k3"]
    assert keys_to_describe(["k1", "aws1"], ALIASES, True) == ["k1", "aws1"]


@pytest.mark.parametrize(
    "metadata, aws_managed, pending, expected",
    [
        ({"KeyManager": "CUSTOMER", "KeyState": "Enabled"}, False, True, True),
        ({"KeyManager": "AWS", "KeyState": "Enabled"}, False, True, False),
        ({"KeyManager": "AWS", "KeyState": "Enabled"}, True, True, True),
        ({"KeyManager": "CUSTOMER", "KeyState": "PendingDeletion"}, False, True, True),
        ({"KeyManager": "CUSTOMER", "KeyState": "PendingDeletion"}, False, False, False),
        ({"KeyManager": "CUSTOMER", "KeyState": "PendingReplicaDeletion"}, False, False, False),
        ({"KeyManager": "CUSTOMER", "KeyState": "Disabled"}, False, False, True),
    ],
)
def test_keep_key(metadata, aws_managed, pending, expected):
    assert keep_key(metadata, aws_managed, pending) is expected


def test_alias_summary_is_snake_cased_with_iso_dates_and_nulls():
    created = datetime.datetime(2024, 5, 1, 10, 20, 30, tzinfo=UTC)
    full = dict(ALIASES[0], CreationDate=created, LastUpdatedDate=created)
    assert alias_summary(full) == {
        "alias_name": "alias/b",
        "alias_arn": f"{ARN}:alias/b",
        "target_key_id": "k1",
        "creation_date": "2024-05-01T10:20:30+00:00",
        "last_updated_date": "2024-05-01T10:20:30+00:00",
    }
    assert alias_summary(ALIASES[4])["target_key_id"] is None


def test_select_aliases_all_or_for_keys_sorted():
    assert [a["alias_name"] for a in select_aliases(ALIASES)] == [
        "alias/a",
        "alias/aws/ebs",
        "alias/aws/s3",
        "alias/b",
        "alias/c",
    ]
    assert [a["alias_name"] for a in select_aliases(ALIASES, {"k1"})] == ["alias/a", "alias/b"]
    assert select_aliases(ALIASES, set()) == []


# --- gather, with every request stubbed ---------------------------------------------------------


def metadata(key_id, manager="CUSTOMER", state="Enabled", day=1, **extra):
    md = {
        "AWSAccountId": "111122223333",
        "KeyId": key_id,
        "Arn": f"{ARN}:key/{key_id}",
        "CreationDate": datetime.datetime(2024, 1, day, tzinfo=UTC),
        "Enabled": state == "Enabled",
        "Description": "",
        "KeyUsage": "ENCRYPT_DECRYPT",
        "KeyState": state,
        "Origin": "AWS_KMS",
        "KeyManager": manager,
        "KeySpec": "SYMMETRIC_DEFAULT",
    }
    md.update(extra)
    return md


POLICY = {"Version": "2012-10-17", "Statement": []}


def expect_details(stub, key_id, tags=(), rotation=True):
    stub.add_response("list_resource_tags", {"Tags": list(tags), "Truncated": False}, {"KeyId": key_id})
    stub.add_response("get_key_policy", {"Policy": json.dumps(POLICY)}, {"KeyId": key_id, "PolicyName": "default"})
    stub.add_response("get_key_rotation_status", {"KeyRotationEnabled": rotation}, {"KeyId": key_id})


def test_named_key_never_lists_the_account(stub):
    stub.add_response("describe_key", {"KeyMetadata": metadata("k1")}, {"KeyId": "alias/a"})
    stub.add_response("list_aliases", {"Aliases": ALIASES[:2], "Truncated": False}, {"KeyId": "k1"})
    expect_details(stub, "k1", tags=[{"TagKey": "env", "TagValue": "prod"}])
    warnings = []
    result = gather(stub.client, {"key_ref": "alias/a"}, warnings.append)
    assert warnings == []
    [key] = result["keys"]
    assert key["key_id"] == "k1" and key["key_arn"] == f"{ARN}:key/k1"
    assert key["aliases"] == ["alias/a", "alias/b"]
    assert key["tags"] == {"env": "prod"}
    assert key["policy"] == POLICY
    assert key["rotation"] == {"enabled": True, "rotation_period_days": None, "next_rotation_date": None,
                               "on_demand_rotation_start_date": None}
    assert [a["alias_name"] for a in result["aliases"]] == ["alias/a", "alias/b"]


def test_named_aws_managed_key_is_returned(stub):
    stub.add_response("describe_key", {"KeyMetadata": metadata("aws1", manager="AWS")}, {"KeyId": "alias/aws/ebs"})
    stub.add_response("list_aliases", {"Aliases": [ALIASES[3]], "Truncated": False}, {"KeyId": "aws1"})
    expect_details(stub, "aws1")
    result = gather(stub.client, {"key_ref": "alias/aws/ebs"}, [].append)
    assert [k["key_manager"] for k in result["keys"]] == ["AWS"]


def test_unknown_named_key_is_an_empty_result(stub):
    stub.add_client_error("describe_key", "NotFoundException", expected_params={"KeyId": "alias/nope"})
    assert gather(stub.client, {"key_ref": "alias/nope"}, [].append) == {"keys": [], "aliases": []}


def test_named_key_pending_deletion_can_be_excluded(stub):
    stub.add_response("describe_key", {"KeyMetadata": metadata("k1", state="PendingDeletion")}, {"KeyId": "k1"})
    assert gather(stub.client, {"key_ref": "k1", "include_pending_deletion": False}, [].append) == {
        "keys": [],
        "aliases": [],
    }


def test_listing_skips_aws_managed_and_vanished_keys_and_refused_details(stub):
    stub.add_response("list_aliases", {"Aliases": ALIASES, "Truncated": False}, {})
    keys = [{"KeyId": k, "KeyArn": f"{ARN}:key/{k}"} for k in ("k2", "aws1", "gone", "k1", "rsa")]
    stub.add_response("list_keys", {"Keys": keys, "Truncated": False}, {})
    # aws1 is not described at all: its alias/aws/... alias says it is AWS managed
    stub.add_response("describe_key", {"KeyMetadata": metadata("k2", day=2)}, {"KeyId": "k2"})
    stub.add_client_error("describe_key", "NotFoundException", expected_params={"KeyId": "gone"})
    stub.add_response("describe_key", {"KeyMetadata": metadata("k1", day=1)}, {"KeyId": "k1"})
    rsa = metadata("rsa", day=3, KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")
    stub.add_response("describe_key", {"KeyMetadata": rsa}, {"KeyId": "rsa"})
    # details follow the creation order: k1, k2, rsa
    stub.add_client_error("list_resource_tags", "AccessDeniedException", "denied", expected_params={"KeyId": "k1"})
    stub.add_client_error("get_key_policy", "AccessDeniedException", expected_params={"KeyId": "k1", "PolicyName": "default"})
    stub.add_client_error("get_key_rotation_status", "AccessDeniedException", "no", expected_params={"KeyId": "k1"})
    stub.add_response("list_resource_tags", {"Tags": [], "Truncated": False}, {"KeyId": "k2"})
    stub.add_client_error("get_key_policy", "NotFoundException", expected_params={"KeyId": "k2", "PolicyName": "default"})
    stub.add_response("list_resource_tags", {"Tags": [], "Truncated": False}, {"KeyId": "rsa"})
    stub.add_response("get_key_policy", {"Policy": json.dumps(POLICY)}, {"KeyId": "rsa", "PolicyName": "default"})
    # no rotation request for the RSA key: it cannot rotate
    warnings = []
    result = gather(stub.client, {}, warnings.append)
    assert [k["key_id"] for k in result["keys"]] == ["k1", "rsa"]  # k2 vanished while being read
    k1, rsa_key = result["keys"]
    assert k1["tags"] is None and k1["policy"] is None and k1["rotation"] is None
    assert rsa_key["rotation"] is None and rsa_key["policy"] == POLICY
    assert len(warnings) == 2
    assert "tags of key k1" in warnings[0] and "denied" in warnings[0]
    assert "rotation status of key k1" in warnings[1]
    # no filter: every alias of the account, like aws kms list-aliases
    assert len(result["aliases"]) == len(ALIASES)


def test_tag_filter_costs_no_policy_or_rotation_request_for_rejected_keys(stub):
    stub.add_response("list_aliases", {"Aliases": ALIASES[:3], "Truncated": False}, {})
    keys = [{"KeyId": k, "KeyArn": f"{ARN}:key/{k}"} for k in ("k1", "k2")]
    stub.add_response("list_keys", {"Keys": keys, "Truncated": False}, {})
    stub.add_response("describe_key", {"KeyMetadata": metadata("k1", day=1)}, {"KeyId": "k1"})
    stub.add_response("describe_key", {"KeyMetadata": metadata("k2", day=2)}, {"KeyId": "k2"})
    stub.add_response("list_resource_tags", {"Tags": [{"TagKey": "env", "TagValue": "dev"}]}, {"KeyId": "k1"})
    stub.add_response("list_resource_tags", {"Tags": [{"TagKey": "env", "TagValue": "prod"}]}, {"KeyId": "k2"})
    stub.add_response("get_key_rotation_status", {"KeyRotationEnabled": False}, {"KeyId": "k2"})
    stub.add_response("list_key_rotations", {"Rotations": []}, {"KeyId": "k2"})
    options = {"tags": {"env": "prod"}, "include_policy": False, "include_rotations": True}
    result = gather(stub.client, options, [].append)
    [key] = result["keys"]
    assert key["key_id"] == "k2" and "policy" not in key
    assert key["rotation"]["rotations"] == []
    assert [a["alias_name"] for a in result["aliases"]] == ["alias/c"]
