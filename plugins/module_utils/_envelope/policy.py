# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""For internal collection use only: the decrypt policy, built once from options and checked on headers.

What a decrypt requires beyond what the library checks: the encryption context pairs the file must
carry, and which KMS keys may unwrap it (strict key ARNs, or discovery limited to accounts of a
partition, or any key the credentials can use). One argument spec serves every plugin that
decrypts (the decrypt module and lookup, rewrap); its documentation is the
``envelope.kms.decrypt_policy`` doc fragment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from ansible_collections.envelope.kms.plugins.module_utils.errors import EnvelopeError, InputError
from ansible_collections.envelope.kms.plugins.module_utils._envelope.inputs import normalize_context

KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$")
ACCOUNT_ID = re.compile(r"^\d{12}$")
MRK_PREFIX = "mrk-"  # the key ids of multi-Region keys, shared by a primary and its replicas


def is_multi_region_key_arn(arn):
    """Whether ``arn`` is the key ARN of a multi-Region key (its key id starts with ``mrk-``)."""
    return bool(KEY_ARN.match(arn or "")) and arn.split(":", 5)[5].startswith("key/" + MRK_PREFIX)


def key_arns_match(first, second):
    """Whether a key ARN of a header and an allowed key ARN name the same key: equal, or two related
    multi-Region keys (equal but for the region). The AWS Encryption SDK's MRK match for decrypt
    (``_check_mrk_arns_equal``), without the library: header checks run before it is imported."""
    if first == second:
        return True
    if not (is_multi_region_key_arn(first) and is_multi_region_key_arn(second)):
        return False
    first_parts, second_parts = first.split(":", 5), second.split(":", 5)
    return first_parts[:3] == second_parts[:3] and first_parts[4:] == second_parts[4:]


def key_arn_in_region(arn, region):
    """The ARN of the related multi-Region key of ``arn`` in ``region``."""
    parts = arn.split(":", 5)
    parts[3] = region
    return ":".join(parts)


def decrypt_policy_argument_spec(context_option="encryption_context", context_default=None):
    """The decrypt policy options as an argument spec, with the rules that go with them. A plugin
    whose ``encryption_context`` means something else names the required-context option itself."""
    return dict(
        argument_spec=dict(
            {context_option: dict(type="dict", default=context_default)},
            allowed_key_arns=dict(type="list", elements="str", no_log=False),  # ARNs, not secrets
            discovery_account_ids=dict(type="list", elements="str"),
            discovery_partition=dict(type="str"),
        ),
        mutually_exclusive=[("allowed_key_arns", "discovery_account_ids")],
        required_by={"discovery_partition": "discovery_account_ids"},
    )


@dataclass(frozen=True)
class DecryptPolicy:
    """What a decrypt requires: context pairs, and allowed key ARNs or discovery accounts."""

    required_context: dict = field(default_factory=dict)
    allowed_key_arns: tuple = ()
    discovery_account_ids: tuple = ()
    discovery_partition: str = None

    @classmethod
    def from_options(cls, options, region=None, context_option="encryption_context"):
        """From a plugin's options (the names of decrypt_policy_argument_spec), validated."""
        return decrypt_policy(options.get(context_option), options.get("allowed_key_arns"),
                              options.get("discovery_account_ids"), options.get("discovery_partition"), region)

    @classmethod
    def strict(cls, key_arns, required_context=None):
        """Exactly these keys, exactly this context (already normalised): the idempotence checks."""
        return cls(dict(required_context or {}), tuple(sorted(set(key_arns))))

    def check(self, facts, what):
        """Raise EnvelopeError when header facts fail this policy: required context pairs, allowed
        keys or accounts. No KMS call, so callers can predict a refusal (check mode); decrypt
        repeats it on the authenticated header."""
        _check_required_context(facts, self.required_context, what)
        if self.allowed_key_arns and not any(key_arns_match(arn, allowed) for arn in facts.key_arns
                                             for allowed in self.allowed_key_arns):
            raise EnvelopeError(
                f"{what}: wrapped under {_names(facts.key_arns)}, none of the allowed keys "
                f"{_names(self.allowed_key_arns)}",
                "key_not_allowed",
            )
        if self.discovery_account_ids and not any(self._in_accounts(arn) for arn in facts.key_arns):
            raise EnvelopeError(
                f"{what}: wrapped under {_names(facts.key_arns)}, none in the allowed accounts "
                f"{', '.join(self.discovery_account_ids)} (partition {self.discovery_partition})",
                "key_not_allowed",
            )

    def _in_accounts(self, arn):
        parts = arn.split(":")
        return len(parts) > 4 and parts[1] == self.discovery_partition and parts[4] in self.discovery_account_ids


def decrypt_policy(encryption_context=None, allowed_key_arns=None, discovery_account_ids=None,
                   discovery_partition=None, region=None):
    """A validated DecryptPolicy: context pairs, allowed key ARNs or discovery accounts."""
    if isinstance(encryption_context, DecryptPolicy):
        built = encryption_context
        if built.discovery_account_ids and built.discovery_partition is None:
            return replace(built, discovery_partition=partition_of_region(region))
        return built
    allowed = tuple(sorted(set(allowed_key_arns or ())))
    accounts = tuple(sorted(set(check_account_ids(discovery_account_ids))))
    if allowed and accounts:
        raise InputError("allowed_key_arns and discovery_account_ids are mutually exclusive: give allowed key ARNs "
                         "or discovery account ids, not both")
    for arn in allowed:
        if not KEY_ARN.match(arn):
            raise InputError(f"allowed keys must be key ARNs (arn:aws:kms:REGION:ACCOUNT:key/ID), not {arn!r}")
    if discovery_partition and not accounts:
        raise InputError("discovery_partition needs discovery_account_ids")
    # Without a region (options checked before any client exists) the engine fills it in later.
    partition = discovery_partition or (partition_of_region(region) if region is not None else None)
    return DecryptPolicy(normalize_context(encryption_context, "required encryption context"),
                         allowed, accounts, partition)


def check_account_ids(account_ids):
    """AWS account ids as 12-digit strings (YAML may have turned them into numbers)."""
    checked = []
    for account_id in account_ids or ():
        text = str(account_id).strip()
        if isinstance(account_id, int) and not isinstance(account_id, bool):
            text = text.zfill(12)
        if not ACCOUNT_ID.match(text):
            raise InputError(f"discovery_account_ids must be 12-digit AWS account ids, not {account_id!r}")
        checked.append(text)
    return checked


def partition_of_region(region):
    region = region or ""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def check_header(facts, policy, what):
    """Raise EnvelopeError when header facts fail a DecryptPolicy (see DecryptPolicy.check)."""
    policy.check(facts, what)


def _check_required_context(facts, required, what):
    context = facts.encryption_context
    missing = sorted(key for key in required if key not in context)
    wrong = sorted(key for key in required if key in context and context[key] != required[key])
    if missing or wrong:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(missing))
        if wrong:
            parts.append("different value for " + ", ".join(wrong))
        raise EnvelopeError(f"{what}: encryption context does not match the required pairs ({'; '.join(parts)})",
                            "context_mismatch")


def _names(values):
    return ", ".join(values) if values else "no KMS key"
