# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Read side of envelope.kms.key_info: which keys to describe, filters, and the gathered result.

The choices (which keys, which aliases, tag matching) are pure functions; `gather` is the only
function that calls KMS, always through the shared retrying client of kms.py.
"""

from __future__ import annotations

import re

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code

from ansible_collections.envelope.kms.plugins.module_utils.grants import current_grants
from ansible_collections.envelope.kms.plugins.module_utils.kms import (
    RESERVED_ALIAS_PREFIX,
    KmsInputError,
    alias_name,
    describe_key,
    key_policy,
    key_summary,
    iso,
    key_tags,
    paginate,
    list_aliases,
    list_rotations,
    rotation_status,
    supports_rotation,
)

_ALIAS_ARN = re.compile(r"^arn:[^:]+:kms:[^:]*:[^:]*:alias/[a-zA-Z0-9/_-]{1,250}$")

PENDING_DELETION_STATES = ("PendingDeletion", "PendingReplicaDeletion")

# Errors that make one detail of one key unreadable without making the whole task fail.
UNREADABLE_DETAIL = ["AccessDeniedException", "KMSInvalidStateException", "UnsupportedOperationException"]


def alias_reference(name):
    """'app', 'alias/app' or an alias ARN -> what DescribeKey accepts; alias/aws/... is fine to read."""
    if name and name.startswith("arn:"):
        if not _ALIAS_ARN.match(name):
            raise KmsInputError(f"Invalid alias ARN {name!r}: expected arn:<partition>:kms:<region>:<account>:alias/<name>")
        return name
    return alias_name(name)  # reading is allowed for every valid name, alias/aws/... included


def tags_match(actual, wanted):
    """True when the key carries every wanted tag with the same value (values compared as strings).

    `actual` is None when the key's tags could not be read: such a key matches only an empty filter.
    """
    if not wanted:
        return True
    if actual is None:
        return False
    return all(key in actual and actual[key] == str(value) for key, value in wanted.items())


def aliases_by_key(aliases):
    """{key id: sorted alias names} from ListAliases entries (aliases with no target are skipped)."""
    mapping = {}
    for alias in aliases:
        target = alias.get("TargetKeyId")
        if target:
            mapping.setdefault(target, []).append(alias["AliasName"])
    return {key: sorted(names) for key, names in mapping.items()}


def aws_managed_key_ids(aliases):
    """Keys an alias/aws/... alias points at: only AWS managed keys can carry those names."""
    return {
        alias["TargetKeyId"]
        for alias in aliases
        if alias["AliasName"].startswith(RESERVED_ALIAS_PREFIX) and alias.get("TargetKeyId")
    }


def keys_to_describe(key_ids, aliases, include_aws_managed):
    """The listed key ids worth a DescribeKey: AWS managed ones are skipped unless asked for."""
    skip = set() if include_aws_managed else aws_managed_key_ids(aliases)
    return [key_id for key_id in key_ids if key_id not in skip]


def keep_key(metadata, include_aws_managed, include_pending_deletion):
    """Whether a described key stays in the result (the filters that KeyMetadata alone decides)."""
    if not include_aws_managed and metadata.get("KeyManager") == "AWS":
        return False
    if not include_pending_deletion and metadata.get("KeyState") in PENDING_DELETION_STATES:
        return False
    return True


def alias_summary(alias):
    """One ListAliases entry the way `aws kms list-aliases` shows it, snake_cased, dates in ISO 8601."""
    return {
        "alias_name": alias["AliasName"],
        "alias_arn": alias.get("AliasArn"),
        "target_key_id": alias.get("TargetKeyId"),
        "creation_date": iso(alias.get("CreationDate")),
        "last_updated_date": iso(alias.get("LastUpdatedDate")),
    }


def select_aliases(aliases, key_ids=None):
    """Alias summaries sorted by name: all of them, or only those pointing at `key_ids`."""
    chosen = [alias for alias in aliases if key_ids is None or alias.get("TargetKeyId") in key_ids]
    return [alias_summary(alias) for alias in sorted(chosen, key=lambda alias: alias["AliasName"])]


def list_keys(client):
    """{'KeyId', 'KeyArn'} of every key of the account and region (ListKeys, all pages)."""
    return paginate(client, "list_keys", "Keys")


class KeyVanished(Exception):
    """The key was deleted between being listed and being read."""


def read_detail(read, warn, what, key_id):
    """Run one per-key read; None (and a warning) when KMS refuses that detail for this key."""
    try:
        return read()
    except is_boto3_error_code(UNREADABLE_DETAIL) as exc:
        warn(f"Could not read the {what} of key {key_id}: {exc.response['Error'].get('Message', exc)}")
        return None


def _detail(read, warn, what, key_id):
    """read_detail, for a key that was listed: its disappearance since is KeyVanished."""
    try:
        return read_detail(read, warn, what, key_id)
    except is_boto3_error_code("NotFoundException"):
        raise KeyVanished(key_id) from None


def key_details(client, metadata, aliases, options, warn):
    """The returned dict for one key, or None when the tag filter rejects it.

    Tags are read first so keys the filter rejects cost no policy or rotation call.
    """
    key_id = metadata["KeyId"]
    tags = _detail(lambda: key_tags(client, key_id), warn, "tags", key_id)
    if not tags_match(tags, options.get("tags")):
        return None
    details = key_summary(metadata, aliases)
    details["key_arn"] = metadata["Arn"]
    details["tags"] = tags
    if options.get("include_policy", True):
        details["policy"] = _detail(lambda: key_policy(client, key_id), warn, "policy", key_id)
    details["rotation"] = None
    if supports_rotation(metadata):
        rotation = _detail(lambda: rotation_status(client, key_id), warn, "rotation status", key_id)
        if rotation is not None and options.get("include_rotations"):
            rotation["rotations"] = _detail(lambda: list_rotations(client, key_id), warn, "rotations", key_id)
        details["rotation"] = rotation
    if options.get("include_grants", False):
        details["grants"] = _detail(lambda: current_grants(client, metadata["Arn"]), warn, "grants", key_id)
    return details


def gather(client, options, warn):
    """{'keys': [...], 'aliases': [...]} for the module's options.

    options: key_ref (a key id/ARN or an alias name/ARN, already validated) or None, tags,
    include_aws_managed, include_pending_deletion, include_policy, include_rotations, include_grants.
    A named key: one DescribeKey and one ListAliases for that key, never ListKeys. Otherwise:
    one ListKeys and one ListAliases for the account, then per key DescribeKey and ListResourceTags,
    and the policy and rotation reads only for keys that pass the filters.
    """
    key_ref = options.get("key_ref")
    include_aws_managed = options.get("include_aws_managed", False)
    include_pending_deletion = options.get("include_pending_deletion", True)
    if key_ref:
        metadata = describe_key(client, key_ref)
        if metadata is None:
            return {"keys": [], "aliases": []}
        # A key named explicitly is returned whoever manages it.
        if not keep_key(metadata, True, include_pending_deletion):
            return {"keys": [], "aliases": []}
        try:
            aliases = list_aliases(client, metadata["KeyId"])
        except is_boto3_error_code(UNREADABLE_DETAIL + ["NotFoundException"]) as exc:
            # e.g. a key of another account: its aliases are not listable from here
            warn(f"Could not list the aliases of key {metadata['KeyId']}: {exc.response['Error'].get('Message', exc)}")
            aliases = []
        candidates = [metadata]
    else:
        aliases = list_aliases(client)
        listed = [key["KeyId"] for key in list_keys(client)]
        candidates = []
        for key_id in keys_to_describe(listed, aliases, include_aws_managed):
            metadata = describe_key(client, key_id)
            if metadata is not None and keep_key(metadata, include_aws_managed, include_pending_deletion):
                candidates.append(metadata)

    names = aliases_by_key(aliases)
    keys = []
    for metadata in sorted(candidates, key=_creation_order):
        try:
            details = key_details(client, metadata, names.get(metadata["KeyId"], []), options, warn)
        except KeyVanished:
            continue
        if details is not None:
            keys.append(details)

    filtered = bool(key_ref or options.get("tags"))
    shown = {key["key_id"] for key in keys} if filtered else None
    return {"keys": keys, "aliases": select_aliases(aliases, shown)}


def _creation_order(metadata):
    created = metadata.get("CreationDate")
    return (created.timestamp() if hasattr(created, "timestamp") else 0, metadata["KeyId"])
