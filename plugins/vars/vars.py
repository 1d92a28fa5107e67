# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: vars
short_description: Load KMS-encrypted group_vars and host_vars (envelope vars files)
version_added: 0.2.0
description:
  - Loads envelope vars files (names ending in C(.kms.yml), C(.kms.yaml) or C(.kms.json)) from the
    C(group_vars/) and C(host_vars/) folders beside the inventory and the playbook, where the
    built-in C(host_group_vars) plugin looks for plain vars files. For a group C(prod) that is every
    C(group_vars/prod.kms.*) file, then every envelope vars file under C(group_vars/prod/), in name
    order (files and folders starting with a dot or ending in C(~) are skipped).
  - An envelope vars file is plain YAML or JSON whose secret values are KMS envelopes (AWS
    Encryption SDK messages, base64 after an C(envelope-kms:v1:) marker); keys and clear values
    stay readable. Write them with M(envelope.kms.vars_file) or the C(envelope.kms.set_secret)
    playbook.
  - All values of a file share one data key, so each file costs one KMS C(Decrypt) per playbook
    run, whatever the number of values, hosts, forks and evaluations. Decrypted files are cached in
    the memory of the controller process only (never on disk), keyed by the file's content, so a
    file changed on disk is read again.
  - Each value is bound to its key path inside its authenticated plaintext, and all values of a
    file must share the file's data key. A value moved to another key or pasted in from another
    file fails the load with one line naming the file and the key.
  - Decrypted values are marked unsafe (never templated, even if they hold C({{ }})). Ansible does
    not print variables unless a task asks for them, at any verbosity.
  - Enable it after the built-in plugin, in C(ansible.cfg) C([defaults]) with
    C(vars_plugins_enabled = host_group_vars,envelope.kms.vars), or with
    E(ANSIBLE_VARS_ENABLED=host_group_vars,envelope.kms.vars). Listed before it, the built-in
    plugin's reading of C(group_vars/prod/*.kms.yml) as plain YAML would win, and a warning says so.
author:
  - envelope.kms developers (!UNKNOWN)
requirements:
  - boto3, botocore and the aws-encryption-sdk Python library (3.3 or later) on the controller
options:
  stage:
    ini:
      - key: stage
        section: envelope_kms_vars
    env:
      - name: ENVELOPE_KMS_VARS_STAGE
  valid_extensions:
    description:
      - The name endings of envelope vars files. A name ending in C(.json) is read as JSON, any
        other as YAML.
    type: list
    elements: str
    default: [".kms.yml", ".kms.yaml", ".kms.json"]
    ini:
      - key: valid_extensions
        section: envelope_kms_vars
    env:
      - name: ENVELOPE_KMS_VARS_EXTENSIONS
  cache:
    description:
      - Keep decrypted files in memory for the rest of the run (each file is read and decrypted
        once). With V(false), every evaluation reads the file and decrypts its values again; the
        data keys KMS returned stay in memory either way, so this costs no further KMS C(Decrypt)
        unless the file changed.
    type: bool
    default: true
    ini:
      - key: cache
        section: envelope_kms_vars
    env:
      - name: ENVELOPE_KMS_VARS_CACHE
  skip_ansible_inventory:
    description:
      - Load nothing when the command is C(ansible-inventory), which is what AWX and Automation
        Controller run for an inventory sync (and they store every variable the sync returns).
        Set it in the inventory source's environment (E(ENVELOPE_KMS_VARS_SKIP_ANSIBLE_INVENTORY=true))
        or in C(ansible.cfg); job runs still load the files.
    type: bool
    default: false
    ini:
      - key: skip_ansible_inventory
        section: envelope_kms_vars
    env:
      - name: ENVELOPE_KMS_VARS_SKIP_ANSIBLE_INVENTORY
  encryption_context:
    description:
      - Encryption context pairs every value must carry (extra pairs in a file are fine), as a JSON
        object such as V({"project":"billing"}), or comma-separated V(key=value) pairs.
    type: str
    ini:
      - key: encryption_context
        section: envelope_kms_vars
    env:
      - name: ENVELOPE_KMS_VARS_ENCRYPTION_CONTEXT
  allowed_key_arns:
    description:
      - Only these KMS key ARNs may unwrap the files' data keys (comma-separated in the
        environment). A file wrapped under none of them fails to load.
      - Without it and without O(discovery_account_ids), any KMS key the credentials may use.
    type: list
    elements: str
    ini:
      - key: allowed_key_arns
        section: envelope_kms_vars
    env:
      - name: ENVELOPE_KMS_VARS_ALLOWED_KEY_ARNS
  discovery_account_ids:
    description:
      - Only KMS keys of these AWS account ids may unwrap the files' data keys.
    type: list
    elements: str
    ini:
      - key: discovery_account_ids
        section: envelope_kms_vars
    env:
      - name: ENVELOPE_KMS_VARS_DISCOVERY_ACCOUNT_IDS
extends_documentation_fragment:
  - ansible.builtin.vars_plugin_staging
  - amazon.aws.common.plugins
  - amazon.aws.region.plugins
notes:
  - AWS credentials, region and endpoint come from the controller's environment (E(AWS_PROFILE),
    E(AWS_REGION), E(AWS_ENDPOINT_URL), ...) as for any AWS SDK, or from the options above. Keys in
    other regions are reached in their own region, with the same credentials.
  - Precedence is that of plain group_vars and host_vars, with one difference shared by every vars
    plugin (community.sops's too). Ansible merges plugins one after the other for the C(all) group,
    then for the other groups, then for the host. So within one group, a key in an envelope vars
    file overrides the same key in a plain file. Across groups, this plugin's value for a parent
    group overrides the built-in plugin's value for a child group. Keep a secret and its overrides
    in envelope vars files.
  - The built-in C(host_group_vars) plugin also reads the files inside C(group_vars/<group>/)
    (they end in C(.yml) or C(.json)) as plain vars files, so without this plugin (or with
    O(skip_ansible_inventory)) those variables hold the C(envelope-kms:v1:) ciphertext, never the
    plaintext. Files named C(group_vars/<group>.kms.yml) are read by this plugin only.
  - Files beside the inventory are loaded when the inventory is parsed (stage V(inventory) or
    V(all)); files beside the playbook when a task needs them (V(task) or V(all)).
seealso:
  - module: envelope.kms.vars_file
  - module: envelope.kms.load_vars
  - ref: envelope.kms.decrypt filter <ansible_collections.envelope.kms.decrypt_filter>
    description: One inline envelope value in a plain vars file.
"""

import json
import os
import sys

from ansible import constants as C
from ansible.errors import AnsibleParserError
from ansible.inventory.group import Group
from ansible.inventory.host import Host
from ansible.plugins.vars import BaseVarsPlugin
from ansible.utils.display import Display
from ansible.utils.path import basedir
from ansible.utils.vars import combine_vars

from ansible_collections.envelope.kms.plugins.plugin_utils import requirements

# Everything else (amazon.aws, boto3, the AWS Encryption SDK: about 0.4 s of imports) is imported
# only once a directory holds an envelope vars file, so enabling the plugin costs a run without
# any next to nothing.

AWS_OPTIONS = ("access_key", "secret_key", "session_token", "profile", "endpoint_url", "region")
BUILTIN = ("host_group_vars", "ansible.builtin.host_group_vars")
NAMES = ("envelope.kms.vars",)
_WARNED = []
display = Display()

# ansible-core reads this plugin's options from amazon.aws's doc fragments once it is imported:
# without the collection, one line here says what to install (rather than "unknown doc_fragment(s)").
_AMAZON_AWS_ERROR = requirements.collection_error()
if _AMAZON_AWS_ERROR is not None:
    raise AnsibleParserError(requirements.missing_collection(NAMES[0], _AMAZON_AWS_ERROR))


class VarsModule(BaseVarsPlugin):
    is_stateless = True

    def get_vars(self, loader, path, entities, cache=True):
        if not isinstance(entities, list):
            entities = [entities]
        if self.get_option("skip_ansible_inventory") and os.path.basename(sys.argv[0]) == "ansible-inventory":
            return {}
        extensions = tuple(self.get_option("valid_extensions"))
        base = os.path.realpath(basedir(path))
        found = [(entity, name) for entity in entities for name in _files(base, entity, extensions)]
        if not found:
            return {}
        _warn_about_order()
        from ansible_collections.envelope.kms.plugins.module_utils.errors import EnvelopeError  # pylint: disable=import-outside-toplevel
        from ansible_collections.envelope.kms.plugins.plugin_utils import vars_loader  # pylint: disable=import-outside-toplevel

        use_cache = bool(self.get_option("cache")) and cache
        data = {}
        try:
            policy = self._policy()
            for _entity, name in found:
                new = vars_loader.load(self._engine, name, policy, cache=use_cache)
                data = combine_vars(data, new) if new else data
        except EnvelopeError as error:
            raise AnsibleParserError(f"envelope.kms.vars: {error.message}") from None
        return data

    def _policy(self):
        from ansible_collections.envelope.kms.plugins.module_utils.envelope import DecryptPolicy  # pylint: disable=import-outside-toplevel

        return DecryptPolicy.from_options(dict(
            encryption_context=_context(self.get_option("encryption_context")),
            allowed_key_arns=self.get_option("allowed_key_arns"),
            discovery_account_ids=self.get_option("discovery_account_ids"),
        ))

    def _engine(self):
        from ansible_collections.envelope.kms.plugins.plugin_utils import vars_loader  # pylint: disable=import-outside-toplevel

        options = {name: self.get_option(name) for name in AWS_OPTIONS}
        return vars_loader.engine_for(vars_loader.AwsOptions(options, "envelope.kms.vars", AnsibleParserError),
                                      tuple((name, repr(value)) for name, value in sorted(options.items())))


def _files(base, entity, extensions):
    """The envelope vars files of a host or group under base: group_vars/<name>.kms.yml (any of the
    extensions) and every such file under group_vars/<name>/ (host_vars/ for a host)."""
    if isinstance(entity, Host):
        subdir = "host_vars"
    elif isinstance(entity, Group):
        subdir = "group_vars"
    else:
        raise AnsibleParserError(f"Supplied entity must be Host or Group, got {type(entity)} instead")
    name = entity.name
    if not name or name.startswith(os.path.sep):
        return []
    folder = os.path.join(base, subdir)
    if not os.path.isdir(folder):
        return []
    # lexists: a directory or FIFO by that name is not skipped but refused, with one line, when read
    found = [path for path in (os.path.join(folder, name + extension) for extension in extensions)
             if os.path.lexists(path)]
    entity_dir = os.path.join(folder, name)
    if os.path.isdir(entity_dir):
        found.extend(_walk(entity_dir, extensions))
    return found


def _walk(folder, extensions):
    """Envelope vars files under a folder, sorted, without hidden files and folders (as Ansible)."""
    found = []
    for entry in sorted(os.listdir(folder)):
        if entry.startswith(".") or entry.endswith("~"):
            continue
        path = os.path.join(folder, entry)
        if any(entry.endswith(extension) for extension in extensions):
            found.append(path)
        elif os.path.isdir(path):
            found.extend(_walk(path, extensions))
    return found


def _warn_about_order():
    """host_group_vars also reads group_vars/<name>/*.kms.yml as plain YAML: listed after this
    plugin, its ciphertext strings would win. Say so once."""
    if _WARNED:
        return
    _WARNED.append(True)
    enabled = [str(name) for name in (C.VARIABLE_PLUGINS_ENABLED or [])]
    ours = [index for index, name in enumerate(enabled) if name in NAMES]
    builtin = [index for index, name in enumerate(enabled) if name in BUILTIN]
    if ours and builtin and max(builtin) > min(ours):
        display.warning("envelope.kms.vars is enabled before host_group_vars: variables of envelope vars files inside "
                        "group_vars/<name>/ folders would hold their ciphertext. List it after: "
                        "vars_plugins_enabled = host_group_vars,envelope.kms.vars")


def _context(text):
    """The encryption_context option: a JSON object or 'k=v,k2=v2'."""
    if not text:
        return None
    text = text.strip()
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except ValueError:
            raise AnsibleParserError("envelope.kms.vars: encryption_context is not a valid JSON object") from None
        if not isinstance(value, dict):
            raise AnsibleParserError("envelope.kms.vars: encryption_context must be a JSON object")
        return value
    pairs = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise AnsibleParserError(f"envelope.kms.vars: encryption_context pair {item!r} is not key=value")
        pairs[key.strip()] = value.strip()
    return pairs
