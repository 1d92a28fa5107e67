"""The pure parts of envelope.kms.key: plan_key, predict_key, key_result and the input checks."""

import datetime
import json

import pytest

from ansible_collections.envelope.kms.plugins.module_utils import keys
from ansible_collections.envelope.kms.plugins.module_utils.keys import (
    CANCEL_DELETION,
    CREATE_ALIAS,
    CREATE_KEY,
    DISABLE,
    ENABLE,
    PUT_POLICY,
    SCHEDULE_DELETION,
    TAG,
    UNTAG,
    UPDATE_ALIAS,
    UPDATE_DESCRIPTION,
    KeyApplyError,
    apply_key,
    check_pending_window,
    default_key_usage,
    key_result,
    managed_fields,
    normalize_tags,
    parse_policy,
    plan_key,
    predict_key,
    predicted_metadata,
    snapshot,
)
from ansible_collections.envelope.kms.plugins.module_utils.kms import KmsInputError

KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
OTHER_ID = "0987dcba-09fe-87dc-65ba-ab0987654321"
ARN = f"arn:aws:kms:us-east-1:123456789012:key/{KEY_ID}"
POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "root", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
         "Action": "kms:*", "Resource": "*"},
    ],
}


def metadata(**overrides):
    data = {
        "AWSAccountId": "123456789012",
        "KeyId": KEY_ID,
        "Arn": ARN,
        "CreationDate": datetime.datetime(2024, 1, 19, 15, 24, 12, tzinfo=datetime.timezone.utc),
        "Enabled": True,
        "Description": "app",
        "KeyUsage": "ENCRYPT_DECRYPT",
        "KeyState": "Enabled",
        "Origin": "AWS_KMS",
        "KeyManager": "CUSTOMER",
        "CustomerMasterKeySpec": "SYMMETRIC_DEFAULT",
        "KeySpec": "SYMMETRIC_DEFAULT",
        "EncryptionAlgorithms": ["SYMMETRIC_DEFAULT"],
        "MultiRegion": False,
    }
    data.update(overrides)
    return data


def current(aliases=("alias/app",), tags=None, **overrides):
    policy = overrides.pop("policy", POLICY)
    return snapshot(metadata(**overrides), list(aliases), {"env": "prod"} if tags is None else tags, policy)


def desired(**overrides):
    data = dict(
        state="present",
        key_id=None,
        alias="alias/app",
        description=None,
        policy=None,
        tags=None,
        purge_tags=True,
        enabled=True,
        key_usage=None,
        key_spec=None,
        multi_region=None,
        pending_window_days=30,
    )
    data.update(overrides)
    return data


def names(actions):
    return [step[0] for step in actions]


# --- creating ---------------------------------------------------------------------------------


def test_create_with_everything():
    actions = plan_key(None, desired(description="d", policy=POLICY, tags={"b": "2", "a": "1"}))
    assert actions == [
        (
            CREATE_KEY,
            {
                "KeySpec": "SYMMETRIC_DEFAULT",
                "KeyUsage": "ENCRYPT_DECRYPT",
                "MultiRegion": False,
                "Description": "d",
                "Policy": json.dumps(POLICY),
                "Tags": [{"TagKey": "a", "TagValue": "1"}, {"TagKey": "b", "TagValue": "2"}],
            },
        ),
        (CREATE_ALIAS, {"AliasName": "alias/app"}),
    ]


def test_create_minimal_leaves_description_policy_tags_to_kms():
    (create, args), alias = plan_key(None, desired())
    assert create == CREATE_KEY and alias == (CREATE_ALIAS, {"AliasName": "alias/app"})
    assert args == {"KeySpec": "SYMMETRIC_DEFAULT", "KeyUsage": "ENCRYPT_DECRYPT", "MultiRegion": False}


def test_create_disabled_disables_after_the_alias():
    assert names(plan_key(None, desired(enabled=False))) == [CREATE_KEY, CREATE_ALIAS, DISABLE]


def test_create_asymmetric_multi_region():
    args = plan_key(None, desired(key_spec="RSA_2048", key_usage="SIGN_VERIFY", multi_region=True))[0][1]
    assert (args["KeySpec"], args["KeyUsage"], args["MultiRegion"]) == ("RSA_2048", "SIGN_VERIFY", True)


@pytest.mark.parametrize(
    "key_spec, usage",
    [
        ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT"),
        ("RSA_4096", "ENCRYPT_DECRYPT"),
        ("HMAC_256", "GENERATE_VERIFY_MAC"),
        ("ECC_SECG_P256K1", "SIGN_VERIFY"),
        ("ECC_NIST_EDWARDS25519", "SIGN_VERIFY"),
        ("ML_DSA_65", "SIGN_VERIFY"),
        ("ML_KEM_768", "ENCAPSULATE_DECAPSULATE"),
        ("SM2", "ENCRYPT_DECRYPT"),
        ("SOME_FUTURE_SPEC", "ENCRYPT_DECRYPT"),
    ],
)
def test_default_key_usage(key_spec, usage):
    assert default_key_usage(key_spec) == usage


def test_ecc_nist_needs_an_explicit_usage():
    with pytest.raises(KmsInputError, match="ECC_NIST_P256 needs key_usage: one of SIGN_VERIFY, KEY_AGREEMENT"):
        plan_key(None, desired(key_spec="ECC_NIST_P256"))
    args = plan_key(None, desired(key_spec="ECC_NIST_P256", key_usage="KEY_AGREEMENT"))[0][1]
    assert args["KeyUsage"] == "KEY_AGREEMENT"


def test_unknown_key_id_cannot_be_created():
    with pytest.raises(KmsInputError, match=f"Key {KEY_ID} does not exist"):
        plan_key(None, desired(key_id=KEY_ID))


def test_create_without_alias_is_refused():
    with pytest.raises(KmsInputError, match="needs an alias"):
        plan_key(None, desired(alias=None))


# --- updating ---------------------------------------------------------------------------------


def test_nothing_to_do():
    assert plan_key(current(), desired(description="app", policy=POLICY, tags={"env": "prod"}), KEY_ID) == []


def test_options_left_out_are_left_alone():
    assert plan_key(current(), desired(alias=None, key_id=KEY_ID)) == []


def test_description():
    assert plan_key(current(), desired(description="new"), KEY_ID) == [(UPDATE_DESCRIPTION, {"Description": "new"})]


def test_description_can_be_emptied():
    assert plan_key(current(), desired(description=""), KEY_ID) == [(UPDATE_DESCRIPTION, {"Description": ""})]


def test_policy_compared_semantically():
    same = {
        "Statement": [
            {"Resource": ["*"], "Action": ["kms:*"], "Effect": "Allow", "Sid": "root",
             "Principal": {"AWS": ["arn:aws:iam::123456789012:root"]}},
        ],
        "Version": "2012-10-17",
    }
    assert plan_key(current(), desired(policy=same), KEY_ID) == []
    different = json.loads(json.dumps(POLICY))
    different["Statement"][0]["Action"] = "kms:Describe*"
    assert plan_key(current(), desired(policy=different), KEY_ID) == [
        (PUT_POLICY, {"PolicyName": "default", "Policy": json.dumps(different)})
    ]


def test_unreadable_policy_is_put():
    assert names(plan_key(current(policy=None), desired(policy=POLICY), KEY_ID)) == [PUT_POLICY]


def test_tags_purged():
    actions = plan_key(current(tags={"env": "prod", "old": "x", "aws:managed": "y"}),
                       desired(tags={"env": "dev", "new": "1"}), KEY_ID)
    assert actions == [
        (UNTAG, {"TagKeys": ["old"]}),
        (TAG, {"Tags": [{"TagKey": "env", "TagValue": "dev"}, {"TagKey": "new", "TagValue": "1"}]}),
    ]


def test_tags_not_purged():
    actions = plan_key(current(tags={"env": "prod", "old": "x"}), desired(tags={"new": "1"}, purge_tags=False), KEY_ID)
    assert actions == [(TAG, {"Tags": [{"TagKey": "new", "TagValue": "1"}]})]


def test_empty_tags_with_purge_removes_all():
    assert plan_key(current(tags={"a": "1", "b": "2"}), desired(tags={}), KEY_ID) == [(UNTAG, {"TagKeys": ["a", "b"]})]


@pytest.mark.parametrize(
    "state, enabled_now, enabled, expected",
    [
        ("Enabled", True, False, [DISABLE]),
        ("Disabled", False, True, [ENABLE]),
        ("Enabled", True, True, []),
        ("Disabled", False, False, []),
        ("PendingImport", False, True, []),
        ("Unavailable", False, False, []),
    ],
)
def test_enable_disable(state, enabled_now, enabled, expected):
    key = current(KeyState=state, Enabled=enabled_now)
    assert names(plan_key(key, desired(enabled=enabled), KEY_ID)) == expected


@pytest.mark.parametrize("enabled, expected", [(True, [CANCEL_DELETION, ENABLE]), (False, [CANCEL_DELETION])])
def test_present_cancels_a_pending_deletion(enabled, expected):
    key = current(KeyState="PendingDeletion", Enabled=False)
    assert names(plan_key(key, desired(enabled=enabled), KEY_ID)) == expected


def test_cancel_comes_first_then_updates_then_enable_then_alias():
    key = current(KeyState="PendingDeletion", Enabled=False)
    actions = plan_key(key, desired(key_id=KEY_ID, description="x", policy={"Statement": []}, tags={"n": "v"}), None)
    assert names(actions) == [CANCEL_DELETION, UPDATE_DESCRIPTION, PUT_POLICY, UNTAG, TAG, ENABLE, CREATE_ALIAS]


def test_alias_created_for_key_given_by_id():
    assert plan_key(current(), desired(key_id=KEY_ID, alias="alias/new"), None) == [
        (CREATE_ALIAS, {"AliasName": "alias/new"})
    ]


def test_alias_repointed_to_key_given_by_id():
    assert plan_key(current(), desired(key_id=KEY_ID, alias="alias/app"), OTHER_ID) == [
        (UPDATE_ALIAS, {"AliasName": "alias/app"})
    ]


def test_immutable_attributes_checked_only_when_given():
    key = current(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY", MultiRegion=True)
    assert plan_key(key, desired(), KEY_ID) == []
    assert plan_key(key, desired(key_spec="RSA_2048", key_usage="SIGN_VERIFY", multi_region=True), KEY_ID) == []


def test_immutable_attributes_cannot_change():
    with pytest.raises(KmsInputError) as error:
        plan_key(current(), desired(key_spec="RSA_2048", key_usage="SIGN_VERIFY", multi_region=True), KEY_ID)
    message = str(error.value)
    assert "key_usage is ENCRYPT_DECRYPT, not SIGN_VERIFY" in message
    assert "key_spec is SYMMETRIC_DEFAULT, not RSA_2048" in message
    assert "multi_region is False, not True" in message
    assert "cannot change after a key is created" in message


def test_aws_managed_key_is_refused_when_it_would_change():
    key = current(KeyManager="AWS", aliases=["alias/aws/s3"])
    assert plan_key(key, desired(alias=None, key_id=KEY_ID)) == []  # nothing to change: fine
    with pytest.raises(KmsInputError, match="managed by AWS: it cannot be modified .*update_key_description"):
        plan_key(key, desired(alias=None, key_id=KEY_ID, description="mine"))
    with pytest.raises(KmsInputError, match="managed by AWS.*schedule_key_deletion"):
        plan_key(key, desired(state="absent", alias=None, key_id=KEY_ID))


# --- absent -----------------------------------------------------------------------------------


def test_absent_schedules_deletion_with_window():
    assert plan_key(current(), desired(state="absent", pending_window_days=7)) == [
        (SCHEDULE_DELETION, {"PendingWindowInDays": 7})
    ]


def test_absent_disabled_key_is_scheduled_too():
    assert names(plan_key(current(KeyState="Disabled", Enabled=False), desired(state="absent"))) == [SCHEDULE_DELETION]


@pytest.mark.parametrize("key", [None, current(KeyState="PendingDeletion", Enabled=False)])
def test_absent_missing_or_pending_is_unchanged(key):
    assert plan_key(key, desired(state="absent", key_id=KEY_ID)) == []


def test_absent_ignores_everything_else():
    actions = plan_key(current(), desired(state="absent", description="x", enabled=False, key_spec="RSA_2048"), OTHER_ID)
    assert names(actions) == [SCHEDULE_DELETION]


# --- input checks -----------------------------------------------------------------------------


@pytest.mark.parametrize("days", [7, 30, 15])
def test_pending_window_ok(days):
    assert check_pending_window(days) == days


@pytest.mark.parametrize("days", [3, 6, 31, -1, None])
def test_pending_window_refused(days):
    with pytest.raises(KmsInputError, match="pending_window_days must be between 7 and 30"):
        check_pending_window(days)


def test_parse_policy():
    assert parse_policy(None) is None
    assert parse_policy(json.dumps(POLICY)) == POLICY
    with pytest.raises(KmsInputError, match="policy is not valid JSON"):
        parse_policy("{not json")
    with pytest.raises(KmsInputError, match="must be a JSON object"):
        parse_policy("[1, 2]")


def test_normalize_tags_texts_values_like_amazon_aws():
    assert normalize_tags(None) is None
    assert normalize_tags({"n": 1, "b": True, "s": "x"}) == {"n": "1", "b": "True", "s": "x"}


# --- prediction and result --------------------------------------------------------------------


def test_predict_create():
    actions = plan_key(None, desired(description="d", tags={"a": "1"}, enabled=False))
    assert predict_key(None, actions) == {
        "description": "d",
        "enabled": False,
        "key_state": "Disabled",
        "tags": {"a": "1"},
        "policy": None,
        "aliases": ["alias/app"],
    }


def test_predict_nothing_for_missing_key():
    assert predict_key(None, []) == {}


def test_predict_update_does_not_touch_current():
    key = current(KeyState="PendingDeletion", Enabled=False, tags={"old": "x", "keep": "k"}, aliases=["alias/b"])
    before = json.loads(json.dumps(key))
    new_policy = {"Statement": []}
    actions = plan_key(key, desired(alias="alias/a", description="n", policy=new_policy, tags={"keep": "k", "t": "1"}),
                       OTHER_ID)
    assert predict_key(key, actions) == {
        "description": "n",
        "enabled": True,
        "key_state": "Enabled",
        "tags": {"keep": "k", "t": "1"},
        "policy": new_policy,
        "aliases": ["alias/a", "alias/b"],
    }
    assert key == before


def test_predict_schedule_and_cancel():
    key = current()
    assert predict_key(key, [(SCHEDULE_DELETION, {"PendingWindowInDays": 7})])["key_state"] == "PendingDeletion"
    assert predict_key(key, [(CANCEL_DELETION, {})])["key_state"] == "Disabled"
    assert predict_key(key, [])["key_state"] == "Enabled"


def test_managed_fields():
    assert managed_fields(None) == {}
    assert managed_fields(current()) == {
        "description": "app",
        "enabled": True,
        "key_state": "Enabled",
        "tags": {"env": "prod"},
        "policy": POLICY,
        "aliases": ["alias/app"],
    }


def test_key_result_of_existing_key():
    result = key_result(metadata(), managed_fields(current()))
    assert result["key_id"] == KEY_ID
    assert result["key_arn"] == result["arn"] == ARN
    assert result["creation_date"] == "2024-01-19T15:24:12+00:00"
    assert result["aws_account_id"] == "123456789012"
    assert result["key_spec"] == "SYMMETRIC_DEFAULT"
    assert result["encryption_algorithms"] == ["SYMMETRIC_DEFAULT"]
    assert result["tags"] == {"env": "prod"} and result["policy"] == POLICY
    assert "deletion_date" not in result
    assert "customer_master_key_spec" not in result  # only the documented fields


def test_key_result_deletion_date_only_when_pending():
    deletion = datetime.datetime(2024, 2, 18, tzinfo=datetime.timezone.utc)
    pending = metadata(KeyState="PendingDeletion", Enabled=False, DeletionDate=deletion)
    result = key_result(pending, managed_fields(snapshot(pending, [], {}, None)))
    assert result["deletion_date"] == "2024-02-18T00:00:00+00:00"
    # check mode predicting a cancellation: the old date must not be returned
    cancelled = predict_key(snapshot(pending, [], {}, None), [(CANCEL_DELETION, {})])
    assert "deletion_date" not in key_result(pending, cancelled)
    # check mode predicting a deletion: KMS has not chosen a date yet
    scheduled = predict_key(current(), [(SCHEDULE_DELETION, {"PendingWindowInDays": 7})])
    assert "deletion_date" not in key_result(metadata(), scheduled)


def test_key_result_of_key_check_mode_would_create():
    actions = plan_key(None, desired(key_spec="RSA_2048", multi_region=True))
    result = key_result(predicted_metadata(actions), predict_key(None, actions))
    assert result["key_id"] is None and result["key_arn"] is None and result["creation_date"] is None
    assert result["key_spec"] == "RSA_2048" and result["key_usage"] == "ENCRYPT_DECRYPT"
    assert result["multi_region"] is True and result["key_manager"] == "CUSTOMER"
    assert result["aliases"] == ["alias/app"] and result["key_state"] == "Enabled"
    assert predicted_metadata([(ENABLE, {})]) is None


# --- apply (a recording fake client: the calls and their arguments) ---------------------------


class FakeClient:
    def __init__(self, fail_on=None):
        self.calls = []
        self.fail_on = fail_on

    def __getattr__(self, name):
        def call(**kwargs):
            if name == self.fail_on:
                from botocore.exceptions import ClientError

                raise ClientError({"Error": {"Code": "KMSInvalidStateException", "Message": "no"}}, name)
            self.calls.append((name, kwargs))
            return {"KeyMetadata": {"KeyId": "new-key"}} if name == "create_key" else {}

        return call


def test_apply_create_uses_the_new_key_id():
    client = FakeClient()
    assert apply_key(client, plan_key(None, desired(enabled=False))) == "new-key"
    assert client.calls == [
        ("create_key", {"KeySpec": "SYMMETRIC_DEFAULT", "KeyUsage": "ENCRYPT_DECRYPT",
                        "MultiRegion": False}),
        ("create_alias", {"TargetKeyId": "new-key", "AliasName": "alias/app"}),
        ("disable_key", {"KeyId": "new-key"}),
    ]


def test_apply_update_passes_the_key_id():
    client = FakeClient()
    apply_key(client, [(UPDATE_DESCRIPTION, {"Description": "d"}), (UPDATE_ALIAS, {"AliasName": "alias/a"})], KEY_ID)
    assert client.calls == [
        ("update_key_description", {"KeyId": KEY_ID, "Description": "d"}),
        ("update_alias", {"TargetKeyId": KEY_ID, "AliasName": "alias/a"}),
    ]


def test_apply_failure_says_which_call_and_which_key():
    client = FakeClient(fail_on="create_alias")
    with pytest.raises(KeyApplyError) as error:
        apply_key(client, plan_key(None, desired()))
    assert error.value.action == "create_alias"
    assert error.value.key_id == "new-key"  # the key was created: the failure must name it
    assert names(client.calls) == ["create_key"]


def test_key_specs_and_usages_match_the_botocore_model():
    botocore_session = pytest.importorskip("botocore.session")
    shape = botocore_session.get_session().get_service_model("kms").operation_model("CreateKey").input_shape
    assert set(keys.KEY_SPECS) <= set(shape.members["KeySpec"].enum)
    assert set(keys.KEY_USAGES) <= set(shape.members["KeyUsage"].enum)


# --- origin, custom key stores, the policy lockout check (issue #15) ---------------------------

CKS = "cks-1234567890abcdef0"


@pytest.mark.parametrize(
    "options",
    [
        dict(origin=None, custom_key_store_id=None, xks_key_id=None),
        dict(origin="AWS_KMS", custom_key_store_id=None, xks_key_id=None),
        dict(origin="EXTERNAL", custom_key_store_id=None, xks_key_id=None, key_spec="HMAC_256", multi_region=True),
        dict(origin="AWS_CLOUDHSM", custom_key_store_id=CKS, xks_key_id=None),
        dict(origin="EXTERNAL_KEY_STORE", custom_key_store_id=CKS, xks_key_id="xks-1", key_spec="SYMMETRIC_DEFAULT",
             key_usage="ENCRYPT_DECRYPT", multi_region=False),
    ],
)
def test_check_origin_accepts_what_kms_creates(options):
    keys.check_origin(**options)


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(origin=None, custom_key_store_id=CKS, xks_key_id=None),
         "custom_key_store_id needs origin AWS_CLOUDHSM or EXTERNAL_KEY_STORE (origin is not given)"),
        (dict(origin="EXTERNAL", custom_key_store_id=CKS, xks_key_id=None),
         "custom_key_store_id needs origin AWS_CLOUDHSM or EXTERNAL_KEY_STORE (origin is EXTERNAL)"),
        (dict(origin="AWS_CLOUDHSM", custom_key_store_id=None, xks_key_id=None),
         "origin AWS_CLOUDHSM needs custom_key_store_id: the id of the custom key store"),
        (dict(origin="EXTERNAL_KEY_STORE", custom_key_store_id=None, xks_key_id="x"),
         "origin EXTERNAL_KEY_STORE needs custom_key_store_id"),
        (dict(origin="EXTERNAL_KEY_STORE", custom_key_store_id=CKS, xks_key_id=None),
         "origin EXTERNAL_KEY_STORE needs xks_key_id: the id of the external key"),
        (dict(origin="AWS_CLOUDHSM", custom_key_store_id=CKS, xks_key_id="x"),
         "xks_key_id needs origin EXTERNAL_KEY_STORE (origin is AWS_CLOUDHSM)"),
        (dict(origin=None, custom_key_store_id=None, xks_key_id="x"),
         "xks_key_id needs origin EXTERNAL_KEY_STORE (origin is not given)"),
        (dict(origin="AWS_CLOUDHSM", custom_key_store_id=" ", xks_key_id=None), "custom_key_store_id must not be empty"),
        (dict(origin="AWS_CLOUDHSM", custom_key_store_id=CKS, xks_key_id=None, key_spec="RSA_2048", key_usage="SIGN_VERIFY"),
         "A key with origin AWS_CLOUDHSM is a single-Region SYMMETRIC_DEFAULT ENCRYPT_DECRYPT key: key_spec RSA_2048, "
         "key_usage SIGN_VERIFY is not possible"),
        (dict(origin="EXTERNAL_KEY_STORE", custom_key_store_id=CKS, xks_key_id="x", multi_region=True),
         "A key with origin EXTERNAL_KEY_STORE is a single-Region SYMMETRIC_DEFAULT ENCRYPT_DECRYPT key: "
         "multi_region true is not possible"),
    ],
)
def test_check_origin_refuses_what_kms_refuses(options, message):
    with pytest.raises(KmsInputError) as error:
        keys.check_origin(**options)
    assert str(error.value) == message or str(error.value).startswith(message)


def test_origins_match_the_botocore_model():
    botocore_session = pytest.importorskip("botocore.session")
    shape = botocore_session.get_session().get_service_model("kms").operation_model("CreateKey").input_shape
    assert keys.ORIGINS == shape.members["Origin"].enum


def test_create_passes_origin_store_and_external_key_through():
    (create, args), _alias = plan_key(None, desired(origin="EXTERNAL_KEY_STORE", custom_key_store_id=CKS, xks_key_id="xks-1"))
    assert create == CREATE_KEY
    assert args == {"KeySpec": "SYMMETRIC_DEFAULT", "KeyUsage": "ENCRYPT_DECRYPT", "MultiRegion": False,
                    "Origin": "EXTERNAL_KEY_STORE", "CustomKeyStoreId": CKS, "XksKeyId": "xks-1"}
    meta = predicted_metadata(plan_key(None, desired(origin="AWS_CLOUDHSM", custom_key_store_id=CKS)))
    assert meta["Origin"] == "AWS_CLOUDHSM" and meta["CustomKeyStoreId"] == CKS and "XksKeyConfiguration" not in meta


def test_create_external_key_is_pending_import_and_not_disabled():
    actions = plan_key(None, desired(origin="EXTERNAL", enabled=False))
    assert actions == [
        (CREATE_KEY, {"KeySpec": "SYMMETRIC_DEFAULT", "KeyUsage": "ENCRYPT_DECRYPT", "MultiRegion": False,
                      "Origin": "EXTERNAL"}),
        (CREATE_ALIAS, {"AliasName": "alias/app"}),
    ]  # no disable_key: KMS cannot disable a key without key material
    after = predict_key(None, actions)
    assert after["key_state"] == "PendingImport" and after["enabled"] is False
    result = key_result(predicted_metadata(actions), after)
    assert result["origin"] == "EXTERNAL" and result["key_state"] == "PendingImport"
    # other origins are created Enabled and disabled when asked
    assert names(plan_key(None, desired(origin="AWS_CLOUDHSM", custom_key_store_id=CKS, enabled=False)))[-1] == DISABLE


@pytest.mark.parametrize("enabled", [True, False])
def test_pending_import_key_has_no_enabled_change_to_make(enabled):
    key = current(Origin="EXTERNAL", KeyState="PendingImport", Enabled=False)
    assert plan_key(key, desired(enabled=enabled, origin="EXTERNAL"), KEY_ID) == []
    # once imported, enabled applies again
    imported = current(Origin="EXTERNAL", KeyState="Enabled", Enabled=True, ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    assert plan_key(imported, desired(enabled=enabled, origin="EXTERNAL"), KEY_ID) == ([] if enabled else [(DISABLE, {})])


def test_origin_store_and_external_key_are_immutable():
    key = current(Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId=CKS, XksKeyConfiguration={"Id": "xks-1"})
    same = desired(origin="EXTERNAL_KEY_STORE", custom_key_store_id=CKS, xks_key_id="xks-1")
    assert plan_key(key, same, KEY_ID) == []
    assert plan_key(key, desired(), KEY_ID) == []  # not given: not checked
    with pytest.raises(KmsInputError) as error:
        plan_key(key, desired(origin="AWS_CLOUDHSM", custom_key_store_id="cks-other"), KEY_ID)
    message = str(error.value)
    assert message == (
        f"Key {KEY_ID}: origin is EXTERNAL_KEY_STORE, not AWS_CLOUDHSM; custom_key_store_id is {CKS}, not cks-other. "
        "key_usage, key_spec, multi_region, origin, custom_key_store_id and xks_key_id cannot change after a key is "
        "created: create a new key (and re-point the alias to it)"
    )
    with pytest.raises(KmsInputError, match="^Key .*: origin is AWS_KMS, not EXTERNAL. "):
        plan_key(current(), desired(origin="EXTERNAL"), KEY_ID)


def test_bypass_policy_lockout_safety_check_reaches_create_key_and_put_key_policy():
    create = plan_key(None, desired(policy=POLICY, bypass_policy_lockout_safety_check=True))[0]
    assert create[1]["BypassPolicyLockoutSafetyCheck"] is True and create[1]["Policy"] == json.dumps(POLICY)
    other = {"Version": "2012-10-17", "Statement": []}
    assert plan_key(current(), desired(policy=other, bypass_policy_lockout_safety_check=True), KEY_ID) == [
        (PUT_POLICY, {"PolicyName": "default", "Policy": json.dumps(other), "BypassPolicyLockoutSafetyCheck": True})
    ]
    # false (the default) is left to KMS's own default, and the option alone changes nothing
    assert "BypassPolicyLockoutSafetyCheck" not in plan_key(None, desired(policy=POLICY))[0][1]
    assert plan_key(current(), desired(policy=POLICY, bypass_policy_lockout_safety_check=True), KEY_ID) == []


def test_key_result_shows_origin_store_and_external_key():
    meta = metadata(Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId=CKS, XksKeyConfiguration={"Id": "xks-1"})
    result = key_result(meta, managed_fields(snapshot(meta, [], {}, None)))
    assert result["origin"] == "EXTERNAL_KEY_STORE"
    assert result["custom_key_store_id"] == CKS
    assert result["xks_key_configuration"] == {"id": "xks-1"}
    valid_to = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    external = metadata(Origin="EXTERNAL", ExpirationModel="KEY_MATERIAL_EXPIRES", ValidTo=valid_to)
    result = key_result(external, managed_fields(snapshot(external, [], {}, None)))
    assert result["expiration_model"] == "KEY_MATERIAL_EXPIRES" and result["valid_to"] == "2026-01-01T00:00:00+00:00"
    plain = key_result(metadata(), managed_fields(current()))
    assert plain["custom_key_store_id"] is None and plain["xks_key_configuration"] is None
