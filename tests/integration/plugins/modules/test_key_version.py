"""envelope.kms.key_version through the real ansible-playbook against the local KMS endpoint.

Several lifecycles are laid out in KMS at once, so one playbook run covers every case; each task
checks one case. Every branch of the decision is unit-tested in
tests/unit/plugins/module_utils/test_key_version.py; here the module reads what moto really returns.
"""

ROT = "envelope-kms-rotation"


def make_key(kms, aliases, **tags):
    tag_list = [{"TagKey": key.replace("_", "-"), "TagValue": value} for key, value in tags.items()]
    key = kms.create_key(Tags=tag_list)["KeyMetadata"] if tag_list else kms.create_key()["KeyMetadata"]
    for alias in aliases:
        kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    return {"key_id": key["KeyId"], "key_arn": key["Arn"], "tags": tags_of(tags), "aliases": sorted(aliases)}


def tags_of(tags):
    return {key.replace("_", "-"): value for key, value in tags.items()}


def lay_out(kms):
    """app: v1 (rotation r1), v2 current (rotation r2); mid: v1 current, v2 left by rotation r5;
    mid2: v2 left without a rotation tag; bare: alias/bare on a key without version alias; fresh: nothing."""
    keys = {
        "app1": make_key(kms, ["alias/app-v1"], envelope_kms_rotation="r1"),
        "app2": make_key(kms, ["alias/app", "alias/app-v2"], envelope_kms_lifecycle="app", envelope_kms_version="2",
                         envelope_kms_rotation="r2"),
        "mid1": make_key(kms, ["alias/mid", "alias/mid-v1"], envelope_kms_lifecycle="mid"),
        "mid2": make_key(kms, ["alias/mid-v2"], envelope_kms_version="2", envelope_kms_rotation="r5"),
        "untagged1": make_key(kms, ["alias/untagged", "alias/untagged-v1"]),
        "untagged2": make_key(kms, ["alias/untagged-v2"]),
        "bare": make_key(kms, ["alias/bare", "alias/bare-old"]),
    }
    return keys


CASES = {
    # label: (module args, expected rotation, version, other)
    "fresh": ({"name": "fresh"}, "none", 1, ""),
    "fresh rotation": ({"name": "fresh", "rotate": True, "rotation_id": "r1"}, "new", 1, ""),
    "current": ({"name": "app"}, "none", 2, ""),
    "resume current": ({"name": "app", "rotate": True, "rotation_id": "r2"}, "resume", 2, ""),
    "superseded": ({"name": "app", "rotate": True, "rotation_id": "r1"}, "superseded", 2, ""),
    "new": ({"name": "app", "rotate": True, "rotation_id": "r3"}, "new", 3, ""),
    "resume next": ({"name": "mid", "rotate": True, "rotation_id": "r5"}, "resume", 2, "r5"),
}
FAILURES = {
    "blocked": (
        {"name": "mid", "rotate": True, "rotation_id": "r6"},
        "alias/mid-v2 already exists and was not made by rotation r6 (it belongs to rotation r5). "
        "Finish that rotation first (run again with lifecycle_rotation_id=r5), or remove that alias.",
    ),
    "blocked untagged": (
        {"name": "untagged", "rotate": True, "rotation_id": "r6"},
        "alias/untagged-v2 already exists and was not made by rotation r6 (it has no envelope-kms-rotation tag). "
        "Finish that rotation first (run again with lifecycle_rotation_id=<its id>), or remove that alias.",
    ),
    "unversioned": ({"name": "bare"}, None),
    "unversioned rotation": ({"name": "bare", "rotate": True, "rotation_id": "r1"}, None),
}


def tasks():
    every = {**{label: case[0] for label, case in CASES.items()}, **{label: case[0] for label, case in FAILURES.items()}}
    return [{"name": label, "envelope.kms.key_version": args, "ignore_errors": True} for label, args in every.items()]


def check_results(run, keys):
    for label, (args, rotation, version, other) in CASES.items():
        result = run.result(label)
        assert result.get("failed") is not True, (label, result.get("msg"))
        assert result["changed"] is False, label
        assert (result["rotation"], result["version"], result["other"]) == (rotation, version, other), label
        assert result["alias"] == f"alias/{args['name']}"
        assert result["version_alias"] == f"alias/{args['name']}-v{version}"

    fresh = run.result("fresh")
    assert (fresh["current"], fresh["current_version"], fresh["tags"]) == (None, 0, {})
    assert fresh["key_tags"] == {"envelope-kms-lifecycle": "fresh", "envelope-kms-version": "1"}
    assert run.result("fresh rotation")["key_tags"] == {
        "envelope-kms-lifecycle": "fresh", "envelope-kms-version": "1", ROT: "r1"}

    current = run.result("current")
    assert current["current"] == keys["app2"]
    assert current["current_version"] == 2
    assert current["tags"] == keys["app2"]["tags"]
    assert current["key_tags"] == {"envelope-kms-lifecycle": "app", "envelope-kms-version": "2", ROT: "r2"}
    assert run.result("superseded")["key_tags"] == current["key_tags"]
    assert run.result("new")["tags"] == {}
    assert run.result("new")["key_tags"] == {"envelope-kms-lifecycle": "app", "envelope-kms-version": "3", ROT: "r3"}

    resumed = run.result("resume next")
    assert resumed["current"] == keys["mid1"]
    assert (resumed["current_version"], resumed["tags"]) == (1, keys["mid2"]["tags"])
    assert resumed["key_tags"] == {"envelope-kms-lifecycle": "mid", "envelope-kms-version": "2", ROT: "r5"}

    bare = keys["bare"]
    unversioned = (
        f"alias/bare points at key {bare['key_arn']}, which has no alias/bare-v<N>. Give it one (for example "
        f"aws kms create-alias --alias-name alias/bare-v1 --target-key-id {bare['key_id']}) so the role knows its version."
    )
    for label, (args, message) in FAILURES.items():
        result = run.result(label)
        assert result["failed"] is True, label
        assert result["msg"] == (message or unversioned), label
        assert "\n" not in result["msg"]
        assert "Traceback" not in result.get("module_stderr", ""), label
    blocked = run.result("blocked")
    assert (blocked["rotation"], blocked["version"], blocked["other"]) == ("blocked", 2, "r5")


def test_every_case_reads_few_kms_requests_and_changes_nothing(playbook, kms, kms_server):
    keys = lay_out(kms)
    kms_server.start_recording()
    run = playbook.run(tasks())
    calls = kms_server.kms_calls()
    check_results(run, keys)
    assert run.changed() == 0
    # One ListAliases per task; ListResourceTags: none for fresh (2) and bare (2), the current key for
    # current and resume current, the current and the next key for the three mid/untagged cases, the
    # current and v1 for superseded and new.
    assert dict(calls) == {"ListAliases": len(CASES) + len(FAILURES), "ListResourceTags": 12}

    # Check mode runs it for real: the same results, nothing changed in KMS.
    checked = playbook.run(tasks(), "--check")
    check_results(checked, keys)
    assert checked.changed() == 0
    assert sorted(a["AliasName"] for a in kms.list_aliases()["Aliases"] if not a["AliasName"].startswith("alias/aws/")) == \
        sorted(alias for key in keys.values() for alias in key["aliases"])


def test_bad_options_fail_clearly(playbook, kms):
    cases = {
        "no rotation id": ({"name": "app", "rotate": True}, "rotation_id"),
        "reserved name": ({"name": "aws/ebs"}, "reserved"),
        "invalid name": ({"name": "bad name"}, "Invalid alias name"),
    }
    run = playbook.run([{"name": label, "envelope.kms.key_version": args, "ignore_errors": True}
                        for label, (args, _message) in cases.items()])
    for label, (_args, message) in cases.items():
        result = run.result(label)
        assert result["failed"] is True, label
        assert message in result["msg"], (label, result["msg"])
        assert "Traceback" not in result.get("module_stderr", ""), label
