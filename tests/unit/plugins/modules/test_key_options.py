"""envelope.kms.key's origin, custom key store and policy lockout options through main(), on stubbed KMS answers.

Why Stubber: moto 5.2.5 has no custom key stores (it ignores CustomKeyStoreId and XksKeyId, so a key
"in" a store comes back without them), ignores BypassPolicyLockoutSafetyCheck (nothing to observe),
and creates keys of origin EXTERNAL in state Enabled instead of PendingImport. The stubbed calls
check the exact parameters of CreateKey and PutKeyPolicy, and that nothing else is called.
(Origin EXTERNAL against moto: tests/integration/plugins/modules/test_key.py.)
"""

import datetime
import json

import pytest

from ansible_collections.envelope.kms.plugins.modules import key
from tests.harness.stubbed_kms import KEY_ID, SYMMETRIC, run_main, stubbed_client

CKS = "cks-1234567890abcdef0"
XKS = "bb8562717f809024"
NOW = datetime.datetime(2025, 3, 1, tzinfo=datetime.timezone.utc)
POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Sid": "only", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/admin"},
                   "Action": "kms:*", "Resource": "*"}],
}
DEFAULT_POLICY = {"Version": "2012-10-17", "Statement": []}
EXTERNAL = dict(SYMMETRIC, Origin="EXTERNAL", KeyState="PendingImport", Enabled=False, CreationDate=NOW)


def run_module(monkeypatch, capsys, setup, **args):
    client, stubber = stubbed_client()
    setup(stubber)
    made = []
    monkeypatch.setattr(key, "kms_client", lambda module: made.append(module) or client)
    return run_main(key, args, monkeypatch, capsys, stubber), made


def not_found(stubber, ref):
    stubber.add_client_error("describe_key", service_error_code="NotFoundException", http_status_code=400,
                             expected_params={"KeyId": ref})


def read_back(stubber, metadata, ref=KEY_ID, aliases=("alias/app",), policy=None):
    """What read_key asks: DescribeKey, ListAliases, ListResourceTags, GetKeyPolicy (policy None: DEFAULT_POLICY)."""
    policy = DEFAULT_POLICY if policy is None else policy
    stubber.add_response("describe_key", {"KeyMetadata": metadata}, {"KeyId": ref})
    stubber.add_response("list_aliases", {"Aliases": [{"AliasName": name, "TargetKeyId": KEY_ID} for name in aliases],
                                          "Truncated": False}, {"KeyId": KEY_ID})
    stubber.add_response("list_resource_tags", {"Tags": [], "Truncated": False}, {"KeyId": KEY_ID})
    stubber.add_response("get_key_policy", {"Policy": json.dumps(policy), "PolicyName": "default"},
                         {"KeyId": KEY_ID, "PolicyName": "default"})


def creates(stubber, args, metadata):
    stubber.add_response("create_key", {"KeyMetadata": metadata}, args)
    stubber.add_response("create_alias", {}, {"AliasName": "alias/app", "TargetKeyId": KEY_ID})


@pytest.mark.parametrize(
    "options, extra, metadata",
    [
        (dict(origin="EXTERNAL_KEY_STORE", custom_key_store_id=CKS, xks_key_id=XKS),
         {"Origin": "EXTERNAL_KEY_STORE", "CustomKeyStoreId": CKS, "XksKeyId": XKS},
         dict(SYMMETRIC, Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId=CKS, XksKeyConfiguration={"Id": XKS})),
        (dict(origin="AWS_CLOUDHSM", custom_key_store_id=CKS),
         {"Origin": "AWS_CLOUDHSM", "CustomKeyStoreId": CKS},
         dict(SYMMETRIC, Origin="AWS_CLOUDHSM", CustomKeyStoreId=CKS, CloudHsmClusterId="cluster-1a23b4cdefg")),
    ],
)
def test_custom_key_store_options_reach_create_key(monkeypatch, capsys, options, extra, metadata):
    args = dict({"KeySpec": "SYMMETRIC_DEFAULT", "KeyUsage": "ENCRYPT_DECRYPT", "MultiRegion": False}, **extra)

    def setup(stubber):
        not_found(stubber, "alias/app")
        creates(stubber, args, metadata)
        read_back(stubber, metadata)

    result, _made = run_module(monkeypatch, capsys, setup, alias="app", **options)
    assert result["changed"] is True and result["changes"] == ["create_key", "create_alias"]
    assert result["origin"] == options["origin"]
    assert result["custom_key_store_id"] == CKS
    assert result["xks_key_configuration"] == ({"id": XKS} if "xks_key_id" in options else None)
    assert result["cloud_hsm_cluster_id"] == metadata.get("CloudHsmClusterId")

    # the same task again: compared, unchanged, nothing but reads
    result, _made = run_module(monkeypatch, capsys, lambda s: read_back(s, metadata, ref="alias/app"), alias="app",
                               **options)
    assert result["changed"] is False and result["changes"] == []


def test_another_custom_key_store_is_an_error_not_a_change(monkeypatch, capsys):
    metadata = dict(SYMMETRIC, Origin="AWS_CLOUDHSM", CustomKeyStoreId=CKS)
    result, _made = run_module(monkeypatch, capsys, lambda s: read_back(s, metadata, ref="alias/app"), alias="app",
                               origin="AWS_CLOUDHSM", custom_key_store_id="cks-0000000000000000")
    assert result["failed"] is True
    assert result["msg"].startswith(f"Key {KEY_ID}: custom_key_store_id is {CKS}, not cks-0000000000000000. ")
    assert "cannot change after a key is created" in result["msg"]


def test_bypass_policy_lockout_safety_check_reaches_create_key(monkeypatch, capsys):
    args = {"KeySpec": "SYMMETRIC_DEFAULT", "KeyUsage": "ENCRYPT_DECRYPT", "MultiRegion": False,
            "Policy": json.dumps(POLICY), "BypassPolicyLockoutSafetyCheck": True}

    def setup(stubber):
        not_found(stubber, "alias/app")
        creates(stubber, args, SYMMETRIC)
        read_back(stubber, SYMMETRIC, policy=POLICY)

    result, _made = run_module(monkeypatch, capsys, setup, alias="app", policy=POLICY,
                               bypass_policy_lockout_safety_check=True)
    assert result["changed"] is True and result["policy"] == POLICY


def test_bypass_policy_lockout_safety_check_reaches_put_key_policy(monkeypatch, capsys):
    def setup(stubber):
        read_back(stubber, SYMMETRIC, ref="alias/app")
        stubber.add_response("put_key_policy", {}, {"KeyId": KEY_ID, "PolicyName": "default", "Policy": json.dumps(POLICY),
                                                    "BypassPolicyLockoutSafetyCheck": True})
        read_back(stubber, SYMMETRIC, policy=POLICY)

    result, _made = run_module(monkeypatch, capsys, setup, alias="app", policy=POLICY,
                               bypass_policy_lockout_safety_check=True)
    assert result["changed"] is True and result["changes"] == ["put_key_policy"]


def test_pending_import_key_is_no_enable_change(monkeypatch, capsys):
    """enabled (true by default, or false) on a key that waits for its key material: nothing to do."""
    for enabled in (True, False):
        result, _made = run_module(monkeypatch, capsys, lambda s: read_back(s, EXTERNAL, ref="alias/app"), alias="app",
                                   origin="EXTERNAL", enabled=enabled, _ansible_diff=True)
        assert result["changed"] is False and result["changes"] == []
        assert result["key_state"] == "PendingImport" and result["enabled"] is False and result["origin"] == "EXTERNAL"
        assert result["diff"]["before"] == result["diff"]["after"]


def test_new_external_key_asked_disabled_is_not_disabled(monkeypatch, capsys):
    args = {"KeySpec": "SYMMETRIC_DEFAULT", "KeyUsage": "ENCRYPT_DECRYPT", "MultiRegion": False, "Origin": "EXTERNAL"}

    def setup(stubber):  # no disable_key stubbed: KMS would refuse it on a PendingImport key
        not_found(stubber, "alias/app")
        creates(stubber, args, EXTERNAL)
        read_back(stubber, EXTERNAL)

    result, _made = run_module(monkeypatch, capsys, setup, alias="app", origin="EXTERNAL", enabled=False)
    assert result["changes"] == ["create_key", "create_alias"] and result["key_state"] == "PendingImport"


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(origin="AWS_CLOUDHSM"), "origin AWS_CLOUDHSM needs custom_key_store_id"),
        (dict(origin="EXTERNAL_KEY_STORE", custom_key_store_id=CKS), "origin EXTERNAL_KEY_STORE needs xks_key_id"),
        (dict(custom_key_store_id=CKS), "custom_key_store_id needs origin AWS_CLOUDHSM or EXTERNAL_KEY_STORE"),
        (dict(origin="EXTERNAL", xks_key_id=XKS), "xks_key_id needs origin EXTERNAL_KEY_STORE (origin is EXTERNAL)"),
        (dict(origin="AWS_CLOUDHSM", custom_key_store_id=CKS, multi_region=True),
         "A key with origin AWS_CLOUDHSM is a single-Region SYMMETRIC_DEFAULT ENCRYPT_DECRYPT key: multi_region true"),
        (dict(origin="EXTERNAL_KEY_STORE", custom_key_store_id=CKS, xks_key_id=XKS, key_spec="HMAC_256"),
         "A key with origin EXTERNAL_KEY_STORE is a single-Region SYMMETRIC_DEFAULT ENCRYPT_DECRYPT key: key_spec HMAC_256"),
    ],
)
def test_origin_options_are_checked_before_any_call(monkeypatch, capsys, options, message):
    result, made = run_module(monkeypatch, capsys, lambda s: None, alias="app", **options)
    assert result["failed"] is True and result["msg"].startswith(message)
    assert made == []  # no client was even made
