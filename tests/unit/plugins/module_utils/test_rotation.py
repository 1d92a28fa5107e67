"""Key rotation: the pure plan and checks, then the module's KMS calls driven by botocore's Stubber.

moto 5.2.5 (the integration tests' endpoint) omits RotationPeriodInDays from GetKeyRotationStatus,
never fails EnableKeyRotation on a disabled key, and has no on-demand rotation in progress. Those
paths (period compared with a reported one, KMS errors, OnDemandRotationStartDate) are tested
here instead, with real KMS responses stubbed on a real boto3 client, through the module's main().
"""

import datetime
import json

import boto3
import pytest
from botocore.stub import Stubber

from ansible.module_utils.common import warnings as core_warnings
from ansible.module_utils.testing import patch_module_args

from ansible_collections.envelope.kms.plugins.module_utils.kms import KmsInputError
from ansible_collections.envelope.kms.plugins.module_utils.rotation import (
    DISABLE,
    ENABLE,
    NOT_ROTATING,
    ROTATE,
    apply_rotation,
    check_changeable,
    check_rotatable,
    describe_action,
    plan_rotation,
    read_rotation,
    validate_request,
)
from ansible_collections.envelope.kms.plugins.modules import key_rotation

KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
KEY_ARN = f"arn:aws:kms:us-east-1:111122223333:key/{KEY_ID}"
SYMMETRIC = {
    "KeyId": KEY_ID,
    "Arn": KEY_ARN,
    "KeySpec": "SYMMETRIC_DEFAULT",
    "KeyUsage": "ENCRYPT_DECRYPT",
    "Origin": "AWS_KMS",
    "KeyManager": "CUSTOMER",
    "Enabled": True,
    "KeyState": "Enabled",
}
NOW = datetime.datetime(2025, 2, 1, 9, 0, tzinfo=datetime.timezone.utc)


def status(enabled, period=None, next_date=None, on_demand=None):
    return {
        "enabled": enabled,
        "rotation_period_days": period,
        "next_rotation_date": next_date,
        "on_demand_rotation_start_date": on_demand,
    }


# --- validate_request ---------------------------------------------------------------------------


@pytest.mark.parametrize("enabled, period", [(True, None), (False, None), (True, 90), (True, 2560), (True, 365)])
def test_validate_request_accepts(enabled, period):
    validate_request(enabled, period)


@pytest.mark.parametrize(
    "enabled, period, message",
    [
        (True, 30, "between 90 and 2560 days, got 30"),
        (True, 89, "got 89"),
        (True, 2561, "got 2561"),
        (True, 3000, "got 3000"),
        (True, 0, "got 0"),
        (False, 180, "requires enabled=true"),
    ],
)
def test_validate_request_refuses(enabled, period, message):
    with pytest.raises(KmsInputError, match=message):
        validate_request(enabled, period)


# --- check_rotatable / check_changeable ---------------------------------------------------------

RSA = dict(SYMMETRIC, KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")
HMAC = dict(SYMMETRIC, KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
IMPORTED = dict(SYMMETRIC, Origin="EXTERNAL")


def test_symmetric_key_is_rotatable_whatever_the_request():
    assert check_rotatable(SYMMETRIC, True, True) is True
    assert check_rotatable(SYMMETRIC, False, False) is True


@pytest.mark.parametrize("metadata, detail", [(RSA, "KeySpec RSA_2048"), (HMAC, "HMAC_256"), (IMPORTED, "Origin EXTERNAL")])
@pytest.mark.parametrize("enabled, rotate_now", [(True, False), (False, True), (True, True)])
def test_unrotatable_key_refused_when_rotation_is_asked_for(metadata, detail, enabled, rotate_now):
    with pytest.raises(KmsInputError) as error:
        check_rotatable(metadata, enabled, rotate_now)
    assert f"Key {KEY_ARN} cannot rotate" in str(error.value)
    assert detail in str(error.value)


def test_unrotatable_key_already_has_rotation_off():
    assert check_rotatable(RSA, False, False) is False
    plan = plan_rotation(NOT_ROTATING, False)
    assert plan.actions == []
    check_changeable(RSA, plan)


def test_aws_managed_key_rotation_can_be_read_not_changed():
    managed = dict(SYMMETRIC, KeyManager="AWS")
    check_changeable(managed, plan_rotation(status(True, 365), True))
    with pytest.raises(KmsInputError, match="AWS managed key"):
        check_changeable(managed, plan_rotation(status(True, 365), False))
    with pytest.raises(KmsInputError, match="AWS managed key"):
        check_changeable(managed, plan_rotation(status(True, 365), True, rotate_now=True))


def test_replica_key_rotation_follows_its_primary():
    primary = "arn:aws:kms:eu-west-1:111122223333:key/mrk-1"
    replica = dict(
        SYMMETRIC,
        MultiRegionConfiguration={"MultiRegionKeyType": "REPLICA", "PrimaryKey": {"Arn": primary}},
    )
    check_changeable(replica, plan_rotation(status(True, 365), True))
    with pytest.raises(KmsInputError, match=f"multi-Region replica key: its rotation follows {primary}"):
        check_changeable(replica, plan_rotation(status(True, 365), True, 180))
    primary_key = dict(SYMMETRIC, MultiRegionConfiguration={"MultiRegionKeyType": "PRIMARY"})
    check_changeable(primary_key, plan_rotation(status(True, 365), True, 180))


# --- plan_rotation: every branch ----------------------------------------------------------------


@pytest.mark.parametrize(
    "current, enabled, period, actions, after_period",
    [
        # off -> on: with the requested period, or KMS's default of 365 days
        (status(False), True, None, [(ENABLE, None)], 365),
        (status(False), True, 180, [(ENABLE, 180)], 180),
        # on, period reported: compared
        (status(True, 365), True, None, [], 365),
        (status(True, 365), True, 365, [], 365),
        (status(True, 365), True, 180, [(ENABLE, 180)], 180),
        (status(True, 180), True, 2560, [(ENABLE, 2560)], 2560),
        # on -> off, off stays off
        (status(True, 180), False, None, [(DISABLE, None)], None),
        (status(False), False, None, [], None),
        # on, period not reported (moto): no period asked, nothing to compare
        (status(True), True, None, [], None),
    ],
)
def test_plan_rotation(current, enabled, period, actions, after_period):
    plan = plan_rotation(current, enabled, period)
    assert plan.actions == actions
    assert plan.after["enabled"] is enabled
    assert plan.after["rotation_period_days"] == after_period
    assert plan.period_unverified is False
    assert plan.rotation_in_progress is False


def test_plan_assumes_an_unreported_period_matches():
    plan = plan_rotation(status(True, None), True, 180)
    assert plan.actions == []
    assert plan.period_unverified is True
    assert plan.before == plan.after


def test_plan_before_ignores_a_period_reported_while_rotation_is_off():
    plan = plan_rotation(status(False, 180), False)
    assert plan.actions == []
    assert plan.before == plan.after == {
        "enabled": False,
        "rotation_period_days": None,
        "on_demand_rotation_in_progress": False,
    }


def test_plan_rotate_now_is_an_action_after_the_setting():
    plan = plan_rotation(status(False), True, 90, rotate_now=True)
    assert plan.actions == [(ENABLE, 90), (ROTATE, None)]
    assert plan.before == {"enabled": False, "rotation_period_days": None, "on_demand_rotation_in_progress": False}
    assert plan.after == {"enabled": True, "rotation_period_days": 90, "on_demand_rotation_in_progress": True}
    assert plan_rotation(status(True, 365), True, rotate_now=True).actions == [(ROTATE, None)]
    assert plan_rotation(status(True, 365), False, rotate_now=True).actions == [(DISABLE, None), (ROTATE, None)]


def test_plan_does_not_start_a_second_on_demand_rotation():
    current = status(True, 365, on_demand="2025-02-01T09:00:00+00:00")
    plan = plan_rotation(current, True, rotate_now=True)
    assert plan.actions == []
    assert plan.rotation_in_progress is True
    assert plan.before == plan.after
    assert plan_rotation(current, True).rotation_in_progress is False


@pytest.mark.parametrize(
    "action, text",
    [
        ((ENABLE, 180), "enable automatic rotation every 180 days"),
        ((ENABLE, None), "enable automatic rotation"),
        ((DISABLE, None), "disable automatic rotation"),
        ((ROTATE, None), "start an on-demand rotation"),
    ],
)
def test_describe_action(action, text):
    assert describe_action(action) == text


# --- reading and applying, on a stubbed real client ---------------------------------------------


@pytest.fixture
def stubbed():
    client = boto3.client(
        "kms", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def test_read_rotation_with_and_without_period(stubbed):
    client, stubber = stubbed
    stubber.add_response(
        "get_key_rotation_status",
        {
            "KeyRotationEnabled": True,
            "KeyId": KEY_ARN,
            "RotationPeriodInDays": 180,
            "NextRotationDate": NOW,
            "OnDemandRotationStartDate": NOW,
        },
        {"KeyId": KEY_ARN},
    )
    # what moto answers
    stubber.add_response("get_key_rotation_status", {"KeyRotationEnabled": True}, {"KeyId": KEY_ARN})
    assert read_rotation(client, KEY_ARN) == status(True, 180, NOW.isoformat(), NOW.isoformat())
    assert read_rotation(client, KEY_ARN) == status(True)


def test_apply_rotation_calls(stubbed):
    client, stubber = stubbed
    stubber.add_response("enable_key_rotation", {}, {"KeyId": KEY_ARN, "RotationPeriodInDays": 180})
    stubber.add_response("enable_key_rotation", {}, {"KeyId": KEY_ARN})
    stubber.add_response("disable_key_rotation", {}, {"KeyId": KEY_ARN})
    stubber.add_response("rotate_key_on_demand", {"KeyId": KEY_ARN}, {"KeyId": KEY_ARN})
    for action in [(ENABLE, 180), (ENABLE, None), (DISABLE, None), (ROTATE, None)]:
        apply_rotation(client, KEY_ARN, action)


# --- the whole module against stubbed KMS answers -----------------------------------------------


def run_module(monkeypatch, capsys, stubber_setup, check_mode=False, diff=False, **args):
    """Run key_rotation.main() with `args` against a stubbed client; return its JSON result."""
    client = boto3.client(
        "kms", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    stubber = Stubber(client)
    stubber_setup(stubber)
    monkeypatch.setattr(core_warnings, "_global_warnings", {})  # module warnings are process-global
    monkeypatch.setattr(key_rotation, "kms_client", lambda module: client)
    args.update(_ansible_check_mode=check_mode, _ansible_diff=diff)
    with stubber, patch_module_args(args), pytest.raises(SystemExit):
        key_rotation.main()
    stubber.assert_no_pending_responses()  # every stubbed call happened, and no other call did
    return json.loads(capsys.readouterr().out)


def warnings_of(result):
    """Warning texts: plain strings through ansible-playbook, summaries when main() runs in-process."""
    return [w["event"]["msg"] if isinstance(w, dict) else w for w in result.get("warnings", [])]


def describe(stubber, metadata=None, ref=KEY_ID):
    stubber.add_response("describe_key", {"KeyMetadata": metadata or SYMMETRIC}, {"KeyId": ref})


def rotation(stubber, enabled, period=None, **extra):
    response = {"KeyRotationEnabled": enabled, "KeyId": KEY_ARN, **extra}
    if period is not None:
        response["RotationPeriodInDays"] = period
    stubber.add_response("get_key_rotation_status", response, {"KeyId": KEY_ARN})


def history(stubber, *rotations):
    stubber.add_response("list_key_rotations", {"Rotations": list(rotations), "Truncated": False}, {"KeyId": KEY_ARN})


def test_module_changes_a_reported_period_that_differs(monkeypatch, capsys):
    later = NOW + datetime.timedelta(days=180)

    def setup(stubber):
        describe(stubber)
        rotation(stubber, True, 365)
        stubber.add_response("enable_key_rotation", {}, {"KeyId": KEY_ARN, "RotationPeriodInDays": 180})
        rotation(stubber, True, 180, NextRotationDate=later)
        history(stubber, {"KeyId": KEY_ID, "RotationDate": NOW, "RotationType": "AUTOMATIC"})

    result = run_module(monkeypatch, capsys, setup, diff=True, key_id=KEY_ID, rotation_period_days=180)
    assert result["changed"] is True
    assert result["enabled"] is True
    assert result["rotation_period_days"] == 180
    assert result["next_rotation_date"] == later.isoformat()
    assert result["key_arn"] == KEY_ARN and result["key_id"] == KEY_ID
    assert result["rotations"] == [{"key_id": KEY_ID, "rotation_date": NOW.isoformat(), "rotation_type": "AUTOMATIC"}]
    assert result["diff"]["before"]["rotation_period_days"] == 365
    assert result["diff"]["after"]["rotation_period_days"] == 180
    assert not warnings_of(result)


def test_module_leaves_a_reported_period_that_matches(monkeypatch, capsys):
    def setup(stubber):
        describe(stubber, ref="alias/app")
        rotation(stubber, True, 180, NextRotationDate=NOW)
        history(stubber)

    result = run_module(monkeypatch, capsys, setup, key_id="alias/app", rotation_period_days=180)
    assert result["changed"] is False
    assert result["key_id"] == KEY_ID
    assert result["rotation_period_days"] == 180
    assert result["next_rotation_date"] == NOW.isoformat()
    assert not warnings_of(result)


def test_module_assumes_an_unreported_period_matches_and_warns(monkeypatch, capsys):
    def setup(stubber):
        describe(stubber)
        rotation(stubber, True)  # what moto answers: no RotationPeriodInDays
        history(stubber)

    result = run_module(monkeypatch, capsys, setup, key_id=KEY_ID, rotation_period_days=180)
    assert result["changed"] is False
    assert result["rotation_period_days"] is None
    assert any("did not report the rotation period" in w and "180 days" in w for w in warnings_of(result))


def test_module_check_mode_makes_no_mutating_call(monkeypatch, capsys):
    def setup(stubber):  # no enable/rotate response stubbed: any such call would fail the run
        describe(stubber)
        rotation(stubber, True, 365)
        history(stubber)

    result = run_module(
        monkeypatch, capsys, setup, check_mode=True, diff=True, key_id=KEY_ID, rotation_period_days=90, rotate_now=True
    )
    assert result["changed"] is True
    assert result["rotation_period_days"] == 90
    assert result["diff"]["after"] == {"enabled": True, "rotation_period_days": 90, "on_demand_rotation_in_progress": True}


def test_module_skips_rotate_now_while_one_is_in_progress(monkeypatch, capsys):
    def setup(stubber):
        describe(stubber)
        rotation(stubber, True, 365, OnDemandRotationStartDate=NOW)
        history(stubber)

    result = run_module(monkeypatch, capsys, setup, key_id=KEY_ID, rotate_now=True)
    assert result["changed"] is False
    assert result["on_demand_rotation_start_date"] == NOW.isoformat()
    assert any("still in progress" in w for w in warnings_of(result))


@pytest.mark.parametrize(
    "code, kms_message, args, operation",
    [
        ("DisabledException", f"{KEY_ARN} is disabled.", dict(rotation_period_days=180), "enable_key_rotation"),
        ("KMSInvalidStateException", f"{KEY_ARN} is pending deletion.", dict(enabled=False), "disable_key_rotation"),
        ("DisabledException", f"{KEY_ARN} is disabled.", dict(rotate_now=True), "rotate_key_on_demand"),
    ],
)
def test_module_reports_kms_errors_with_context(monkeypatch, capsys, code, kms_message, args, operation):
    """moto lets disabled keys change rotation; real KMS refuses, and the module must say what failed."""

    def setup(stubber):
        describe(stubber, dict(SYMMETRIC, Enabled=False, KeyState="Disabled"))
        rotation(stubber, operation != "enable_key_rotation", 365 if operation != "enable_key_rotation" else None)
        stubber.add_client_error(operation, service_error_code=code, service_message=kms_message, http_status_code=400)

    result = run_module(monkeypatch, capsys, setup, key_id=KEY_ID, **args)
    assert result["failed"] is True
    action = {
        "enable_key_rotation": "enable automatic rotation every 180 days",
        "disable_key_rotation": "disable automatic rotation",
        "rotate_key_on_demand": "start an on-demand rotation",
    }[operation]
    assert result["msg"].startswith(f"Could not {action} for key {KEY_ARN}: ")
    assert code in result["msg"] and kms_message in result["msg"]
    assert result["error"]["code"] == code


def test_module_unknown_key_and_unrotatable_key_fail_before_any_rotation_call(monkeypatch, capsys):
    def unknown(stubber):
        stubber.add_client_error("describe_key", service_error_code="NotFoundException", http_status_code=400)

    result = run_module(monkeypatch, capsys, unknown, key_id="alias/nope")
    assert result["failed"] is True and result["msg"] == "Key alias/nope does not exist"

    result = run_module(monkeypatch, capsys, lambda s: describe(s, RSA), key_id=KEY_ID)
    assert result["failed"] is True and "cannot rotate" in result["msg"]

    # enabled=false on a key that cannot rotate: already so, and no rotation call is made
    result = run_module(monkeypatch, capsys, lambda s: describe(s, HMAC), key_id=KEY_ID, enabled=False)
    assert result["changed"] is False and result["enabled"] is False and result["rotations"] == []


def test_module_refuses_bad_period_before_any_call(monkeypatch, capsys):
    result = run_module(monkeypatch, capsys, lambda s: None, key_id=KEY_ID, rotation_period_days=3000)
    assert result["failed"] is True
    assert result["msg"] == "rotation_period_days must be between 90 and 2560 days, got 3000"
