# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Replicas of multi-Region keys: reading them, what to do (a pure plan, a pure prediction) and doing it.

A plan is a list of ``(action, args)`` pairs, as in keys.py: each action is named after the boto3
KMS method that performs it, its args are that call's parameters minus KeyId. ReplicateKey and
UpdatePrimaryRegion are calls on the primary key, in the primary's region; every other action is a
call on the replica, in the replica's region (``PRIMARY_REGION_ACTIONS`` says which is which).

The related keys of a multi-Region key share their key id (``mrk-...``): a replica's ARN is the
primary's with the region changed, so check mode can predict it.
"""

from __future__ import annotations

import copy
import json
import time

try:
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:
    pass  # AnsibleAWSModule reports it

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.tagging import boto3_tag_list_to_ansible_dict

from ansible_collections.envelope.kms.plugins.module_utils.errors import EnvelopeError
from ansible_collections.envelope.kms.plugins.module_utils.keys import (
    CANCEL_DELETION,
    ENABLE,
    PUT_POLICY,
    SCHEDULE_DELETION,
    ATTRIBUTE_ACTIONS,
    KeyApplyError,
    plan_description_and_policy,
    plan_tags,
    predict_attribute,
    tag_list,
)
from ansible_collections.envelope.kms.plugins.module_utils.kms import (
    KmsInputError,
    describe_key,
    key_policy,
    key_tags,
)

REPLICATE = "replicate_key"
UPDATE_PRIMARY = "update_primary_region"
PRIMARY_REGION_ACTIONS = (REPLICATE, UPDATE_PRIMARY)

# A replica in these states is (being) deleted: state=absent has nothing to do, present cancels it.
PENDING_DELETION_STATES = ("PendingDeletion", "PendingReplicaDeletion")

# The fields the diff shows and check mode predicts.
MANAGED_FIELDS = ("description", "policy", "tags", "primary", "key_state")

# A new replica is briefly NotFound (eventual consistency) and in state Creating: read it back
# this many times, this far apart (seconds, doubling), before giving up.
READ_BACK_ATTEMPTS = 6
READ_BACK_DELAY = 0.5


def arn_in_region(arn, region):
    """The ARN of the related multi-Region key in ``region``: only the region part differs."""
    parts = arn.split(":")
    parts[3] = region
    return ":".join(parts)


def multi_region_topology(metadata, key_ref, region):
    """The primary and replicas of the multi-Region key ``metadata`` describes, as plain data:
    {key_id, primary_arn, primary_region, replicas: [{arn, region}, ...]}.

    Raises KmsInputError when there is no such key or it is not a multi-Region key. The primary is
    read from PrimaryKey, never from MultiRegionKeyType (moto 5.2.5 reports a replica as PRIMARY
    until it is described in its own region, and then its primary as REPLICA: the two share state).
    """
    if metadata is None:
        raise KmsInputError(f"Key {key_ref} does not exist in region {region}")
    config = metadata.get("MultiRegionConfiguration") or {}
    if not metadata.get("MultiRegion") or not config.get("PrimaryKey"):
        raise KmsInputError(
            f"Key {key_ref} ({metadata.get('Arn')}) is not a multi-Region key: only keys created with "
            "multi_region=true have replicas"
        )
    return {
        "key_id": metadata["KeyId"],
        "primary_arn": config["PrimaryKey"]["Arn"],
        "primary_region": config["PrimaryKey"]["Region"],
        "replicas": sorted(({"arn": replica["Arn"], "region": replica["Region"]}
                            for replica in config.get("ReplicaKeys") or ()), key=lambda replica: replica["region"]),
    }


def snapshot(metadata, tags, policy, primary_region, region):
    """The plain-data view of the key in ``region`` that plan_replica compares against."""
    return {
        "key_id": metadata["KeyId"],
        "arn": metadata["Arn"],
        "key_state": metadata.get("KeyState"),
        "enabled": metadata.get("Enabled", False),
        "description": metadata.get("Description") or "",
        "tags": dict(tags),
        "policy": policy,
        "primary": region == primary_region,
    }


def read_replica(client, arn, primary_region, region):
    """(KeyMetadata, snapshot) of the related key ``arn`` through ``client`` (of its region); (None, None) if none."""
    metadata = describe_key(client, arn)
    if metadata is None:
        return None, None
    key_id = metadata["KeyId"]
    return metadata, snapshot(metadata, key_tags(client, key_id), key_policy(client, key_id), primary_region, region)


def check_replica_region(topology, desired):
    """KmsInputError when replica_region holds the primary and the task would delete it (state=absent)."""
    if desired["replica_region"] != topology["primary_region"]:
        return
    if desired["state"] == "absent":
        raise KmsInputError(
            f"The key in {desired['replica_region']} is the primary key {topology['primary_arn']}, not a replica: "
            "schedule its deletion with envelope.kms.key"
        )
    # present, primary or not: the key there (the primary, for instance after an earlier primary=true)
    # gets the task's description, policy and tags; primary=false never moves the primary back.


def plan_replica(current, desired):
    """The KMS calls that bring the key in replica_region from ``current`` to ``desired``.

    current: snapshot() of that key, or None when there is none.
    desired: state, replica_region, description, policy (dict), tags (text dict) -- each None to
      leave as is --, purge_tags, bypass_policy_lockout_safety_check, primary (bool),
      pending_window_days. check_replica_region() has run.
    """
    if desired["state"] == "absent":
        if current is None or current["key_state"] in PENDING_DELETION_STATES:
            return []
        return [(SCHEDULE_DELETION, {"PendingWindowInDays": desired["pending_window_days"]})]
    if current is None:
        actions = [(REPLICATE, _replicate_args(desired))]
    else:
        actions = []
        if current["key_state"] in PENDING_DELETION_STATES:
            actions += [(CANCEL_DELETION, {}), (ENABLE, {})]  # CancelKeyDeletion leaves the key disabled
        actions += plan_converge(current, desired)
    # Updating: KMS is moving the primary (UpdatePrimaryRegion is asynchronous); asking again would fail.
    if desired["primary"] and not (current and (current["primary"] or current["key_state"] == "Updating")):
        actions.append((UPDATE_PRIMARY, {"PrimaryRegion": desired["replica_region"]}))
    return actions


def plan_converge(current, desired):
    """The calls that set what still differs from description, policy and tags (nothing else):
    for an existing replica, and for a new one read back (real KMS honours ReplicateKey's
    Description, Policy and Tags, moto 5.2.5 ignores them)."""
    actions = []
    for action, args in plan_description_and_policy(current, desired) + plan_tags(current, desired):
        if action == PUT_POLICY:
            args = dict(args, BypassPolicyLockoutSafetyCheck=desired["bypass_policy_lockout_safety_check"])
        actions.append((action, args))
    return actions


def _replicate_args(desired):
    args = {
        "ReplicaRegion": desired["replica_region"],
        "BypassPolicyLockoutSafetyCheck": desired["bypass_policy_lockout_safety_check"],
    }
    if desired["description"] is not None:
        args["Description"] = desired["description"]
    if desired["policy"] is not None:
        args["Policy"] = json.dumps(desired["policy"])
    if desired["tags"]:
        args["Tags"] = tag_list(desired["tags"])
    return args


def managed_fields(current):
    """The fields a diff shows, from a snapshot (an empty dict for a replica that does not exist)."""
    if current is None:
        return {}
    return {name: current[name] for name in MANAGED_FIELDS}


def predict_replica(current, actions):
    """The managed fields after ``actions``, from the plan alone (check mode, diff). A replica the
    plan creates without a policy gets the KMS default policy: predicted as None."""
    after = copy.deepcopy(managed_fields(current))
    for action, args in actions:
        if action == REPLICATE:
            after = {
                "description": args.get("Description", ""),
                "policy": json.loads(args["Policy"]) if "Policy" in args else None,
                "tags": boto3_tag_list_to_ansible_dict(args.get("Tags", []), "TagKey", "TagValue"),
                "primary": False,
                "key_state": "Enabled",
            }
        elif action == CANCEL_DELETION:
            after["key_state"] = "Disabled"
        elif action == ENABLE:
            after["key_state"] = "Enabled"
        elif action in ATTRIBUTE_ACTIONS:
            predict_attribute(after, action, args)
        elif action == UPDATE_PRIMARY:
            after["primary"] = True
        elif action == SCHEDULE_DELETION:
            after["key_state"] = "PendingDeletion"
    return after


def predict_topology(topology, actions, replica_region):
    """The topology after ``actions``: a new replica is listed, a promoted one is the primary and
    the old primary a replica. Also what the result shows right after UpdatePrimaryRegion, which
    KMS completes asynchronously."""
    after = copy.deepcopy(topology)
    replica_arn = arn_in_region(topology["primary_arn"], replica_region)
    for action, _args in actions:
        if action == REPLICATE and all(replica["region"] != replica_region for replica in after["replicas"]):
            after["replicas"].append({"arn": replica_arn, "region": replica_region})
        elif action == UPDATE_PRIMARY and after["primary_region"] != replica_region:
            old = {"arn": after["primary_arn"], "region": after["primary_region"]}
            after["replicas"] = [replica for replica in after["replicas"] if replica["region"] != replica_region] + [old]
            after["primary_arn"], after["primary_region"] = replica_arn, replica_region
    after["replicas"].sort(key=lambda replica: replica["region"])
    return after


def apply_replica(client_for_region, actions, topology, desired, sleep=time.sleep):
    """Make the plan's calls in order, each in its region; a new replica is read back and what
    ReplicateKey did not set is converged. Returns the actions made, in order."""
    replica_region = desired["replica_region"]
    replica_arn = arn_in_region(topology["primary_arn"], replica_region)
    done = []
    # Calls name the key by its id, which all related keys share, each in its region: moto 5.2.5's
    # ReplicateKey and ScheduleKeyDeletion fail (HTTP 500) on a key ARN; KMS takes both.
    key_id = topology["key_id"]
    for action, args in actions:
        region = topology["primary_region"] if action in PRIMARY_REGION_ACTIONS else replica_region
        _call(client_for_region(region), action, key_id, args)
        done.append(action)
        if action == REPLICATE:
            current = wait_for_replica(client_for_region(replica_region), replica_arn, topology["primary_region"],
                                       replica_region, sleep)
            for step, step_args in plan_converge(current, desired):
                _call(client_for_region(replica_region), step, key_id, step_args)
                done.append(step)
    return done


def wait_for_replica(client, arn, primary_region, region, sleep=time.sleep):
    """The snapshot of a replica just created, once KMS finds it and it is no longer Creating."""
    delay = READ_BACK_DELAY
    for attempt in range(READ_BACK_ATTEMPTS):
        try:
            current = read_replica(client, arn, primary_region, region)[1]
        except is_boto3_error_code("KMSInvalidStateException"):  # its policy is not readable yet
            current = None
        if current is not None and current["key_state"] != "Creating":
            return current
        if attempt < READ_BACK_ATTEMPTS - 1:
            sleep(delay)
            delay *= 2
    what = "found it still Creating" if current is not None else "did not find it"
    raise EnvelopeError(f"Could not read the new replica {arn} back: KMS {what} in {region} after it was "
                        "created; run the task again to set its description, policy and tags", "kms_error")


def _call(client, action, key_id, args):
    try:
        getattr(client, action)(KeyId=key_id, **args)
    except (BotoCoreError, ClientError) as exc:
        raise KeyApplyError(action, key_id, exc) from exc


def replica_result(topology, replica_region, metadata, after):
    """The module's return values for the key in replica_region (``metadata`` None: not read, or
    none there) with the managed fields of ``after`` and the multi-Region ``topology``."""
    arn = metadata["Arn"] if metadata else arn_in_region(topology["primary_arn"], replica_region)
    exists = bool(after)
    return {
        "key_id": topology["key_id"] if exists else None,
        "key_arn": arn if exists else None,
        "replica_region": replica_region,
        "primary_key_arn": topology["primary_arn"],
        "primary_region": topology["primary_region"],
        "replica_keys": topology["replicas"],
        "key_state": after.get("key_state"),
        "description": after.get("description"),
        "tags": after.get("tags"),
        "policy": after.get("policy"),
        "primary": after.get("primary", False),
    }
