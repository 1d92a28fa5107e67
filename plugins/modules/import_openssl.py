#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: import_openssl
short_description: Turn a file encrypted by the openssl and KMS data key recipe into an envelope
version_added: 0.1.0
description:
  - For files made by the classic recipe this collection automates. It generates a data key with
    C(aws kms generate-data-key) and keeps its C(CiphertextBlob) (for example in C(.key/encrypted_data_key)).
    It takes the plaintext key from C(aws kms decrypt --output text --query Plaintext), which is base64
    text, and runs C(openssl enc -e -aes256 -k "<that base64 text>" -in file -out file.enc).
  - The module decrypts the data key blob with KMS (one C(Decrypt)), derives the AES key and IV from it
    as C(openssl enc) did, and decrypts O(src). It envelope-encrypts the result under O(key_id) with
    O(encryption_context) into O(dest), as M(envelope.kms.copy) writes envelopes (AWS Encryption SDK
    messages that M(envelope.kms.decrypt), the lookup and the SDK's own tools read).
  - The plaintext never reaches disk. It streams from the legacy decryptor into the new envelope in
    memory. The envelope goes to a private temporary file beside O(dest) and replaces it only once
    everything was read and checked (padding, and O(checksum) when given). A failure leaves O(dest)
    as it was.
  - Idempotent. When O(dest) already is an envelope under exactly the O(key_id) keys with exactly
    O(encryption_context) that decrypts to the legacy file's plaintext, nothing is written. Proving that
    costs one C(Decrypt) of the data key blob and one of O(dest). A re-run after the import reports
    no change.
  - The legacy format has no integrity protection (AES-CBC, no MAC). A wrong key, digest or passphrase
    encoding shows as bad padding, which the module checks first (from the file's last two blocks,
    before anything is read or written). About one wrong key in 256 still passes that check and gives
    garbage. The result's RV(verified) says what was checked. Give O(checksum), the digest of the
    original file (C(sha256sum file)), to prove the content before it is written; without it a task
    that writes warns.
  - O(src) and the encrypted data key file are never changed or removed. Remove them yourself once
    the envelope is deployed and tested.
  - Runs where the files are, with that machine's AWS credentials. Use C(delegate_to=localhost) for
    files on the controller, or see the C(envelope.kms.import_legacy) playbook.
author:
  - envelope.kms developers (!UNKNOWN)
requirements:
  - aws-encryption-sdk >= 3.3.0 (which brings C(cryptography)), boto3 and botocore where the module runs, which calls KMS with its own AWS credentials
options:
  src:
    description:
      - The file C(openssl enc) wrote. It starts with C(Salted__) and a salt, or is that in base64
        (made with C(-a) or C(-base64), which the module detects).
      - A binary file is streamed. A base64 file is decoded in memory first (its ciphertext, not the
        plaintext), so it may be at most 256 MiB; decode a bigger one with C(openssl base64 -d) first.
      - Files without the C(Salted__) header are refused. These are files made with C(-nosalt), with
        C(-S) under OpenSSL 3 (which then writes no header), or with a raw key (C(-K)/C(-iv)) instead
        of a passphrase.
      - One of O(src) (with O(dest)) and O(files) is required.
    type: path
  dest:
    description:
      - The envelope file to write. Its folder must exist.
      - It must not be O(src) or O(encrypted_data_key_file) (checked through links and hard links).
      - Required with O(src).
    type: path
  files:
    description:
      - Several legacy files made with the same data key, imported in one task. The data key blob is
        decrypted once for all of them (one KMS C(Decrypt)).
      - Every entry is checked before the first KMS call. No entry's dest may be the src of another entry. A file that then fails (bad padding, a
        checksum that does not match, an I/O error) gets its own failed entry in RV(results). Its dest
        is left as it was, the other files are still imported, and the task fails with one line naming
        every file that failed.
      - Mutually exclusive with O(src), O(dest) and O(checksum). O(mode), O(owner), O(group) and the
        other file options apply to every entry.
    type: list
    elements: dict
    suboptions:
      src:
        description: The legacy file, as in O(src).
        type: path
        required: true
      dest:
        description: The envelope file to write, as in O(dest). Two entries cannot share one.
        type: path
        required: true
      checksum:
        description: The digest of this file's original plaintext, as in O(checksum).
        type: str
  encrypted_data_key:
    description:
      - The recipe's data key C(CiphertextBlob) as base64 text, which is what
        C(aws kms generate-data-key --output text --query CiphertextBlob) prints.
      - It is KMS ciphertext, not a secret. Exactly one of this and O(encrypted_data_key_file) is required.
    type: str
  encrypted_data_key_file:
    description:
      - A file that holds the data key C(CiphertextBlob). It may hold the raw bytes (the recipe's
        C(| base64 --decode > .key/encrypted_data_key)) or the base64 text; the module tells them apart.
    type: path
  legacy_key_id:
    description:
      - The KMS key the data key was generated under (the recipe's C(--key-id)), as a key id, key ARN,
        alias name or alias ARN. Given, KMS refuses a blob of any other key (C(Decrypt) with C(KeyId)).
      - A key ARN or alias ARN of another region sends the C(Decrypt) to that region.
      - Not given, KMS finds the key from the blob itself (symmetric keys only).
    type: str
  data_key_encryption_context:
    description:
      - The encryption context the data key was generated with (C(generate-data-key --encryption-context)).
        The recipe uses none.
    type: dict
  passphrase_encoding:
    description:
      - How the plaintext data key was turned into the passphrase given to C(openssl enc -k).
      - V(base64) is the recipe's, the text that C(aws kms decrypt --output text --query Plaintext) prints.
        V(hex) is its hexadecimal text. V(raw) is a file of the key's bytes given with C(-kfile) or
        C(-pass file:), which read its first line up to a newline or NUL byte, as the module does.
    type: str
    choices: [base64, hex, raw]
    default: base64
  digest:
    description:
      - The digest C(openssl enc) used to derive the key (its C(-md)).
      - V(sha256) is the default of OpenSSL 1.1.0 and later. Files made with OpenSSL 1.0.x or earlier
        (or LibreSSL before 2.9) without C(-md) need V(md5).
      - A wrong digest fails as bad padding (see the description).
    type: str
    choices: [sha256, md5, sha1, sha512]
    default: sha256
  pbkdf2:
    description:
      - The file was made with C(-pbkdf2), so the key comes from PBKDF2-HMAC with O(digest), not from
        C(EVP_BytesToKey).
      - Implied by O(iterations).
    type: bool
    default: false
  iterations:
    description:
      - The C(-iter) count the file was made with. Giving it implies O(pbkdf2).
      - Not given with O(pbkdf2=true), it is 10000, the default of C(openssl enc -pbkdf2).
    type: int
  cipher:
    description:
      - The cipher the file was made with. C(-aes256) is V(aes-256-cbc).
    type: str
    choices: [aes-256-cbc, aes-192-cbc, aes-128-cbc]
    default: aes-256-cbc
  checksum:
    description:
      - The digest of the original plaintext, as C(<algorithm>:<hex digest>) (the form that
        M(ansible.builtin.get_url) takes), for example C(sha256:9f86d08...). The algorithm is one of
        V(sha256), V(sha512), V(sha384), V(sha1) or V(md5).
      - The decrypted content must match it, or the task fails and O(dest) is left as it was. It is
        checked on every run, also when O(dest) is already up to date.
      - This is the only proof that the right key was used. The legacy format carries none.
      - For O(src). Each entry of O(files) has its own.
    type: str
  key_id:
    description:
      - The KMS key(s) to wrap the new envelope's data key under, as key ids, key ARNs, alias names or
        alias ARNs, resolved with C(DescribeKey). The first generates the data key and each other one
        wraps it too, as in M(envelope.kms.copy).
      - It can be the key of the legacy data key, or any other key. The legacy blob only needs
        C(kms:Decrypt) on its own key.
      - Required. A null key id, or one that does not exist yet, is accepted in check mode only, with
        a warning (see the notes).
    type: list
    elements: str
  encryption_context:
    description:
      - The encryption context of the new envelope. Its pairs are authenticated, and M(envelope.kms.decrypt)
        can require them.
      - A different context on an existing O(dest) means it is written again.
    type: dict
    default: {}
  mode:
    description:
      - The permissions of O(dest), as in M(ansible.builtin.file), for example V('0640') or V(u=rw,g=r).
      - If not specified, a new O(dest) is created with mode V('0600'). An existing O(dest) of the user
        the module runs as keeps its mode and owner when it is rewritten; a file of another owner passes on
        neither (a warning says so).
      - Checked, with O(owner) and O(group), before any KMS call, and set on the temporary file before
        it replaces O(dest).
    type: raw
  follow:
    description:
      - When O(dest) is a symbolic link, write the file it points to (V(true)), or replace the link
        itself with the envelope (V(false), as M(ansible.builtin.copy) does by default).
    type: bool
    default: false
notes:
  - Check mode does everything but the writing. It decrypts the data key (one C(Decrypt), which changes
    nothing) and the whole legacy file in memory, checking padding and O(checksum), and compares with
    O(dest). It never calls C(GenerateDataKey).
  - In check mode a task that would create a key returns its id and ARN as null. Given such a null
    O(key_id) (or a list entry), or one that names no key, the module warns, naming the key, and
    reports a change. That key shows as null in RV(key_arns). Outside check mode these are errors,
    before any KMS call.
  - In check mode a missing folder of O(dest) gives a warning (an earlier task would create it), not a failure.
  - The diff shows O(dest) before and after (state, key ARNs, context, sizes), never content. With
    O(files) it is a list, one entry per changed file.
  - Every option, O(src)'s framing and the data key blob are checked before the first KMS call.
extends_documentation_fragment:
  - ansible.builtin.files
  - envelope.kms.attributes
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
attributes:
  check_mode:
    support: full
    details: Check mode decrypts the data key and the legacy file (which changes nothing) to verify them and predict the change, and writes nothing.
  platform:
    support: full
    platforms: posix
seealso:
  - module: envelope.kms.decrypt
  - module: envelope.kms.copy
  - module: envelope.kms.rewrap
"""

EXAMPLES = r"""
- name: Import a file of the recipe into an envelope under the application's key
  envelope.kms.import_openssl:
    src: /srv/app/secrets/db.env.enc
    encrypted_data_key_file: /srv/app/secrets/.key/encrypted_data_key
    dest: /srv/app/secrets/db.env.kms
    key_id: alias/app-secrets
    encryption_context:
      app: billing
    checksum: sha256:0b5a0a3a6e1c2f0e9c3b0d8f1e2a4b6c8d0e2f4a6b8c0d2e4f6a8b0c2d4e6f8a
    mode: "0640"
    owner: root
    group: billing
  become: true

- name: Files made on the controller with OpenSSL 1.0 (md5), the blob pasted as base64 text
  envelope.kms.import_openssl:
    src: "{{ playbook_dir }}/legacy/app.conf.enc"
    encrypted_data_key: "AQIDAHh3ZXJ0eXVpb3BhZ...=="
    digest: md5
    dest: "{{ playbook_dir }}/files/app.conf.kms"
    key_id: alias/app-secrets
  delegate_to: localhost

- name: Every file of the recipe's folder, one KMS Decrypt for the data key
  envelope.kms.import_openssl:
    files:
      - src: /srv/app/secrets/db.env.enc
        dest: /srv/app/envelopes/db.env
        checksum: sha256:0b5a0a3a6e1c2f0e9c3b0d8f1e2a4b6c8d0e2f4a6b8c0d2e4f6a8b0c2d4e6f8a
      - src: /srv/app/secrets/tls.key.enc
        dest: /srv/app/envelopes/tls.key
    encrypted_data_key_file: /srv/app/secrets/.key/encrypted_data_key
    key_id: alias/app-secrets

- name: A file made with openssl enc -aes-256-cbc -pbkdf2 -iter 100000
  envelope.kms.import_openssl:
    src: /etc/app/token.enc
    encrypted_data_key_file: /etc/app/.key/encrypted_data_key
    iterations: 100000
    dest: /etc/app/token.kms
    key_id: alias/app-secrets
  register: imported

- name: Then decrypt it where the application needs it
  envelope.kms.decrypt:
    src: /etc/app/token.kms
    dest: /etc/app/token
    allowed_key_arns: "{{ imported.key_arns }}"
    mode: "0600"
"""

RETURN = r"""
results:
  description:
    - One entry per file, in the order of O(files) (one entry for O(src)).
    - With O(src), the entry's keys are also returned at the top level of the result.
  returned: always
  type: list
  elements: dict
  contains:
    src:
      description: The legacy file, as given.
      type: str
      returned: always
      sample: /srv/app/secrets/db.env.enc
    dest:
      description: The envelope file, as given.
      type: str
      returned: always
      sample: /srv/app/secrets/db.env.kms
    changed:
      description: Whether the envelope was (in check mode, would be) written, or its attributes changed.
      type: bool
      returned: always
      sample: true
    failed:
      description: Whether this file failed. Its dest is then left as it was.
      type: bool
      returned: always
      sample: false
    msg:
      description: Why the file failed.
      type: str
      returned: when failed
      sample: "cannot import /srv/app/db.env.enc: the padding is wrong after decryption: wrong data key or ..."
    plaintext_size:
      description: The size in bytes of the decrypted content.
      type: int
      returned: unless the file failed before it was decrypted
      sample: 1432
    size:
      description: The size in bytes of the envelope at dest.
      type: int
      returned: when dest exists, unless check mode or the file failed
      sample: 1901
    base64:
      description: Whether the legacy file was base64 text (C(openssl enc -a)).
      type: bool
      returned: unless the file failed before it was decrypted
      sample: false
    verified:
      description:
        - What proved the decryption right. V(checksum) means the file's checksum matched.
        - V(padding) means only the padding was checked, which a wrong key still passes about once in 256 tries.
      type: str
      returned: always
      sample: padding
src:
  description: The legacy file, as given.
  returned: with O(src)
  type: str
  sample: /srv/app/secrets/db.env.enc
dest:
  description: The envelope file, as given.
  returned: with O(src)
  type: str
  sample: /srv/app/secrets/db.env.kms
key_arns:
  description:
    - The KMS key ARNs the envelope is wrapped under, in the order of O(key_id).
    - In check mode a key not known yet (see the notes) is null.
  returned: always
  type: list
  elements: str
  sample: ["arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"]
encryption_context:
  description: The envelope's encryption context.
  returned: always
  type: dict
  sample: {"app": "billing"}
data_key_arn:
  description: The KMS key that decrypted the legacy data key blob, as KMS reported it.
  returned: always
  type: str
  sample: arn:aws:kms:us-east-1:111122223333:key/0987dcba-09fe-87dc-65ba-ab0987654321
plaintext_size:
  description: The size in bytes of the decrypted content.
  returned: with O(src), unless it failed before it was decrypted
  type: int
  sample: 1432
size:
  description: The size in bytes of O(dest), the envelope.
  returned: with O(src), unless check mode or the import failed
  type: int
  sample: 1901
verified:
  description:
    - What proved the decryption right. V(checksum) means O(checksum) matched.
    - V(padding) means only the padding was checked, which a wrong key still passes about once in 256 tries.
  returned: with O(src)
  type: str
  sample: padding
base64:
  description: Whether O(src) was base64 text (C(openssl enc -a)).
  returned: with O(src), unless it failed before it was decrypted
  type: bool
  sample: false
legacy:
  description: How the legacy file was read.
  returned: always
  type: dict
  contains:
    cipher:
      description: The cipher, from O(cipher).
      type: str
      returned: always
      sample: aes-256-cbc
    digest:
      description: The key derivation digest, from O(digest).
      type: str
      returned: always
      sample: sha256
    kdf:
      description: V(EVP_BytesToKey) (the default of C(openssl enc)) or V(pbkdf2).
      type: str
      returned: always
      sample: EVP_BytesToKey
    iterations:
      description: The PBKDF2 iteration count, null for V(EVP_BytesToKey).
      type: int
      returned: always
      sample: null
"""

from ansible.module_utils.basic import missing_required_lib
from ansible.module_utils.common.warnings import warn

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.envelope.kms.plugins.module_utils.envelope import ESDK_IMPORT_ERROR, HAS_ESDK, Engine
from ansible_collections.envelope.kms.plugins.module_utils.errors import module_errors
from ansible_collections.envelope.kms.plugins.module_utils.import_openssl import Import, failure_message
from ansible_collections.envelope.kms.plugins.module_utils.kms import given_as_null, wanted_key_ids


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            src=dict(type="path"),
            dest=dict(type="path"),
            checksum=dict(type="str"),
            files=dict(type="list", elements="dict", options=dict(
                src=dict(type="path", required=True),
                dest=dict(type="path", required=True),
                checksum=dict(type="str"),
            )),
            encrypted_data_key=dict(type="str", no_log=False),
            encrypted_data_key_file=dict(type="path", no_log=False),
            legacy_key_id=dict(type="str", no_log=False),
            data_key_encryption_context=dict(type="dict", no_log=False),
            passphrase_encoding=dict(type="str", choices=["base64", "hex", "raw"], default="base64", no_log=False),
            digest=dict(type="str", choices=["sha256", "md5", "sha1", "sha512"], default="sha256"),
            pbkdf2=dict(type="bool", default=False),
            iterations=dict(type="int"),
            cipher=dict(type="str", choices=["aes-256-cbc", "aes-192-cbc", "aes-128-cbc"], default="aes-256-cbc"),
            key_id=dict(type="list", elements="str", no_log=False),  # required: see wanted_key_ids
            encryption_context=dict(type="dict", default={}),
            mode=dict(type="raw"),
            follow=dict(type="bool", default=False),
        ),
        mutually_exclusive=[("encrypted_data_key", "encrypted_data_key_file"), ("files", "src"), ("files", "dest"),
                            ("files", "checksum")],
        required_one_of=[("encrypted_data_key", "encrypted_data_key_file"), ("src", "files")],
        required_together=[("src", "dest")],
        add_file_common_args=True,
        supports_check_mode=True,
    )
    if not HAS_ESDK:
        module.fail_json(msg=missing_required_lib("aws-encryption-sdk"), exception=ESDK_IMPORT_ERROR)
    params = module.params
    with module_errors(module, f"cannot import {params['src']}" if params["src"] else "cannot import"):
        given = params["key_id"] is not None or given_as_null("key_id")
        params["key_id"] = wanted_key_ids(params["key_id"], given, module.check_mode)
        task = Import(module, Engine.for_aws(module), warn)  # every option and file checked; no KMS call yet
        outcome, failures = task.run()
    if failures:
        module.fail_json(msg=failure_message(failures, len(outcome["results"])), **outcome)
    module.exit_json(**outcome)


if __name__ == "__main__":
    main()
