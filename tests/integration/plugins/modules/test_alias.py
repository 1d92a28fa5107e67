"""envelope.kms.alias through the real ansible-playbook against the local KMS endpoint."""


def alias_task(**args):
    return {"name": "Alias", "envelope.kms.alias": args, "register": "out"}


def test_create_then_unchanged(playbook, kms):
    key = kms.create_key()["KeyMetadata"]
    first, second = playbook.run_idempotent([alias_task(name="app", target_key_id=key["KeyId"])])
    result = first.result("Alias")
    assert result["changed"] is True
    assert result["name"] == "alias/app"
    assert result["target_key_id"] == key["KeyId"]
    assert result["target_key_arn"] == key["Arn"]
    assert result["previous_target_key_id"] is None
    assert result["alias_arn"].endswith(":alias/app")
    assert second.result("Alias")["previous_target_key_id"] == key["KeyId"]
    listed = kms.list_aliases(KeyId=key["KeyId"])["Aliases"]
    assert [a["AliasName"] for a in listed] == ["alias/app"]


def test_repoint_is_manual_rotation_and_returns_previous(playbook, kms):
    old = kms.create_key()["KeyMetadata"]["KeyId"]
    new = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/app", TargetKeyId=old)
    kms.create_alias(AliasName="alias/app-v2", TargetKeyId=new)
    # target given as another alias: resolved to the key it points at
    first = playbook.run_idempotent([alias_task(name="alias/app", target_key_id="alias/app-v2")])[0]
    result = first.result("Alias")
    assert result["changed"] is True
    assert result["previous_target_key_id"] == old
    assert result["target_key_id"] == new
    assert kms.describe_key(KeyId="alias/app")["KeyMetadata"]["KeyId"] == new


def test_several_aliases_per_key_and_target_by_arn(playbook, kms):
    key = kms.create_key()["KeyMetadata"]
    playbook.run_idempotent(
        [
            alias_task(name="one", target_key_id=key["Arn"]),
            {"name": "Second", "envelope.kms.alias": {"name": "two", "target_key_id": key["KeyId"]}},
        ]
    )
    names = sorted(a["AliasName"] for a in kms.list_aliases(KeyId=key["KeyId"])["Aliases"])
    assert names == ["alias/one", "alias/two"]


def test_check_mode_and_diff_change_nothing(playbook, kms):
    old = kms.create_key()["KeyMetadata"]["KeyId"]
    new = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/app", TargetKeyId=old)
    run = playbook.run(
        [
            {"name": "Repoint", "envelope.kms.alias": {"name": "app", "target_key_id": new}},
            {"name": "Create", "envelope.kms.alias": {"name": "fresh", "target_key_id": new}},
        ],
        "--check",
        "--diff",
    ).assert_ok()
    repoint, create = run.result("Repoint"), run.result("Create")
    assert repoint["changed"] is True and create["changed"] is True
    assert repoint["diff"] == {
        "before": {"name": "alias/app", "target_key_id": old},
        "after": {"name": "alias/app", "target_key_id": new},
    }
    assert create["diff"] == {"before": {}, "after": {"name": "alias/fresh", "target_key_id": new}}
    assert kms.describe_key(KeyId="alias/app")["KeyMetadata"]["KeyId"] == old
    assert all(a["AliasName"] != "alias/fresh" for a in kms.list_aliases()["Aliases"])


def test_delete(playbook, kms):
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/gone", TargetKeyId=key)
    first = playbook.run_idempotent([alias_task(name="gone", state="absent")])[0]
    assert first.result("Alias")["previous_target_key_id"] == key
    assert all(a["AliasName"] != "alias/gone" for a in kms.list_aliases()["Aliases"])
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["Enabled"] is True


def test_bad_inputs_fail_clearly(playbook, kms):
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    cases = {
        "reserved": (dict(name="alias/aws/ebs", target_key_id=key), "reserved"),
        "unknown key": (dict(name="app", target_key_id="alias/nope"), "does not exist"),
        "bad name": (dict(name="bad name", target_key_id=key), "Invalid alias name"),
        "no target": (dict(name="app"), "target_key_id"),
    }
    for label, (args, message) in cases.items():
        run = playbook.run([alias_task(**args)])
        assert run.returncode != 0, label
        result = run.result("Alias")
        assert result["failed"] is True, label
        assert message in result["msg"], (label, result["msg"])
        assert "Traceback" not in result.get("module_stderr", ""), label
