"""Unit tests for the lifecycle's key version choice (module_utils/key_version.py).

The decision is a pure function, tested branch by branch with exact results. The reader is tested
with botocore's Stubber, which fails on any request it was not told to expect: that proves which
KMS requests each case costs, and covers what moto cannot do (refuse ListResourceTags with
AccessDeniedException, an alias listed without its ARN).
"""

import botocore.exceptions
import pytest

from ansible_collections.envelope.kms.plugins.module_utils.key_version import (
    KeyVersionError,
    alias_version,
    blocked_message,
    check_name,
    current_version,
    key_version_result,
    plan_key_version,
    read_key_version,
    version_tags,
)
from ansible_collections.envelope.kms.plugins.module_utils.kms import KmsInputError

ACCOUNT = "arn:aws:kms:us-east-1:111122223333"
ROT = "envelope-kms-rotation"


def key(key_id, tags=None, aliases=None):
    found = {"key_id": key_id, "key_arn": f"{ACCOUNT}:key/{key_id}", "tags": tags}
    if aliases is not None:
        found["aliases"] = aliases
    return found


def plan(rotation, version, tags, other, current):
    return {"rotation": rotation, "version": version, "tags": tags, "other": other, "current_version": current}


V2_TAGS = {"envelope-kms-lifecycle": "app", "envelope-kms-version": "2", ROT: "r1"}
V2 = key("k2", V2_TAGS, ["alias/app", "alias/app-v2"])


# --- version numbers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "alias, expected",
    [
        ("alias/app-v1", 1),
        ("alias/app-v12", 12),
        ("alias/app-v007", 7),
        ("alias/app", None),
        ("alias/app-v", None),
        ("alias/app-vx", None),
        ("alias/app-v2-old", None),
        ("alias/apps-v3", None),
        ("alias/other/app-v3", None),
        ("alias/app-v3\n", None),
    ],
)
def test_alias_version(alias, expected):
    assert alias_version("app", alias) == expected


def test_alias_version_escapes_the_name():
    assert alias_version("team/a-b_c", "alias/team/a-b_c-v4") == 4
    assert alias_version("a.b", "alias/axb-v4") is None


@pytest.mark.parametrize(
    "aliases, expected",
    [
        ([], 0),
        (["alias/app"], 0),
        (["alias/app", "alias/app-v2"], 2),
        (["alias/app-v2", "alias/app-v10", "alias/app-v9"], 10),
        (["alias/app-v0"], 0),
        (["alias/apps-v5", "alias/app-v1"], 1),
    ],
)
def test_current_version(aliases, expected):
    assert current_version("app", aliases) == expected


def test_check_name_refuses_reserved_and_invalid_names():
    check_name("team/app_1-x")
    for bad in ("aws/ebs", "bad name", "é"):
        with pytest.raises(KmsInputError):
            check_name(bad)


# --- the decision, one test per branch -------------------------------------------------------------


def test_no_rotation_no_key_yet():
    assert plan_key_version("app", False, None, None) == plan("none", 1, {}, "", 0)


def test_no_rotation_keeps_the_current_version_and_its_tags():
    assert plan_key_version("app", False, "r9", V2) == plan("none", 2, V2_TAGS, "", 2)


def test_no_rotation_ignores_the_next_and_older_versions():
    nxt = key("k3", {ROT: "r9"})
    assert plan_key_version("app", False, "r9", V2, nxt, True) == plan("none", 2, V2_TAGS, "", 2)


def test_unreadable_current_tags_count_as_none():
    current = key("k2", None, ["alias/app", "alias/app-v2"])
    assert plan_key_version("app", False, None, current) == plan("none", 2, {}, "", 2)


def test_rotation_with_no_key_yet_makes_version_1():
    assert plan_key_version("app", True, "r1", None) == plan("new", 1, {}, "", 0)


def test_rotation_that_made_the_current_version_is_resumed():
    # the next version is not read then; were it given, it would not count
    nxt = key("k3", {ROT: "r7"})
    assert plan_key_version("app", True, "r1", V2, nxt) == plan("resume", 2, V2_TAGS, "", 2)


def test_rotation_that_made_the_next_version_is_resumed_with_its_tags():
    next_tags = {"envelope-kms-version": "3", ROT: "r2"}
    assert plan_key_version("app", True, "r2", V2, key("k3", next_tags)) == plan("resume", 3, next_tags, "r2", 2)


def test_next_version_of_another_rotation_blocks():
    assert plan_key_version("app", True, "r4", V2, key("k3", {ROT: "r3"})) == plan("blocked", 3, {}, "r3", 2)


@pytest.mark.parametrize("next_tags", [{}, None, {"team": "x"}])
def test_next_version_without_rotation_tag_blocks(next_tags):
    assert plan_key_version("app", True, "r4", V2, key("k3", next_tags)) == plan("blocked", 3, {}, "", 2)


def test_rotation_found_on_an_older_version_is_superseded():
    assert plan_key_version("app", True, "r0", V2, None, True) == plan("superseded", 2, V2_TAGS, "", 2)


def test_new_rotation_makes_the_next_version():
    assert plan_key_version("app", True, "r2", V2, None, False) == plan("new", 3, {}, "", 2)


def test_new_rotation_of_a_current_version_without_tags():
    current = key("k1", None, ["alias/app", "alias/app-v1"])
    assert plan_key_version("app", True, "r1", current) == plan("new", 2, {}, "", 1)


@pytest.mark.parametrize("rotate", [False, True])
def test_stable_alias_on_a_key_without_version_alias_is_refused(rotate):
    current = key("k1", {}, ["alias/app", "alias/app-old"])
    with pytest.raises(KeyVersionError) as caught:
        plan_key_version("app", rotate, "r1", current)
    assert str(caught.value) == (
        f"alias/app points at key {ACCOUNT}:key/k1, which has no alias/app-v<N>. Give it one (for example "
        "aws kms create-alias --alias-name alias/app-v1 --target-key-id k1) so the role knows its version."
    )


def test_plan_tags_are_a_copy():
    tags = {ROT: "r1"}
    result = plan_key_version("app", False, None, key("k1", tags, ["alias/app-v1", "alias/app"]))
    result["tags"]["x"] = "y"
    assert tags == {ROT: "r1"}


# --- messages, tags, result --------------------------------------------------------------------------


def test_blocked_message_names_the_other_rotation():
    assert blocked_message("app", "r4", plan("blocked", 3, {}, "r3", 2)) == (
        "alias/app-v3 already exists and was not made by rotation r4 (it belongs to rotation r3). "
        "Finish that rotation first (run again with lifecycle_rotation_id=r3), or remove that alias."
    )


def test_blocked_message_without_rotation_tag():
    assert blocked_message("app", "r4", plan("blocked", 3, {}, "", 2)) == (
        "alias/app-v3 already exists and was not made by rotation r4 (it has no envelope-kms-rotation tag). "
        "Finish that rotation first (run again with lifecycle_rotation_id=<its id>), or remove that alias."
    )


@pytest.mark.parametrize(
    "given, expected_rotation",
    [
        (plan("none", 1, {}, "", 0), None),
        (plan("none", 2, {ROT: "r1", "team": "x"}, "", 2), "r1"),
        (plan("resume", 3, {ROT: "r2"}, "r2", 2), "r2"),
        (plan("superseded", 2, {ROT: "r1"}, "", 2), "r1"),
        (plan("new", 3, {}, "", 2), "r9"),
        (plan("new", 1, {ROT: "stale"}, "", 0), "r9"),
    ],
)
def test_version_tags(given, expected_rotation):
    expected = {"envelope-kms-lifecycle": "app", "envelope-kms-version": str(given["version"])}
    if expected_rotation:
        expected[ROT] = expected_rotation
    assert version_tags("app", "r9", given) == expected


def test_key_version_result():
    inputs = {"current": V2, "next_version": None, "older_with_rotation": False}
    given = plan("new", 3, {}, "", 2)
    assert key_version_result("app", "r2", inputs, given) == {
        "rotation": "new",
        "version": 3,
        "tags": {},
        "other": "",
        "current_version": 2,
        "alias": "alias/app",
        "version_alias": "alias/app-v3",
        "key_tags": {"envelope-kms-lifecycle": "app", "envelope-kms-version": "3", ROT: "r2"},
        "current": V2,
    }


# --- the reader, with a Stubber ----------------------------------------------------------------------


def alias(name, key_id=None):
    entry = {"AliasName": name, "AliasArn": f"{ACCOUNT}:{name}"}
    if key_id:
        entry["TargetKeyId"] = key_id
    return entry


def expect_aliases(stub, *aliases):
    stub.add_response("list_aliases", {"Aliases": list(aliases), "Truncated": False}, {})


def expect_tags(stub, key_id, **tags):
    listed = [{"TagKey": k.replace("_", "-"), "TagValue": v} for k, v in tags.items()]
    stub.add_response("list_resource_tags", {"Tags": listed, "Truncated": False}, {"KeyId": key_id})


AWS_MANAGED = [alias("alias/aws/ebs", "aws1"), alias("alias/aws/s3")]
VERSIONS = [alias("alias/app-v1", "k1"), alias("alias/app-v2", "k2"), alias("alias/app", "k2")]


def read(stub, rotate=False, rotation_id=None):
    warnings = []
    inputs = read_key_version(stub.client, "app", rotate, rotation_id, warnings.append)
    return inputs, warnings


def test_reader_no_key_yet_costs_one_list_aliases(stub):
    expect_aliases(stub, *AWS_MANAGED, alias("alias/app-v1", "k1"), alias("alias/apps", "k9"))
    assert read(stub, True, "r1") == ({"current": None, "next_version": None, "older_with_rotation": False}, [])


def test_reader_current_key_without_rotation(stub):
    expect_aliases(stub, *AWS_MANAGED, *VERSIONS, alias("alias/app-v3", "k3"))
    expect_tags(stub, "k2", envelope_kms_rotation="r1", team="x")
    inputs, warnings = read(stub)
    assert warnings == []
    assert inputs == {
        "current": key("k2", {ROT: "r1", "team": "x"}, ["alias/app", "alias/app-v2"]),
        "next_version": None,
        "older_with_rotation": False,
    }


def test_reader_resume_reads_only_the_current_tags(stub):
    expect_aliases(stub, *VERSIONS, alias("alias/app-v3", "k3"))
    expect_tags(stub, "k2", envelope_kms_rotation="r2")
    inputs, _warnings = read(stub, True, "r2")
    assert inputs["next_version"] is None and inputs["older_with_rotation"] is False
    assert plan_key_version("app", True, "r2", **inputs)["rotation"] == "resume"


def test_reader_next_version_is_read_and_older_ones_are_not(stub):
    expect_aliases(stub, *VERSIONS, alias("alias/app-v3", "k3"))
    expect_tags(stub, "k2", envelope_kms_rotation="r1")
    expect_tags(stub, "k3", envelope_kms_rotation="r3")
    inputs, _warnings = read(stub, True, "r4")
    assert inputs["next_version"] == key("k3", {ROT: "r3"})
    assert inputs["older_with_rotation"] is False
    assert plan_key_version("app", True, "r4", **inputs) == plan("blocked", 3, {}, "r3", 2)


def test_reader_older_versions_newest_first_until_one_carries_the_id(stub):
    aliases = [alias(f"alias/app-v{n}", f"k{n}") for n in range(1, 5)] + [alias("alias/app", "k4")]
    expect_aliases(stub, *aliases)
    expect_tags(stub, "k4", envelope_kms_rotation="r4")
    expect_tags(stub, "k3", envelope_kms_rotation="r3")
    expect_tags(stub, "k2", envelope_kms_rotation="r2")
    # k1 is never read: k2 carries the id
    inputs, _warnings = read(stub, True, "r2")
    assert inputs["older_with_rotation"] is True
    assert plan_key_version("app", True, "r2", **inputs) == plan("superseded", 4, {ROT: "r4"}, "", 4)


def test_reader_older_versions_skip_missing_repeated_and_current_keys(stub):
    # v1 missing, v2 and v3 on one key, v4 on the current key (which also carries v5)
    aliases = [alias("alias/app-v2", "k2"), alias("alias/app-v3", "k2"), alias("alias/app-v4", "k5"),
               alias("alias/app-v5", "k5"), alias("alias/app", "k5")]
    expect_aliases(stub, *aliases)
    expect_tags(stub, "k5")
    expect_tags(stub, "k2", envelope_kms_rotation="r2")
    inputs, _warnings = read(stub, True, "r9")
    assert inputs["current"]["aliases"] == ["alias/app", "alias/app-v4", "alias/app-v5"]
    assert inputs["older_with_rotation"] is False
    assert plan_key_version("app", True, "r9", **inputs) == plan("new", 6, {}, "", 5)


def test_reader_unversioned_stable_alias_reads_no_tags(stub):
    expect_aliases(stub, alias("alias/app", "k1"), alias("alias/app-old", "k1"))
    inputs, _warnings = read(stub, True, "r1")
    assert inputs["current"] == key("k1", None, ["alias/app", "alias/app-old"])
    with pytest.raises(KeyVersionError, match="which has no alias/app-v<N>"):
        plan_key_version("app", True, "r1", **inputs)


def test_reader_refused_tags_warn_and_count_as_unreadable(stub):
    expect_aliases(stub, *VERSIONS)
    stub.add_client_error("list_resource_tags", "AccessDeniedException", "denied", expected_params={"KeyId": "k2"})
    stub.add_client_error("list_resource_tags", "AccessDeniedException", "denied", expected_params={"KeyId": "k1"})
    inputs, warnings = read(stub, True, "r1")
    assert inputs["current"]["tags"] is None
    assert inputs["older_with_rotation"] is False, "a key whose tags are unreadable never matches"
    assert warnings == ["Could not read the tags of key k2: denied", "Could not read the tags of key k1: denied"]


def test_reader_other_errors_propagate(stub):
    expect_aliases(stub, *VERSIONS)
    stub.add_client_error("list_resource_tags", "NotFoundException", "gone", expected_params={"KeyId": "k2"})
    with pytest.raises(botocore.exceptions.ClientError):
        read(stub)


def test_reader_key_arn_from_describe_key_when_the_alias_arn_is_missing(stub):
    expect_aliases(stub, {"AliasName": "alias/app", "TargetKeyId": "k1"}, alias("alias/app-v1", "k1"))
    stub.add_response(
        "describe_key",
        {"KeyMetadata": {"KeyId": "k1", "Arn": f"{ACCOUNT}:key/k1"}},
        {"KeyId": "k1"},
    )
    expect_tags(stub, "k1")
    inputs, _warnings = read(stub)
    assert inputs["current"] == key("k1", {}, ["alias/app", "alias/app-v1"])


def test_reader_follows_list_aliases_pages(stub):
    stub.add_response("list_aliases", {"Aliases": AWS_MANAGED, "Truncated": True, "NextMarker": "m"}, {})
    stub.add_response("list_aliases", {"Aliases": VERSIONS, "Truncated": False}, {"Marker": "m"})
    expect_tags(stub, "k2")
    inputs, _warnings = read(stub)
    assert inputs["current"]["key_id"] == "k2"
