"""The grant plan: checked wanted grants, the pure plan against current grants, and its application
(on a Stubber client: the order of calls, creations before the removals they replace)."""

import pytest

from ansible_collections.envelope.kms.plugins.module_utils import grants
from ansible_collections.envelope.kms.plugins.module_utils.errors import InputError

from tests.harness.stubbed_kms import KEY_ARN

ROLE = "arn:aws:iam::111122223333:role/billing-hosts"
DEPLOYER = "arn:aws:iam::111122223333:role/deployer"


def wanted(name="billing", **extra):
    entry = {"name": name, "grantee_principal": ROLE, "operations": ["Decrypt", "DescribeKey"]}
    entry.update(extra)
    return entry


def listed(name="billing", grant_id="g1", **extra):
    """A ListGrants entry as KMS returns it."""
    entry = {"KeyId": KEY_ARN, "GrantId": grant_id, "Name": name, "GranteePrincipal": ROLE,
             "Operations": ["DescribeKey", "Decrypt"], "IssuingAccount": "arn:aws:iam::111122223333:root"}
    entry.update(extra)
    return entry


def current(*entries):
    return [grants.grant_summary(entry) for entry in entries]


def test_desired_grants_normalise_operations_principals_and_constraint_values():
    (grant,) = grants.desired_grants([wanted(operations=["Decrypt", "DescribeKey", "Decrypt"],
                                             retiring_principal="  ",
                                             constraints={"encryption_context_subset": {"app": "billing", "n": 1},
                                                          "encryption_context_equals": None})])
    assert grant == {"name": "billing", "state": "present", "grantee_principal": ROLE, "retiring_principal": None,
                     "operations": ["Decrypt", "DescribeKey"],
                     "constraints": {"encryption_context_subset": {"app": "billing", "n": "1"}}}


@pytest.mark.parametrize("entry, message", [
    ({"name": "bad name"}, "Invalid grant name"),
    ({"name": "x" * 257}, "Invalid grant name"),
    ({"name": "g", "operations": ["Decrypt"]}, "grantee_principal is required"),
    ({"name": "g", "grantee_principal": ROLE}, "operations is required"),
    ({"name": "g", "grantee_principal": ROLE, "operations": ["Decrypt", "Decript"]}, "unknown operations Decript"),
    (wanted(constraints={"encryption_context_equals": {"a": "1"}, "encryption_context_subset": {"a": "1"}}),
     "not both"),
    (wanted(constraints={"encryption_context_like": {"a": "1"}}), "unknown constraints encryption_context_like"),
    (wanted(operations=["DescribeKey"], constraints={"encryption_context_equals": {"a": "1"}}),
     "needs an operation that takes an encryption context"),
    (wanted(operations=["Decrypt", "Sign"], constraints={"encryption_context_equals": {"a": "1"}}),
     "operations Sign take no encryption context"),
    (wanted(constraints={"encryption_context_subset": {str(n): "v" for n in range(9)}}), "holds 9 pairs"),
    (wanted(constraints={"encryption_context_subset": {"a": "v" * 385}}), "longer than 384"),
    (wanted(constraints={"encryption_context_subset": ["a"]}), "must be a dictionary"),
])
def test_desired_grants_refuse_what_kms_would(entry, message):
    with pytest.raises(InputError, match=message):
        grants.desired_grants([entry])


def test_names_are_unique_in_a_task_and_absent_needs_only_the_name():
    with pytest.raises(InputError, match="listed twice"):
        grants.desired_grants([wanted(), {"name": "billing", "state": "absent"}])
    assert grants.desired_grants([{"name": "old", "state": "absent"}]) == [{"name": "old", "state": "absent"}]


def test_constraints_are_allowed_beside_describe_retire_and_create_grant():
    (grant,) = grants.desired_grants([wanted(operations=["Decrypt", "RetireGrant", "CreateGrant", "DescribeKey"],
                                             constraints={"encryption_context_equals": {"a": "1"}})])
    assert grant["operations"] == ["CreateGrant", "Decrypt", "DescribeKey", "RetireGrant"]


def test_same_grant_in_another_order_is_no_change():
    desired = grants.desired_grants([wanted(operations=["DescribeKey", "Decrypt"])])
    assert grants.plan_grants(current(listed()), desired) == []


def test_missing_grant_is_created():
    desired = grants.desired_grants([wanted()])
    (step,) = grants.plan_grants([], desired)
    assert (step["action"], step["name"], step["reason"]) == ("create", "billing", "missing")


@pytest.mark.parametrize("change, fields", [
    ({"operations": ["Decrypt"]}, "operations"),
    ({"retiring_principal": DEPLOYER}, "retiring_principal"),
    ({"grantee_principal": "arn:aws:iam::111122223333:role/other"}, "grantee_principal"),
    ({"constraints": {"encryption_context_subset": {"app": "billing"}}}, "constraints"),
    ({"operations": ["Decrypt"], "retiring_principal": DEPLOYER}, "retiring_principal, operations"),
])
def test_a_difference_in_anything_replaces_the_grant_and_says_which(change, fields):
    desired = grants.desired_grants([wanted(**change)])
    create, remove = grants.plan_grants(current(listed()), desired)
    assert create["action"] == "create" and create["reason"] == f"replaces a grant whose {fields} differ"
    assert remove["action"] == "remove" and remove["grant"]["grant_id"] == "g1" and remove["reason"] == "replaced"


def test_equals_and_subset_are_different_constraints():
    equals = listed(Constraints={"EncryptionContextEquals": {"app": "billing"}})
    desired = grants.desired_grants([wanted(constraints={"encryption_context_subset": {"app": "billing"}})])
    assert [step["action"] for step in grants.plan_grants(current(equals), desired)] == ["create", "remove"]
    same = grants.desired_grants([wanted(constraints={"encryption_context_equals": {"app": "billing"}})])
    assert grants.plan_grants(current(equals), same) == []


def test_duplicate_names_keep_the_matching_grant_only():
    other = listed(grant_id="g2", Operations=["Encrypt"])
    steps = grants.plan_grants(current(other, listed()), grants.desired_grants([wanted()]))
    assert [(step["action"], step["grant"]["grant_id"], step["reason"]) for step in steps] == [
        ("remove", "g2", "duplicate name")]


def test_absent_removes_every_holder_of_the_name_and_nothing_else():
    state = current(listed(), listed(grant_id="g2"), listed(name="keep", grant_id="g3"))
    steps = grants.plan_grants(state, grants.desired_grants([{"name": "billing", "state": "absent"}]))
    assert [step["grant"]["grant_id"] for step in steps] == ["g1", "g2"]
    assert grants.plan_grants(state, grants.desired_grants([{"name": "gone", "state": "absent"}])) == []


def test_purge_removes_unlisted_grants_unnamed_included_only_when_asked():
    state = current(listed(), listed(name="", grant_id="svc"), listed(name="other", grant_id="g3"))
    desired = grants.desired_grants([wanted()])
    assert grants.plan_grants(state, desired) == []
    steps = grants.plan_grants(state, desired, purge=True)
    assert [(step["grant"]["grant_id"], step["reason"]) for step in steps] == [
        ("svc", "purged, not listed"), ("g3", "purged, not listed")]
    # nothing listed and purge: every grant goes
    assert len(grants.plan_grants(state, [], purge=True)) == 3


def test_predict_shows_the_grants_after_without_ids_for_new_ones():
    state = current(listed(), listed(name="other", grant_id="g3"))
    steps = grants.plan_grants(state, grants.desired_grants([wanted(operations=["Decrypt"])]), purge=True)
    after = grants.predict(state, steps)
    assert [(grant["name"], grant["grant_id"], grant["operations"]) for grant in after] == [
        ("billing", None, ["Decrypt"])]
    created, removed = grants.planned_changes(steps)
    assert created == [{"name": "billing", "grant_id": None, "grant_token": None,
                        "reason": "replaces a grant whose operations differ"}]
    assert sorted(grant["grant_id"] for grant in removed) == ["g1", "g3"]


def test_diff_view_has_no_ids_or_dates_but_for_shared_and_empty_names():
    view = grants.diff_view(current(listed(CreationDate="2026-01-01"), listed(name="", grant_id="svc")))
    assert set(view["grants"]) == {"billing", "(unnamed) (svc)"}
    assert set(view["grants"]["billing"]) == set(grants.COMPARED)
    shared = grants.diff_view(current(listed(), listed(grant_id="g2", Operations=["Encrypt"])))
    assert set(shared["grants"]) == {"billing (g1)", "billing (g2)"}


@pytest.mark.parametrize("value", [True, None, ["x"]])
def test_constraint_values_follow_the_encryption_context_rules(value):
    with pytest.raises(InputError, match="keys and values must be strings"):
        grants.desired_grants([wanted(constraints={"encryption_context_subset": {"flag": value}})])


def test_constraint_keys_are_compared_without_case_as_kms_applies_them():
    held = listed(Constraints={"EncryptionContextSubset": {"App": "billing"}})
    same = grants.desired_grants([wanted(constraints={"encryption_context_subset": {"app": "billing"}})])
    assert grants.plan_grants(current(held), same) == []
    other_value = grants.desired_grants([wanted(constraints={"encryption_context_subset": {"app": "Billing"}})])
    assert [step["action"] for step in grants.plan_grants(current(held), other_value)] == ["create", "remove"]
    with pytest.raises(InputError, match="differ only by case"):
        grants.desired_grants([wanted(constraints={"encryption_context_subset": {"app": "a", "APP": "b"}})])


def test_create_request_carries_only_what_is_set():
    (plain,) = grants.desired_grants([wanted()])
    assert grants.create_request(KEY_ARN, plain) == {
        "KeyId": KEY_ARN, "Name": "billing", "GranteePrincipal": ROLE, "Operations": ["Decrypt", "DescribeKey"]}
    (full,) = grants.desired_grants([wanted(retiring_principal=DEPLOYER,
                                            constraints={"encryption_context_equals": {"app": "billing"}})])
    request = grants.create_request(KEY_ARN, full)
    assert request["RetiringPrincipal"] == DEPLOYER
    assert request["Constraints"] == {"EncryptionContextEquals": {"app": "billing"}}


@pytest.mark.parametrize("removal, method", [("revoke", "revoke_grant"), ("retire", "retire_grant")])
def test_apply_creates_before_it_removes(stub, removal, method):
    state = current(listed())
    steps = grants.plan_grants(state, grants.desired_grants([wanted(operations=["Decrypt"])]))
    assert [step["action"] for step in steps] == ["create", "remove"]
    stub.add_response("create_grant", {"GrantId": "new", "GrantToken": "token"},
                      {"KeyId": KEY_ARN, "Name": "billing", "GranteePrincipal": ROLE, "Operations": ["Decrypt"]})
    stub.add_response(method, {}, {"KeyId": KEY_ARN, "GrantId": "g1"})
    created, removed = grants.apply_grants(stub.client, KEY_ARN, list(reversed(steps)), removal)
    assert created == [{"name": "billing", "grant_id": "new", "grant_token": "token",
                        "reason": "replaces a grant whose operations differ"}]
    assert removed == [{"name": "billing", "grant_id": "g1", "reason": "replaced"}]


def test_current_grants_reads_every_page(stub):
    stub.add_response("list_grants", {"Grants": [listed(grant_id="g1")], "Truncated": True, "NextMarker": "m"},
                      {"KeyId": KEY_ARN})
    stub.add_response("list_grants", {"Grants": [listed(name="b", grant_id="g2")], "Truncated": False},
                      {"KeyId": KEY_ARN, "Marker": "m"})
    # both pages, ordered by creation date, then name ("b" before "billing": KMS gave no dates here)
    assert [grant["grant_id"] for grant in grants.current_grants(stub.client, KEY_ARN)] == ["g2", "g1"]
