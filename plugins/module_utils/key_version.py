# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Which key version the lifecycle role uses (envelope.kms.key_version). For internal collection use only.

Key version N of lifecycle <name> is the key behind alias/<name>-v<N>; alias/<name> points at the
current one; a manual rotation tags the version it makes with envelope-kms-rotation=<id>. KMS holds
all the state. `plan_key_version` decides from plain data; `read_key_version` gathers that data with
one ListAliases for the account, then ListResourceTags only for the keys the decision looks at.
"""

from __future__ import annotations

import re

from ansible_collections.envelope.kms.plugins.module_utils.errors import EnvelopeError
from ansible_collections.envelope.kms.plugins.module_utils.key_info import read_detail, tags_match
from ansible_collections.envelope.kms.plugins.module_utils.kms import (
    ALIAS_PREFIX,
    KmsInputError,
    describe_key,
    key_tags,
    list_aliases,
    normalize_alias,
)

ROTATION_TAG = "envelope-kms-rotation"
LIFECYCLE_TAG = "envelope-kms-lifecycle"
VERSION_TAG = "envelope-kms-version"

# plan["rotation"]: none: no rotation asked; new: a new version; resume: this rotation made the current
# or the next version; superseded: it made an older one; blocked: another rotation made the next one.
NONE = "none"
NEW = "new"
RESUME = "resume"
SUPERSEDED = "superseded"
BLOCKED = "blocked"


class KeyVersionError(EnvelopeError):
    """A key version state the role must not act on; the message is one line and says what to do."""

    def __init__(self, message):
        super().__init__(message, "policy")


def stable_alias(name):
    return f"{ALIAS_PREFIX}{name}"


def version_alias(name, version):
    return f"{ALIAS_PREFIX}{name}-v{version}"


def check_name(name):
    """Refuses a lifecycle name whose aliases KMS would reject or reserves for AWS (KmsInputError)."""
    if name is None or not name.strip():
        raise KmsInputError("name must not be empty")
    normalize_alias(stable_alias(name))


def check_rotation_id(rotate, rotation_id):
    """A rotation needs its id: null or blank (required_if only sees that it was given) is refused,
    before it could tag a key version with an empty rotation id."""
    if rotate and (rotation_id is None or not rotation_id.strip()):
        raise KmsInputError("rotation_id is required with rotate=true (it is null or empty)")


def alias_version(name, alias_name):
    """N for alias/<name>-v<N>, None for any other alias name."""
    match = re.fullmatch(rf"alias/{re.escape(name)}-v([0-9]+)", alias_name)
    return int(match.group(1)) if match else None


def current_version(name, aliases):
    """The highest N among the alias names alias/<name>-v<N>; 0 when there is none."""
    return max((version for version in (alias_version(name, alias) for alias in aliases) if version), default=0)


def looks_past_current(rotate, rotation_id, current_tags):
    """Whether the decision needs the next (or older) versions: a rotation the current version is not part of."""
    return bool(rotate) and current_tags.get(ROTATION_TAG, "") != rotation_id


def unversioned_message(name, current):
    return (
        f"{stable_alias(name)} points at key {current['key_arn'] or ''}, which has no {ALIAS_PREFIX}{name}-v<N>. "
        f"Give it one (for example aws kms create-alias --alias-name {version_alias(name, 1)} --target-key-id "
        f"{current['key_id']}) so the role knows its version."
    )


def blocked_message(name, rotation_id, plan):
    other = plan["other"]
    owner = f"it belongs to rotation {other}" if other else f"it has no {ROTATION_TAG} tag"
    return (
        f"{version_alias(name, plan['version'])} already exists and was not made by rotation {rotation_id} ({owner}). "
        f"Finish that rotation first (run again with lifecycle_rotation_id={other or '<its id>'}), or remove that alias."
    )


def plan_key_version(name, rotate, rotation_id, current, next_version=None, older_with_rotation=False):
    """The key version to use: {'rotation', 'version', 'tags', 'other', 'current_version'}.

    current: None (no alias/<name>) or {'key_id', 'key_arn', 'aliases' (names), 'tags' (None: unreadable)}.
    next_version: None or {'key_id', 'key_arn', 'tags'} of alias/<name>-v<N+1>, N the current version.
    older_with_rotation: whether a version below N carries envelope-kms-rotation=<rotation_id>.
    The next and older versions only count when `looks_past_current`. `tags` are those of the version
    kept (current, or next when resumed), empty for a new or blocked one; `other` is the next version's
    rotation id. Raises KeyVersionError when alias/<name> is on a key without a version alias.
    """
    version = current_version(name, current["aliases"]) if current else 0
    if current and not version:
        raise KeyVersionError(unversioned_message(name, current))
    current_tags = (current or {}).get("tags") or {}
    if not rotate:
        return _plan(NONE, max(version, 1), current_tags, "", version)
    if current is None:
        return _plan(NEW, 1, {}, "", version)
    return _rotation_plan(rotation_id, version, current_tags, next_version, older_with_rotation)


def _rotation_plan(rotation_id, version, current_tags, next_version, older_with_rotation):
    """A rotation with a current version: resumed when its key carries the id, else the next and older versions decide."""
    if not looks_past_current(True, rotation_id, current_tags):
        return _plan(RESUME, version, current_tags, "", version)
    if next_version is not None:
        next_tags = next_version.get("tags") or {}
        other = next_tags.get(ROTATION_TAG, "")
        if other == rotation_id:
            return _plan(RESUME, version + 1, next_tags, other, version)
        return _plan(BLOCKED, version + 1, {}, other, version)
    if older_with_rotation:
        return _plan(SUPERSEDED, version, current_tags, "", version)
    return _plan(NEW, version + 1, {}, "", version)


def _plan(rotation, version, tags, other, current_number):
    return {"rotation": rotation, "version": version, "tags": dict(tags), "other": other, "current_version": current_number}


def version_tags(name, rotation_id, plan):
    """The role's own tags for the key version: its lifecycle, its number and the rotation it belongs to."""
    tags = {LIFECYCLE_TAG: name, VERSION_TAG: str(plan["version"])}
    if ROTATION_TAG in plan["tags"]:
        tags[ROTATION_TAG] = plan["tags"][ROTATION_TAG]
    if plan["rotation"] == NEW:
        tags[ROTATION_TAG] = rotation_id
    return tags


def key_version_result(name, rotation_id, inputs, plan):
    """What envelope.kms.key_version returns: the plan, the aliases, the role's tags and the current key."""
    return dict(
        plan,
        alias=stable_alias(name),
        version_alias=version_alias(name, plan["version"]),
        key_tags=version_tags(name, rotation_id, plan),
        current=inputs["current"],
    )


def alias_targets(aliases):
    """{alias name: ListAliases entry} of the aliases that point at a key."""
    return {alias["AliasName"]: alias for alias in aliases if alias.get("TargetKeyId")}


def _key(client, entry, warn, aliases=None):
    """{'key_id', 'key_arn', 'tags'} of the key an alias points at (one ListResourceTags)."""
    key_id = entry["TargetKeyId"]
    key = {"key_id": key_id, "key_arn": _key_arn(client, entry), "tags": _tags(client, key_id, warn)}
    if aliases is not None:
        key["aliases"] = aliases
    return key


def _key_arn(client, entry):
    # An alias lives in its key's account and region, so its ARN gives the key's without a DescribeKey.
    if entry.get("AliasArn"):
        return entry["AliasArn"].split(":alias/", 1)[0] + ":key/" + entry["TargetKeyId"]
    return (describe_key(client, entry["TargetKeyId"]) or {}).get("Arn")


def _tags(client, key_id, warn):
    """The key's tags; None (and a warning) when KMS refuses them, as envelope.kms.key_info does."""
    return read_detail(lambda: key_tags(client, key_id), warn, "tags", key_id)


def read_key_version(client, name, rotate, rotation_id, warn):
    """The inputs of plan_key_version, from KMS: {'current', 'next_version', 'older_with_rotation'}.

    One ListAliases (all pages) finds every alias/<name>[-v<N>]; the tags of the current key are read
    when it has a version alias, those of the next version or of older ones (newest first, until one
    carries the id) only when `looks_past_current`.
    """
    targets = alias_targets(list_aliases(client))
    inputs = {"current": None, "next_version": None, "older_with_rotation": False}
    stable = targets.get(stable_alias(name))
    if stable is None:
        return inputs
    key_id = stable["TargetKeyId"]
    aliases = sorted(alias for alias, entry in targets.items() if entry["TargetKeyId"] == key_id)
    version = current_version(name, aliases)
    if not version:
        # plan_key_version refuses it: no tags needed
        inputs["current"] = {"key_id": key_id, "key_arn": _key_arn(client, stable), "tags": None, "aliases": aliases}
        return inputs
    inputs["current"] = current = _key(client, stable, warn, aliases)
    if not looks_past_current(rotate, rotation_id, current["tags"] or {}):
        return inputs
    next_entry = targets.get(version_alias(name, version + 1))
    if next_entry is not None:
        inputs["next_version"] = _key(client, next_entry, warn)
    else:
        inputs["older_with_rotation"] = _older_with_rotation(client, targets, name, version, rotation_id, warn)
    return inputs


def _older_with_rotation(client, targets, name, version, rotation_id, warn):
    seen = {targets[stable_alias(name)]["TargetKeyId"]}  # the current key: known not to carry the id
    for older in range(version - 1, 0, -1):
        entry = targets.get(version_alias(name, older))
        if entry is None or entry["TargetKeyId"] in seen:
            continue
        seen.add(entry["TargetKeyId"])
        if tags_match(_tags(client, entry["TargetKeyId"], warn), {ROTATION_TAG: rotation_id}):
            return True
    return False
