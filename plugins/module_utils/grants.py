# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Grants on a KMS key: checked desired grants, a pure plan against the key's current grants, and
applying it.

KMS grants cannot be changed once made: a grant named in the task whose grantee, retiring
principal, operations or constraints differ is replaced (the new grant is created before the old
one is removed, so the grantee never loses access in between). Grants are matched by name, as
amazon.aws's ``kms_key`` matches them.

A plan is a list of steps ``{"action": "create" | "remove", "name", "reason", ...}``: ``create``
carries the wanted grant (snake_case, as ``desired_grants`` returns it), ``remove`` the current one
(as ``grant_summary`` returns it, with its ``grant_id``).
"""

from __future__ import annotations

import re

from ansible_collections.envelope.kms.plugins.module_utils._envelope.inputs import normalize_context
from ansible_collections.envelope.kms.plugins.module_utils.kms import KmsInputError, iso, paginate

# GrantOperation in the KMS API reference (CreateGrant), in its order.
OPERATIONS = [
    "Decrypt",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "ReEncryptFrom",
    "ReEncryptTo",
    "Sign",
    "Verify",
    "GetPublicKey",
    "CreateGrant",
    "RetireGrant",
    "DescribeKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateMac",
    "VerifyMac",
    "DeriveSharedSecret",
    "Encapsulate",
    "Decapsulate",
]
# Operations a grant constraint does not apply to but may sit beside (GrantConstraints).
_UNCONSTRAINED_OPERATIONS = {"DescribeKey", "RetireGrant", "CreateGrant"}
# Operations that take an encryption context (symmetric encryption keys): the only ones a
# constraint can govern; KMS refuses a constrained grant for asymmetric or HMAC operations.
_CONTEXT_OPERATIONS = {
    "Decrypt", "Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom", "ReEncryptTo",
    "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext",
}
CONSTRAINT_TYPES = {"encryption_context_equals": "EncryptionContextEquals",
                    "encryption_context_subset": "EncryptionContextSubset"}
GRANT_NAME = re.compile(r"^[a-zA-Z0-9:/_-]{1,256}$")
MAX_CONSTRAINT_PAIRS = 8  # per constraint (CreateGrant, Constraints)
MAX_CONSTRAINT_VALUE = 384
REMOVAL_METHODS = ("revoke", "retire")
# The fields compared to decide whether a current grant is the wanted one (all immutable in KMS).
COMPARED = ("grantee_principal", "retiring_principal", "operations", "constraints")


def grant_spec_options():
    """The argument spec of one entry of the ``grants`` option (the module and the role share it)."""
    return dict(
        name=dict(type="str", required=True),
        grantee_principal=dict(type="str"),
        retiring_principal=dict(type="str"),
        operations=dict(type="list", elements="str"),
        constraints=dict(
            type="dict",
            options=dict(
                encryption_context_equals=dict(type="dict"),
                encryption_context_subset=dict(type="dict"),
            ),
        ),
        state=dict(type="str", choices=["present", "absent"], default="present"),
    )


def desired_grants(entries):
    """The task's grants, checked as KMS would check them, before any call: a list of dicts with
    name, state, and for present grants grantee_principal, retiring_principal (or None),
    operations (sorted, unique) and constraints (None, or {'encryption_context_equals'|
    'encryption_context_subset': {str: str}})."""
    seen = set()
    checked = []
    for entry in entries or ():
        name = entry.get("name")
        if not isinstance(name, str) or not GRANT_NAME.match(name):
            raise KmsInputError(f"Invalid grant name {name!r}: use 1-256 letters, digits, ':', '/', '_' or '-'")
        if name in seen:
            raise KmsInputError(f"Grant {name} is listed twice: grant names must be unique in a task")
        seen.add(name)
        state = entry.get("state") or "present"
        if state == "absent":
            checked.append({"name": name, "state": "absent"})
            continue
        checked.append(_present_grant(name, entry))
    return checked


def _present_grant(name, entry):
    grantee = (entry.get("grantee_principal") or "").strip()
    if not grantee:
        raise KmsInputError(f"Grant {name}: grantee_principal is required (an IAM principal ARN or an AWS account)")
    operations = entry.get("operations") or []
    if not operations:
        raise KmsInputError(f"Grant {name}: operations is required (for instance [Decrypt])")
    unknown = sorted(set(operations) - set(OPERATIONS))
    if unknown:
        raise KmsInputError(f"Grant {name}: unknown operations {', '.join(unknown)} (choose from {', '.join(OPERATIONS)})")
    constraints = _constraints(name, entry.get("constraints"), set(operations))
    return {
        "name": name,
        "state": "present",
        "grantee_principal": grantee,
        "retiring_principal": (entry.get("retiring_principal") or "").strip() or None,
        "operations": sorted(set(operations)),
        "constraints": constraints,
    }


def _constraints(name, constraints, operations):
    given = {kind: pairs for kind, pairs in (constraints or {}).items() if pairs}
    unknown = sorted(set(given) - set(CONSTRAINT_TYPES))
    if unknown:
        raise KmsInputError(f"Grant {name}: unknown constraints {', '.join(unknown)} "
                            f"(use encryption_context_equals or encryption_context_subset)")
    if not given:
        return None
    if len(given) > 1:
        raise KmsInputError(f"Grant {name}: give encryption_context_equals or encryption_context_subset, not both "
                            "(a grant holds one type of constraint)")
    if not operations & _CONTEXT_OPERATIONS:
        raise KmsInputError(f"Grant {name}: an encryption context constraint needs an operation that takes an "
                            f"encryption context ({', '.join(sorted(_CONTEXT_OPERATIONS))})")
    mixed = sorted(operations - _CONTEXT_OPERATIONS - _UNCONSTRAINED_OPERATIONS)
    if mixed:
        raise KmsInputError(f"Grant {name}: operations {', '.join(mixed)} take no encryption context and cannot be "
                            "in a grant with a constraint")
    ((kind, pairs),) = given.items()
    if not isinstance(pairs, dict):
        raise KmsInputError(f"Grant {name}: {kind} must be a dictionary of encryption context pairs")
    if len(pairs) > MAX_CONSTRAINT_PAIRS:
        raise KmsInputError(f"Grant {name}: {kind} holds {len(pairs)} pairs, KMS allows {MAX_CONSTRAINT_PAIRS}")
    # The rules of every encryption context the collection writes (no booleans or nulls, which would
    # become "True"/"None" here and never match a file's context), without the ESDK's reserved prefix
    # rule: a grant constraint is compared with what KMS sees.
    text = normalize_context(pairs, f"Grant {name}: {kind}", reserved_prefix=None)
    folded = [key.lower() for key in text]
    if len(set(folded)) != len(folded):
        raise KmsInputError(f"Grant {name}: {kind} has keys that differ only by case, which KMS treats as one key")
    long_values = sorted(key for key, value in text.items() if len(value) > MAX_CONSTRAINT_VALUE)
    if long_values:
        raise KmsInputError(f"Grant {name}: {kind} values longer than {MAX_CONSTRAINT_VALUE} characters "
                            f"({', '.join(long_values)})")
    return {kind: text}


def grant_summary(entry):
    """A ListGrants entry, snake_cased, with the same shape as desired_grants' grants."""
    constraints = entry.get("Constraints") or {}
    kinds = {snake: dict(constraints[camel]) for snake, camel in CONSTRAINT_TYPES.items() if constraints.get(camel)}
    return {
        "name": entry.get("Name") or "",
        "grant_id": entry.get("GrantId"),
        "grantee_principal": entry.get("GranteePrincipal"),
        "retiring_principal": entry.get("RetiringPrincipal") or None,
        "operations": sorted(entry.get("Operations") or []),
        "constraints": kinds or None,
        "issuing_account": entry.get("IssuingAccount"),
        "creation_date": iso(entry.get("CreationDate")),
    }


def current_grants(client, key_arn):
    """The key's grants (ListGrants, every page) as grant_summary dicts, oldest first."""
    grants = [grant_summary(entry) for entry in paginate(client, "list_grants", "Grants", KeyId=key_arn)]
    return sorted(grants, key=lambda grant: (grant["creation_date"] or "", grant["name"], grant["grant_id"] or ""))


def differences(current, wanted):
    """The compared fields in which a current grant differs from a wanted one. Constraint keys are
    compared without case, as KMS applies them (GrantConstraints); values with case."""
    return [field for field in COMPARED if _comparable(field, current.get(field)) != _comparable(field, wanted.get(field))]


def _comparable(field, value):
    if field != "constraints" or not value:
        return value
    return {kind: {key.lower(): text for key, text in pairs.items()} for kind, pairs in value.items()}


def plan_grants(current, desired, purge=False):
    """The steps that make ``current`` grants (grant_summary dicts) hold the ``desired`` ones
    (desired_grants): create what is missing, replace (create, then remove) what differs, remove
    grants named absent, and with ``purge`` every grant whose name the task does not list.

    A name held by several current grants (KMS allows that) keeps one that matches and loses the
    others, so afterwards each listed name names exactly one grant."""
    steps = []
    by_name = {}
    for grant in current:
        by_name.setdefault(grant["name"], []).append(grant)
    for wanted in desired:
        holders = by_name.get(wanted["name"], [])
        if wanted["state"] == "absent":
            steps.extend(_remove(grant, "state=absent") for grant in holders)
            continue
        keep = next((grant for grant in holders if not differences(grant, wanted)), None)
        if keep is None:
            changed = differences(holders[0], wanted) if holders else []
            reason = ("replaces a grant whose " + ", ".join(changed) + " differ") if holders else "missing"
            steps.append({"action": "create", "name": wanted["name"], "reason": reason, "grant": wanted})
        steps.extend(_remove(grant, "replaced" if keep is None else "duplicate name")
                     for grant in holders if grant is not keep)
    if purge:
        listed = {wanted["name"] for wanted in desired}
        steps.extend(_remove(grant, "purged, not listed") for grant in current if grant["name"] not in listed)
    return steps


def _remove(grant, reason):
    return {"action": "remove", "name": grant["name"], "reason": reason, "grant": grant}


def predict(current, steps):
    """The key's grants after the plan, without KMS (check mode; grants to create have no id)."""
    removed = {step["grant"]["grant_id"] for step in steps if step["action"] == "remove"}
    after = [grant for grant in current if grant["grant_id"] not in removed]
    after.extend(dict(step["grant"], grant_id=None, issuing_account=None, creation_date=None)
                 for step in steps if step["action"] == "create")
    return [_shown(grant) for grant in after]


def create_request(key_arn, grant):
    """CreateGrant's parameters for a wanted grant."""
    params = {
        "KeyId": key_arn,
        "Name": grant["name"],
        "GranteePrincipal": grant["grantee_principal"],
        "Operations": list(grant["operations"]),
    }
    if grant["retiring_principal"]:
        params["RetiringPrincipal"] = grant["retiring_principal"]
    if grant["constraints"]:
        params["Constraints"] = {CONSTRAINT_TYPES[kind]: dict(pairs) for kind, pairs in grant["constraints"].items()}
    return params


def apply_grants(client, key_arn, steps, removal="revoke"):
    """Perform the plan in order (creations come before the removals they replace): returns the
    created grants ({'name', 'grant_id', 'grant_token'}) and the removed ones ({'name', 'grant_id'})."""
    created, removed = [], []
    for step in sorted(steps, key=lambda step: step["action"] != "create"):
        if step["action"] == "create":
            answer = client.create_grant(**create_request(key_arn, step["grant"]))
            created.append({"name": step["name"], "grant_id": answer["GrantId"], "grant_token": answer.get("GrantToken"),
                            "reason": step["reason"]})
        else:
            grant_id = step["grant"]["grant_id"]
            if removal == "retire":
                client.retire_grant(KeyId=key_arn, GrantId=grant_id)
            else:
                client.revoke_grant(KeyId=key_arn, GrantId=grant_id)
            removed.append({"name": step["name"], "grant_id": grant_id, "reason": step["reason"]})
    return created, removed


def planned_changes(steps):
    """The plan as the module reports it in check mode: what would be created and removed."""
    created = [{"name": step["name"], "grant_id": None, "grant_token": None, "reason": step["reason"]}
               for step in steps if step["action"] == "create"]
    removed = [{"name": step["name"], "grant_id": step["grant"]["grant_id"], "reason": step["reason"]}
               for step in steps if step["action"] == "remove"]
    return created, removed


def diff_view(grants):
    """Grants as a diff shows them: by name, without ids or dates (which change on replacement); a
    name that several grants share (and an empty one) with each grant's id, so none hides another."""
    names = [grant["name"] for grant in grants]
    view = {}
    for grant in grants:
        label = grant["name"] or "(unnamed)"
        if not grant["name"] or names.count(grant["name"]) > 1:
            label += f" ({grant['grant_id'] or 'new'})"
        view[label] = _compared(grant)
    return {"grants": view}


def _compared(grant):
    return {field: grant.get(field) for field in COMPARED}


def _shown(grant):
    keys = ("name", "grant_id") + COMPARED + ("issuing_account", "creation_date")
    return {key: grant.get(key) for key in keys}
