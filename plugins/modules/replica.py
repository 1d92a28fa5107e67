#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: replica
short_description: Create, update, promote or schedule the deletion of a replica of a multi-Region KMS key
version_added: 0.2.0
description:
  - Manages the replica of a multi-Region KMS key in one AWS region, like C(aws kms replicate-key),
    C(update-key-description), C(put-key-policy), C(tag-resource), C(update-primary-region),
    C(schedule-key-deletion) and C(cancel-key-deletion), but idempotently.
  - The multi-Region key is found by O(key_id) in the module's O(region), which may be the region
    of the primary key or of any of its replicas. The primary key is read from the key's
    multi-Region configuration, and the replica is created from it (ReplicateKey is called in the
    primary's region).
  - Related multi-Region keys share their key id and key material, so ciphertext wrapped under one
    of them can be decrypted by any other. The description, the key policy and the tags are not
    shared, each replica has its own, which this module manages.
  - After creating a replica the module reads it back and sets what differs from O(description),
    O(policy) and O(tags), so the replica ends the same whether or not KMS applied them on creation.
  - Create the primary key with M(envelope.kms.key) and O(envelope.kms.key#module:multi_region=true).
author:
  - envelope.kms developers (!UNKNOWN)
options:
  key_id:
    description:
      - The multi-Region key, as a key id, key ARN, alias name or alias ARN, looked up in O(region).
      - A key that does not exist, or that is not a multi-Region key, is an error before any change.
    type: str
    required: true
  replica_region:
    description:
      - The AWS region of the replica, for example V(us-west-2).
      - Usually not the region of the primary key. When it is (for example on a re-run after
        O(primary=true) moved the primary there), the task gives that primary key its O(description),
        O(policy) and O(tags), and O(state=absent) is refused (use M(envelope.kms.key) to delete a primary key).
    type: str
    required: true
  description:
    description:
      - The replica's description. Not given, a new replica gets the description KMS gives it and
        the description of an existing replica is left as it is.
    type: str
  policy:
    description:
      - The replica's key policy, as a JSON text or a dictionary.
      - Compared with the replica's policy semantically (statement order, single values versus lists and
        formatting do not matter).
      - Not given, a new replica gets the KMS default key policy and the policy of an existing replica is left as it is.
      - Keep a statement that lets your account manage the key, or nobody will be able to change it again.
    type: json
  bypass_policy_lockout_safety_check:
    description:
      - Passed to ReplicateKey and PutKeyPolicy. V(true) lets KMS accept a policy that would lock the
        caller out of the replica. Leave it V(false) unless you know why you need it.
    type: bool
    default: false
  primary:
    description:
      - V(true) makes the key in O(replica_region) the primary key of the multi-Region key
        (UpdatePrimaryRegion, called in the region of the current primary). The previous primary
        becomes a replica.
      - V(false) leaves the primary where it is. It never moves the primary back, run the module with
        V(true) for the region that must hold the primary instead. When O(replica_region) holds the
        primary (for instance after an earlier V(true)), the primary there gets the task's
        description, policy and tags.
      - While KMS is still moving the primary (key state C(Updating)), V(true) asks nothing again.
      - KMS completes the update asynchronously. The return values show the primary as requested.
    type: bool
    default: false
  pending_window_days:
    description:
      - With O(state=absent), the number of days KMS waits before it deletes the replica, 7 to 30.
      - Checked whatever O(state) is, before any call to KMS.
    type: int
    default: 30
  state:
    description:
      - V(present) creates or updates the replica. A replica pending deletion has its deletion cancelled
        and is enabled again.
      - V(absent) schedules the deletion of the replica after O(pending_window_days). A replica already
        pending deletion (C(PendingDeletion) or C(PendingReplicaDeletion)), or none, is left unchanged.
        The primary key is never deleted here, use M(envelope.kms.key).
    type: str
    choices: [present, absent]
    default: present
notes:
  - In check mode an O(key_id) that names no key (an alias an earlier task would create) gives a
    warning naming it, and the task reports the replica it would create (RV(key_id), RV(key_arn) and
    RV(primary_key_arn) null), or nothing to do with O(state=absent), instead of failing. Outside
    check mode it is an error, before any change.
  - In check mode nothing is changed. The replica's key id and ARN are predicted (related
    multi-Region keys share their key id); a policy KMS would choose is returned as null.
  - A replica scheduled for deletion becomes unusable at once, files wrapped under the key can still
    be decrypted through its other related keys.
extends_documentation_fragment:
  - envelope.kms.attributes
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.tags
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: A multi-Region primary key in us-east-1
  envelope.kms.key:
    alias: alias/app-secrets
    multi_region: true
    region: us-east-1
  register: app_key

- name: Its replica in us-west-2, with its own description, tags and policy
  envelope.kms.replica:
    key_id: "{{ app_key.key_arn }}"
    region: us-east-1
    replica_region: us-west-2
    description: Wraps the data keys of app secrets (us-west-2 replica)
    tags:
      project: app
    policy:
      Version: "2012-10-17"
      Statement:
        - Sid: Enable IAM policies
          Effect: Allow
          Principal:
            AWS: "arn:aws:iam::123456789012:root"
          Action: "kms:*"
          Resource: "*"
  register: west

- name: Show the replica's ARN
  ansible.builtin.debug:
    msg: "{{ west.key_arn }} replicates {{ west.primary_key_arn }}"

- name: Add a tag to the replica, keeping the tags it has
  envelope.kms.replica:
    key_id: alias/app-secrets
    region: us-east-1
    replica_region: us-west-2
    tags:
      dr: standby
    purge_tags: false

- name: A replica whose policy is meant to lock the caller out (the policy is in a file of its own)
  envelope.kms.replica:
    key_id: alias/app-secrets
    region: us-east-1
    replica_region: ap-southeast-2
    policy: "{{ lookup('ansible.builtin.file', 'policies/break-glass-only.json') }}"
    bypass_policy_lockout_safety_check: true

- name: Make the us-west-2 replica the primary key
  envelope.kms.replica:
    key_id: alias/app-secrets
    region: us-east-1
    replica_region: us-west-2
    primary: true

- name: Schedule the deletion of a replica in 7 days
  envelope.kms.replica:
    key_id: alias/app-secrets
    region: us-east-1
    replica_region: eu-west-1
    state: absent
    pending_window_days: 7
"""

RETURN = r"""
changes:
  description:
    - The KMS actions the task made (or, in check mode, would make), in order, named after the
      boto3 client methods. Empty when nothing changed.
  returned: always
  type: list
  elements: str
  sample: [replicate_key, tag_resource]
key_id:
  description: The key id of the replica (the same for all related multi-Region keys). Null when there is no replica.
  returned: always
  type: str
  sample: mrk-1234abcd12ab34cd56ef1234567890ab
key_arn:
  description: The ARN of the replica. Null when there is no replica.
  returned: always
  type: str
  sample: arn:aws:kms:us-west-2:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab
replica_region:
  description: The region of the replica, O(replica_region).
  returned: always
  type: str
  sample: us-west-2
primary_key_arn:
  description: The ARN of the primary key, after the task.
  returned: always
  type: str
  sample: arn:aws:kms:us-east-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab
primary_region:
  description: The region of the primary key, after the task.
  returned: always
  type: str
  sample: us-east-1
replica_keys:
  description: The replica keys of the multi-Region key, after the task, sorted by region.
  returned: always
  type: list
  elements: dict
  contains:
    arn:
      description: The replica's ARN.
      type: str
      sample: arn:aws:kms:us-west-2:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab
    region:
      description: The replica's region.
      type: str
      sample: us-west-2
primary:
  description: Whether the key in O(replica_region) is the primary key.
  returned: always
  type: bool
  sample: false
key_state:
  description: The replica's key state, for example C(Enabled), C(Creating) or C(PendingDeletion). Null when there is no replica.
  returned: always
  type: str
  sample: Enabled
description:
  description: The replica's description. Null when there is no replica.
  returned: always
  type: str
  sample: Wraps the data keys of app secrets (us-west-2 replica)
tags:
  description: The replica's tags. Null when there is no replica.
  returned: always
  type: dict
  sample:
    project: app
policy:
  description:
    - The replica's key policy, parsed.
    - Null when there is no replica, when the caller may not read it, and in check mode for a
      replica that would be created with the KMS default policy.
  returned: always
  type: dict
  sample:
    Version: "2012-10-17"
    Statement:
      - Sid: Enable IAM policies
        Effect: Allow
        Principal:
          AWS: "arn:aws:iam::123456789012:root"
        Action: "kms:*"
        Resource: "*"
"""

from ansible.module_utils.common.warnings import warn

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.envelope.kms.plugins.module_utils.errors import AWS_ERRORS, EnvelopeError, module_errors
from ansible_collections.envelope.kms.plugins.module_utils.keys import (
    KeyApplyError,
    check_pending_window,
    normalize_tags,
    parse_policy,
)
from ansible_collections.envelope.kms.plugins.module_utils.kms import (
    KmsInputError,
    describe_key,
    kms_client,
    unknown_key_warning,
)
from ansible_collections.envelope.kms.plugins.module_utils.replicas import (
    REPLICATE,
    UPDATE_PRIMARY,
    apply_replica,
    arn_in_region,
    check_replica_region,
    managed_fields,
    multi_region_topology,
    plan_replica,
    predict_replica,
    predict_topology,
    read_replica,
    replica_result,
)


def desired_state(params):
    """The module options as plan_replica wants them, checked before any call to KMS."""
    if not params["replica_region"].strip():
        raise KmsInputError("replica_region must not be empty")
    return dict(
        state=params["state"],
        replica_region=params["replica_region"].strip(),
        description=params["description"],
        policy=parse_policy(params["policy"]),
        tags=normalize_tags(params["tags"]),
        purge_tags=params["purge_tags"],
        bypass_policy_lockout_safety_check=params["bypass_policy_lockout_safety_check"],
        primary=params["primary"],
        pending_window_days=check_pending_window(params["pending_window_days"]),
    )


def exit_unknown_key(module, desired, key_ref):
    """Check mode, key_id naming no key: an earlier task would create it, so a replica would be
    created (state=present) or there is none to delete. Warns, naming the key."""
    warn(unknown_key_warning("key_id", key_ref))  # ansible-core's warn: see key_rotation.py
    present = desired["state"] == "present"
    result = dict(changed=present, changes=[REPLICATE] if present else [], key_id=None, key_arn=None,
                  replica_region=desired["replica_region"], primary_key_arn=None, primary_region=None,
                  replica_keys=[], key_state=None, description=None, tags=None, policy=None, primary=False)
    if module._diff:
        result["diff"] = dict(before={}, after=predict_replica(None, plan_replica(None, desired)) if present else {})
    module.exit_json(**result)


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            key_id=dict(type="str", required=True),
            replica_region=dict(type="str", required=True),
            description=dict(type="str"),
            policy=dict(type="json"),
            tags=dict(type="dict", aliases=["resource_tags"]),
            purge_tags=dict(type="bool", default=True),
            bypass_policy_lockout_safety_check=dict(type="bool", default=False),
            primary=dict(type="bool", default=False),
            pending_window_days=dict(type="int", default=30),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        supports_check_mode=True,
    )
    with module_errors(module, "Invalid options"):
        desired = desired_state(module.params)
    clients = {}

    def client_for_region(region):
        if region not in clients:
            clients[region] = kms_client(module, region=region)
        return clients[region]

    key_ref, region = module.params["key_id"], module.region
    replica_region = desired["replica_region"]
    with module_errors(module, f"Could not read key {key_ref}"):
        # A key ARN is read in its own region (as the engine resolves keys); other references in O(region).
        arn_region = key_ref.split(":")[3] if key_ref.startswith("arn:") and key_ref.count(":") >= 5 else None
        found = describe_key(client_for_region(arn_region) if arn_region else kms_client(module), key_ref)
        if found is None and module.check_mode:
            exit_unknown_key(module, desired, key_ref)
        topology = multi_region_topology(found, key_ref, region)
        check_replica_region(topology, desired)
        replica_arn = arn_in_region(topology["primary_arn"], replica_region)
        metadata, current = read_replica(client_for_region(replica_region), replica_arn, topology["primary_region"],
                                         replica_region)
        actions = plan_replica(current, desired)

    after, changes = predict_replica(current, actions), [step[0] for step in actions]
    if actions and not module.check_mode:
        try:
            changes = apply_replica(client_for_region, actions, topology, desired)
            metadata, final = read_replica(client_for_region(replica_region), replica_arn, topology["primary_region"],
                                           replica_region)
            topology = multi_region_topology(metadata, replica_arn, replica_region) if metadata else topology
        except KeyApplyError as exc:
            module.fail_json_aws(exc.error, msg=f"Could not {exc.action.replace('_', ' ')} (key {exc.key_id})",
                                 key_id=exc.key_id)
        except EnvelopeError as exc:
            module.fail_json(msg=exc.message)
        except AWS_ERRORS as exc:
            module.fail_json_aws(exc, msg=f"Could not read replica {replica_arn} back")
        after = managed_fields(final)
    if module.check_mode or UPDATE_PRIMARY in changes:
        # KMS moves the primary asynchronously: show it where the task put it.
        topology = predict_topology(topology, actions, replica_region)
    if UPDATE_PRIMARY in changes and not module.check_mode:
        after["primary"] = True

    result = dict(changed=bool(actions), changes=changes, **replica_result(topology, replica_region, metadata, after))
    if module._diff:
        result["diff"] = dict(before=managed_fields(current), after=after)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
