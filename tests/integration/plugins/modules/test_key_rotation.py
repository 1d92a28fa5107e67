"""envelope.kms.key_rotation through the real ansible-playbook against the local KMS endpoint.

moto 5.2.5 omits RotationPeriodInDays from GetKeyRotationStatus: these tests check the period
KMS was sent (moto keeps no period either, so they check what the module reports and that the
re-run stays unchanged). The comparison with a reported period, KMS errors on disabled keys and
on-demand rotations in progress are tested with botocore's Stubber in
tests/unit/plugins/modules/test_key_rotation.py.
"""


def rotation_task(name="Rotation", **args):
    return {"name": name, "envelope.kms.key_rotation": args, "register": "out"}


def warnings_of(result):
    return " ".join(str(w) for w in result.get("warnings", []))


def test_enable_with_period_enable_default_disable_then_unchanged(playbook, kms):
    keys = [kms.create_key()["KeyMetadata"] for _index in range(3)]
    by_name, by_arn, disabled = keys
    kms.create_alias(AliasName="alias/app", TargetKeyId=by_name["KeyId"])
    kms.create_alias(AliasName="alias/by-arn", TargetKeyId=by_arn["KeyId"])
    alias_arn = by_arn["Arn"].split(":key/")[0] + ":alias/by-arn"
    kms.enable_key_rotation(KeyId=disabled["KeyId"])
    first, second = playbook.run_idempotent(
        [
            rotation_task("Period", key_id="alias/app", rotation_period_days=180),
            rotation_task("Default", key_id=alias_arn),
            rotation_task("Disable", key_id=disabled["Arn"], enabled=False),
        ]
    )
    period, default, disable = (first.result(n) for n in ("Period", "Default", "Disable"))
    assert period["changed"] is True
    assert period["key_id"] == by_name["KeyId"] and period["key_arn"] == by_name["Arn"]
    assert period["enabled"] is True and period["rotation_period_days"] == 180
    assert period["rotations"] == []
    assert default["changed"] is True and default["key_id"] == by_arn["KeyId"]
    assert default["enabled"] is True and default["rotation_period_days"] == 365
    assert disable["changed"] is True and disable["key_id"] == disabled["KeyId"]
    assert disable["enabled"] is False
    assert disable["rotation_period_days"] is None and disable["next_rotation_date"] is None
    enabled = {k["KeyId"]: kms.get_key_rotation_status(KeyId=k["KeyId"])["KeyRotationEnabled"] for k in keys}
    assert enabled == {by_name["KeyId"]: True, by_arn["KeyId"]: True, disabled["KeyId"]: False}
    again = second.result("Period")
    assert again["changed"] is False and again["enabled"] is True
    # moto cannot report the period, so the module says in its result that it assumed it matches;
    # against a custom endpoint (AWS_ENDPOINT_URL here) that is no warning on every run.
    assert again["rotation_period_verified"] is False
    assert "did not report" not in warnings_of(again)
    assert second.result("Default")["rotation_period_verified"] is True  # no period asked: nothing assumed


def test_rotate_now_changes_every_time_and_history_grows(playbook, kms):
    key = kms.create_key()["KeyMetadata"]
    tasks = [rotation_task(key_id=key["KeyId"], enabled=False, rotate_now=True)]
    first = playbook.run(tasks).assert_ok().result("Rotation")
    assert first["changed"] is True
    assert first["enabled"] is False  # on-demand rotation does not turn automatic rotation on
    assert [r["rotation_type"] for r in first["rotations"]] == ["ON_DEMAND"]
    assert first["rotations"][0]["rotation_date"]
    second = playbook.run(tasks).assert_ok().result("Rotation")
    assert second["changed"] is True
    assert [r["rotation_type"] for r in second["rotations"]] == ["ON_DEMAND", "ON_DEMAND"]
    assert len(kms.list_key_rotations(KeyId=key["KeyId"])["Rotations"]) == 2
    assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"] is False


def test_check_mode_and_diff_change_nothing(playbook, kms):
    off = kms.create_key()["KeyMetadata"]["KeyId"]
    on = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.enable_key_rotation(KeyId=on)
    run = playbook.run(
        [
            rotation_task("Enable", key_id=off, rotation_period_days=90),
            rotation_task("Disable", key_id=on, enabled=False),
            rotation_task("Rotate", key_id=on, rotate_now=True),
            rotation_task("Nothing", key_id=on),
        ],
        "--check",
        "--diff",
    ).assert_ok()
    enable, disable, rotate, nothing = (run.result(n) for n in ("Enable", "Disable", "Rotate", "Nothing"))
    assert enable["changed"] is True and enable["enabled"] is True and enable["rotation_period_days"] == 90
    assert enable["diff"] == {
        "before": {"enabled": False, "rotation_period_days": None, "on_demand_rotation_in_progress": False},
        "after": {"enabled": True, "rotation_period_days": 90, "on_demand_rotation_in_progress": False},
    }
    assert disable["changed"] is True and disable["enabled"] is False
    assert disable["diff"]["before"]["enabled"] is True and disable["diff"]["after"]["enabled"] is False
    assert rotate["changed"] is True
    assert rotate["diff"]["after"]["on_demand_rotation_in_progress"] is True
    assert nothing["changed"] is False
    assert nothing["diff"]["before"] == nothing["diff"]["after"]
    assert run.changed() == 3
    # nothing happened in KMS
    assert kms.get_key_rotation_status(KeyId=off)["KeyRotationEnabled"] is False
    assert kms.get_key_rotation_status(KeyId=on)["KeyRotationEnabled"] is True
    assert kms.list_key_rotations(KeyId=on)["Rotations"] == []


def test_bad_inputs_fail_clearly(playbook, kms):
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    rsa = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    cases = {
        "period 30": (dict(key_id=key, rotation_period_days=30), "between 90 and 2560 days, got 30"),
        "period 3000": (dict(key_id=key, rotation_period_days=3000), "between 90 and 2560 days, got 3000"),
        "rsa key": (dict(key_id=rsa), "cannot rotate"),
        "rsa rotate_now": (dict(key_id=rsa, enabled=False, rotate_now=True), "KeySpec RSA_2048"),
        "unknown alias": (dict(key_id="alias/nope"), "Key alias/nope does not exist"),
    }
    tasks = [dict(rotation_task(label, **args), ignore_errors=True) for label, (args, _message) in cases.items()]
    # enabled=false on a key that cannot rotate is already true: ok, unchanged
    tasks.append(rotation_task("rsa off", key_id=rsa, enabled=False))
    run = playbook.run(tasks)
    for label, (_args, message) in cases.items():
        result = run.result(label)
        assert result.get("failed") is True, (label, result)
        assert message in result["msg"], (label, result["msg"])
        assert "Traceback" not in result.get("module_stderr", "") + result["msg"], label
    result = run.result("rsa off")
    assert result.get("failed") is not True, result
    assert result["changed"] is False and result["enabled"] is False and result["rotations"] == []
    assert kms.get_key_rotation_status(KeyId=key)["KeyRotationEnabled"] is False
