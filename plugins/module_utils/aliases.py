# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Aliases: what to do (a pure plan) and doing it (one KMS call)."""

from __future__ import annotations

from ansible_collections.envelope.kms.plugins.module_utils.kms import KmsInputError

CREATE = "create"
UPDATE = "update"
DELETE = "delete"


def plan_alias(state, current_target, desired_target):
    """The one action that brings an alias from current_target to the desired state, or None.

    current_target / desired_target are key ids (None: the alias does not exist / no target).
    With state present a None desired_target is a key check mode does not know yet (an earlier task
    would create it): it cannot be the current target, so the alias would be created or re-pointed.
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
    if action in (CREATE, UPDATE) and not target_key_id:
        raise KmsInputError(f"Cannot {action} alias {name}: its target key is not known")  # never KeyId=None
    if action == CREATE:
        client.create_alias(AliasName=name, TargetKeyId=target_key_id)
    elif action == UPDATE:
        client.update_alias(AliasName=name, TargetKeyId=target_key_id)
    elif action == DELETE:
        client.delete_alias(AliasName=name)


def alias_arn(key_arn, name):
    """arn:aws:kms:<region>:<account>:alias/<name>, from any key ARN in the same account and region."""
    return key_arn.split(":key/", 1)[0] + ":" + name if key_arn else None
