"""The pure parts of envelope.kms.replica (plan_replica, predict_replica, predict_topology, the
topology read from KeyMetadata), and the module's main() against KMS answers stubbed with botocore's
Stubber for what moto 5.2.5 cannot play:

- UpdatePrimaryRegion (primary=true): moto has no such operation;
- a replica that honours ReplicateKey's Description, Policy and Tags (real KMS does, moto ignores
  them and copies the primary's description and policy), so the module must converge nothing more;
- a replica pending deletion, cancelled then enabled, without moto's shared primary/replica state.
"""

import json

import boto3
import pytest
from botocore.stub import Stubber

from ansible_collections.envelope.kms.plugins.module_utils import replicas
from ansible_collections.envelope.kms.plugins.module_utils.keys import (
    CANCEL_DELETION,
    ENABLE,
    PUT_POLICY,
    SCHEDULE_DELETION,
    TAG,
    UNTAG,
    UPDATE_DESCRIPTION,
)
from ansible_collections.envelope.kms.plugins.module_utils.kms import KmsInputError
from ansible_collections.envelope.kms.plugins.module_utils.replicas import (
    REPLICATE,
    UPDATE_PRIMARY,
    arn_in_region,
    check_replica_region,
    managed_fields,
    multi_region_topology,
    plan_replica,
    predict_replica,
    predict_topology,
    replica_result,
)
from ansible_collections.envelope.kms.plugins.modules import replica as replica_module
from tests.harness.stubbed_kms import run_main

KEY_ID = "mrk-1234abcd12ab34cd56ef1234567890ab"
PRIMARY = f"arn:aws:kms:us-east-1:111122223333:key/{KEY_ID}"
WEST = PRIMARY.replace(":us-east-1:", ":us-west-2:")
POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
                   "Action": "kms:*", "Resource": "*"}],
}
TOPOLOGY = {"key_id": KEY_ID, "primary_arn": PRIMARY, "primary_region": "us-east-1", "replicas": []}


def desired(**overrides):
    values = dict(state="present", replica_region="us-west-2", description=None, policy=None, tags=None,
                  purge_tags=True, bypass_policy_lockout_safety_check=False, primary=False, pending_window_days=30)
    values.update(overrides)
    return values


def current(**overrides):
    values = dict(key_id=KEY_ID, arn=WEST, key_state="Enabled", enabled=True, description="west",
                  tags={"a": "1"}, policy=POLICY, primary=False)
    values.update(overrides)
    return values


def metadata(arn=PRIMARY, primary=PRIMARY, replicas_=(WEST,), **extra):
    config = {"MultiRegionKeyType": "PRIMARY" if arn == primary else "REPLICA",
              "PrimaryKey": {"Arn": primary, "Region": primary.split(":")[3]},
              "ReplicaKeys": [{"Arn": r, "Region": r.split(":")[3]} for r in replicas_]}
    return dict({"KeyId": KEY_ID, "Arn": arn, "MultiRegion": True, "MultiRegionConfiguration": config,
                 "KeyState": "Enabled", "Enabled": True, "Description": "", "KeyManager": "CUSTOMER"}, **extra)


# -- topology

def test_topology_comes_from_the_primary_key_field_not_the_key_type():
    # moto reports a fresh replica as PRIMARY: the PrimaryKey field is what counts.
    seen_from_replica = metadata(arn=WEST, replicas_=(WEST,))
    seen_from_replica["MultiRegionConfiguration"]["MultiRegionKeyType"] = "PRIMARY"
    topology = multi_region_topology(seen_from_replica, "alias/app", "us-west-2")
    assert topology == {"key_id": KEY_ID, "primary_arn": PRIMARY, "primary_region": "us-east-1",
                        "replicas": [{"arn": WEST, "region": "us-west-2"}]}


def test_topology_refuses_missing_and_single_region_keys_in_one_line():
    with pytest.raises(KmsInputError, match="^Key alias/nope does not exist in region us-east-1$"):
        multi_region_topology(None, "alias/nope", "us-east-1")
    single = {"KeyId": "1234", "Arn": "arn:aws:kms:us-east-1:111122223333:key/1234", "MultiRegion": False}
    with pytest.raises(KmsInputError, match="is not a multi-Region key") as raised:
        multi_region_topology(single, "alias/app", "us-east-1")
    assert "\n" not in str(raised.value)


def test_the_primary_region_is_managed_but_never_deleted_as_a_replica():
    check_replica_region(TOPOLOGY, desired(replica_region="us-east-1", primary=True))
    check_replica_region(TOPOLOGY, desired())
    # present with primary=false: the re-run of a replica task whose region was made the primary since
    check_replica_region(TOPOLOGY, desired(replica_region="us-east-1"))
    with pytest.raises(KmsInputError, match="schedule its deletion with envelope.kms.key"):
        check_replica_region(TOPOLOGY, desired(replica_region="us-east-1", state="absent", primary=True))


def test_a_promoted_replica_keeps_being_converged_and_is_never_demoted():
    promoted = current(primary=True)
    assert plan_replica(promoted, desired(description="west")) == []
    assert plan_replica(promoted, desired(description="new")) == [(UPDATE_DESCRIPTION, {"Description": "new"})]


def test_no_second_update_primary_region_while_kms_is_moving_the_primary():
    assert plan_replica(current(key_state="Updating"), desired(primary=True)) == []
    assert plan_replica(current(), desired(primary=True)) == [(UPDATE_PRIMARY, {"PrimaryRegion": "us-west-2"})]


def test_a_replica_still_creating_after_every_read_is_an_error_not_converged(stub, monkeypatch):
    monkeypatch.setattr(replicas, "READ_BACK_DELAY", 0)
    for _attempt in range(replicas.READ_BACK_ATTEMPTS):
        read_west(stub, state="Creating")
    with pytest.raises(replicas.EnvelopeError, match="still Creating in us-west-2"):
        replicas.wait_for_replica(stub.client, WEST, "us-east-1", "us-west-2", sleep=lambda seconds: None)


def test_arn_in_region():
    assert arn_in_region(PRIMARY, "us-west-2") == WEST


# -- plan

def test_new_replica_is_one_replicate_call_with_everything_given():
    actions = plan_replica(None, desired(description="west", policy=POLICY, tags={"b": "2", "a": "1"},
                                         bypass_policy_lockout_safety_check=True))
    assert actions == [(REPLICATE, {
        "ReplicaRegion": "us-west-2", "BypassPolicyLockoutSafetyCheck": True, "Description": "west",
        "Policy": json.dumps(POLICY),
        "Tags": [{"TagKey": "a", "TagValue": "1"}, {"TagKey": "b", "TagValue": "2"}],
    })]
    assert plan_replica(None, desired()) == [(REPLICATE, {"ReplicaRegion": "us-west-2",
                                                          "BypassPolicyLockoutSafetyCheck": False})]


def test_existing_replica_converges_what_differs_only():
    assert plan_replica(current(), desired(description="west", policy=POLICY, tags={"a": "1"})) == []
    reordered = dict(POLICY, Statement=[dict(POLICY["Statement"][0], Action=["kms:*"])])
    assert plan_replica(current(), desired(policy=reordered)) == []  # compared semantically
    changed = {"Version": "2012-10-17", "Statement": []}
    actions = plan_replica(current(), desired(description="new", policy=changed, tags={"c": "3"},
                                              bypass_policy_lockout_safety_check=True))
    assert actions == [
        (UPDATE_DESCRIPTION, {"Description": "new"}),
        (PUT_POLICY, {"PolicyName": "default", "Policy": json.dumps(changed), "BypassPolicyLockoutSafetyCheck": True}),
        (UNTAG, {"TagKeys": ["a"]}),
        (TAG, {"Tags": [{"TagKey": "c", "TagValue": "3"}]}),
    ]
    assert plan_replica(current(), desired(tags={"c": "3"}, purge_tags=False)) == [
        (TAG, {"Tags": [{"TagKey": "c", "TagValue": "3"}]})]


def test_pending_deletion_is_cancelled_and_enabled():
    for state in ("PendingDeletion", "PendingReplicaDeletion"):
        assert plan_replica(current(key_state=state, enabled=False), desired()) == [(CANCEL_DELETION, {}), (ENABLE, {})]


def test_promotion():
    assert plan_replica(current(), desired(primary=True)) == [(UPDATE_PRIMARY, {"PrimaryRegion": "us-west-2"})]
    assert plan_replica(current(primary=True), desired(primary=True)) == []
    assert plan_replica(None, desired(primary=True))[-1] == (UPDATE_PRIMARY, {"PrimaryRegion": "us-west-2"})
    assert plan_replica(current(primary=True), desired()) == []  # primary=false never moves it back


def test_absent():
    assert plan_replica(current(), desired(state="absent", pending_window_days=7)) == [
        (SCHEDULE_DELETION, {"PendingWindowInDays": 7})]
    assert plan_replica(None, desired(state="absent")) == []
    for state in ("PendingDeletion", "PendingReplicaDeletion"):
        assert plan_replica(current(key_state=state), desired(state="absent")) == []


# -- prediction

def test_predict_a_new_replica_and_its_listing():
    actions = plan_replica(None, desired(description="west", tags={"a": "1"}))
    assert predict_replica(None, actions) == {"description": "west", "policy": None, "tags": {"a": "1"},
                                              "primary": False, "key_state": "Enabled"}
    assert predict_topology(TOPOLOGY, actions, "us-west-2")["replicas"] == [{"arn": WEST, "region": "us-west-2"}]
    assert predict_replica(None, []) == {} and managed_fields(None) == {}


def test_predict_changes_deletion_and_promotion():
    before = current(key_state="PendingDeletion")
    actions = plan_replica(before, desired(tags={}, primary=True))
    after = predict_replica(before, actions)
    assert after == dict(managed_fields(before), key_state="Enabled", tags={}, primary=True)
    assert before["tags"] == {"a": "1"}  # not modified in place
    assert predict_replica(current(), [(SCHEDULE_DELETION, {"PendingWindowInDays": 7})])["key_state"] == "PendingDeletion"
    topology = dict(TOPOLOGY, replicas=[{"arn": WEST, "region": "us-west-2"}])
    promoted = predict_topology(topology, actions, "us-west-2")
    assert promoted == {"key_id": KEY_ID, "primary_arn": WEST, "primary_region": "us-west-2",
                        "replicas": [{"arn": PRIMARY, "region": "us-east-1"}]}
    assert predict_topology(promoted, actions, "us-west-2") == promoted  # already read back promoted


def test_result_of_a_replica_that_does_not_exist():
    result = replica_result(TOPOLOGY, "us-west-2", None, {})
    assert result["key_id"] is None and result["key_arn"] is None and result["key_state"] is None
    assert result["primary_key_arn"] == PRIMARY and result["replica_region"] == "us-west-2"


# -- the module against stubbed KMS answers (see the docstring: what moto cannot play)

class Regions:
    """A stubbed boto3 KMS client per region, handed to the module as kms_client would."""

    def __init__(self, monkeypatch, module_region="us-east-1"):
        self.clients, self.stubbers, self.asked = {}, {}, []
        for region in ("us-east-1", "us-west-2"):
            client = boto3.client("kms", region_name=region, aws_access_key_id="testing",
                                  aws_secret_access_key="testing")
            self.clients[region], self.stubbers[region] = client, Stubber(client)

        def kms_client(module, region=None):
            self.asked.append(region)
            return self.clients[region or module_region]

        monkeypatch.setattr(replica_module, "kms_client", kms_client)

    def __getitem__(self, region):
        return self.stubbers[region]

    def run(self, monkeypatch, capsys, **args):
        args.setdefault("region", "us-east-1")
        for stubber in self.stubbers.values():
            stubber.activate()
        try:
            result = run_main(replica_module, args, monkeypatch, capsys)
        finally:
            for stubber in self.stubbers.values():
                stubber.deactivate()
        for stubber in self.stubbers.values():
            stubber.assert_no_pending_responses()  # every stubbed call made, and no other
        return result


def read_west(stubber, arn=WEST, state="Enabled", description="west", tags=(("a", "1"),), policy=None, **meta):
    policy = POLICY if policy is None else policy
    stubber.add_response("describe_key", {"KeyMetadata": metadata(arn=arn, KeyState=state, Description=description,
                                                                  **meta)}, {"KeyId": WEST})
    stubber.add_response("list_resource_tags", {"Tags": [{"TagKey": k, "TagValue": v} for k, v in tags],
                                                "Truncated": False}, {"KeyId": KEY_ID})
    stubber.add_response("get_key_policy", {"Policy": json.dumps(policy)}, {"KeyId": KEY_ID, "PolicyName": "default"})


def test_primary_true_calls_update_primary_region_in_the_primary_region(monkeypatch, capsys):
    """moto 5.2.5 has no UpdatePrimaryRegion: the call, its region and the result are checked here."""
    regions = Regions(monkeypatch)
    regions["us-east-1"].add_response("describe_key", {"KeyMetadata": metadata()}, {"KeyId": PRIMARY})
    read_west(regions["us-west-2"])
    regions["us-east-1"].add_response("update_primary_region", {}, {"KeyId": KEY_ID, "PrimaryRegion": "us-west-2"})
    read_west(regions["us-west-2"])  # KMS updates asynchronously: still shown as a replica here
    result = regions.run(monkeypatch, capsys, key_id=PRIMARY, replica_region="us-west-2", primary=True,
                         _ansible_diff=True)
    assert result["changed"] is True and result["changes"] == ["update_primary_region"]
    assert result["primary"] is True
    assert (result["primary_key_arn"], result["primary_region"]) == (WEST, "us-west-2")
    assert result["replica_keys"] == [{"arn": PRIMARY, "region": "us-east-1"}]
    assert (result["key_arn"], result["key_id"]) == (WEST, KEY_ID)
    assert result["diff"]["before"]["primary"] is False and result["diff"]["after"]["primary"] is True


def test_primary_true_is_idempotent_once_promoted(monkeypatch, capsys):
    """Found from the old primary (now a replica) in us-east-1: the key in us-west-2 is the primary."""
    regions = Regions(monkeypatch)
    regions["us-east-1"].add_response("describe_key", {"KeyMetadata": metadata(arn=PRIMARY, primary=WEST,
                                                                               replicas_=(PRIMARY,))},
                                      {"KeyId": "alias/app"})
    read_west(regions["us-west-2"], primary=WEST, replicas_=(PRIMARY,))
    result = regions.run(monkeypatch, capsys, key_id="alias/app", replica_region="us-west-2", primary=True,
                         description="west", tags={"a": "1"}, policy=POLICY)
    assert result["changed"] is False and result["changes"] == []
    assert result["primary"] is True and result["primary_region"] == "us-west-2"


def test_primary_true_in_check_mode_makes_no_call(monkeypatch, capsys):
    regions = Regions(monkeypatch)
    regions["us-east-1"].add_response("describe_key", {"KeyMetadata": metadata()}, {"KeyId": PRIMARY})
    read_west(regions["us-west-2"])
    result = regions.run(monkeypatch, capsys, key_id=PRIMARY, replica_region="us-west-2", primary=True,
                         _ansible_check_mode=True)
    assert result["changed"] is True and result["changes"] == ["update_primary_region"]
    assert result["primary_region"] == "us-west-2"


def test_update_primary_region_refused_fails_in_one_line(monkeypatch, capsys):
    regions = Regions(monkeypatch)
    regions["us-east-1"].add_response("describe_key", {"KeyMetadata": metadata()}, {"KeyId": PRIMARY})
    read_west(regions["us-west-2"])
    regions["us-east-1"].add_client_error("update_primary_region", "KMSInvalidStateException",
                                          "arn is pending replica deletion")
    result = regions.run(monkeypatch, capsys, key_id=PRIMARY, replica_region="us-west-2", primary=True)
    assert result["failed"] is True
    assert result["msg"].startswith(f"Could not update primary region (key {KEY_ID})")
    assert "\n" not in result["msg"]


def test_new_replica_that_kms_created_as_asked_needs_nothing_more(monkeypatch, capsys):
    """Real KMS honours ReplicateKey's Description, Policy and Tags (moto ignores them): read back,
    the replica is as wanted, and no converging call follows."""
    regions = Regions(monkeypatch)
    regions["us-east-1"].add_response("describe_key", {"KeyMetadata": metadata(replicas_=())}, {"KeyId": PRIMARY})
    regions["us-west-2"].add_client_error("describe_key", "NotFoundException", expected_params={"KeyId": WEST})
    regions["us-east-1"].add_response("replicate_key", {"ReplicaKeyMetadata": metadata(arn=WEST)}, {
        "KeyId": KEY_ID, "ReplicaRegion": "us-west-2", "BypassPolicyLockoutSafetyCheck": False,
        "Description": "west", "Policy": json.dumps(POLICY), "Tags": [{"TagKey": "a", "TagValue": "1"}]})
    read_west(regions["us-west-2"], state="Creating")  # KMS's transient state of a new replica...
    read_west(regions["us-west-2"])  # ...Enabled a moment later
    read_west(regions["us-west-2"])  # the final read
    monkeypatch.setattr(replicas, "READ_BACK_DELAY", 0)
    result = regions.run(monkeypatch, capsys, key_id=PRIMARY, replica_region="us-west-2", description="west",
                         tags={"a": "1"}, policy=POLICY)
    assert result["changed"] is True and result["changes"] == ["replicate_key"]
    assert result["key_state"] == "Enabled" and result["policy"] == POLICY


def test_pending_deletion_replica_is_cancelled_and_enabled(monkeypatch, capsys):
    regions = Regions(monkeypatch, module_region="us-west-2")  # found from the replica's own region
    regions["us-west-2"].add_response("describe_key", {"KeyMetadata": metadata(arn=WEST)}, {"KeyId": KEY_ID})
    read_west(regions["us-west-2"], state="PendingDeletion")
    regions["us-west-2"].add_response("cancel_key_deletion", {"KeyId": WEST}, {"KeyId": KEY_ID})
    regions["us-west-2"].add_response("enable_key", {}, {"KeyId": KEY_ID})
    read_west(regions["us-west-2"])
    result = regions.run(monkeypatch, capsys, key_id=KEY_ID, region="us-west-2", replica_region="us-west-2")
    # replica_region here is the module's own region, which holds the replica: allowed.
    assert result["changes"] == ["cancel_key_deletion", "enable_key"] and result["key_state"] == "Enabled"
