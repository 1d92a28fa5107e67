# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: decrypt
short_description: Decrypt KMS envelope files on the controller
version_added: 0.1.0
description:
  - Decrypts envelope files (AWS Encryption SDK messages, as written by M(envelope.kms.copy) or any
    AWS Encryption SDK) on the controller and returns their plaintext, for templates and variables.
  - Each file costs one KMS C(Decrypt) call, made with the controller's AWS credentials; one set of
    KMS clients serves every file of a lookup.
  - The same checks as M(envelope.kms.decrypt) apply before any plaintext is returned (the required
    O(encryption_context) pairs, allowed keys or accounts, complete authentication, nothing after the
    end of the message). Nothing is written to disk.
  - The result holds secrets. Use C(no_log=true) on tasks that show or pass them on.
author:
  - envelope.kms developers (!UNKNOWN)
options:
  _terms:
    description:
      - Paths of envelope files on the controller. Relative paths are searched like the
        P(ansible.builtin.file#lookup) lookup searches them (the role's or playbook's C(files/)
        folders, then the playbook folder).
    type: list
    elements: path
    required: true
  encoding:
    description:
      - V(text) returns the plaintext as UTF-8 text (binary data is an error); V(base64) returns it
        base64-encoded, for any data (use the P(ansible.builtin.b64decode#filter) filter where bytes
        are needed).
    type: str
    choices: [text, base64]
    default: text
  rstrip:
    description:
      - Strip whitespace (such as the final newline) from the end of text plaintext, as
        P(ansible.builtin.file#lookup) does by default. Not applied with O(encoding=base64).
    type: bool
    default: true
  lstrip:
    description:
      - Strip whitespace from the start of text plaintext. Not applied with O(encoding=base64).
    type: bool
    default: false
extends_documentation_fragment:
  - envelope.kms.decrypt_policy
  - envelope.kms.decrypt_policy.keys
  - amazon.aws.common.plugins
  - amazon.aws.region.plugins
  - amazon.aws.boto3
requirements:
  - aws-encryption-sdk >= 3.3.0 (on the controller, as are boto3 and botocore)
notes:
  - An option this lookup does not know (a misspelled C(encryption_contex=), say) is an error, not
    ignored, so a typo cannot silently drop a check.
  - Each term must name a regular file. A FIFO, a device or a directory is refused at once.
  - Each file's plaintext is held in memory; files of more than 64 MiB of plaintext are refused.
  - Returned strings are never templated again, even if the plaintext contains C({{ }}).
seealso:
  - module: envelope.kms.decrypt
  - module: envelope.kms.copy
"""

EXAMPLES = r"""
- name: Template a configuration file with a secret kept encrypted in the repository
  ansible.builtin.template:
    src: app.conf.j2
    dest: /etc/app/app.conf
    mode: "0600"
  vars:
    db_password: "{{ lookup('envelope.kms.decrypt', 'db_password.enc', encryption_context={'app': 'billing'}) }}"
  no_log: true

- name: Several files, restricted to one key, from another region
  ansible.builtin.set_fact:
    secrets: "{{ query('envelope.kms.decrypt', 'a.enc', 'b.enc', allowed_key_arns=[key_arn], region='eu-west-1') }}"
  no_log: true

- name: A binary keystore, as base64
  ansible.builtin.copy:
    content: "{{ lookup('envelope.kms.decrypt', 'keystore.p12.enc', encoding='base64') | b64decode }}"
    dest: /etc/app/keystore.p12
    mode: "0600"
  no_log: true
"""

RETURN = r"""
_raw:
  description: The plaintext of each file, as text or base64 (O(encoding)).
  type: list
  elements: str
"""

from ansible.errors import AnsibleLookupError
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.envelope.kms.plugins.plugin_utils import requirements

try:
    # first: once this file is imported, ansible-core reads its options from amazon.aws's doc
    # fragments (and module_utils below import amazon.aws): without the collection, one line
    from ansible_collections.amazon.aws.plugins.plugin_utils.lookup import AWSLookupBase
except ImportError as error:
    raise AnsibleLookupError(requirements.missing_collection("envelope.kms.decrypt lookup", error)) from None

from ansible_collections.envelope.kms.plugins.module_utils.decrypt import encode_content
from ansible_collections.envelope.kms.plugins.module_utils.envelope import (
    MAX_CONTENT_SIZE,
    DecryptPolicy,
    Engine,
    decrypt_policy_argument_spec,
)
from ansible_collections.envelope.kms.plugins.plugin_utils.errors import plugin_errors

NAME = "envelope.kms.decrypt lookup"
POLICY_OPTIONS = tuple(decrypt_policy_argument_spec()["argument_spec"])


class LookupModule(AWSLookupBase):
    def run(self, terms, variables=None, **kwargs):
        # ansible-core ignores keyword options it does not know: a typo such as encryption_contex=
        # would decrypt with no context check at all
        requirements.require(NAME, AnsibleLookupError)  # boto3, botocore, aws-encryption-sdk
        self._refuse_unknown_options(kwargs)
        self._refuse_non_booleans(kwargs)
        super().run(terms, variables, **kwargs)  # reads the options
        variables = variables or {}
        with plugin_errors(AnsibleLookupError):
            policy = DecryptPolicy.from_options({name: self.get_option(name) for name in POLICY_OPTIONS})
            engine, values = None, []
            for term in terms:
                path = self._path(variables, term)
                if engine is None:
                    engine = Engine.for_aws(self)  # one engine (KMS clients, providers) for every file
                    policy = engine.policy(policy)  # the partition of the engine's region
                values.append(self._value(engine, policy, path))
            return values

    def _refuse_unknown_options(self, given):
        names, known = set(), set()
        for name, definition in self.option_definitions.items():
            if not name.startswith("_"):  # _terms are the positional arguments
                names.add(name)
                known.update([name, *(definition.get("aliases") or ())])
        unknown = sorted(str(name) for name in given if name not in known)
        if unknown:
            raise AnsibleLookupError(f"{NAME}: unknown option(s) {', '.join(unknown)}; "
                                     f"valid options: {', '.join(sorted(names))} (and the aliases of the AWS options)")

    def _refuse_non_booleans(self, given):
        """A boolean option takes a boolean or one of Ansible's boolean strings: 'maybe' is refused,
        not taken as false."""
        for name, definition in self.option_definitions.items():
            if definition.get("type") not in ("bool", "boolean"):
                continue
            for word in (name, *(definition.get("aliases") or ())):
                if word in given:
                    try:
                        boolean(given[word], strict=True)
                    except TypeError:
                        raise AnsibleLookupError(f"{NAME}: {word} must be a boolean "
                                                 f"(true or false), not {given[word]!r}") from None

    def _path(self, variables, term):
        path = self.find_file_in_search_path(variables, "files", term, ignore_missing=True)
        if not path:
            raise AnsibleLookupError(f"envelope file {term!r} not found (use -vvvvv to see the paths searched)")
        return path

    def _value(self, engine, policy, path):
        encoding = self.get_option("encoding")
        plaintext, facts = engine.decrypt_bytes(path, policy, max_size=MAX_CONTENT_SIZE)
        value = encode_content(plaintext, encoding, what=f"the plaintext of {path}")
        self._display.vvv(f"envelope.kms.decrypt: {path} wrapped under {', '.join(facts.key_arns)}")
        if encoding == "text":
            if self.get_option("lstrip"):
                value = value.lstrip()
            if self.get_option("rstrip"):
                value = value.rstrip()
        return value
