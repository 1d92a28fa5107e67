"""Key rotation: the pure plan and checks, then reading and applying on a stubbed real client.

moto 5.2.5 (the integration tests' endpoint) omits RotationPeriodInDays from GetKeyRotationStatus;
what KMS answers with it is stubbed here. The module's main() against stubbed KMS answers is in
tests/unit/plugins/modules/test_key_rotation.py.
"""

import datetime

import pytest

from ansible_collections.envelope.kms.plugins.module_utils.kms import KmsInputError
from ansible_collections.envelope.kms.plugins.module_utils.kms import rotation_status
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
    validate_request,
)
from tests.harness.stubbed_kms import KEY_ARN, SYMMETRIC

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


def test_rotation_status_with_and_without_period(stubbed):
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
    assert rotation_status(client, KEY_ARN) == status(True, 180, NOW.isoformat(), NOW.isoformat())
    assert rotation_status(client, KEY_ARN) == status(True)


def test_apply_rotation_calls(stubbed):
    client, stubber = stubbed
    stubber.add_response("enable_key_rotation", {}, {"KeyId": KEY_ARN, "RotationPeriodInDays": 180})
    stubber.add_response("enable_key_rotation", {}, {"KeyId": KEY_ARN})
    stubber.add_response("disable_key_rotation", {}, {"KeyId": KEY_ARN})
    stubber.add_response("rotate_key_on_demand", {"KeyId": KEY_ARN}, {"KeyId": KEY_ARN})
    for action in [(ENABLE, 180), (ENABLE, None), (DISABLE, None), (ROTATE, None)]:
        apply_rotation(client, KEY_ARN, action)
