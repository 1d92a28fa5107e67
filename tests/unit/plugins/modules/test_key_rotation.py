"""envelope.kms.key_rotation run in-process against KMS answers stubbed with botocore's Stubber.

moto 5.2.5 (the integration tests' endpoint) omits RotationPeriodInDays from GetKeyRotationStatus,
never fails EnableKeyRotation on a disabled key, and has no on-demand rotation in progress. Those
paths (period compared with a reported one, KMS errors, OnDemandRotationStartDate) are tested
here instead, with real KMS responses stubbed on a real boto3 client, through the module's main().
"""

import datetime

import pytest

from ansible_collections.envelope.kms.plugins.modules import key_rotation
from tests.harness.stubbed_kms import KEY_ARN, KEY_ID, SYMMETRIC, run_main, stubbed_client

NOW = datetime.datetime(2025, 2, 1, 9, 0, tzinfo=datetime.timezone.utc)
RSA = dict(SYMMETRIC, KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")
HMAC = dict(SYMMETRIC, KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")


def run_module(monkeypatch, capsys, stubber_setup, check_mode=False, diff=False, **args):
    """Run key_rotation.main() with `args` against a stubbed client; return its JSON result."""
    client, stubber = stubbed_client()
    stubber_setup(stubber)
    monkeypatch.setattr(key_rotation, "kms_client", lambda module: client)
    args.update(_ansible_check_mode=check_mode, _ansible_diff=diff)
    return run_main(key_rotation, args, monkeypatch, capsys, stubber)  # every stubbed call made, no other


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


ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_KMS", "AWS_ENDPOINT_URL", "AWS_URL", "EC2_URL")


def unreported_period(stubber):
    describe(stubber)
    rotation(stubber, True)  # what moto answers: no RotationPeriodInDays
    history(stubber)


def test_module_assumes_an_unreported_period_matches_and_warns_against_aws(monkeypatch, capsys):
    for name in ENDPOINT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    result = run_module(monkeypatch, capsys, unreported_period, key_id=KEY_ID, rotation_period_days=180)
    assert result["changed"] is False
    assert result["rotation_period_days"] is None
    assert result["rotation_period_verified"] is False
    assert any("did not report the rotation period" in w and "180 days" in w for w in warnings_of(result))


@pytest.mark.parametrize("how", ["option", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_KMS"])
def test_an_unreported_period_is_no_warning_against_a_custom_endpoint(monkeypatch, capsys, how):
    """Emulators (moto) never report the period: said in the result, not as a warning on every run."""
    for name in ENDPOINT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    args = dict(key_id=KEY_ID, rotation_period_days=180)
    if how == "option":
        args["endpoint_url"] = "http://127.0.0.1:5000"
    else:
        monkeypatch.setenv(how, "http://127.0.0.1:5000")
    result = run_module(monkeypatch, capsys, unreported_period, **args)
    assert result["rotation_period_verified"] is False
    assert not warnings_of(result)


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
