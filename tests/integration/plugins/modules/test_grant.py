"""envelope.kms.grant through the real ansible-playbook against the local KMS endpoint.

``test_amazon_aws_kms_key_grant_scenarios`` is amazon.aws's own kms_key integration target
(tests/integration/targets/kms_key/roles/kms_key/tasks/test_grants.yml: add a grant in check mode,
add it, idempotence in check mode and for real, a second grant without purge, again, purge down to
a third grant, change its constraint from equals to subset) rewritten for envelope.kms.grant, with
the waits for IAM and grant propagation left out (moto is consistent at once) and every step's
effect read back from KMS, not only from the result.
"""

ROLE = "arn:aws:iam::123456789012:role/ansible-test-kms"
CALLER = "arn:aws:iam::123456789012:user/ansible-test"


def grant(name, context, kind="encryption_context_equals"):
    return {
        "name": name,
        "grantee_principal": ROLE,
        "retiring_principal": CALLER,
        "constraints": {kind: context},
        "operations": ["Decrypt", "RetireGrant"],
    }


def task(name, grants, **extra):
    module_args = {"key_id": "alias/app", "grants": grants}
    module_args.update({key: value for key, value in extra.items() if key not in ("check_mode", "diff")})
    entry = {"name": name, "envelope.kms.grant": module_args}
    entry.update({key: value for key, value in extra.items() if key in ("check_mode", "diff")})
    return entry


def key_grants(kms, key):
    return sorted(kms.list_grants(KeyId=key.key_id)["Grants"], key=lambda entry: entry["Name"])


def test_amazon_aws_kms_key_grant_scenarios(playbook, kms, app_key):
    first = grant("test_grant", {"environment": "test", "application": "testapp"})
    second = grant("another_grant", {"Environment": "second", "Application": "anotherapp"})
    third = grant("third_grant", {"environment": "third", "application": "onemoreapp"})
    third_subset = grant("third_grant", {"environment": "third", "application": "onemoreapp"},
                         kind="encryption_context_subset")
    run = playbook.run([
        task("Add grant - check mode", [first], purge=True, check_mode=True),
        task("Add grant", [first], purge=True),
        task("Add grant (idempotence) - check mode", [first], purge=True, check_mode=True),
        task("Add grant (idempotence)", [first], purge=True),
        task("Add a second grant", [second], diff=True),
        task("Add a second grant again", [second]),
        task("Update the grants with purge_grants set", [third], purge=True),
        task("Update third grant to change encryption context equals to subset", [third_subset]),
        {"name": "Read", "envelope.kms.key_info": {"alias": "app", "include_policy": False}},
        task("Drop the constraint", [dict(third, constraints=None)]),
    ]).assert_ok()

    check = run.result("Add grant - check mode")
    assert check["changed"] is True
    assert [(c["name"], c["grant_id"], c["reason"]) for c in check["created"]] == [("test_grant", None, "missing")]
    added = run.result("Add grant")  # changed again: check mode created nothing
    assert added["changed"] is True and added["key_arn"] == app_key.arn
    assert len(added["grants"]) == 1 and added["created"][0]["grant_token"]
    assert added["grants"][0]["constraints"] == {"encryption_context_equals": first["constraints"]["encryption_context_equals"]}
    assert added["grants"][0]["grant_id"] == added["created"][0]["grant_id"]
    for name in ("Add grant (idempotence) - check mode", "Add grant (idempotence)", "Add a second grant again"):
        assert run.result(name)["changed"] is False, name
        assert run.result(name)["created"] == [] and run.result(name)["removed"] == [], name
    assert len(run.result("Add grant (idempotence)")["grants"]) == 1

    more = run.result("Add a second grant")
    assert more["changed"] is True and len(more["grants"]) == 2
    assert set(more["diff"]["before"]["grants"]) == {"test_grant"}
    assert set(more["diff"]["after"]["grants"]) == {"test_grant", "another_grant"}

    purged = run.result("Update the grants with purge_grants set")
    assert purged["changed"] is True
    assert [g["name"] for g in purged["grants"]] == ["third_grant"]
    assert sorted((r["name"], r["reason"]) for r in purged["removed"]) == [
        ("another_grant", "purged, not listed"), ("test_grant", "purged, not listed")]

    replaced = run.result("Update third grant to change encryption context equals to subset")
    assert replaced["changed"] is True
    assert [c["reason"] for c in replaced["created"]] == ["replaces a grant whose constraints differ"]
    assert [r["reason"] for r in replaced["removed"]] == ["replaced"]
    (after,) = replaced["grants"]
    assert "encryption_context_equals" not in after["constraints"]
    assert after["constraints"]["encryption_context_subset"] == {"environment": "third", "application": "onemoreapp"}

    # key_info (run before the last step) lists the grant as the grant module returned it
    assert replaced["created"][0]["grant_id"] == after["grant_id"]
    (listed,) = run.result("Read")["keys"][0]["grants"]
    assert {k: listed[k] for k in ("name", "grant_id", "operations", "constraints", "retiring_principal")} == {
        k: after[k] for k in ("name", "grant_id", "operations", "constraints", "retiring_principal")}

    # A grant without constraints (amazon.aws's scenarios always have one): replaced again, and KMS
    # holds it unconstrained.
    dropped = run.result("Drop the constraint")
    assert dropped["changed"] is True and dropped["grants"][0]["constraints"] is None
    assert [c["reason"] for c in dropped["created"]] == ["replaces a grant whose constraints differ"]
    (held,) = key_grants(kms, app_key)
    assert held["GrantId"] == dropped["created"][0]["grant_id"] and not held.get("Constraints")
    assert sorted(held["Operations"]) == ["Decrypt", "RetireGrant"] and held["RetiringPrincipal"] == CALLER


def test_absent_retire_and_revoke_then_unchanged(playbook, kms, app_key):
    for name in ("keep", "drop", "retire-me"):
        kms.create_grant(KeyId=app_key.key_id, Name=name, GranteePrincipal=ROLE, Operations=["Decrypt"])
    first, _second = playbook.run_idempotent([
        task("Revoke", [{"name": "drop", "state": "absent"}]),
        task("Retire", [{"name": "retire-me", "state": "absent"}], removal="retire"),
    ])
    assert [r["name"] for r in first.result("Revoke")["removed"]] == ["drop"]
    assert [r["name"] for r in first.result("Retire")["removed"]] == ["retire-me"]
    assert [g["Name"] for g in key_grants(kms, app_key)] == ["keep"]


def test_bad_options_fail_in_one_line_before_any_grant_call(playbook, kms_server, app_key):
    good = grant("ok", {"app": "billing"})
    cases = {
        "Unknown operation": [dict(good, operations=["Decrypt", "Decript"])],
        "Two constraint types": [dict(good, constraints={"encryption_context_equals": {"a": "1"},
                                                         "encryption_context_subset": {"a": "1"}})],
        "Bad name": [dict(good, name="has space")],
        "Twice": [good, dict(good, operations=["Decrypt"])],
        "Misspelled option": [dict(good, operation=["Decrypt"])],
    }
    kms_server.start_recording()
    tasks = [dict(task(name, entries), ignore_errors=True) for name, entries in cases.items()]
    tasks.append({"name": "No such key", "envelope.kms.grant": {"key_id": "alias/nope", "grants": [good]},
                  "ignore_errors": True})
    run = playbook.run(tasks)
    run.assert_failed_with({
        "Unknown operation": "unknown operations Decript",
        "Two constraint types": "not both",
        "Bad name": "Invalid grant name 'has space'",
        "Twice": "Grant ok is listed twice",
        "Misspelled option": "Unsupported parameters",
        "No such key": "Key alias/nope does not exist",
    })
    calls = kms_server.kms_calls()
    assert calls["CreateGrant"] == 0 and calls["RevokeGrant"] == 0
    assert calls["DescribeKey"] == 1  # only the task whose options were all valid read anything


def test_check_mode_with_a_key_not_created_yet(playbook, kms_server):
    run = playbook.run([
        {"name": "Key", "envelope.kms.key": {"alias": "fresh"}, "register": "fresh"},
        {"name": "Grant", "envelope.kms.grant": {"key_id": "{{ fresh.key_id }}",
                                                 "grants": [grant("g", {"app": "billing"})]}},
    ], "--check").assert_ok()
    result = run.result("Grant")
    assert result["changed"] is True and result["key_arn"] is None
    assert [c["name"] for c in result["created"]] == ["g"]
    assert any("key_id" in warning for warning in result.get("warnings", [])), result
