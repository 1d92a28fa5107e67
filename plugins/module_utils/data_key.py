# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Wrapped data keys (envelope.kms.data_key): reading an existing blob, a pure plan, the KMS calls.

A data key file holds a KMS CiphertextBlob: the data key wrapped under a KMS key, raw or base64.
KMS keeps no copy of data keys, so the file *is* the data key: whatever encrypted data exists under
it becomes unreadable when the file is replaced. The rules follow from that:

* an existing blob that decrypts (KMS Decrypt, with the requested encryption context) to a data key
  of the requested length under the requested key is kept;
* the same data key under another KMS key that the task allows (``allowed_key_arns``: an alias
  re-pointed) is rewrapped with KMS ReEncrypt, and the same blob in the other encoding is
  re-encoded: both keep the data key itself; a blob under any other key is never adopted (whoever
  planted it may know its data key);
* anything else (another context, another length, a damaged or foreign file) is never replaced
  unless ``force``, which always generates a new data key.

The plaintext data key only exists in this process's memory, and only leaves it when the caller
asked for it (``return_plaintext``).
"""

from __future__ import annotations

import base64
import binascii
import os
import re

from ansible.module_utils.common.warnings import warn

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code

# The light parts of the engine (no AWS Encryption SDK import: data_key does not need the library).
from ansible_collections.envelope.kms.plugins.module_utils._envelope import inputs
from ansible_collections.envelope.kms.plugins.module_utils._envelope.io import open_regular, write_file_atomic
from ansible_collections.envelope.kms.plugins.module_utils.file_attrs import (
    dest_stat,
    foreign_owner_warning,
    planned_attributes,
)
from ansible_collections.envelope.kms.plugins.module_utils.kms import (
    KmsInputError,
    find_key,
    known_key_arns,
    required_key_ref,
)

KEY_SPEC_BYTES = {"AES_256": 32, "AES_128": 16}
DEFAULT_KEY_SPEC = "AES_256"
MIN_BYTES = 1
MAX_BYTES = 1024
# KMS accepts CiphertextBlob values of 1 to 6144 bytes; a bigger file (base64 and line breaks
# included) cannot hold one, and is not read further.
MAX_BLOB_BYTES = 6144
MAX_FILE_BYTES = 2 * MAX_BLOB_BYTES
RAW = "raw"
BASE64 = "base64"
ENCODINGS = (RAW, BASE64)

_BASE64_TEXT = re.compile(rb"^[A-Za-z0-9+/\s]+={0,2}\s*$")  # base64, wrapped or not

# Actions
KEEP = "none"  # the file already holds what is wanted
GENERATE = "generate"  # a new data key (GenerateDataKeyWithoutPlaintext, or GenerateDataKey)
REENCRYPT = "reencrypt"  # same data key, rewrapped under the requested KMS key (ReEncrypt)
REENCODE = "reencode"  # same blob, written in the requested encoding

# What an existing file holds, from ``classify``.
MISSING = "missing"
VALID = "valid"  # the requested key, length and encoding
OTHER_ENCODING = "other_encoding"  # valid, but raw where base64 is wanted or the reverse
OTHER_KEY = "other_key"  # the requested length and context, wrapped under another KMS key
MISMATCH = "mismatch"  # unusable for this request: see ExistingBlob.problem


class ExistingBlob:
    """What the file at dest holds, as far as reading it (and one KMS Decrypt) could tell.

    ``blob``: the decoded CiphertextBlob (None when the file is missing or cannot hold one);
    ``encoding``: how it is stored; ``key_arn``/``length``: what KMS Decrypt reported (None when
    it was not asked or refused); ``problem``: why it cannot be used, in words.
    """

    def __init__(self, exists, blob=None, encoding=None, key_arn=None, length=None, problem=None):
        self.exists = exists
        self.blob = blob
        self.encoding = encoding
        self.key_arn = key_arn
        self.length = length
        self.problem = problem

    def facts(self):
        """Non-secret facts for results and diffs."""
        if not self.exists:
            return {}
        facts = dict(encoding=self.encoding, key_arn=self.key_arn, number_of_bytes=self.length)
        if self.problem:
            facts["problem"] = self.problem
        return facts


def requested_length(key_spec, number_of_bytes):
    """Data key length in bytes for key_spec (AES_256, AES_128) or number_of_bytes (1-1024)."""
    if key_spec is not None and number_of_bytes is not None:
        raise KmsInputError("key_spec and number_of_bytes are mutually exclusive")
    if number_of_bytes is None:
        spec = key_spec or DEFAULT_KEY_SPEC
        if spec not in KEY_SPEC_BYTES:
            raise KmsInputError(f"key_spec must be one of {', '.join(sorted(KEY_SPEC_BYTES))}, not {spec!r}")
        return KEY_SPEC_BYTES[spec]
    if not MIN_BYTES <= number_of_bytes <= MAX_BYTES:
        raise KmsInputError(f"number_of_bytes must be between {MIN_BYTES} and {MAX_BYTES}, got {number_of_bytes}")
    return number_of_bytes


def size_request(key_spec, number_of_bytes):
    """The GenerateDataKey* size parameter: KeySpec or NumberOfBytes (KMS refuses both)."""
    if number_of_bytes is not None:
        return {"NumberOfBytes": number_of_bytes}
    return {"KeySpec": key_spec or DEFAULT_KEY_SPEC}


def normalize_context(context):
    """KMS encryption context: a str->str dict (numbers become strings). KMS alone sees it, so the AWS
    Encryption SDK's reserved prefix is allowed."""
    return inputs.normalize_context(context, "encryption_context", reserved_prefix=None)


def check_key(metadata, key_id):
    """Refuse, before any data key call, a KMS key that cannot make data keys. Returns its ARN."""
    if metadata is None:
        raise KmsInputError(f"KMS key {key_id} does not exist")
    arn = metadata["Arn"]
    spec = metadata.get("KeySpec", metadata.get("CustomerMasterKeySpec", "SYMMETRIC_DEFAULT"))
    usage = metadata.get("KeyUsage", "ENCRYPT_DECRYPT")
    if spec != "SYMMETRIC_DEFAULT" or usage != "ENCRYPT_DECRYPT":
        raise KmsInputError(
            f"KMS key {key_id} ({arn}) is a {spec} key for {usage}: data keys need a symmetric encryption key "
            "(KeySpec SYMMETRIC_DEFAULT, KeyUsage ENCRYPT_DECRYPT)"
        )
    state = metadata.get("KeyState", "Enabled" if metadata.get("Enabled", True) else "Disabled")
    if state != "Enabled":
        raise KmsInputError(f"KMS key {key_id} ({arn}) is {state}: it cannot generate or decrypt data keys")
    return arn


def decode(data):
    """(blob, encoding) for the bytes of a data key file, or (None, reason).

    The stored encoding is recognised from the content: a KMS CiphertextBlob is binary (real KMS
    blobs start with a version byte), base64 text only uses its 65 characters.
    """
    if not data:
        return None, "the file is empty"
    if len(data) > MAX_FILE_BYTES:
        return None, f"the file is too large to hold a KMS ciphertext blob (at most {MAX_BLOB_BYTES} bytes)"
    if _BASE64_TEXT.match(data):
        try:
            blob = base64.b64decode(b"".join(data.split()), validate=True)
        except (binascii.Error, ValueError):
            blob = None
        if blob:
            found = BASE64
            data = blob
        else:
            found = RAW
    else:
        found = RAW
    if len(data) > MAX_BLOB_BYTES:
        return None, f"the file holds more than the {MAX_BLOB_BYTES} bytes of a KMS ciphertext blob"
    return data, found


def encode(blob, encoding):
    """File content for a CiphertextBlob: raw bytes, or base64 text with a newline (as the AWS CLI prints)."""
    if encoding == BASE64:
        return base64.b64encode(blob) + b"\n"
    return blob


def classify(existing, key_arn, length, encoding, allowed_key_arns=()):
    """MISSING, VALID, OTHER_ENCODING, OTHER_KEY or MISMATCH for an ExistingBlob. A blob under
    another KMS key is OTHER_KEY (rewrapped, the data key kept) only when that key is one of
    ``allowed_key_arns``: a blob planted under a foreign key may hold a data key its planter knows."""
    if not existing.exists:
        return MISSING
    if existing.problem or existing.blob is None:
        return MISMATCH
    if existing.length != length:
        return MISMATCH
    if existing.key_arn != key_arn:
        return OTHER_KEY if existing.key_arn in allowed_key_arns else MISMATCH
    if existing.encoding != encoding:
        return OTHER_ENCODING
    return VALID


def mismatch_problem(existing, length, key_arn=None):
    """Why a MISMATCH existing file cannot be kept, in words (key_arn: the requested key's ARN; None
    when check mode does not know it yet, and then no existing blob can be under it)."""
    if existing.problem:
        return existing.problem
    if existing.length != length:
        return f"it holds a {existing.length}-byte data key, {length} bytes were asked for"
    if existing.key_arn is not None and existing.key_arn != key_arn:
        return (f"it is wrapped under KMS key {existing.key_arn}, which is neither key_id nor one of allowed_key_arns "
                "(a data key planted under a foreign key may be known to whoever planted it); list that key in "
                "allowed_key_arns to rewrap the same data key")
    return "it is not a data key for this request"


def allowed_arns(values):
    """allowed_key_arns: key ARNs (what KMS Decrypt names a blob's key by), checked."""
    arns = []
    for value in values or ():
        if not isinstance(value, str) or not re.match(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$", value):
            raise KmsInputError(f"allowed_key_arns must hold KMS key ARNs (arn:aws:kms:REGION:ACCOUNT:key/ID), not {value!r}")
        arns.append(value)
    return tuple(arns)


def plan(state, force):
    """The action for what classify() found. MISMATCH without force is refused by the caller."""
    if force:
        return GENERATE
    return {
        MISSING: GENERATE,
        VALID: KEEP,
        OTHER_ENCODING: REENCODE,
        OTHER_KEY: REENCRYPT,
        MISMATCH: None,
    }[state]


def diff(dest, existing, action, key_arn, length, encoding, context):
    """before/after for --diff: key ARN, length, encoding, context, and whether the data key is new."""
    before = {}
    if existing.exists:
        before = dict(existing.facts(), path=dest, data_key="existing")
        if existing.key_arn is not None:
            before["encryption_context"] = context
    after = dict(path=dest, key_arn=key_arn, number_of_bytes=length, encoding=encoding, encryption_context=context,
                 data_key="new" if action == GENERATE else "existing")
    return dict(before=before, after=after)


# ---------------------------------------------------------------------------------------------
# KMS calls (client: as kms.kms_client makes it, with the collection's retry policy)


def read_existing(client, data, context):
    """ExistingBlob for the bytes of an existing file (None: no file), with at most one KMS Decrypt.

    Returns (ExistingBlob, plaintext data key or None). Only KMS's "this blob does not decrypt with
    this context" (InvalidCiphertextException) makes a MISMATCH; other errors (access denied, key
    disabled...) are raised: nobody can tell whether the blob is good, so it must not be replaced.
    Decrypt is called without KeyId so that KMS names the key that wrapped the blob.
    """
    if data is None:
        return ExistingBlob(False), None
    blob, found = decode(data)
    if blob is None:
        return ExistingBlob(True, problem=found), None
    try:
        response = client.decrypt(CiphertextBlob=blob, EncryptionContext=context)
    except is_boto3_error_code("InvalidCiphertextException"):
        return ExistingBlob(True, blob, found, problem=(
            "KMS cannot decrypt it with this encryption context (another context, or a damaged blob)")), None
    plaintext = response["Plaintext"]
    return ExistingBlob(True, blob, found, key_arn=response["KeyId"], length=len(plaintext)), plaintext


def generate(client, key_arn, context, key_spec, number_of_bytes, with_plaintext):
    """(CiphertextBlob, plaintext or None) for a new data key under key_arn."""
    params = dict(KeyId=key_arn, EncryptionContext=context, **size_request(key_spec, number_of_bytes))
    if with_plaintext:
        response = client.generate_data_key(**params)
        return response["CiphertextBlob"], response["Plaintext"]
    return client.generate_data_key_without_plaintext(**params)["CiphertextBlob"], None


def reencrypt(client, blob, key_arn, context):
    """The same data key wrapped under key_arn instead (KMS ReEncrypt: it never leaves KMS)."""
    response = client.re_encrypt(CiphertextBlob=blob, SourceEncryptionContext=context, DestinationKeyId=key_arn,
                                 DestinationEncryptionContext=context)
    return response["CiphertextBlob"]


# ---------------------------------------------------------------------------------------------
# One task: read dest, plan, apply, result


def read_dest(dest, found):
    """The bytes of the regular file at dest (``found``: its lstat, None when there is none)."""
    directory = os.path.dirname(dest) or "."
    if not os.path.isdir(directory):
        raise KmsInputError(f"The directory {directory} of dest does not exist")
    if found is None:
        return None
    try:
        with open_regular(dest, follow=False) as handle:  # never through a link swapped in since
            return handle.read(MAX_FILE_BYTES + 1)  # enough to tell it is too large
    except FileNotFoundError:
        return None
    except OSError as error:
        raise KmsInputError(f"Cannot read {dest}: {error.strerror}") from None


class DataKeyTask:
    """envelope.kms.data_key for one dest: every option checked and the existing file read before any
    KMS call that changes anything; then keep, re-encode, re-encrypt or generate; attributes; result."""

    def __init__(self, module, client):
        self.module = module
        self.client = client
        self.params = params = module.params
        self.dest, found, self.is_link = dest_stat(params["dest"], params["follow"])
        if self.is_link and not params["force"]:
            raise KmsInputError(f"dest {self.dest} is a symbolic link: set follow=true to use the file it points to, "
                                "or force=true to replace the link with a new data key file")
        # Null or empty only in check mode: the id of a key an earlier task would create.
        self.key_id = required_key_ref(params["key_id"], "key_id is required (it is null or empty)", module.check_mode)
        self.length = requested_length(params["key_spec"], params["number_of_bytes"])
        self.context = normalize_context(params["encryption_context"])
        self.allowed_key_arns = allowed_arns(known_key_arns(params["allowed_key_arns"], "allowed_key_arns",
                                                            module.check_mode, warn))
        self.attributes = planned_attributes(params, found)  # (mode, uid, gid), checked before any KMS call
        self.found = found
        self.data = read_dest(self.dest, found)
        self.metadata = self.key_arn = None

    def resolve_key(self):
        """DescribeKey: the key must exist and be able to make data keys. In check mode a key_id that is
        null or names no key (an earlier task would create it) is warned about and left unknown (None):
        an existing file cannot be wrapped under that key, so the plan is what the real run's would be."""
        # ansible-core's warn, not module.warn: see modules/key_rotation.py
        self.metadata = find_key(self.client, self.key_id, "key_id", self.module.check_mode, warn,
                                 f"KMS key {self.key_id} does not exist")
        self.key_arn = check_key(self.metadata, self.key_id) if self.metadata is not None else None

    def existing(self):
        """(ExistingBlob, plaintext data key or None): at most one KMS Decrypt, none with force."""
        if self.params["force"]:
            # A new data key whatever the file holds: no need to (and no point in) decrypting it.
            blob, found = decode(self.data) if self.data is not None else (None, None)
            return ExistingBlob(self.data is not None, blob, found if blob is not None else None), None
        return read_existing(self.client, self.data, self.context)

    def action(self, existing):
        state = classify(existing, self.key_arn, self.length, self.params["encoding"], self.allowed_key_arns)
        action = plan(state, self.params["force"])
        if action is None:
            raise KmsInputError(
                f"{self.dest} exists but cannot be kept: {mismatch_problem(existing, self.length, self.key_arn)}. It may be the "
                "only copy of a data key that protects data, so it was left as it is; set force=true to replace it "
                "with a new data key (backup=true keeps the old file)"
            )
        return action

    def make(self, action, existing, plaintext):
        """(blob, plaintext or None) for dest: KMS makes or rewraps the data key (not in check mode)."""
        if not self.params["return_plaintext"]:
            plaintext = None  # the existing key was only needed to check its length
        blob = existing.blob if action in (KEEP, REENCODE) else None
        if self.module.check_mode:
            return blob, (None if action == GENERATE else plaintext)
        if action == GENERATE:
            blob, plaintext = generate(self.client, self.key_arn, self.context, self.params["key_spec"],
                                       self.params["number_of_bytes"], self.params["return_plaintext"])
        elif action == REENCRYPT:
            blob = reencrypt(self.client, existing.blob, self.key_arn, self.context)
        return blob, plaintext

    def write(self, action, existing, blob):
        """Write dest atomically unless nothing changes (or check mode); the backup file or None."""
        if action == KEEP or self.module.check_mode:
            return None
        backup_file = None
        if self.params["backup"] and existing.exists and self.found is not None:  # a link's target is not ours to copy
            backup_file = self.module.backup_local(self.dest)
        warning = foreign_owner_warning(self.dest, self.found, self.params)
        if warning:
            self.module.warn(warning)
        mode, uid, gid = self.attributes
        write_file_atomic(self.dest, encode(blob, self.params["encoding"]), mode=mode, uid=uid, gid=gid)
        return backup_file

    def result(self, action, existing, blob, plaintext, backup_file):
        params = self.params
        changed = action != KEEP
        file_diff = diff(self.dest, existing, action, self.key_arn, self.length, params["encoding"], self.context)
        if os.path.exists(self.dest):
            file_args = self.module.load_file_common_arguments(params, path=self.dest)
            changed = self.module.set_fs_attributes_if_different(file_args, changed, file_diff)
        result = dict(
            changed=changed,
            dest=self.dest,
            key_id=(self.metadata or {}).get("KeyId"),
            key_arn=self.key_arn,
            number_of_bytes=self.length,
            key_spec=None if params["number_of_bytes"] is not None else params["key_spec"] or DEFAULT_KEY_SPEC,
            encryption_context=self.context,
            encoding=params["encoding"],
            operation=action,
            ciphertext_blob=base64.b64encode(blob).decode() if blob is not None else None,
        )
        if backup_file:
            result["backup_file"] = backup_file
        if params["return_plaintext"]:
            result["plaintext"] = base64.b64encode(plaintext).decode() if plaintext is not None else None
        if self.module._diff:
            result["diff"] = file_diff
        return result
