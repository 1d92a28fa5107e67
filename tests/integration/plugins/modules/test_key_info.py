"""envelope.kms.key_info through the real ansible-playbook against the local KMS endpoint.

Playbook runs are batched (one run, many tasks) to keep this file fast.
moto gaps seen here: GetKeyRotationStatus has no RotationPeriodInDays (so rotation_period_days is
null); aliases have no CreationDate/LastUpdatedDate; the AWS managed key behind alias/aws/ebs is
created on first use and reported with KeyManager CUSTOMER. The AWS managed filter is therefore
exercised here through the alias/aws/... alias only; KeyManager AWS and the refused-detail paths
are covered with botocore's Stubber in tests/unit/plugins/module_utils/test_key_info_utils.py.
"""

import json
import uuid

import pytest

DB_POLICY = {
    "Version": "2012-10-17",
    "Id": "db-policy",
    "Statement": [
        {
            "Sid": "Root",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
    ],
}


def info(name, **args):
    return {"name": name, "envelope.kms.key_info": args}


@pytest.fixture
def keys(kms):
    """app (2 aliases, rotating, rotated once), db (custom policy), sign (RSA), old (pending deletion)."""

    def tag_list(**tags):
        return [{"TagKey": k, "TagValue": v} for k, v in tags.items()]

    app = kms.create_key(Description="app", Tags=tag_list(env="prod", team="a"))["KeyMetadata"]
    kms.create_alias(AliasName="alias/app", TargetKeyId=app["KeyId"])
    kms.create_alias(AliasName="alias/app-v2", TargetKeyId=app["KeyId"])
    kms.enable_key_rotation(KeyId=app["KeyId"], RotationPeriodInDays=180)
    kms.rotate_key_on_demand(KeyId=app["KeyId"])
    db = kms.create_key(Description="db", Policy=json.dumps(DB_POLICY), Tags=tag_list(env="dev"))["KeyMetadata"]
    kms.create_alias(AliasName="alias/db", TargetKeyId=db["KeyId"])
    sign = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY", Tags=tag_list(env="prod"))["KeyMetadata"]
    old = kms.create_key(Description="old")["KeyMetadata"]
    kms.create_alias(AliasName="alias/old", TargetKeyId=old["KeyId"])
    kms.schedule_key_deletion(KeyId=old["KeyId"], PendingWindowInDays=7)
    ebs = kms.describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]  # moto creates it on first use
    return {"app": app, "db": db, "sign": sign, "old": old, "ebs": ebs}


def ids(result):
    return [key["key_id"] for key in result["keys"]]


def test_filters_details_and_check_mode(playbook, kms, keys):
    app, db, sign, old, ebs = (keys[n] for n in ("app", "db", "sign", "old", "ebs"))
    alias_arn = app["Arn"].split(":key/")[0] + ":alias/app"
    tasks = [
        info("By id", key_id=app["KeyId"], include_rotations=True),
        info("By key ARN", key_id=app["Arn"]),
        info("By alias in key_id", key_id="alias/app-v2"),
        info("Alias bare", alias="app"),
        info("Alias prefixed", alias="alias/app-v2"),
        info("Alias ARN", alias=alias_arn),
        info("Tags", tags={"env": "prod", "team": "a"}),
        info("Tags no match", tags={"env": "staging"}),
        info("Named key without the tags", alias="db", tags={"env": "prod"}),
        info("All", include_policy=False),
        info("Not pending deletion", include_pending_deletion=False),
        info("With AWS managed", include_aws_managed=True, include_policy=False),
        info("AWS managed by name", alias="aws/ebs"),
        info("Unknown id", key_id=str(uuid.uuid4())),
    ]
    run = playbook.run(tasks).assert_ok()
    assert run.changed() == 0
    r = run.result

    by_id = r("By id")
    assert by_id["changed"] is False
    [key] = by_id["keys"]
    assert key["key_id"] == app["KeyId"]
    assert key["key_arn"] == key["arn"] == app["Arn"]
    assert key["description"] == "app"
    assert key["key_state"] == "Enabled" and key["enabled"] is True
    assert key["key_manager"] == "CUSTOMER" and key["key_spec"] == "SYMMETRIC_DEFAULT"
    assert key["creation_date"].startswith(app["CreationDate"].strftime("%Y-%m-%d"))
    assert key["aliases"] == ["alias/app", "alias/app-v2"]
    assert key["tags"] == {"env": "prod", "team": "a"}
    assert key["policy"] == json.loads(kms.get_key_policy(KeyId=app["KeyId"], PolicyName="default")["Policy"])
    # rotation enabled through the client; moto gives no period (see module docstring)
    [rotation] = key["rotation"].pop("rotations")
    assert key["rotation"] == {"enabled": True, "rotation_period_days": None, "next_rotation_date": None,
                               "on_demand_rotation_start_date": None}
    assert rotation["key_id"] == app["KeyId"] and rotation["rotation_type"] == "ON_DEMAND"
    assert rotation["rotation_date"]
    assert [a["alias_name"] for a in by_id["aliases"]] == ["alias/app", "alias/app-v2"]
    assert {a["target_key_id"] for a in by_id["aliases"]} == {app["KeyId"]}
    assert by_id["aliases"][0]["alias_arn"] == alias_arn

    for name in ("By key ARN", "By alias in key_id", "Alias bare", "Alias prefixed", "Alias ARN"):
        assert r(name)["keys"] == [key], name  # without include_rotations: no history
        assert r(name)["aliases"] == by_id["aliases"], name

    assert ids(r("Tags")) == [app["KeyId"]]
    assert [a["alias_name"] for a in r("Tags")["aliases"]] == ["alias/app", "alias/app-v2"]
    assert r("Tags no match")["keys"] == [] and r("Tags no match")["aliases"] == []
    assert r("Named key without the tags")["keys"] == []

    everything = r("All")
    assert ids(everything) == [app["KeyId"], db["KeyId"], sign["KeyId"], old["KeyId"]]  # oldest first, no ebs
    assert all("policy" not in key for key in everything["keys"])
    listed = {a["AliasName"]: a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"]}
    assert {a["alias_name"]: a["target_key_id"] for a in everything["aliases"]} == listed
    assert "alias/aws/ebs" in listed  # list-aliases shows AWS managed aliases too
    db_key, sign_key, pending = everything["keys"][1:]
    assert db_key["rotation"] == {"enabled": False, "rotation_period_days": None, "next_rotation_date": None,
                                  "on_demand_rotation_start_date": None}
    assert sign_key["rotation"] is None  # RSA keys cannot rotate
    assert sign_key["key_usage"] == "SIGN_VERIFY" and sign_key["aliases"] == []
    assert pending["key_state"] == "PendingDeletion" and pending["deletion_date"]
    assert pending["aliases"] == ["alias/old"]

    not_pending = r("Not pending deletion")
    assert ids(not_pending) == [app["KeyId"], db["KeyId"], sign["KeyId"]]
    assert not_pending["keys"][1]["policy"] == DB_POLICY  # a custom policy, returned as a dict
    assert not_pending["keys"][1]["tags"] == {"env": "dev"}
    assert ebs["KeyId"] in ids(r("With AWS managed"))
    assert ids(r("AWS managed by name")) == [ebs["KeyId"]]
    assert r("AWS managed by name")["keys"][0]["aliases"] == ["alias/aws/ebs"]
    assert r("Unknown id")["keys"] == [] and r("Unknown id")["aliases"] == []

    # check mode reads the same (an info module never changes anything)
    subset = ("Alias bare", "Tags", "All")
    checked = playbook.run([task for task in tasks if task["name"] in subset], "--check").assert_ok()
    assert checked.changed() == 0
    for name in subset:
        assert checked.result(name)["changed"] is False, name
        assert checked.result(name)["keys"] == r(name)["keys"], name
        assert checked.result(name)["aliases"] == r(name)["aliases"], name


def test_bad_input_fails_clearly(playbook, kms):
    cases = {
        "Bad alias name": ({"alias": "bad name"}, "Invalid alias name"),
        "Empty key_id": ({"key_id": ""}, "must not be empty"),
        "Both": ({"key_id": "alias/app", "alias": "app"}, "mutually exclusive"),
    }
    tasks = [{**info(name, **case[0]), "ignore_errors": True} for name, case in cases.items()]
    run = playbook.run(tasks)
    for name, (args, message) in cases.items():
        result = run.result(name)
        assert result["failed"] is True, name
        assert message in result["msg"], (name, args, result["msg"])
        assert "Traceback" not in result.get("module_stderr", ""), name


def test_requests_stay_few(playbook, kms_server, keys):
    """A named key lists neither keys nor all aliases; a tag filter reads policies of matches only."""
    kms_server.start_recording()
    playbook.run([info("Named", alias="app")]).assert_ok()
    named = kms_server.kms_calls()
    assert named["ListKeys"] == 0
    assert named["ListAliases"] == 1
    assert named["DescribeKey"] == 1
    assert named["GetKeyPolicy"] == 1

    kms_server.start_recording()
    run = playbook.run([info("Tagged", tags={"env": "prod"})]).assert_ok()
    assert len(run.result("Tagged")["keys"]) == 2
    tagged = kms_server.kms_calls()
    assert tagged["ListKeys"] == 1
    assert tagged["ListAliases"] == 1
    assert tagged["DescribeKey"] == 4  # app, db, sign, old; the AWS managed ebs key is skipped unread
    assert tagged["ListResourceTags"] == 4
    assert tagged["GetKeyPolicy"] == 2
    assert tagged["GetKeyRotationStatus"] == 1  # the RSA key is not asked
