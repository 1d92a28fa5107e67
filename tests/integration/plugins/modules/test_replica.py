"""envelope.kms.replica through the real ansible-playbook against the local KMS endpoint (moto 5.2.5).

moto's ReplicateKey ignores Description, Policy and Tags (the replica gets the primary's description
and policy, no tags): the module reads the replica back and converges them, which these tests see.
UpdatePrimaryRegion, which moto lacks, is tested with botocore's Stubber in
tests/unit/plugins/module_utils/test_replicas.py.
"""

import json

import boto3

from tests.harness.kms_server import REGION

WEST = "us-west-2"
POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                   "Action": "kms:*", "Resource": "*"}],
}


def west_client(kms_server):
    return boto3.client("kms", endpoint_url=kms_server.url, region_name=WEST,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def primary_task():
    return {"name": "Primary", "envelope.kms.key": {"alias": "app", "multi_region": True, "description": "primary"},
            "register": "primary"}


def replica_task(name="Replica", **args):
    args.setdefault("key_id", "alias/app")
    args.setdefault("replica_region", WEST)
    return {"name": name, "envelope.kms.replica": args, "register": "out"}


def west_state(kms_server, arn):
    client = west_client(kms_server)
    meta = client.describe_key(KeyId=arn)["KeyMetadata"]
    tags = {t["TagKey"]: t["TagValue"] for t in client.list_resource_tags(KeyId=arn)["Tags"]}
    policy = client.get_key_policy(KeyId=arn, PolicyName="default")["Policy"]
    return meta, tags, policy


def test_create_check_mode_idempotence_tags_and_absent(playbook, kms_server, kms):
    wanted = dict(description="app secrets, us-west-2", tags={"team": "payments", "env": "prod"}, policy=POLICY)
    tasks = [primary_task(), replica_task(**wanted)]

    check = playbook.run(tasks, "--check", "--diff").assert_ok()
    predicted = check.result("Replica")
    assert predicted["changed"] is True and predicted["changes"] == ["replicate_key"]
    assert predicted["diff"]["before"] == {}
    assert predicted["diff"]["after"] == {"description": wanted["description"], "policy": POLICY,
                                          "tags": wanted["tags"], "primary": False, "key_state": "Enabled"}
    assert predicted["key_id"] is None  # the primary is only predicted: named in a warning
    assert any("alias/app" in warning for warning in predicted.get("warnings", [])), predicted
    assert kms.list_keys()["Keys"] == [] and west_client(kms_server).list_keys()["Keys"] == []

    first, _second = playbook.run_idempotent(tasks)
    result, primary = first.result("Replica"), first.result("Primary")
    assert result["changed"] is True
    # moto ignored ReplicateKey's description, policy and tags: converged after reading back.
    assert result["changes"] == ["replicate_key", "update_key_description", "put_key_policy", "tag_resource"]
    assert result["key_id"] == primary["key_id"] and result["key_id"].startswith("mrk-")
    assert result["key_arn"] == primary["key_arn"].replace(f":{REGION}:", f":{WEST}:")
    assert (result["primary_key_arn"], result["primary_region"]) == (primary["key_arn"], REGION)
    assert result["replica_keys"] == [{"arn": result["key_arn"], "region": WEST}]
    assert result["replica_region"] == WEST and result["primary"] is False
    assert (result["description"], result["tags"], result["policy"]) == (wanted["description"], wanted["tags"], POLICY)
    meta, tags, policy = west_state(kms_server, result["key_arn"])
    assert meta["Description"] == wanted["description"] and tags == wanted["tags"]
    assert json.loads(policy) == POLICY
    # The primary keeps its own description (not a shared property).
    assert kms.describe_key(KeyId=primary["key_arn"])["KeyMetadata"]["Description"] == "primary"

    # From the replica's region, by the replica's key id: the same replica, nothing to do.
    same = playbook.run([replica_task("Same", key_id=result["key_id"], region=WEST, **wanted)]).assert_ok()
    assert same.result("Same")["changed"] is False
    assert same.result("Same")["primary_key_arn"] == primary["key_arn"]

    # key_info shows the primary and its replicas, from either region.
    info = playbook.run([
        {"name": f"Info {where}", "envelope.kms.key_info": {
            "key_id": arn, "region": region, "include_policy": False, "include_grants": False}}
        for where, arn, region in (("east", primary["key_arn"], REGION), ("west", result["key_arn"], WEST))]).assert_ok()
    for where in ("east", "west"):
        found = info.result(f"Info {where}")["keys"]
        assert len(found) == 1 and found[0]["multi_region"] is True, where
        configuration = found[0]["multi_region_configuration"]
        assert configuration["primary_key"] == {"arn": primary["key_arn"], "region": REGION}, where
        assert configuration["replica_keys"] == [{"arn": result["key_arn"], "region": WEST}], where

    # Change the tags (purged by default), then keep extra ones with purge_tags=false.
    retag = playbook.run([replica_task("Retag", tags={"team": "billing"}), replica_task(
        "Add", tags={"cost": "42"}, purge_tags=False)], "--diff").assert_ok()
    assert retag.result("Retag")["changes"] == ["untag_resource", "tag_resource"]
    assert retag.result("Retag")["diff"]["before"]["tags"] == wanted["tags"]
    assert retag.result("Retag")["diff"]["after"]["tags"] == {"team": "billing"}
    assert west_state(kms_server, result["key_arn"])[1] == {"team": "billing", "cost": "42"}

    # Absent: scheduled for deletion in us-west-2 only; a re-run changes nothing.
    gone, _again = playbook.run_idempotent([replica_task("Gone", state="absent", pending_window_days=7)])
    assert gone.result("Gone")["changes"] == ["schedule_key_deletion"]
    assert gone.result("Gone")["key_state"] == "PendingDeletion"
    assert west_state(kms_server, result["key_arn"])[0]["KeyState"] == "PendingDeletion"
    assert kms.describe_key(KeyId=primary["key_arn"])["KeyMetadata"]["KeyState"] == "Enabled"

    # Present again: the deletion is cancelled and the replica enabled.
    back = playbook.run([replica_task("Back")]).assert_ok().result("Back")
    assert back["changes"] == ["cancel_key_deletion", "enable_key"] and back["key_state"] == "Enabled"
    assert west_state(kms_server, result["key_arn"])[0]["Enabled"] is True


def test_check_mode_on_an_existing_primary_writes_nothing(playbook, kms_server, kms):
    key = kms.create_key(MultiRegion=True)["KeyMetadata"]
    run = playbook.run([replica_task(key_id=key["Arn"], tags={"a": "b"})], "--check").assert_ok()
    result = run.result("Replica")
    assert result["changed"] is True and result["key_arn"] == key["Arn"].replace(f":{REGION}:", f":{WEST}:")
    assert result["replica_keys"] == [{"arn": result["key_arn"], "region": WEST}]
    assert west_client(kms_server).list_keys()["Keys"] == []
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["MultiRegionConfiguration"]["ReplicaKeys"] == []


def test_errors_fail_in_one_line_before_any_change(playbook, kms_server, kms):
    single = kms.create_key()["KeyMetadata"]
    multi = kms.create_key(MultiRegion=True)["KeyMetadata"]
    run = playbook.run([
        {**replica_task("Single", key_id=single["Arn"]), "ignore_errors": True},
        {**replica_task("Missing", key_id="alias/nope"), "ignore_errors": True},
        {**replica_task("Window", key_id=multi["Arn"], state="absent", pending_window_days=3), "ignore_errors": True},
        {**replica_task("Primary region", key_id=multi["Arn"], replica_region=REGION, state="absent"),
         "ignore_errors": True},
    ])
    run.assert_failed_with({
        "Single": "is not a multi-Region key",
        "Missing": f"Key alias/nope does not exist in region {REGION}",
        "Window": "pending_window_days must be between 7 and 30 (inclusive), got 3",
        "Primary region": "is the primary key",
    })
    for name in ("Single", "Missing", "Window", "Primary region"):
        assert "\n" not in run.result(name)["msg"], name
    assert west_client(kms_server).list_keys()["Keys"] == []
