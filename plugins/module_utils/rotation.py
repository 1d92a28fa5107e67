# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Key rotation: the checks, what to change (a pure plan) and the KMS calls that change it.

Automatic rotation has two managed fields, ``enabled`` and ``rotation_period_days``; an on-demand
rotation (RotateKeyOnDemand) is an action rather than a state, so it is planned on request.

Some endpoints (moto, older emulators) answer GetKeyRotationStatus without RotationPeriodInDays.
Real KMS reports the period whenever automatic rotation is on, so a missing period cannot be told
apart from the requested one: the plan then assumes it matches (``period_unverified``) instead of
re-enabling on every run, and the module warns.
"""

from __future__ import annotations

import os
from collections import namedtuple

from ansible.module_utils.common.warnings import warn

from ansible_collections.envelope.kms.plugins.module_utils.errors import module_errors
from ansible_collections.envelope.kms.plugins.module_utils.kms import KmsInputError, rotation_status, supports_rotation

MIN_PERIOD_DAYS = 90
MAX_PERIOD_DAYS = 2560
# What KMS uses when EnableKeyRotation is called without RotationPeriodInDays.
DEFAULT_PERIOD_DAYS = 365

ENABLE = "enable"
DISABLE = "disable"
ROTATE = "rotate"

# What GetKeyRotationStatus would say for a key that cannot rotate (it is never asked for those).
NOT_ROTATING = {
    "enabled": False,
    "rotation_period_days": None,
    "next_rotation_date": None,
    "on_demand_rotation_start_date": None,
}

# The key check mode assumes for a key_id it does not find (an earlier task would create it): what
# CreateKey makes by default, a symmetric encryption key whose automatic rotation is off (NOT_ROTATING).
NEW_KEY = {
    "KeyId": None,
    "Arn": None,
    "KeySpec": "SYMMETRIC_DEFAULT",
    "KeyUsage": "ENCRYPT_DECRYPT",
    "Origin": "AWS_KMS",
    "KeyManager": "CUSTOMER",
}

# actions: [(ENABLE, period or None) | (DISABLE, None) | (ROTATE, None)], in the order to apply them.
# before/after: the managed fields, for the diff and the result.
# period_unverified: rotation is on, a period was asked for, and KMS did not report the current one.
# rotation_in_progress: rotate_now was asked for while an on-demand rotation is still running.
RotationPlan = namedtuple("RotationPlan", "actions before after period_unverified rotation_in_progress")


def validate_request(enabled, period):
    """Refuse option combinations KMS would reject, before any call."""
    if period is None:
        return
    if not enabled:
        raise KmsInputError("rotation_period_days applies to automatic rotation: it requires enabled=true")
    if not MIN_PERIOD_DAYS <= period <= MAX_PERIOD_DAYS:
        raise KmsInputError(
            f"rotation_period_days must be between {MIN_PERIOD_DAYS} and {MAX_PERIOD_DAYS} days, got {period}"
        )


def check_rotatable(metadata, enabled, rotate_now):
    """True when KMS can report this key's rotation; raises when the request needs a rotatable key.

    Keys that cannot rotate (asymmetric, HMAC, imported or custom key store material) have
    automatic rotation off by definition, so enabled=false without rotate_now is simply satisfied.
    """
    if supports_rotation(metadata):
        return True
    if enabled or rotate_now:
        raise KmsInputError(
            f"Key {metadata.get('Arn') or metadata.get('KeyId')} cannot rotate: automatic and on-demand rotation "
            "need a symmetric encryption key (KeySpec SYMMETRIC_DEFAULT, KeyUsage ENCRYPT_DECRYPT) whose key "
            "material KMS generated (Origin AWS_KMS); this key has KeySpec "
            f"{metadata.get('KeySpec', 'SYMMETRIC_DEFAULT')}, KeyUsage {metadata.get('KeyUsage', 'ENCRYPT_DECRYPT')}"
            f", Origin {metadata.get('Origin', 'AWS_KMS')}"
        )
    return False


def check_changeable(metadata, plan):
    """Raise when the plan changes a key whose rotation is not managed through this key."""
    if not plan.actions:
        return
    key = metadata.get("Arn") or metadata.get("KeyId")
    if metadata.get("KeyManager", "CUSTOMER") != "CUSTOMER":
        raise KmsInputError(f"Key {key} is an AWS managed key: AWS rotates it every year and its rotation cannot be changed")
    multi_region = metadata.get("MultiRegionConfiguration") or {}
    if multi_region.get("MultiRegionKeyType") == "REPLICA":
        primary = (multi_region.get("PrimaryKey") or {}).get("Arn", "its primary key")
        raise KmsInputError(
            f"Key {key} is a multi-Region replica key: its rotation follows {primary}; manage rotation there"
        )


def plan_rotation(current, enabled, period=None, rotate_now=False):
    """What brings the key's rotation from `current` (kms.rotation_status's dict) to the request.

    enabled=True with period=None enables rotation if it is off (KMS then uses 365 days) and
    otherwise leaves the current period alone. A period is compared with the reported one; when
    KMS reports none although rotation is on, it is assumed to match (see the module docstring).
    """
    current_enabled = bool(current["enabled"])
    current_period = current["rotation_period_days"] if current_enabled else None
    in_progress = current.get("on_demand_rotation_start_date") is not None

    actions = []
    period_unverified = False
    after_period = current_period
    if enabled and not current_enabled:
        actions.append((ENABLE, period))
        after_period = period or DEFAULT_PERIOD_DAYS
    elif enabled and period is not None and current_period != period:
        if current_period is None:
            period_unverified = True
        else:
            actions.append((ENABLE, period))
            after_period = period
    elif not enabled and current_enabled:
        actions.append((DISABLE, None))
        after_period = None

    if rotate_now and not in_progress:
        actions.append((ROTATE, None))

    before = {
        "enabled": current_enabled,
        "rotation_period_days": current_period,
        "on_demand_rotation_in_progress": in_progress,
    }
    after = {
        "enabled": bool(enabled),
        "rotation_period_days": after_period,
        "on_demand_rotation_in_progress": in_progress or bool(rotate_now),
    }
    return RotationPlan(actions, before, after, period_unverified, bool(rotate_now) and in_progress)


def read_plan(client, metadata, enabled, period=None, rotate_now=False):
    """(can_rotate, GetKeyRotationStatus, plan) for an existing key, checked: KmsInputError when the
    request needs a key that can rotate, or changes one whose rotation is not managed through it."""
    can_rotate = check_rotatable(metadata, enabled, rotate_now)
    status = rotation_status(client, metadata["Arn"]) if can_rotate else NOT_ROTATING
    plan = plan_rotation(status, enabled, period, rotate_now)
    check_changeable(metadata, plan)
    return can_rotate, status, plan


def apply_plan(module, client, key_arn, plan):
    """The plan's KMS calls in order (one that fails fails the module, naming what it was doing),
    then the status KMS reports after them (the next rotation date is KMS's to set)."""
    for action in plan.actions:
        with module_errors(module, f"Could not {describe_action(action)} for key {key_arn}"):
            apply_rotation(client, key_arn, action)
    with module_errors(module, f"Could not read the rotation status of key {key_arn}"):
        return rotation_status(client, key_arn)


def custom_endpoint(params):
    """Whether the client talks to an endpoint set by the user (an emulator, a VPC endpoint), not AWS's own."""
    names = ("AWS_ENDPOINT_URL_KMS", "AWS_ENDPOINT_URL", "AWS_URL", "EC2_URL")
    return bool(params.get("endpoint_url") or any(os.environ.get(name) for name in names))


def warn_unverified_period(plan, key_arn, period, params):
    """Warn that KMS did not report the period the plan took to match, against AWS's own endpoint
    only: emulators (moto) never report it, which the result says without a warning on every run.
    ansible-core's warn(), not module.warn(): amazon.aws 10's AnsibleAWSModule.warn() also passes
    ``warnings`` to exit_json, which ansible-core 2.19 reports as a deprecation on every warning."""
    if plan.period_unverified and not custom_endpoint(params):
        warn(f"KMS did not report the rotation period of key {key_arn} (GetKeyRotationStatus without "
             f"RotationPeriodInDays): taking it to be {period} days, as asked")


def describe_action(action):
    """'enable automatic rotation every 180 days', for messages."""
    name, period = action
    if name == ENABLE:
        return "enable automatic rotation" + (f" every {period} days" if period else "")
    if name == DISABLE:
        return "disable automatic rotation"
    return "start an on-demand rotation"


def apply_rotation(client, key_id, action):
    """Make the one KMS call for a planned action."""
    name, period = action
    if name == ENABLE:
        params = {"RotationPeriodInDays": period} if period else {}
        client.enable_key_rotation(KeyId=key_id, **params)
    elif name == DISABLE:
        client.disable_key_rotation(KeyId=key_id)
    elif name == ROTATE:
        client.rotate_key_on_demand(KeyId=key_id)
