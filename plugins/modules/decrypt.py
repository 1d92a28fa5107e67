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
      - At least one of O(dest) and O(return_content=true) is required.
    type: path
  mode:
    description:
      - The permissions of O(dest), as in M(ansible.builtin.file), for example V('0640') or V(u=rw,g=r).
      - If not specified, a new O(dest) is created with mode V('0600') (plaintext is private by
        default) and an existing O(dest) keeps its mode when its content is replaced.
    type: raw
  return_content:
    description:
      - Return the plaintext as RV(content).
      - The task must set C(no_log=true) so the plaintext stays out of the output and logs; the
        registered variable still holds it. Without it the task fails.
      - At most 64 MiB of plaintext can be returned.
    type: bool
    default: false
  content_encoding:
    description:
      - How RV(content) holds the plaintext. V(text) requires UTF-8 text; V(base64) works for any data.
    type: str
    choices: [text, base64]
    default: text
  encryption_context:
    description:
      - Key/value pairs the file's encryption context must contain, with these values. Pairs the file
        has beyond these are accepted.
      - The AWS Encryption SDK does not check the context on decrypt; this module does, before any
        plaintext is written or returned.
    type: dict
  allowed_key_arns:
    description:
      - Only these KMS keys (key ARNs) may decrypt the file (the AWS Encryption SDK's strict mode).
        Aliases are not accepted here, because the key an alias points at changes on rotation while
        older files stay wrapped under the previous key.
      - Mutually exclusive with O(discovery_account_ids). Without either, any KMS key the
        credentials may use is accepted (discovery mode); restrict it where you can.
    type: list
    elements: str
  discovery_account_ids:
    description:
      - Accept any KMS key of these AWS accounts (discovery mode with a filter).
    type: list
    elements: str
  discovery_partition:
    description:
      - The AWS partition of O(discovery_account_ids). Defaults to the partition of the region
        (V(aws), V(aws-cn) or V(aws-us-gov)).
    type: str
  diff_plaintext:
    description:
      - In diff mode, also show the old and new plaintext (up to 64 KiB each). By default the diff
        shows metadata only (sizes, mode, wrapping keys, encryption context).
    type: bool
    default: false
extends_documentation_fragment:
  - ansible.builtin.files
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
notes:
  - The KMS C(Decrypt) call is made by the host, so the host needs C(kms:Decrypt) on the wrapping key.
    To decrypt on the controller instead, use the P(envelope.kms.decrypt#lookup) lookup.
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

import os
import stat

try:
    import botocore
except ImportError:
    pass  # AnsibleAWSModule reports it

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.envelope.kms.plugins.module_utils.decrypt import (
    DEFAULT_MODE,
    MAX_CONTENT_SIZE,
    MAX_DIFF_PLAINTEXT,
    DecryptInputError,
    decrypt_options,
    encode_content,
    format_mode,
    initial_mode,
    octal_mode,
    preview,
    read_head,
)
from ansible_collections.envelope.kms.plugins.module_utils.envelope import (
    ESDK_IMPORT_ERROR,
    HAS_ESDK,
    Engine,
    EnvelopeError,
    Mismatch,
    PlaintextMatcher,
    envelope_could_hold,
    inspect_header,
)


class Decryption:
    """One task: compare with dest, write when different (not in check mode), manage attributes."""

    def __init__(self, module, engine, policy):
        self.module = module
        self.engine = engine
        self.policy = policy
        self.params = module.params
        self.src = self.params["src"]
        self.dest = self.params["dest"]
        self.check_mode = module.check_mode
        self.show_plaintext = module._diff and self.params["diff_plaintext"]

    def run(self):
        result = dict(changed=False, src=self.src)
        if self.dest:
            facts, plaintext, diff = self._to_dest(result)
        else:
            plaintext, facts = self.engine.decrypt_bytes(self.src, max_size=MAX_CONTENT_SIZE, **self.policy)
            diff = None
        result.update(
            key_arns=list(facts.key_arns),
            encryption_context=facts.encryption_context,
            algorithm=facts.algorithm,
        )
        if self.params["return_content"]:
            result["content"] = encode_content(bytes(plaintext), self.params["content_encoding"])
            result["content_encoding"] = self.params["content_encoding"]
        if diff is not None and result["changed"]:
            result["diff"] = diff
        return result

    def _to_dest(self, result):
        dest = result["dest"] = self.dest
        existing = _stat(dest)
        if existing is not None and not stat.S_ISREG(existing.st_mode):
            kind = "a directory" if stat.S_ISDIR(existing.st_mode) else "not a regular file"
            raise DecryptInputError(f"dest {dest} is {kind}: give the path of the plaintext file")
        old_head = read_head(dest, MAX_DIFF_PLAINTEXT) if existing is not None and self.show_plaintext else None

        same, facts, matcher = False, None, None
        if existing is not None and not self.check_mode and _size_rules_out(self.src, existing.st_size):
            pass  # dest cannot hold this plaintext: no need to decrypt twice
        elif existing is not None or self.check_mode:
            # Keep plaintext in memory only when it is needed and cannot be read back from dest.
            keep = 0
            if self.check_mode and self.params["return_content"]:
                keep = MAX_CONTENT_SIZE
            elif self.check_mode and self.show_plaintext:
                keep = MAX_DIFF_PLAINTEXT
            # Check mode always verifies the whole file (nothing else will); otherwise the first
            # difference stops the comparison and decrypt_file verifies everything while it writes.
            same, facts, matcher = self._compare(dest, existing, stop_on_mismatch=not self.check_mode, keep=keep)

        if not same:
            result["changed"] = True
            if not self.check_mode:
                facts = self.engine.decrypt_file(self.src, dest, mode=initial_mode(self.params["mode"], existing),
                                                 **self.policy)
                if existing is not None:
                    _keep_owner(dest, existing, self.params)

        attribute_diff = {"before": {}, "after": {}}
        if os.path.exists(dest):  # in check mode a file still to be created has no attributes yet
            file_args = self.module.load_file_common_arguments(self.params, path=dest)
            result["changed"] = self.module.set_fs_attributes_if_different(file_args, result["changed"],
                                                                           diff=attribute_diff)

        diff = None
        if self.module._diff:
            diff = self._diff(dest, existing, facts, matcher, old_head, attribute_diff)

        plaintext = None
        if self.params["return_content"]:
            if self.check_mode and not same:
                plaintext = _bounded(matcher.kept, MAX_CONTENT_SIZE)
            else:
                plaintext = _bounded(read_head(dest, MAX_CONTENT_SIZE), MAX_CONTENT_SIZE)
        return facts, plaintext, diff

    def _compare(self, dest, existing, stop_on_mismatch, keep):
        """(same, facts or None, matcher): one KMS Decrypt, plaintext compared with dest as it comes."""
        expected = open(dest, "rb") if existing is not None and stat.S_ISREG(existing.st_mode) else None
        try:
            matcher = PlaintextMatcher(expected, stop_on_mismatch=stop_on_mismatch, keep=keep)
            try:
                facts = self.engine.decrypt_to(self.src, matcher.feed, **self.policy)
            except Mismatch:
                return False, None, matcher
            return matcher.finish(), facts, matcher
        finally:
            if expected is not None:
                expected.close()

    def _diff(self, dest, existing, facts, matcher, old_head, attribute_diff):
        """Metadata only (sizes, mode, owner, wrapping keys, context); plaintext only when asked."""
        before = {"path": dest, "state": "absent"}
        if existing is not None:
            before = {"path": dest, "state": "file", "size": existing.st_size,
                      "mode": format_mode(stat.S_IMODE(existing.st_mode))}
        before.update(attribute_diff["before"])
        if self.check_mode:
            size = matcher.size
            mode = attribute_diff["after"].get("mode") or before.get("mode") or self._predicted_mode()
        else:
            current = os.stat(dest)
            size, mode = current.st_size, format_mode(stat.S_IMODE(current.st_mode))
        after = dict(attribute_diff["after"], path=dest, state="file", size=size, mode=mode)
        if facts is not None:
            after.update(decrypted_from=self.src, key_arns=list(facts.key_arns),
                         encryption_context=facts.encryption_context, algorithm=facts.algorithm)
        diffs = [dict(before=before, after=after)]
        if self.show_plaintext:
            new_head = bytes(matcher.kept) if self.check_mode else read_head(dest, MAX_DIFF_PLAINTEXT)
            diffs.append(dict(
                before_header=f"{dest} (plaintext)",
                after_header=f"{dest} (plaintext)",
                before=preview(old_head, what="old plaintext"),
                after=preview(new_head, what="new plaintext"),
            ))
        return diffs

    def _predicted_mode(self):
        numeric = octal_mode(self.params["mode"])
        if numeric is not None:
            return format_mode(numeric)
        return self.params["mode"] or format_mode(DEFAULT_MODE)


def _stat(path):
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None


def _size_rules_out(src, plaintext_size):
    """True when the envelope's size proves it does not hold plaintext_size bytes (header only, no KMS)."""
    try:
        facts = inspect_header(src)
    except EnvelopeError:
        return False  # decrypting reports it, in its own words
    if not facts.frame_length:
        return False  # non-framed: only decrypting tells
    return not envelope_could_hold(facts.size, plaintext_size, facts.frame_length, facts.algorithm)


def _bounded(data, limit):
    if len(data) > limit:
        raise DecryptInputError(f"the plaintext is larger than the {limit} bytes return_content can return; use dest")
    return bytes(data)


def _keep_owner(dest, existing, params):
    """A replaced file keeps its owner and group unless new ones are asked for (as copy does);
    only possible as root, or when they are already ours."""
    uid = -1 if params["owner"] is not None else existing.st_uid
    gid = -1 if params["group"] is not None else existing.st_gid
    current = os.stat(dest)
    if (uid in (-1, current.st_uid)) and (gid in (-1, current.st_gid)):
        return
    try:
        os.chown(dest, uid, gid)
    except OSError:
        pass


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            src=dict(type="path", required=True),
            dest=dict(type="path"),
            mode=dict(type="raw"),
            return_content=dict(type="bool", default=False),
            content_encoding=dict(type="str", choices=["text", "base64"], default="text"),
            encryption_context=dict(type="dict"),
            allowed_key_arns=dict(type="list", elements="str", no_log=False),  # ARNs, not secrets
            discovery_account_ids=dict(type="list", elements="str"),
            discovery_partition=dict(type="str"),
            diff_plaintext=dict(type="bool", default=False),
        ),
        mutually_exclusive=[("allowed_key_arns", "discovery_account_ids")],
        required_by={"discovery_partition": "discovery_account_ids"},
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

    try:
        policy = decrypt_options(module.params)
        engine = Engine.for_aws(module)
        result = Decryption(module, engine, policy).run()
    except (DecryptInputError, EnvelopeError) as error:
        module.fail_json(msg=getattr(error, "message", None) or str(error))
    except OSError as error:
        module.fail_json(msg=f"cannot decrypt {module.params['src']}: {error.strerror or error}"
                             + (f" ({error.filename})" if error.filename else ""))
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        module.fail_json_aws(error, msg=f"cannot decrypt {module.params['src']}")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
