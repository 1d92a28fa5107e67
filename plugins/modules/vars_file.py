#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vars_file
short_description: Create an envelope vars file (KMS-encrypted values with readable keys), set, remove or rewrap its values
version_added: 0.2.0
description:
  - Writes envelope vars files on the controller. They are plain YAML or JSON vars files whose
    secret values are KMS envelopes, read by the P(envelope.kms.vars#vars) plugin, by
    M(envelope.kms.load_vars) and by the P(envelope.kms.decrypt#filter) filter.
  - Each secret value is one AWS Encryption SDK message, written as C(envelope-kms:v1:) followed by
    its base64. Its plaintext is the JSON C({"path":[...],"value":...}), so the value is bound
    to its key path. All values of a file share one data key, wrapped under every key of
    O(key_id), so a reader pays one KMS C(Decrypt) per file. After base64 decoding, any AWS
    Encryption SDK (or C(aws-encryption-cli)) decrypts a value alone.
  - Creates the file, or changes it. O(values) are encrypted, O(clear_values) are written in clear
    text, O(remove) takes keys away. A plain or ansible-vault vars file can be encrypted in one
    step with O(src).
  - The existing file is decrypted first (one KMS C(Decrypt) for the whole file), which also proves
    it intact. A value whose plaintext did not change keeps its exact text, so C(git diff) shows
    the keys that changed and only those. New values join the file's data key (no
    C(GenerateDataKey)).
  - Rewrap. When O(key_id) resolves to other keys than the file's (after a manual rotation that
    re-pointed an alias), or O(encryption_context) differs from the file's, every value is
    re-encrypted under one new data key, and all of them are reported in RV(rewrapped).
  - Writes a temp file beside O(path) and renames it over O(path), so readers see the old file or
    the new one. Plaintext stays in memory; the result and the diff name keys, never values.
  - The file is written in one canonical layout (block YAML in the file's key order, a two-line
    comment at the top; JSON with two-space indents for a C(.json) name). Comments added by hand
    are not kept.
author:
  - envelope.kms developers (!UNKNOWN)
options:
  path:
    description:
      - The envelope vars file on the controller, such as C(group_vars/prod/secrets.kms.yml). A name
        ending in C(.json) is written as JSON, any other as YAML. A relative path is relative to the
        playbook's folder. Its directory must exist.
    type: path
    required: true
  key_id:
    description:
      - The KMS keys (key id, key ARN, alias name or alias ARN) that wrap the file's data key. The
        first generates it and each other one wraps it too, for another region or account.
      - Required for a file that has no encrypted value yet, and to add or change encrypted values in
        an existing file unless O(allowed_key_arns) vouches for the file's keys. A file replaced in
        the repository could carry a key someone else controls, and new secrets would join it. When
        it resolves to other keys than the file's (an alias re-pointed to a new key), the whole file
        is rewrapped.
      - Without it (removals, clear values, or new values vouched for by O(allowed_key_arns)), the
        file keeps its own keys.
    type: list
    elements: str
  encryption_context:
    description:
      - The encryption context of every value, a mapping such as C(env) to V(prod). Readers can require it (the
        vars plugin's C(encryption_context)), which binds a file to where it may be used.
      - Defaults to the file's own (V({}) for a new file). A different context rewraps the whole file.
    type: dict
  values:
    description:
      - Keys to set to encrypted values. Nested mappings give nested keys (a mapping C(api) holding
        C(token) sets C(api.token)). Any other value (a string, number, boolean, null or list) is
        encrypted as one value, keeping its type.
      - The task's parameters are C(no_log) for this option.
    type: dict
  clear_values:
    description:
      - Keys to set to clear-text values (not secret, readable in the file), nested as for O(values).
    type: dict
  remove:
    description:
      - Keys to remove, as V(db.password) or as a list of keys (V([db, password])) for keys that hold
        dots. A key that is not there is not an error. Mappings left empty are removed too.
    type: list
    elements: raw
    default: []
  src:
    description:
      - A plain YAML or JSON vars file on the controller (an ansible-vault file works when the vault
        secret is given to the run) whose values are all encrypted into O(path), except the
        O(clear_keys). Keys also given in O(values) take the value from O(values).
      - O(src) is read, never changed or removed; remove it yourself once O(path) is in place.
    type: path
  clear_keys:
    description:
      - Keys of O(src) written in clear text instead of encrypted, as for O(remove).
    type: list
    elements: raw
    default: []
  src_secrets:
    description:
      - Which values of O(src) are encrypted. V(all) (besides O(clear_keys)), or V(vaulted), only those
        that were inline C(!vault) values in O(src) (every value of a whole-file vault), the
        others being written in clear text. V(vaulted) turns a vars file with inline vault values into
        an envelope vars file with the same secret and clear keys.
    type: str
    choices: [all, vaulted]
    default: all
  allowed_key_arns:
    description:
      - Key ARNs an existing file may be wrapped under for new or changed encrypted values to join
        its data key without O(key_id). Defaults to the P(envelope.kms.vars#vars) plugin's
        C(allowed_key_arns) (ansible.cfg C([envelope_kms_vars]) or E(ENVELOPE_KMS_VARS_ALLOWED_KEY_ARNS)).
      - With neither this nor O(key_id), adding or changing encrypted values in an existing file fails
        before any KMS call.
    type: list
    elements: str
  mode:
    description:
      - The permissions of a new file (default V('0600')), as an octal string such as V('0640').
        An existing file keeps its own unless this is given; given, it is applied (a change) even
        when no value changes.
    type: raw
extends_documentation_fragment:
  - envelope.kms.attributes.CONTROLLER_ACTION
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
attributes:
  check_mode:
    description: Reports the keys that would change, decrypting the existing file but encrypting nothing
      (no C(GenerateDataKey)) and writing nothing.
    support: full
  diff_mode:
    description: One line per key, saying whether it is encrypted, with a short hash of its text in the
      file (of the ciphertext for a secret). Values are never shown.
    support: full
requirements:
  - boto3, botocore, PyYAML and the aws-encryption-sdk Python library (3.3 or later) on the controller
notes:
  - Values must be JSON types. Mapping keys must be non-empty strings.
  - Every option is checked before the first KMS call. A tampered file, a value moved or swapped, or
    a file under a key the credentials cannot use fails with one line naming the file and the key,
    and the file is left as it was.
  - In check mode a task that would create a key (M(envelope.kms.key)) returns its id as
    null. Given such a null O(key_id) (or a null entry), or an alias that names no key yet, the
    action warns, naming the key, and reports what it would write (every encrypted value of an
    existing file would be rewrapped). Outside check mode a null or empty key id is an error before
    any KMS call (leaving O(key_id) out keeps the file's own keys).
seealso:
  - plugin: envelope.kms.vars
    plugin_type: vars
  - module: envelope.kms.load_vars
  - module: envelope.kms.rewrap
"""

EXAMPLES = r"""
- name: Create or update the production secrets
  envelope.kms.vars_file:
    path: group_vars/prod/secrets.kms.yml
    key_id:
      - alias/ansible-prod
      - arn:aws:kms:eu-west-1:111122223333:alias/ansible-prod-dr
    encryption_context:
      env: prod
    values:
      db_password: "{{ new_db_password }}"
      api:
        token: "{{ new_api_token }}"
    clear_values:
      db_host: db.prod.internal
  delegate_to: localhost
  run_once: true

- name: Remove a secret that is no longer used
  envelope.kms.vars_file:
    path: group_vars/prod/secrets.kms.yml
    remove:
      - api.token
  delegate_to: localhost
  run_once: true

- name: After re-pointing the alias to a new key, rewrap every value under it
  envelope.kms.vars_file:
    path: group_vars/prod/secrets.kms.yml
    key_id: alias/ansible-prod
  delegate_to: localhost
  run_once: true

- name: Encrypt an existing plain vars file (the plain file is left for you to delete)
  envelope.kms.vars_file:
    path: group_vars/prod/secrets.kms.yml
    src: group_vars/prod/secrets.yml
    clear_keys:
      - db_host
    key_id: alias/ansible-prod
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
path:
  description: The file written (or that would be written).
  returned: always
  type: str
  sample: /srv/playbooks/group_vars/prod/secrets.kms.yml
key_arns:
  description:
    - The KMS key ARNs that wrap the file's data key.
    - In check mode, null for each key that is not known yet (see the notes), after the others.
  returned: always
  type: list
  elements: str
encryption_context:
  description: The encryption context of the file's values.
  returned: always
  type: dict
added:
  description: Keys that were not in the file.
  returned: always
  type: list
  elements: str
  sample: [db_password]
updated:
  description: Keys whose value changed (or moved between encrypted and clear).
  returned: always
  type: list
  elements: str
  sample: [api.token]
removed:
  description: Keys removed.
  returned: always
  type: list
  elements: str
rewrapped:
  description: Encrypted keys whose value did not change but that were re-encrypted under a new data key
    (other O(key_id) or O(encryption_context)).
  returned: always
  type: list
  elements: str
unchanged:
  description: Keys given in the task whose value was already the one in the file (their text is kept).
  returned: always
  type: list
  elements: str
"""
