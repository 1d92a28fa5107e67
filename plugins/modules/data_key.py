#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: data_key
short_description: Write a KMS data key, wrapped under a KMS key, to a file
version_added: 0.1.0
description:
  - The "create a data key" step of KMS envelope encryption, for applications that encrypt their own
    data and keep the wrapped data key beside it. Like
    C(aws kms generate-data-key-without-plaintext --query CiphertextBlob), but idempotent.
  - Writes the encrypted data key (the KMS C(CiphertextBlob)) to O(dest) on the host, raw or base64.
    The plaintext data key is never written anywhere, and never returned unless
    O(return_plaintext=true).
  - KMS keeps no copy of data keys, so the file is the data key. An existing O(dest) is checked with
    one KMS C(Decrypt) with the O(encryption_context) (the plaintext key stays in the module's memory).
    When it holds a data key of the requested length wrapped under the key O(key_id) resolves to,
    it is kept. When it holds such a data key wrapped under one of O(allowed_key_arns) (for example
    the previous key after the alias in O(key_id) was re-pointed), it is rewrapped with KMS
    C(ReEncrypt), so the data key itself, and whatever it encrypts, stays the same; a blob in the
    other O(encoding) is re-encoded.
  - Anything else at O(dest) (a blob under a KMS key that is neither O(key_id) nor in
    O(allowed_key_arns), a blob that does not decrypt with this O(encryption_context), a data key
    of another length, a file that is no KMS ciphertext blob, or a blob KMS refuses to decrypt) makes
    the task fail and is left untouched, unless O(force=true). Replacing it would make whatever the
    old data key encrypts unreadable; adopting a blob under a foreign key would hand the
    application a data key that whoever planted the file may know.
  - A symbolic link at O(dest) is refused unless O(follow=true) (use the file it points to) or
    O(force=true) (replace the link itself with a new data key file).
  - Runs on the host, with the host's AWS credentials. It needs C(kms:DescribeKey) and
    C(kms:GenerateDataKeyWithoutPlaintext) (C(kms:GenerateDataKey) with O(return_plaintext=true)),
    C(kms:Decrypt) to check an existing file, and C(kms:ReEncrypt*) to rewrap one.
  - The file is written to a temporary file beside O(dest) and renamed over it.
author:
  - envelope.kms developers (!UNKNOWN)
options:
  dest:
    description:
      - Path of the file holding the wrapped data key. Its directory must exist.
    type: path
    required: true
  key_id:
    description:
      - The KMS key to wrap the data key under, as a key id, key ARN, alias name or alias ARN.
        An alias is resolved to the key it points at now.
      - It must be an enabled symmetric encryption key.
    type: str
    required: true
  key_spec:
    description:
      - The length of the data key, as KMS names it. V(AES_256) is 32 bytes, V(AES_128) 16 bytes.
      - Mutually exclusive with O(number_of_bytes). When neither is given, V(AES_256) is used.
    type: str
    choices: [AES_256, AES_128]
  number_of_bytes:
    description:
      - The length of the data key in bytes, from 1 to 1024, instead of O(key_spec).
    type: int
  encryption_context:
    description:
      - Non-secret key/value pairs bound to the wrapped data key. Decrypting it later requires
        exactly the same pairs. They are logged by CloudTrail, so never put secrets here.
      - Changing them for an existing O(dest) needs O(force=true), since KMS cannot tell a blob
        made with other pairs from a damaged one.
    type: dict
    default: {}
  allowed_key_arns:
    description:
      - ARNs of other KMS keys whose data keys this task may take over. An existing O(dest) wrapped
        under one of them is rewrapped under O(key_id) with KMS C(ReEncrypt), keeping the data key.
      - List the key O(key_id) pointed at before a rotation, never a key you do not control.
    type: list
    elements: str
    default: []
  follow:
    description:
      - When O(dest) is a symbolic link, use the file it points to (read, rewritten, attributes).
      - When V(false) a link at O(dest) fails the task unless O(force=true), which replaces the link.
    type: bool
    default: false
  encoding:
    description:
      - V(raw) writes the blob's bytes, as the tutorial's C(base64 --decode) does.
      - V(base64) writes it as one line of base64 text.
    type: str
    choices: [raw, base64]
    default: raw
  force:
    description:
      - Always generate a new data key and replace O(dest), even when it already holds a good one.
        The task then reports a change on every run.
      - The old data key is lost with the old file (see O(backup)).
    type: bool
    default: false
  backup:
    description:
      - Keep a copy of the file, with a timestamp in its name, before replacing it.
    type: bool
    default: false
  return_plaintext:
    description:
      - Also return the plaintext data key (base64) as RV(plaintext), for a following task that
        encrypts with it. It is still never written to disk.
      - The task must have C(no_log) set to true, so the key is never shown or logged; the module
        refuses otherwise.
      - C(ANSIBLE_DEBUG=1) prints every module's raw output whatever C(no_log) says (as ansible-core
        documents), so never turn it on for a run that uses this option with real secrets.
      - Uses KMS C(GenerateDataKey) instead of C(GenerateDataKeyWithoutPlaintext) when a new data key is made.
    type: bool
    default: false
  mode:
    description:
      - The permissions of the file, as in M(ansible.builtin.file).
      - When not given, a new file is created with V(0600); a replaced file keeps its mode (and
        owner) only when it belongs to the user the module runs as, otherwise the new file gets
        V(0600) and that user (a warning says so).
      - Mode, O(owner) and O(group) are checked before any KMS call and set on the temporary file
        before it replaces O(dest).
    type: raw
notes:
  - In check mode, an existing file is still checked with KMS C(Decrypt), which changes nothing;
    no data key is generated and nothing is rewrapped or written.
  - In check mode a task that would create a key returns its id as null. Given such a null O(key_id),
    or one that names no key, the module warns, naming the key, and reports what it would do with a
    key that does not exist yet (a missing file would get a new data key; an existing one is under
    another key). Null entries of O(allowed_key_arns) are left out, with a warning. Outside check mode
    all of these are errors, before any KMS call.
  - C(ciphertext_blob) and the file's content are not secret without KMS access to the key, but keep
    them with the data they protect.
extends_documentation_fragment:
  - ansible.builtin.files
  - envelope.kms.attributes
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Create a data key for the application, wrapped under its KMS key
  envelope.kms.data_key:
    dest: /etc/app/.key/encrypted_data_key
    key_id: alias/kms-data-key-demo
    key_spec: AES_256
    encryption_context:
      app: billing
    owner: app
    mode: "0600"

- name: After the alias was re-pointed to a new key, rewrap the same data key under it
  envelope.kms.data_key:
    dest: /etc/app/.key/encrypted_data_key
    key_id: alias/kms-data-key-demo
    allowed_key_arns:
      - arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab  # the previous key
    encryption_context:
      app: billing

- name: The same data key as base64 text, for a configuration file
  envelope.kms.data_key:
    dest: /etc/app/data_key.b64
    key_id: alias/kms-data-key-demo
    encoding: base64
  register: data_key

- name: Show the wrapped key (not secret without access to the KMS key)
  ansible.builtin.debug:
    msg: "{{ data_key.ciphertext_blob }}"

- name: Get the plaintext data key too, for a task that encrypts with it
  envelope.kms.data_key:
    dest: /etc/app/.key/encrypted_data_key
    key_id: alias/kms-data-key-demo
    encryption_context:
      app: billing
    return_plaintext: true
  no_log: true
  register: plaintext_key

- name: Replace the data key (data encrypted under the old one must be re-encrypted first)
  envelope.kms.data_key:
    dest: /etc/app/.key/encrypted_data_key
    key_id: alias/kms-data-key-demo
    encryption_context:
      app: billing
    force: true
    backup: true
"""

RETURN = r"""
dest:
  description: Path of the data key file.
  returned: always
  type: str
  sample: /etc/app/.key/encrypted_data_key
key_id:
  description:
    - Id of the KMS key the data key is wrapped under (what O(key_id) resolved to).
    - Null in check mode for a key that is not known yet, see the notes.
  returned: always
  type: str
  sample: 6fa6043b-2fd4-433b-83a5-3f4193d7d1a6
key_arn:
  description: ARN of that KMS key (null when RV(key_id) is).
  returned: always
  type: str
  sample: arn:aws:kms:us-east-1:123411223344:key/6fa6043b-2fd4-433b-83a5-3f4193d7d1a6
number_of_bytes:
  description: Length of the data key in bytes.
  returned: always
  type: int
  sample: 32
key_spec:
  description: The key spec asked for, or null when O(number_of_bytes) was given.
  returned: always
  type: str
  sample: AES_256
encryption_context:
  description: The encryption context bound to the wrapped data key.
  returned: always
  type: dict
  sample: {"app": "billing"}
encoding:
  description: How the blob is stored in the file.
  returned: always
  type: str
  sample: raw
operation:
  description:
    - What the task did (or would do in check mode).
    - V(none) kept the file; V(generate) made a new data key; V(reencrypt) rewrapped the same data key
      under the requested KMS key; V(reencode) rewrote the same blob in the requested encoding.
    - Changes to the file's attributes alone leave it V(none).
  returned: always
  type: str
  sample: none
ciphertext_blob:
  description:
    - The wrapped data key (the KMS CiphertextBlob), base64 encoded, as in the file.
    - Null in check mode when a new blob would be made.
  returned: always
  type: str
  sample: AQIDAHjb6ZPYMrzsV0M6lD/VLvvR9+UjqXw/2u9uYRnkwLQPbAF0dSrp0aWe4HMcTbZJz/iTAAAAfjB8BgkqhkiG9w0BBwagbzBt
plaintext:
  description:
    - The plaintext data key, base64 encoded. Secret.
    - Null in check mode when a new data key would be made.
  returned: when O(return_plaintext=true)
  type: str
  sample: VALUE_SPECIFIED_IN_NO_LOG_PARAMETER
backup_file:
  description: Name of the copy of the old file, when O(backup=true) made one.
  returned: when the file was replaced with O(backup=true)
  type: str
  sample: /etc/app/.key/encrypted_data_key.2160.2026-11-29@17:00:00~
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.envelope.kms.plugins.module_utils.data_key import DataKeyTask
from ansible_collections.envelope.kms.plugins.module_utils.errors import module_errors
from ansible_collections.envelope.kms.plugins.module_utils.kms import kms_client


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            dest=dict(type="path", required=True),
            key_id=dict(type="str", required=True),
            key_spec=dict(type="str", choices=["AES_256", "AES_128"]),
            number_of_bytes=dict(type="int"),
            encryption_context=dict(type="dict", default={}),
            allowed_key_arns=dict(type="list", elements="str", default=[], no_log=False),
            follow=dict(type="bool", default=False),
            encoding=dict(type="str", choices=["raw", "base64"], default="raw"),
            force=dict(type="bool", default=False),
            backup=dict(type="bool", default=False),
            return_plaintext=dict(type="bool", default=False),
        ),
        mutually_exclusive=[("key_spec", "number_of_bytes")],
        add_file_common_args=True,
        supports_check_mode=True,
    )
    if module.params["return_plaintext"] and not module.no_log:
        module.fail_json(msg="return_plaintext=true returns the plaintext data key: set no_log: true on the task "
                             "so it is never shown or logged")
    with module_errors(module, f"Cannot use dest {module.params['dest']}"):
        task = DataKeyTask(module, kms_client(module))  # every option checked, dest read: no KMS call yet
    with module_errors(module, f"Cannot read KMS key {module.params['key_id']}"):
        task.resolve_key()
    with module_errors(module, f"Cannot check the existing data key in {task.dest}, so it was left as it is "
                               "(force=true replaces it with a new data key)"):
        existing, plaintext = task.existing()
        action = task.action(existing)
    with module_errors(module, f"Cannot make the data key for {task.dest} with KMS key {task.key_arn}"):
        blob, plaintext = task.make(action, existing, plaintext)
    with module_errors(module, f"Cannot write {task.dest}"):
        backup_file = task.write(action, existing, blob)
    module.exit_json(**task.result(action, existing, blob, plaintext, backup_file))


if __name__ == "__main__":
    main()
