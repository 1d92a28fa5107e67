# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""envelope.kms.decrypt filter: one inline envelope value (docs in decrypt.yml beside this file)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.envelope.kms.plugins.module_utils import vars_file
from ansible_collections.envelope.kms.plugins.module_utils.envelope import (
    MAX_CONTENT_SIZE,
    DecryptPolicy,
    Engine,
)
from ansible_collections.envelope.kms.plugins.module_utils.errors import EnvelopeError
from ansible_collections.envelope.kms.plugins.plugin_utils import requirements
from ansible_collections.envelope.kms.plugins.plugin_utils.errors import plugin_errors
from ansible_collections.envelope.kms.plugins.plugin_utils.vars_loader import AMAZON_AWS_ERROR, AwsOptions

try:
    from ansible.template import trust_as_template  # noqa: F401  pylint: disable=unused-import
except ImportError:  # ansible-core 2.17 and 2.18: mark results unsafe (2.19+ never templates them)
    from ansible.utils.unsafe_proxy import wrap_var
else:
    def wrap_var(value):
        return value

AWS_OPTIONS = ("access_key", "secret_key", "session_token", "profile", "endpoint_url", "region", "aws_ca_bundle",
               "validate_certs")
NAME = "envelope.kms.decrypt filter"
POLICY_OPTIONS = ("encryption_context", "allowed_key_arns", "discovery_account_ids", "discovery_partition")

_ENGINES = {}  # AWS options -> Engine, per process
_VALUES = {}  # (value, policy, key) -> decrypted value, per process


def decrypt(value, key=None, encryption_context=None, allowed_key_arns=None, discovery_account_ids=None,
            discovery_partition=None, **aws):
    """The plaintext of one inline envelope value, checked against the decrypt policy; cached per
    process (a worker serves one host's task, with all its loop items)."""
    requirements.require(NAME, AnsibleFilterError, AMAZON_AWS_ERROR)
    unknown = sorted(set(aws) - set(AWS_OPTIONS))
    if unknown:
        raise AnsibleFilterError(f"{NAME}: unknown option(s) {', '.join(unknown)}; valid options: "
                                 f"key, {', '.join(POLICY_OPTIONS)}, {', '.join(AWS_OPTIONS)}")
    if not isinstance(value, str):
        raise AnsibleFilterError(f"{NAME}: expects an envelope value (a string), not {type(value).__name__}")
    if encryption_context is not None and not isinstance(encryption_context, Mapping):
        raise AnsibleFilterError(f"{NAME}: encryption_context must be a dictionary")
    for name, given in (("allowed_key_arns", allowed_key_arns), ("discovery_account_ids", discovery_account_ids)):
        if given is not None and not isinstance(given, (str, list, tuple)):
            raise AnsibleFilterError(f"{NAME}: {name} must be a list of strings")
    allowed_key_arns = [allowed_key_arns] if isinstance(allowed_key_arns, str) else allowed_key_arns
    discovery_account_ids = [discovery_account_ids] if isinstance(discovery_account_ids, str) else discovery_account_ids
    if "validate_certs" in aws:
        try:
            aws["validate_certs"] = boolean(aws["validate_certs"], strict=True)
        except TypeError:
            raise AnsibleFilterError(f"{NAME}: validate_certs must be a boolean (true or false), "
                                     f"not {aws['validate_certs']!r}") from None
    path = vars_file.key_path(key) if key is not None else None
    with plugin_errors(AnsibleFilterError):
        policy = DecryptPolicy.from_options(dict(encryption_context=dict(encryption_context or {}),
                                                 allowed_key_arns=allowed_key_arns,
                                                 discovery_account_ids=discovery_account_ids,
                                                 discovery_partition=discovery_partition))
        cache_key = (str(value), repr(policy), path, tuple(sorted((name, repr(aws[name])) for name in aws)))
        if cache_key not in _VALUES:
            _VALUES[cache_key] = _decrypt(str(value), path, policy, aws)
        return wrap_var(_VALUES[cache_key])


def _decrypt(value, path, policy, aws):
    what = f"cannot decrypt the value{'' if path is None else ' of ' + vars_file.dotted(path)}"
    sealed = vars_file.is_sealed(value)
    ciphertext = vars_file.unseal(value, what) if sealed else _base64(value.strip(), what)
    engine = _engine(aws)
    policy = engine.policy(policy)
    plaintext, _facts, _header = engine.decrypt_message(ciphertext, engine.shared_key_manager(policy), policy, what)
    if len(plaintext) > MAX_CONTENT_SIZE:
        raise EnvelopeError(f"{what}: the plaintext is larger than {MAX_CONTENT_SIZE} bytes", "too_large")
    if sealed:
        return _bound_value(plaintext, path, what)
    if path is not None:
        raise EnvelopeError(f"{what}: key= checks the key path bound in an {vars_file.MARKER} value, and this is a bare "
                            "AWS Encryption SDK message", "invalid_argument")
    try:
        return plaintext.decode("utf-8")
    except UnicodeDecodeError:
        raise EnvelopeError(f"{what}: the plaintext is not UTF-8 text", "invalid_argument") from None


def _bound_value(plaintext, path, what):
    if path is not None:
        return vars_file.unbound_value(plaintext, path, what)
    document_path = vars_file.bound_path(plaintext, what)
    return vars_file.unbound_value(plaintext, document_path, what)


def _base64(text, what):
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise EnvelopeError(f"{what}: not an {vars_file.MARKER} value nor a base64 AWS Encryption SDK message",
                            "corrupt") from None


def _engine(aws):
    settings = tuple(sorted((name, repr(value)) for name, value in aws.items()))
    engine = _ENGINES.get(settings)
    if engine is None:
        engine = _ENGINES[settings] = Engine.for_aws(AwsOptions(dict(aws), NAME, AnsibleFilterError))
    return engine


class FilterModule:
    def filters(self):
        return {"decrypt": decrypt}
