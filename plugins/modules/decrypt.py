#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: decrypt
short_description: Decrypt a KMS envelope file on the host
version_added: 0.1.0
description:
  - Decrypts an envelope file (an AWS Encryption SDK message, as written by M(envelope.kms.copy),
    M(envelope.kms.rewrap), C(aws-encryption-cli) or any AWS Encryption SDK) on the managed host,
    with the host's own AWS credentials (for example an EC2 instance role), into a plaintext file
    O(dest), or returns the plaintext as RV(content).
  - The wrapped data key is sent to KMS (one C(Decrypt) call); the file is then decrypted locally.
  - Before any plaintext is released, the file must carry the O(encryption_context) pairs asked for,
    be wrapped under an allowed key (O(allowed_key_arns) or O(discovery_account_ids)), authenticate
    completely and end right after the message.
  - Plaintext is written to a private temporary file next to O(dest) that replaces O(dest) only
    once everything verified. On any failure (tampered, truncated or foreign file, bytes after the
    message, wrong context, key not allowed or unusable) the task fails with a one-line message and
    an existing O(dest) is left untouched.
  - The temporary file is named C(.NAME.envelope-kms-HOST-PID-RANDOM.tmp). A run killed while it
    writes (SIGKILL, power loss) cannot remove it; the next write in the directory of O(dest) removes
    such left-over files when it can prove they are stale (written on this host by a process that no
    longer exists, a regular file owned by the same user) and leaves any other file alone.
  - Idempotent. When O(dest) exists, the decrypted plaintext is compared with it chunk by chunk in
    constant memory (one KMS C(Decrypt)); if it is the same, O(dest) is not rewritten and only its
    attributes are managed. When the sizes alone prove a difference, no comparison is made.
  - Requires the C(aws-encryption-sdk) Python library (3.3 or later) on the host, besides boto3.
author:
  - envelope.kms developers (!UNKNOWN)
options:
  src:
    description:
      - Path of the envelope file on the host.
    type: path
    required: true
  dest:
    description:
      - Path of the plaintext file to write on the host. Its directory must exist.
      - Must not be O(src) itself (the same file, however it is spelled), which is refused.
      - At least one of O(dest) and O(return_content=true) is required.
    type: path
  mode:
    description:
      - The permissions of O(dest), as in M(ansible.builtin.file), for example V('0640') or V(u=rw,g=r).
      - If not specified, a new O(dest) is created with mode V('0600') (plaintext is private by
        default). An existing O(dest) that belongs to the user the module runs as keeps its mode
        (and owner) when its content is replaced; a file of another owner passes on neither (it
        may have been planted in a shared directory), so the new file gets V('0600') and the
        module's user unless O(mode), O(owner) and O(group) say otherwise (a warning says so).
      - The mode, O(owner) and O(group) are checked before anything is read or written (a mode
        such as V('0999') or V(u+rwz), a user or group that does not exist, fail the task) and are
        set on the private temporary file before it replaces O(dest), so O(dest) never holds the
        plaintext with other permissions, not even for a moment.
    type: raw
  follow:
    description:
      - What to do when O(dest) is a symbolic link, as in M(ansible.builtin.copy).
      - V(false) replaces the link itself with the plaintext file; the file it pointed to is not
        read, shown in a diff or changed, and its mode and owner are not passed on.
      - V(true) writes the file the link points to, and manages its attributes.
    type: bool
    default: false
  return_content:
    description:
      - Return the plaintext as RV(content).
      - The task must set C(no_log=true) so the plaintext stays out of the output and logs; the
        registered variable still holds it. Without it the task fails.
      - C(ANSIBLE_DEBUG=1) prints every module's raw output whatever C(no_log) says (as ansible-core
        documents), so never turn it on for a run that uses this option with real secrets.
      - At most 64 MiB of plaintext can be returned.
    type: bool
    default: false
  content_encoding:
    description:
      - How RV(content) holds the plaintext. V(text) requires UTF-8 text; V(base64) works for any data.
    type: str
    choices: [text, base64]
    default: text
  diff_plaintext:
    description:
      - In diff mode, also show the old and new plaintext (up to 64 KiB each). By default the diff
        shows metadata only (sizes, mode, wrapping keys, encryption context).
    type: bool
    default: false
extends_documentation_fragment:
  - ansible.builtin.files
  - envelope.kms.decrypt_policy
  - envelope.kms.decrypt_policy.keys
  - envelope.kms.attributes
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
attributes:
  check_mode:
    support: full
    details: Check mode decrypts (one KMS C(Decrypt), which changes nothing) to verify the file and predict the change, and writes nothing.
  platform:
    support: full
    platforms: posix
requirements:
  - aws-encryption-sdk >= 3.3.0, boto3 and botocore on the host that runs the module, which calls KMS with its own AWS credentials
notes:
  - The KMS C(Decrypt) call is made by the host, so the host needs C(kms:Decrypt) on the wrapping key.
    To decrypt on the controller instead, use the P(envelope.kms.decrypt#lookup) lookup.
  - In check mode a task that would create a key returns its ARN as null. A null O(allowed_key_arns),
    or its null entries, are then left out, with a warning (no file can be wrapped under a key that
    does not exist yet). When no entry is left, O(src) is not decrypted and the task reports a
    change, from the header alone. Outside check mode a null entry, or a null O(allowed_key_arns)
    (which is not the same as leaving it out), is an error, before any KMS call.
seealso:
  - module: envelope.kms.copy
  - plugin: envelope.kms.decrypt
    plugin_type: lookup
"""

EXAMPLES = r"""
- name: Decrypt an application secret on the host
  envelope.kms.decrypt:
    src: /etc/app/secret.env.enc
    dest: /etc/app/secret.env
    owner: app
    group: app
    mode: "0600"
    encryption_context:
      app: billing
    allowed_key_arns:
      - arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab

- name: Read a token into a variable (no_log is required)
  envelope.kms.decrypt:
    src: /etc/app/token.enc
    return_content: true
    discovery_account_ids:
      - "123456789012"
  register: token
  no_log: true

- name: Use it
  ansible.builtin.uri:
    url: https://api.example.com/ping
    headers:
      Authorization: "Bearer {{ token.content }}"
  no_log: true
"""

RETURN = r"""
src:
  description: The envelope file.
  returned: always
  type: str
  sample: /etc/app/secret.env.enc
dest:
  description: The plaintext file.
  returned: when O(dest) is given
  type: str
  sample: /etc/app/secret.env
key_arns:
  description: The KMS keys the data key is wrapped under, from the authenticated header.
  returned: always
  type: list
  elements: str
  sample: [arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab]
encryption_context:
  description: The file's whole encryption context.
  returned: always
  type: dict
  sample: {app: billing, env: prod}
algorithm:
  description: The AWS Encryption SDK algorithm suite of the file.
  returned: always
  type: str
  sample: AES_256_GCM_HKDF_SHA512_COMMIT_KEY
content:
  description:
    - The plaintext, as UTF-8 text or base64 (O(content_encoding)).
    - Null in check mode when O(src) is not decrypted, see the notes.
    - Only with C(no_log) on the task, so it is hidden from the output; read it from the registered variable.
  returned: when O(return_content=true)
  type: str
  sample: db_password=correct horse battery staple
content_encoding:
  description: The encoding of RV(content).
  returned: when O(return_content=true)
  type: str
  sample: text
state:
  description: The type of O(dest) after the task (V(file)), as in M(ansible.builtin.file).
  returned: when O(dest) exists
  type: str
  sample: file
size:
  description: The size of O(dest) in bytes.
  returned: when O(dest) exists
  type: int
  sample: 42
mode:
  description: The permissions of O(dest).
  returned: when O(dest) exists
  type: str
  sample: "0600"
owner:
  description: The owner of O(dest).
  returned: when O(dest) exists
  type: str
  sample: app
group:
  description: The group of O(dest).
  returned: when O(dest) exists
  type: str
  sample: app
uid:
  description: The owner's user id.
  returned: when O(dest) exists
  type: int
  sample: 1001
gid:
  description: The group id.
  returned: when O(dest) exists
  type: int
  sample: 1001
secontext:
  description: The SELinux context of O(dest).
  returned: when O(dest) exists and SELinux is enabled
  type: str
  sample: system_u:object_r:etc_t:s0
"""

from ansible.module_utils.basic import missing_required_lib
from ansible.module_utils.common.warnings import warn

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.envelope.kms.plugins.module_utils.decrypt import (
    Decryption,
    known_allowed_keys,
    undecrypted_result,
)
from ansible_collections.envelope.kms.plugins.module_utils.envelope import (
    ESDK_IMPORT_ERROR,
    HAS_ESDK,
    DecryptPolicy,
    Engine,
    decrypt_policy_argument_spec,
    inspect_header,
)
from ansible_collections.envelope.kms.plugins.module_utils.errors import module_errors
from ansible_collections.envelope.kms.plugins.module_utils.kms import given_as_null


def main():
    policy_spec = decrypt_policy_argument_spec()
    module = AnsibleAWSModule(
        argument_spec=dict(
            src=dict(type="path", required=True),
            dest=dict(type="path"),
            mode=dict(type="raw"),
            follow=dict(type="bool", default=False),
            return_content=dict(type="bool", default=False),
            content_encoding=dict(type="str", choices=["text", "base64"], default="text"),
            diff_plaintext=dict(type="bool", default=False),
            **policy_spec["argument_spec"],
        ),
        mutually_exclusive=policy_spec["mutually_exclusive"],
        required_by=policy_spec["required_by"],
        add_file_common_args=True,
        supports_check_mode=True,
    )
    if not HAS_ESDK:
        module.fail_json(msg=missing_required_lib("aws-encryption-sdk"), exception=ESDK_IMPORT_ERROR)
    if not module.params["dest"] and not module.params["return_content"]:
        module.fail_json(msg="one of dest or return_content=true is required")
    if module.params["return_content"] and not module.no_log:
        # A module cannot hide one key of its result: the task's no_log hides the whole result from
        # the output and logs while the registered variable keeps it.
        module.fail_json(msg="return_content=true returns the plaintext: set no_log: true on the task so it "
                             "stays out of the output and logs (the registered result still holds it)")

    with module_errors(module, f"cannot decrypt {module.params['src']}"):
        # ansible-core's warn, not module.warn: see key_rotation.py
        given_null = module.params["allowed_key_arns"] is None and given_as_null("allowed_key_arns")
        if not known_allowed_keys(module.params, given_null, module.check_mode, warn):
            module.exit_json(**undecrypted_result(module.params, inspect_header(module.params["src"]), warn))
        policy = DecryptPolicy.from_options(module.params)  # checked before any client is made
        engine = Engine.for_aws(module)  # makes clients, calls nothing
        result = Decryption(module, engine, engine.policy(policy)).run()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
