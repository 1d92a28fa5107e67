# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Aliases: what to do (a pure plan) and doing it (one KMS call)."""

from __future__ import annotations

CREATE = "create"
UPDATE = "update"
DELETE = "delete"


def plan_alias(state, current_target, desired_target):
    """The one action that brings an alias from current_target to the desired state, or None.

    current_target / desired_target are key ids (None: the alias does not exist / no target).
    Re-pointing an existing alias is UpdateAlias: the tutorial's manual rotation.
    """
    if state == "absent":
        return DELETE if current_target else None
    if current_target is None:
        return CREATE
    if current_target != desired_target:
        return UPDATE
    return None


def apply_alias(client, action, name, target_key_id):
    if action == CREATE:
        client.create_alias(AliasName=name, TargetKeyId=target_key_id)
    elif action == UPDATE:
        client.update_alias(AliasName=name, TargetKeyId=target_key_id)
    elif action == DELETE:
        client.delete_alias(AliasName=name)


def alias_arn(key_arn, name):
    """arn:aws:kms:<region>:<account>:alias/<name>, from any key ARN in the same account and region."""
    return key_arn.split(":key/", 1)[0] + ":" + name if key_arn else None
