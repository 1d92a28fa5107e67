"""envelope.kms.key through the real ansible-playbook against the local KMS endpoint (moto server).

moto gaps met here (the code paths are covered by tests/unit/plugins/module_utils/test_keys.py):
- every moto key is customer managed, so refusing AWS managed keys is unit-tested only;
- moto ignores ScheduleKeyDeletion windows outside 7-30 days (no error, nothing happens), which is
  one more reason the module checks pending_window_days before any call;
- moto accepts EnableKey on a key pending deletion (KMS refuses it), so it would not notice a plan
  that enables before cancelling; the unit tests pin the order cancel -> enable;
- moto records CreateKey's Origin EXTERNAL but creates the key Enabled, with key material of its own
  (KMS: PendingImport, no material), and ignores CustomKeyStoreId, XksKeyId and
  BypassPolicyLockoutSafetyCheck: those paths are in tests/unit/plugins/modules/test_key_options.py.
"""

import base64
import datetime
import json

from tests.harness.leaks import Needles

ACCOUNT_ROOT = "arn:aws:iam::123456789012:root"
POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "Enable IAM policies",
            "Effect": "Allow",
            "Principal": {"AWS": ACCOUNT_ROOT},
            "Action": "kms:*",
            "Resource": "*",
        },
        {
            "Sid": "Let the app role decrypt",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:role/app"},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": "*",
        },
    ],
}
# The same policy as KMS might print it: other order, lists for single values, other spacing.
POLICY_SAME_AS_TEXT = json.dumps(
    {
        "Statement": [
            {
                "Resource": ["*"],
                "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                "Principal": {"AWS": ["arn:aws:iam::123456789012:role/app"]},
                "Effect": "Allow",
                "Sid": "Let the app role decrypt",
            },
            {"Resource": "*", "Action": ["kms:*"], "Principal": {"AWS": ACCOUNT_ROOT}, "Effect": "Allow",
             "Sid": "Enable IAM policies"},
        ],
        "Version": "2012-10-17",
    },
    indent=4,
)
MUTATING = {
    "CreateKey", "CreateAlias", "UpdateAlias", "DeleteAlias", "UpdateKeyDescription", "PutKeyPolicy",
    "TagResource", "UntagResource", "EnableKey", "DisableKey", "ScheduleKeyDeletion", "CancelKeyDeletion",
}


def key_task(name="Key", **args):
    return {"name": name, "envelope.kms.key": args}


def tags_of(kms, key_id):
    return {tag["TagKey"]: tag["TagValue"] for tag in kms.list_resource_tags(KeyId=key_id)["Tags"]}


def aliases_of(kms, key_id):
    return sorted(alias["AliasName"] for alias in kms.list_aliases(KeyId=key_id)["Aliases"])


def policy_of(kms, key_id):
    return json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])


def metadata_of(kms, key_id):
    return kms.describe_key(KeyId=key_id)["KeyMetadata"]


def test_create_with_alias_description_tags_policy_then_unchanged(playbook, kms):
    task = key_task(alias="app", description="app secrets", tags={"project": "app", "count": 3}, policy=POLICY)
    first, second = playbook.run_idempotent([task])
    result = first.result("Key")
    assert result["changed"] is True
    assert result["changes"] == ["create_key", "create_alias"]
    key_id = result["key_id"]
    meta = metadata_of(kms, "alias/app")
    assert meta["KeyId"] == key_id
    assert result["key_arn"] == result["arn"] == meta["Arn"]
    assert meta["Description"] == "app secrets" and meta["KeyState"] == "Enabled"
    assert (meta["KeySpec"], meta["KeyUsage"], meta["MultiRegion"]) == ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", False)
    assert tags_of(kms, key_id) == {"project": "app", "count": "3"}
    assert policy_of(kms, key_id) == POLICY
    assert aliases_of(kms, key_id) == ["alias/app"]
    # what `aws kms create-key` prints, snake_cased, plus aliases, tags and policy
    assert result["aliases"] == ["alias/app"]
    assert result["key_state"] == "Enabled" and result["enabled"] is True
    assert result["description"] == "app secrets"
    assert result["key_usage"] == "ENCRYPT_DECRYPT" and result["key_spec"] == "SYMMETRIC_DEFAULT"
    assert result["multi_region"] is False
    assert result["key_manager"] == "CUSTOMER" and result["origin"] == "AWS_KMS"
    assert result["aws_account_id"] == meta["AWSAccountId"]
    assert datetime.datetime.fromisoformat(result["creation_date"]) == meta["CreationDate"]
    assert result["tags"] == {"project": "app", "count": "3"}
    assert result["policy"] == POLICY
    assert result["previous_alias_target_key_id"] is None
    assert "deletion_date" not in result
    again = second.result("Key")
    assert again["key_id"] == key_id and again["changes"] == []
    assert again["previous_alias_target_key_id"] == key_id
    assert len(kms.list_keys()["Keys"]) == 1


def test_update_description_tags_and_policy_with_diff(playbook, kms):
    key_id = kms.create_key(Description="old", Tags=[{"TagKey": "env", "TagValue": "dev"}])["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/app", TargetKeyId=key_id)
    default_policy = policy_of(kms, key_id)
    final = dict(alias="app", description="new", tags={"project": "app", "team": "sec"}, policy=POLICY)
    tasks = [
        key_task("Describe and add a tag", alias="alias/app", description="new", tags={"team": "sec"}, purge_tags=False),
        key_task("Purge tags", alias="app", tags={"team": "sec", "project": "app"}),
        key_task("Policy as dict", alias="app", policy=POLICY),
        key_task("Same policy as JSON text", alias="app", policy=POLICY_SAME_AS_TEXT),
        key_task("Everything again", **final),
    ]
    first = playbook.run(tasks, "--diff").assert_ok()

    described = first.result("Describe and add a tag")
    assert described["changes"] == ["update_key_description", "tag_resource"]
    assert described["tags"] == {"env": "dev", "team": "sec"}
    assert described["diff"]["before"] == {
        "description": "old",
        "enabled": True,
        "key_state": "Enabled",
        "tags": {"env": "dev"},
        "policy": default_policy,
        "aliases": ["alias/app"],
    }
    assert described["diff"]["after"] == dict(described["diff"]["before"], description="new",
                                              tags={"env": "dev", "team": "sec"})
    purged = first.result("Purge tags")
    assert purged["changes"] == ["untag_resource", "tag_resource"]
    assert purged["diff"]["after"]["tags"] == purged["tags"] == {"team": "sec", "project": "app"}
    with_policy = first.result("Policy as dict")
    assert with_policy["changes"] == ["put_key_policy"]
    assert with_policy["diff"]["before"]["policy"] == default_policy
    assert with_policy["diff"]["after"]["policy"] == with_policy["policy"] == POLICY
    same = first.result("Same policy as JSON text")
    assert same["changed"] is False and same["changes"] == []
    assert same["diff"]["before"] == same["diff"]["after"]

    meta = metadata_of(kms, key_id)
    assert meta["Description"] == "new"
    assert tags_of(kms, key_id) == {"team": "sec", "project": "app"}
    assert policy_of(kms, key_id) == POLICY
    again = first.result("Everything again")
    assert again["changed"] is False and again["diff"]["before"] == again["diff"]["after"]


def test_disable_and_enable_by_key_id_and_arn(playbook, kms):
    key = kms.create_key()["KeyMetadata"]
    run = playbook.run(
        [
            key_task("Disable", key_id=key["Arn"], enabled=False),
            key_task("Disable again", key_id=key["KeyId"], enabled=False),
            key_task("Enable", key_id=key["KeyId"]),
            key_task("Enable again", key_id=key["Arn"], enabled=True),
        ]
    ).assert_ok()
    disabled = run.result("Disable")
    assert disabled["changed"] is True and disabled["changes"] == ["disable_key"]
    assert disabled["key_state"] == "Disabled" and disabled["enabled"] is False
    assert disabled["key_id"] == key["KeyId"] and disabled["aliases"] == []
    assert "previous_alias_target_key_id" not in disabled
    assert run.result("Disable again")["changed"] is False
    enabled = run.result("Enable")
    assert enabled["changes"] == ["enable_key"] and enabled["key_state"] == "Enabled"
    assert run.result("Enable again")["changed"] is False
    assert metadata_of(kms, key["KeyId"])["KeyState"] == "Enabled"


def test_alias_and_key_id_point_the_alias_at_the_key(playbook, kms):
    old = kms.create_key()["KeyMetadata"]["KeyId"]
    new = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/app", TargetKeyId=old)
    first = playbook.run(
        [
            key_task("Repoint", key_id=new, alias="app"),
            key_task("Second alias", key_id=new, alias="alias/app-v2"),
            key_task("Repoint again", key_id=new, alias="alias/app"),
        ]
    ).assert_ok()
    repointed = first.result("Repoint")
    assert repointed["changes"] == ["update_alias"]
    assert repointed["key_id"] == new
    assert repointed["previous_alias_target_key_id"] == old
    assert repointed["aliases"] == ["alias/app"]
    created = first.result("Second alias")
    assert created["changes"] == ["create_alias"] and created["previous_alias_target_key_id"] is None
    assert created["aliases"] == ["alias/app", "alias/app-v2"]
    again = first.result("Repoint again")
    assert again["changed"] is False and again["previous_alias_target_key_id"] == new
    assert aliases_of(kms, new) == ["alias/app", "alias/app-v2"]
    assert aliases_of(kms, old) == []
    assert metadata_of(kms, old)["KeyState"] == "Enabled"  # the old key is left alone


def test_asymmetric_hmac_and_multi_region_keys(playbook, kms):
    rsa_args = dict(alias="rsa", key_spec="RSA_2048", key_usage="ENCRYPT_DECRYPT", multi_region=False)
    first = playbook.run(
        [
            key_task("RSA", **rsa_args),
            key_task("RSA again", **rsa_args),
            key_task("HMAC", alias="mac", key_spec="HMAC_256"),  # usage defaults to the only one allowed
            key_task("Multi-Region", alias="mrk", multi_region=True, enabled=False),
        ]
    ).assert_ok()
    assert first.result("RSA again")["changed"] is False
    rsa = metadata_of(kms, "alias/rsa")
    assert (rsa["KeySpec"], rsa["KeyUsage"]) == ("RSA_2048", "ENCRYPT_DECRYPT")
    assert first.result("RSA")["key_spec"] == "RSA_2048"
    mac = metadata_of(kms, "alias/mac")
    assert (mac["KeySpec"], mac["KeyUsage"]) == ("HMAC_256", "GENERATE_VERIFY_MAC")
    mrk = metadata_of(kms, "alias/mrk")
    assert mrk["MultiRegion"] is True and mrk["KeyId"].startswith("mrk-")
    assert mrk["KeyState"] == "Disabled"
    result = first.result("Multi-Region")
    assert result["changes"] == ["create_key", "create_alias", "disable_key"]
    assert result["multi_region"] is True and result["enabled"] is False
    assert result["multi_region_configuration"]["multi_region_key_type"] == "PRIMARY"


def test_absent_schedules_deletion_and_present_cancels_it(playbook, kms):
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    kept_disabled = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/app", TargetKeyId=key_id)
    before = datetime.datetime.now(datetime.timezone.utc)
    absent = [
        key_task("Delete", alias="app", state="absent", pending_window_days=7),
        key_task("Delete again", alias="app", state="absent", pending_window_days=7),
        key_task("Delete the other", key_id=kept_disabled, state="absent"),
        key_task("Delete a missing key", alias="nope", state="absent"),
    ]
    first = playbook.run(absent).assert_ok()
    deleted = first.result("Delete")
    assert deleted["changes"] == ["schedule_key_deletion"]
    assert deleted["key_state"] == "PendingDeletion" and deleted["enabled"] is False
    meta = metadata_of(kms, key_id)
    assert meta["KeyState"] == "PendingDeletion"
    assert abs(meta["DeletionDate"] - (before + datetime.timedelta(days=7))) < datetime.timedelta(minutes=5)
    assert datetime.datetime.fromisoformat(deleted["deletion_date"]) == meta["DeletionDate"]
    default_window = metadata_of(kms, kept_disabled)["DeletionDate"]
    assert abs(default_window - (before + datetime.timedelta(days=30))) < datetime.timedelta(minutes=5)
    assert aliases_of(kms, key_id) == ["alias/app"]  # KMS keeps the aliases of a key pending deletion
    again = first.result("Delete again")
    assert again["changed"] is False and again["deletion_date"] == deleted["deletion_date"]
    missing = first.result("Delete a missing key")
    assert missing["changed"] is False and missing["key_id"] is None and missing["changes"] == []

    # CancelKeyDeletion leaves a key Disabled (KMS and moto agree); enabled=true enables it again.
    restored = playbook.run(
        [
            key_task("Restore", alias="app"),
            key_task("Restore again", alias="app"),
            key_task("Restore disabled", key_id=kept_disabled, enabled=False),
        ]
    ).assert_ok()
    assert restored.result("Restore again")["changed"] is False
    assert restored.result("Restore")["changes"] == ["cancel_key_deletion", "enable_key"]
    assert restored.result("Restore")["key_state"] == "Enabled"
    assert "deletion_date" not in restored.result("Restore")
    assert restored.result("Restore disabled")["changes"] == ["cancel_key_deletion"]
    meta = metadata_of(kms, key_id)
    assert meta["KeyState"] == "Enabled" and meta["Enabled"] is True and "DeletionDate" not in meta
    assert metadata_of(kms, kept_disabled)["KeyState"] == "Disabled"


def test_check_mode_changes_nothing_and_predicts_the_real_run(playbook, kms, kms_server):
    existing = kms.create_key(Description="old", Tags=[{"TagKey": "env", "TagValue": "dev"}])["KeyMetadata"]
    kms.create_alias(AliasName="alias/existing", TargetKeyId=existing["KeyId"])
    doomed = kms.create_key()["KeyMetadata"]["KeyId"]
    tasks = [
        key_task("Create", alias="fresh", description="new key", tags={"a": "1"}, policy=POLICY),
        key_task("Update", alias="existing", description="changed", tags={"b": "2"}, enabled=False),
        key_task("Delete", key_id=doomed, state="absent"),
    ]
    kms_server.start_recording()
    check = playbook.run(tasks, "--check", "--diff").assert_ok()
    calls = kms_server.kms_calls()
    assert calls["DescribeKey"] == 3, calls
    assert not MUTATING & set(calls), calls

    create = check.result("Create")
    assert create["changed"] is True and create["changes"] == ["create_key", "create_alias"]
    assert create["key_id"] is None and create["key_arn"] is None
    assert create["aliases"] == ["alias/fresh"] and create["key_state"] == "Enabled"
    assert create["diff"] == {
        "before": {},
        "after": {"description": "new key", "enabled": True, "key_state": "Enabled", "tags": {"a": "1"},
                  "policy": POLICY, "aliases": ["alias/fresh"]},
    }
    update = check.result("Update")
    assert update["changes"] == ["update_key_description", "untag_resource", "tag_resource", "disable_key"]
    assert update["key_state"] == "Disabled" and update["tags"] == {"b": "2"}
    assert check.result("Delete")["key_state"] == "PendingDeletion"

    assert len(kms.list_keys()["Keys"]) == 2
    assert all(a["AliasName"] != "alias/fresh" for a in kms.list_aliases()["Aliases"])
    meta = metadata_of(kms, existing["KeyId"])
    assert (meta["Description"], meta["KeyState"]) == ("old", "Enabled")
    assert tags_of(kms, existing["KeyId"]) == {"env": "dev"}
    assert metadata_of(kms, doomed)["KeyState"] == "Enabled"

    real = playbook.run(tasks, "--diff").assert_ok()
    for name in ("Create", "Update", "Delete"):
        assert real.result(name)["changes"] == check.result(name)["changes"], name
        assert real.result(name)["diff"] == check.result(name)["diff"], name
    assert metadata_of(kms, "alias/fresh")["Description"] == "new key"
    assert metadata_of(kms, doomed)["KeyState"] == "PendingDeletion"


def test_bad_inputs_fail_clearly(playbook, kms):
    rsa = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    unknown = "1234abcd-12ab-34cd-56ef-1234567890ab"
    cases = {
        "window too short": (dict(alias="app", state="absent", pending_window_days=3), "pending_window_days must be between 7 and 30"),
        "reserved alias": (dict(alias="alias/aws/x"), "reserved"),
        "unknown key id": (dict(key_id=unknown), f"Key {unknown} does not exist"),
        "neither": (dict(description="x"), "one of the following is required: alias, key_id"),
        "immutable": (dict(key_id=rsa, key_spec="SYMMETRIC_DEFAULT", key_usage="SIGN_VERIFY"),
                      "key_spec is RSA_2048, not SYMMETRIC_DEFAULT"),
        "policy not JSON": (dict(alias="app", policy="{not json"), "policy is not valid JSON"),
        "ECC without usage": (dict(alias="ecc", key_spec="ECC_NIST_P256"), "needs key_usage"),
    }
    tasks = [dict(key_task(label, **case[0]), ignore_errors=True) for label, case in cases.items()]
    run = playbook.run(tasks)
    assert run.returncode == 0, run.stderr
    for label, (args, message) in cases.items():
        result = run.result(label)
        assert result["failed"] is True, label
        assert message in result["msg"], (label, args, result["msg"])
        # ansible-core 2.19 adds exception='(traceback unavailable)' to every fail_json: no traceback
        assert "Traceback" not in result.get("exception", "") + result.get("module_stderr", ""), label
    # nothing was created or changed by any of them
    assert [k["KeyId"] for k in kms.list_keys()["Keys"]] == [rsa]
    assert not {"alias/app", "alias/ecc"} & {a["AliasName"] for a in kms.list_aliases()["Aliases"]}
    assert metadata_of(kms, rsa)["KeyState"] == "Enabled"


def test_enable_key_rotation_on_create_then_unchanged_then_off(playbook, kms, kms_server):
    """enable_key_rotation as amazon.aws kms_key has it: EnableKeyRotation right after CreateKey, one
    GetKeyRotationStatus and no change on a re-run, DisableKeyRotation when turned off; check mode
    and diff predict it; not given, the rotation is not even read."""
    task = key_task(alias="rotated", enable_key_rotation=True, rotation_period_days=180)
    checked = playbook.run([task], "--check", "--diff").assert_ok().result("Key")
    assert checked["changes"] == ["create_key", "create_alias", "enable_key_rotation"]
    assert checked["key_rotation_enabled"] is True and checked["rotation_period_days"] == 180
    assert checked["diff"]["after"]["key_rotation_enabled"] is True and checked["diff"]["before"] == {}
    assert not kms.list_keys()["Keys"]

    kms_server.start_recording()
    first, second = playbook.run_idempotent([task])
    calls = kms_server.kms_calls()
    created = first.result("Key")
    assert created["changes"] == ["create_key", "create_alias", "enable_key_rotation"]
    assert (created["key_rotation_enabled"], created["rotation_period_days"]) == (True, 180)
    assert kms.get_key_rotation_status(KeyId=created["key_id"])["KeyRotationEnabled"] is True
    again = second.result("Key")
    assert again["changes"] == [] and again["key_rotation_enabled"] is True
    # one read after EnableKeyRotation (the next rotation date), one on the re-run
    assert calls["EnableKeyRotation"] == 1 and calls["GetKeyRotationStatus"] == 2

    off = playbook.run([key_task(alias="rotated", enable_key_rotation=False)], "--diff").assert_ok().result("Key")
    assert off["changes"] == ["disable_key_rotation"] and off["key_rotation_enabled"] is False
    assert off["rotation_period_days"] is None
    assert off["diff"]["before"]["key_rotation_enabled"] is True and off["diff"]["after"]["key_rotation_enabled"] is False
    assert kms.get_key_rotation_status(KeyId=created["key_id"])["KeyRotationEnabled"] is False

    kms_server.start_recording()
    plain = playbook.run([key_task(alias="rotated", description="no rotation asked")]).assert_ok().result("Key")
    assert "key_rotation_enabled" not in plain
    assert "GetKeyRotationStatus" not in kms_server.kms_calls()


def test_enable_key_rotation_refusals_come_before_any_change(playbook, kms):
    """A key that cannot rotate (asked to create one, or an existing one) and bad periods fail with
    one line and change nothing: no key, no alias, no description."""
    hmac = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC", Description="mac")["KeyMetadata"]["KeyId"]
    rotating = kms.create_key(Description="rotating")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/on", TargetKeyId=rotating)
    kms.enable_key_rotation(KeyId=rotating)
    cases = {
        "new RSA key": (dict(alias="rsa", key_spec="RSA_2048", key_usage="ENCRYPT_DECRYPT", enable_key_rotation=True),
                        "cannot rotate"),
        "existing HMAC key": (dict(key_id=hmac, description="changed", enable_key_rotation=True), "cannot rotate"),
        "period too short": (dict(alias="short", enable_key_rotation=True, rotation_period_days=30),
                             "rotation_period_days must be between 90 and 2560"),
        "period without rotation": (dict(alias="p", rotation_period_days=180), "requires enable_key_rotation=true"),
        "period with rotation off": (dict(alias="p", enable_key_rotation=False, rotation_period_days=180),
                                     "requires enable_key_rotation=true"),
        "absent": (dict(alias="gone", state="absent", enable_key_rotation=False), "state=present only"),
        # KMS changes the rotation of enabled keys only: refused before CreateKey, not after DisableKey
        "new disabled key": (dict(alias="off", enabled=False, enable_key_rotation=True), "change it with enabled=true first"),
        "disabling it too": (dict(key_id="alias/on", enabled=False, enable_key_rotation=False),
                             "change it with enabled=true first"),
    }
    run = playbook.run([dict(key_task(label, **case[0]), ignore_errors=True) for label, case in cases.items()])
    assert run.returncode == 0, run.stderr
    for label, (_args, message) in cases.items():
        result = run.result(label)
        assert result["failed"] is True and message in result["msg"], (label, result["msg"])
    assert sorted(k["KeyId"] for k in kms.list_keys()["Keys"]) == sorted([hmac, rotating])
    assert not kms.list_aliases(KeyId=hmac)["Aliases"] and metadata_of(kms, hmac)["Description"] == "mac"
    assert metadata_of(kms, rotating)["KeyState"] == "Enabled"
    assert kms.get_key_rotation_status(KeyId=rotating)["KeyRotationEnabled"] is True
    held = playbook.run([key_task("Off holds", key_id=hmac, enable_key_rotation=False)]).assert_ok().result("Off holds")
    assert held["changed"] is False and held["key_rotation_enabled"] is False


def test_origin_external_is_passed_to_kms_and_cannot_change(playbook, kms):
    task = key_task(alias="byok", origin="EXTERNAL", description="imported key material")
    first, second = playbook.run_idempotent([task])
    result = first.result("Key")
    assert result["changes"] == ["create_key", "create_alias"]
    meta = metadata_of(kms, "alias/byok")
    assert meta["Origin"] == "EXTERNAL" and meta["KeyId"] == result["key_id"]
    assert result["origin"] == "EXTERNAL"
    assert result["custom_key_store_id"] is None and result["xks_key_configuration"] is None
    assert second.result("Key")["changes"] == []

    run = playbook.run([dict(key_task("Other origin", alias="byok", origin="AWS_KMS"), ignore_errors=True),
                        dict(key_task("Store without origin", alias="byok", custom_key_store_id="cks-1"),
                             ignore_errors=True)])
    assert run.returncode == 0, run.stderr
    other = run.result("Other origin")
    assert other["failed"] is True
    assert other["msg"].startswith(f"Key {meta['KeyId']}: origin is EXTERNAL, not AWS_KMS. ")
    assert run.result("Store without origin")["msg"] == (
        "custom_key_store_id needs origin AWS_CLOUDHSM or EXTERNAL_KEY_STORE (origin is not given)")
    assert [k["KeyId"] for k in kms.list_keys()["Keys"]] == [meta["KeyId"]]


def test_key_material_check_mode_through_ansible_playbook(playbook, kms, kms_server):
    """envelope.kms.key_material as ansible-playbook runs it: check mode reads the key only, and neither the
    material nor its base64 reaches the output. moto has no GetParametersForImport: the real run fails there,
    in one line and without the material too (the import itself is tested with Stubber in
    tests/unit/plugins/modules/test_key_material.py)."""
    material = bytes(range(7, 39))
    key_id = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    task = {"name": "Import", "envelope.kms.key_material": {"key_id": key_id, "key_material": base64.b64encode(material).decode()},
            "ignore_errors": True}
    kms_server.start_recording()
    check = playbook.run([task], "--check", "--diff", "-v").assert_ok()
    assert dict(kms_server.kms_calls()) == {"DescribeKey": 1}
    result = check.result("Import")
    assert result["changed"] is True and result["imported"] is True and result["key_id"] == key_id
    real = playbook.run([task], "-v")
    assert real.returncode == 0, real.stderr
    failed = real.result("Import")
    assert failed["failed"] is True and failed["msg"].startswith(f"Could not import key material into key {metadata_of(kms, key_id)['Arn']}")
    needles = Needles().add("key material", material)
    for run in (check, real):
        assert not needles.search(run.stdout + run.stderr)
