#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)


from __future__ import annotations

DOCUMENTATION = r"""
---
module: key_rotation
short_description: Manage automatic and on-demand rotation of a KMS key
version_added: 0.1.0
description:
  - Turns automatic rotation of a customer managed KMS key on or off and sets its period, like
    C(aws kms enable-key-rotation) and C(aws kms disable-key-rotation), but idempotently.
  - Starts an on-demand rotation (C(aws kms rotate-key-on-demand)) when asked.
  - KMS keeps every earlier key material, so ciphertext made before a rotation still decrypts.
  - Returns the rotation status, the period, the next rotation date where KMS gives it and the
    rotation history (C(aws kms list-key-rotations)).
  - Only symmetric encryption keys whose key material KMS generated can rotate. Asking to enable
    or to rotate any other key (asymmetric, HMAC, imported key material, custom key store) fails
    before any change; O(enabled=false) on such a key succeeds without a change, since its
    automatic rotation is always off.
  - The rotation of AWS managed keys and of multi-Region replica keys cannot be changed here
    (AWS rotates the former yearly; the latter follow their primary key); reading it is fine.
author:
  - envelope.kms developers (!UNKNOWN)
options:
  key_id:
    description:
      - The key whose rotation to manage, as a key id, key ARN, alias name or alias ARN.
      - An alias is resolved to the key it points at now.
    type: str
    required: true
  enabled:
    description:
      - Whether automatic rotation is on.
      - With O(enabled=true) and no O(rotation_period_days), rotation that is already on keeps
        its period; rotation that is off is turned on with the KMS default of 365 days.
    type: bool
    default: true
  rotation_period_days:
    description:
      - Days between automatic rotations, from 90 to 2560.
      - Only with O(enabled=true). A different period than the current one re-enables rotation
        with this period.
      - Some KMS emulators (moto) do not report the current period. The module then cannot see
        a difference, assumes the period already matches and warns.
    type: int
  rotate_now:
    description:
      - Start an on-demand rotation of the key material now.
      - This is an action, not a state, so every run with V(true) rotates again and reports a
        change. Check mode reports the change without rotating.
      - While an earlier on-demand rotation is still in progress, KMS cannot start another; the
        module then warns and reports no change.
      - On-demand rotation does not need automatic rotation and does not change its schedule, but
        O(enabled) still applies (default V(true)); with O(enabled=false) the key is only rotated on
        demand.
    type: bool
    default: false
notes:
  - KMS allows a limited number of on-demand rotations per key (see the AWS KMS quotas); do not
    run O(rotate_now=true) unconditionally on every play.
  - A disabled key or a key pending deletion cannot change its rotation; the KMS error is reported.
  - In check mode a task that would create a key returns its id as null. Given such a null O(key_id),
    or one that names no key (for instance an alias an earlier task only predicted), the module
    warns, naming the key, and reports what it would do to a new key, whose automatic rotation is
    off. Outside check mode both are errors, before any change.
extends_documentation_fragment:
  - envelope.kms.attributes
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Rotate the key behind an alias automatically every 180 days
  envelope.kms.key_rotation:
    key_id: alias/app-secrets
    rotation_period_days: 180
  register: rotation

- name: Show when the next rotation happens
  ansible.builtin.debug:
    msg: "Next rotation on {{ rotation.next_rotation_date }}"

- name: Rotate the key material now (for instance after a suspected exposure)
  envelope.kms.key_rotation:
    key_id: arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab
    rotate_now: true
  when: rotate_key | default(false) | bool

- name: Turn automatic rotation off
  envelope.kms.key_rotation:
    key_id: 1234abcd-12ab-34cd-56ef-1234567890ab
    enabled: false
"""

RETURN = r"""
key_id:
  description: The id of the key. Null in check mode for a key that is not known yet, see the notes.
  returned: always
  type: str
  sample: 1234abcd-12ab-34cd-56ef-1234567890ab
key_arn:
  description: The ARN of the key. Null in check mode for a key that is not known yet, see the notes.
  returned: always
  type: str
  sample: arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab
enabled:
  description: Whether automatic rotation is on after the task.
  returned: always
  type: bool
  sample: true
rotation_period_verified:
  description:
    - V(false) when a period was asked for, rotation is on, and KMS did not report the current period
      (local emulators such as moto leave it out; AWS always reports it). The module then takes the
      period to be the one asked for. Against AWS (no custom endpoint) this also gives a warning.
  returned: always
  type: bool
  sample: true
rotation_period_days:
  description:
    - Days between automatic rotations after the task.
    - Null when automatic rotation is off, or when the endpoint does not report the period (some
      emulators) and this run did not just set it, for example on an unchanged re-run.
  returned: always
  type: int
  sample: 180
next_rotation_date:
  description: When KMS will next rotate the key automatically, where KMS gives it (null otherwise).
  returned: always
  type: str
  sample: "2025-07-30T10:15:00+00:00"
on_demand_rotation_start_date:
  description: When the on-demand rotation in progress started, where KMS gives it (null otherwise).
  returned: always
  type: str
  sample: "2025-02-01T09:00:00+00:00"
rotations:
  description: The completed rotations of the key (ListKeyRotations), oldest first.
  returned: always
  type: list
  elements: dict
  contains:
    key_id:
      description: The key, as KMS reports it.
      type: str
      sample: 1234abcd-12ab-34cd-56ef-1234567890ab
    rotation_date:
      description: When the rotation completed.
      type: str
      sample: "2025-02-01T09:00:12+00:00"
    rotation_type:
      description: C(AUTOMATIC) or C(ON_DEMAND).
      type: str
      sample: ON_DEMAND
"""

from ansible.module_utils.common.warnings import warn

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.envelope.kms.plugins.module_utils.errors import module_errors
from ansible_collections.envelope.kms.plugins.module_utils.kms import (
    find_key,
    kms_client,
    list_rotations,
    required_key_ref,
)
from ansible_collections.envelope.kms.plugins.module_utils.rotation import (
    NEW_KEY,
    NOT_ROTATING,
    apply_plan,
    plan_rotation,
    read_plan,
    validate_request,
    warn_unverified_period,
)


def read_rotation(client, key_ref, check_mode, enabled, period, rotate_now):
    """(KeyMetadata, can_rotate, rotation status, plan) of the key. In check mode a key_id that is null
    or names no key (an earlier task would create it) is warned about and taken for a new key (NEW_KEY)."""
    metadata = find_key(client, key_ref, "key_id", check_mode, warn, f"Key {key_ref} does not exist")
    if metadata is None:
        return NEW_KEY, True, NOT_ROTATING, plan_rotation(NOT_ROTATING, enabled, period, rotate_now)
    return (metadata, *read_plan(client, metadata, enabled, period, rotate_now))


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            key_id=dict(type="str", required=True),
            enabled=dict(type="bool", default=True),
            rotation_period_days=dict(type="int"),
            rotate_now=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    enabled = module.params["enabled"]
    period = module.params["rotation_period_days"]
    rotate_now = module.params["rotate_now"]
    with module_errors(module, "Invalid options"):
        validate_request(enabled, period)
        key_ref = required_key_ref(module.params["key_id"], "key_id is required (it is null or empty)", module.check_mode)

    client = kms_client(module)
    with module_errors(module, f"Could not read the rotation status of key {key_ref}"):
        metadata, can_rotate, current, plan = read_rotation(client, key_ref, module.check_mode, enabled, period,
                                                            rotate_now)
        key_arn = metadata["Arn"]

    # ansible-core's warn(), not module.warn(): amazon.aws 10's AnsibleAWSModule.warn() also passes
    # `warnings` to exit_json, which ansible-core 2.19 reports as a deprecation on every warning.
    warn_unverified_period(plan, key_arn, period, module.params)
    if plan.rotation_in_progress:
        warn(
            f"An on-demand rotation of key {key_arn} started at {current['on_demand_rotation_start_date']} is still "
            "in progress: not starting another"
        )

    observed = current
    applied = bool(plan.actions) and not module.check_mode
    if applied:
        observed = apply_plan(module, client, key_arn, plan)
    with module_errors(module, f"Could not read the rotation status of key {key_arn}"):
        rotations = list_rotations(client, key_arn) if can_rotate and key_arn else []

    # enabled and the period are what the plan set (KMS may lag, or not report the period);
    # the dates are only known to KMS.
    after = plan.after
    result = dict(
        changed=bool(plan.actions),
        rotation_period_verified=not plan.period_unverified,
        key_id=metadata["KeyId"],
        key_arn=key_arn,
        enabled=after["enabled"],
        rotation_period_days=after["rotation_period_days"],
        next_rotation_date=observed["next_rotation_date"] if after["enabled"] else None,
        on_demand_rotation_start_date=observed["on_demand_rotation_start_date"],
        rotations=rotations,
    )
    if module._diff:
        result["diff"] = dict(before=plan.before, after=plan.after)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
