# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""For internal collection use only: the import_openssl module's work, one legacy file per task.

Order: every option and both input files are checked (no KMS call); DescribeKey resolves key_id;
one KMS Decrypt opens the legacy data key; the legacy file's padding is checked from its last two
blocks; then dest is compared (header, then content, one Decrypt) or written (GenerateDataKey),
streaming the legacy plaintext from its decryptor into the new envelope in memory.
"""

from __future__ import annotations

import hashlib
import os

from ansible_collections.envelope.kms.plugins.module_utils._envelope import openssl
from ansible_collections.envelope.kms.plugins.module_utils._envelope.errors import Translated
from ansible_collections.envelope.kms.plugins.module_utils._envelope.format import check_context_fits
from ansible_collections.envelope.kms.plugins.module_utils._envelope.inputs import (
    is_unknown_key_arn,
    normalize_context,
    normalize_key_id,
    shown_key_arns,
)
from ansible_collections.envelope.kms.plugins.module_utils._envelope.io import open_regular
from ansible_collections.envelope.kms.plugins.module_utils.envelope import EnvelopeError, InputError, inspect_header
from ansible_collections.envelope.kms.plugins.module_utils.errors import os_error_message
from ansible_collections.envelope.kms.plugins.module_utils.file_attrs import (
    dest_stat,
    foreign_owner_warning,
    planned_attributes,
)

MAX_DATA_KEY_FILE = 64 * 1024  # a KMS CiphertextBlob is a few hundred bytes

NO_INTEGRITY = ("{src} has no integrity protection (openssl enc): only its padding was checked, which a wrong "
                "key still passes about once in 256 tries. Give checksum (the sha256 of the original file) to "
                "prove the imported content")


class Settings:
    """The legacy file's settings, checked before any KMS call."""

    def __init__(self, params):
        self.digest = params["digest"]
        self.cipher = params["cipher"]
        self.iterations = params["iterations"]
        if self.iterations is None and params["pbkdf2"]:
            self.iterations = openssl.PBKDF2_DEFAULT_ITERATIONS
        openssl.check_settings(self.digest, self.cipher, self.iterations)
        self.encoding = params["passphrase_encoding"]

    def shown(self):
        return dict(cipher=self.cipher, digest=self.digest, kdf="pbkdf2" if self.iterations else "EVP_BytesToKey",
                    iterations=self.iterations)


def read_blob(params):
    """The encrypted data key: the option's base64 text, or the file's bytes (raw or base64)."""
    if params["encrypted_data_key"] is not None:
        return openssl.data_key_blob(text=params["encrypted_data_key"])
    path = params["encrypted_data_key_file"]
    with open_regular(path) as handle:
        raw = handle.read(MAX_DATA_KEY_FILE + 1)
    if len(raw) > MAX_DATA_KEY_FILE:
        raise InputError(f"encrypted_data_key_file {path} is larger than a KMS ciphertext blob can be "
                         f"({MAX_DATA_KEY_FILE} bytes): is it the right file?", path)
    return openssl.data_key_blob(raw=raw, label=f"encrypted_data_key_file {path}")


class LegacyInput:
    """One file to import: src, dest, checksum, and the state of dest, checked before any KMS call."""

    def __init__(self, params, entry, check_mode, warn):
        self.src = entry["src"]
        self.given_dest = entry["dest"]
        self.checksum = openssl.parse_checksum(entry.get("checksum"))
        self.dest, self.existing, self.is_link = dest_stat(entry["dest"], params["follow"])
        folder = os.path.dirname(os.path.abspath(self.dest))
        if not os.path.isdir(folder) and check_mode:
            warn(f"the folder of dest {self.given_dest} does not exist: assuming an earlier task creates it in the "
                 "real run (check mode)")
        elif not os.path.isdir(folder):
            raise InputError(f"the folder of dest {self.given_dest} does not exist: create it first", self.given_dest)
        elif not os.access(folder, os.W_OK | os.X_OK):
            raise InputError(f"cannot write in {folder}, the folder of dest {self.given_dest}", self.given_dest)
        self.attributes = planned_attributes(params, self.existing)  # owner, group, mode checked here
        with openssl.LegacyFile(self.src):  # its framing (Salted__, whole blocks): no key needed
            pass

    def hasher(self):
        return hashlib.new(self.checksum[0]) if self.checksum else None

    def verify(self, reader):
        """The checksum, once the reader gave everything."""
        if self.checksum:
            openssl.check_digest(self.src, reader.hasher, self.checksum[1])


def entries(params):
    """The files of the task: src/dest/checksum, or each entry of files."""
    if params["files"] is None:
        return [dict(src=params["src"], dest=params["dest"], checksum=params["checksum"])]
    if not params["files"]:
        raise InputError("files is empty: list at least one file (src and dest)")
    seen = set()
    for number, entry in enumerate(params["files"], 1):
        for option in ("src", "dest"):
            if not entry.get(option):
                raise InputError(f"files entry {number} has no {option}")
        dest = os.path.abspath(entry["dest"])
        if dest in seen:
            raise InputError(f"files entry {number}: dest {entry['dest']} is the dest of an earlier entry too")
        seen.add(dest)
    return params["files"]


def _identity(path):
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


def refuse_inputs_as_dest(inputs, blob_file=None):
    """No dest may be a file the task reads: its own src, another entry's (that legacy file would be
    replaced before it is read) or the data key file. Checked by path and by file identity (links,
    hard links), before any KMS call."""
    readers = {}
    for owner, path in [*enumerate((item.src for item in inputs), 1), *([("blob", blob_file)] if blob_file else [])]:
        readers[os.path.abspath(path)] = owner
        identity = _identity(path)
        if identity is not None:
            readers[identity] = owner
    for number, item in enumerate(inputs, 1):
        owner = readers.get(os.path.abspath(item.dest)) or readers.get(_identity(item.dest))
        if owner is None:
            continue
        if owner in (number, "blob"):
            option = "src" if owner == number else "encrypted_data_key_file"
            raise InputError(f"dest {item.given_dest} is the {option} file itself: write the envelope to "
                             "another path (the legacy files are left for you to remove)", item.given_dest)
        raise InputError(f"files entry {number}: dest {item.given_dest} is the src of entry {owner}: the legacy "
                         "file would be replaced before it is imported; write the envelopes to other paths",
                         item.given_dest)


class Import:
    """One task: ``module`` (an AnsibleAWSModule), ``engine`` (made, nothing called yet). Every
    option, file and the data key blob are checked on construction, before any KMS call."""

    def __init__(self, module, engine, warn):
        self.module = module
        self.engine = engine
        self.warn = warn
        self.params = module.params
        self.settings = Settings(self.params)
        self.context = normalize_context(self.params["encryption_context"] or {})
        check_context_fits(self.context, "cannot import", signed=True)  # the default suite signs: its key joins the context
        self.key_ids = self.params["key_id"]  # checked by kms.wanted_key_ids (null entries: check mode only)
        self.inputs = [LegacyInput(self.params, entry, module.check_mode, warn)
                       for entry in entries(self.params)]
        refuse_inputs_as_dest(self.inputs, self.params["encrypted_data_key_file"])
        self.blob = read_blob(self.params)
        self.legacy_key_id = (normalize_key_id(self.params["legacy_key_id"]) if self.params["legacy_key_id"]
                              else None)
        self.data_key_context = normalize_context(self.params["data_key_encryption_context"] or {},
                                                  purpose="data key encryption context", reserved_prefix=None)

    # -- KMS

    def data_key(self):
        """The plaintext data key (one KMS Decrypt), in memory only."""
        request = dict(CiphertextBlob=self.blob)
        region = self.engine.region
        if self.legacy_key_id:
            request["KeyId"] = self.legacy_key_id
            if self.legacy_key_id.startswith("arn:"):
                region = self.legacy_key_id.split(":")[3]
        if self.data_key_context:
            request["EncryptionContext"] = self.data_key_context
        with Translated("cannot decrypt the encrypted data key"):
            answer = self.engine.client_for_region(region).decrypt(**request)
        return answer["Plaintext"], answer.get("KeyId")

    # -- the task

    def run(self):
        """(outcome, failures): the task's result and the failed file results. One file's failure
        (padding, checksum, I/O) leaves that file's dest as it was; the other files still go."""
        key_arns = self.engine.resolve_key_arns(self.key_ids, self.module.check_mode, self.warn)
        data_key, data_key_arn = self.data_key()
        secret = openssl.passphrase(data_key, self.settings.encoding)
        del data_key
        results = [self._one(item, secret, key_arns) for item in self.inputs]
        del secret
        unproved = [result["src"] for result in results if result.pop("written") and result["verified"] == "padding"]
        if unproved:
            self.warn(NO_INTEGRITY.format(src=", ".join(unproved)))
        outcome = dict(changed=any(result["changed"] for result in results), key_arns=shown_key_arns(key_arns),
                       encryption_context=self.context, data_key_arn=data_key_arn, legacy=self.settings.shown(),
                       results=[{k: v for k, v in result.items() if k != "diff"} for result in results])
        if self.params["files"] is None:
            outcome.update({k: v for k, v in results[0].items() if k not in ("changed", "failed", "diff", "msg")})
        if self.module._diff:  # pylint: disable=protected-access
            diffs = [result["diff"] for result in results if result["changed"]]
            outcome["diff"] = diffs[0] if self.params["files"] is None and diffs else diffs
        return outcome, [result for result in results if result["failed"]]

    def _one(self, item, secret, key_arns):
        before = self._before(item)
        result = dict(src=item.src, dest=item.given_dest, changed=False, failed=False,
                      verified="checksum" if item.checksum else "padding", written=False)
        try:
            with openssl.LegacyFile(item.src) as legacy:
                key, iv = openssl.derive_key_iv(secret, legacy.salt, self.settings.digest,
                                                openssl.CIPHERS[self.settings.cipher], self.settings.iterations)
                reader = openssl.LegacyReader(legacy, key, iv, item.hasher())  # padding checked: a wrong key fails here
                result.update(plaintext_size=reader.size, base64=legacy.armored)
                if not self._same(item, legacy, reader, key, iv, key_arns):
                    result["changed"] = result["written"] = True  # in check mode: would be written
                    self._write(item, legacy, key, iv, key_arns)
            if os.path.exists(item.dest):
                file_args = self.module.load_file_common_arguments(self.params, path=item.dest)
                result["changed"] = self.module.set_fs_attributes_if_different(file_args, result["changed"])
                if not self.module.check_mode:
                    result["size"] = os.stat(item.dest).st_size
        except (EnvelopeError, OSError) as error:
            message = error.message if isinstance(error, EnvelopeError) else os_error_message(error, "cannot import")
            if not message.startswith(f"cannot import {item.src}"):
                message = f"cannot import {item.src}: {message}"
            result.update(failed=True, changed=False, written=False, msg=message)
            return result
        result["diff"] = dict(before=before, after=dict(path=item.dest, state="file", key_arns=shown_key_arns(key_arns),
                                                        encryption_context=self.context,
                                                        plaintext_size=result["plaintext_size"]))
        return result

    def _same(self, item, legacy, reader, key, iv, key_arns):
        """Does dest already hold this plaintext under exactly key_arns and the context? Header
        first (no KMS call), then one Decrypt compared chunk by chunk. Check mode verifies the whole
        legacy file (padding, checksum) even when dest must change, since nothing else will."""
        if item.existing is not None and not any(is_unknown_key_arn(arn) for arn in key_arns):
            comparison = self.engine.compare(item.dest, reader, key_arns, self.context)
            if comparison.same:
                item.verify(reader)
                return True
        if self.module.check_mode:
            reader = openssl.LegacyReader(legacy, key, iv, item.hasher())
            while reader.read(openssl.CHUNK_SIZE):
                pass
            item.verify(reader)
        return False

    def _write(self, item, legacy, key, iv, key_arns):
        if self.module.check_mode:
            return
        warning = foreign_owner_warning(item.dest, item.existing, self.params)
        if warning:
            self.warn(warning)
        mode, uid, gid = item.attributes
        reader = openssl.LegacyReader(legacy, key, iv, item.hasher())
        self.engine.encrypt_reader(reader, item.dest, key_arns, self.context, mode=mode, uid=uid, gid=gid,
                                   before_commit=lambda: item.verify(reader))

    @staticmethod
    def _before(item):
        if item.existing is None:
            return dict(path=item.dest, state="link" if item.is_link else "absent")
        try:
            facts = inspect_header(item.dest)
        except EnvelopeError:
            return dict(path=item.dest, state="file", envelope=False, size=item.existing.st_size)
        return dict(path=item.dest, state="file", key_arns=list(facts.key_arns),
                    encryption_context=facts.encryption_context, size=item.existing.st_size)


def failure_message(failures, total):
    """One line naming every file that failed, with why."""
    if total == 1:
        return failures[0]["msg"]
    return f"{len(failures)} of {total} files could not be imported (their dest left as it was): " + "; ".join(
        result["msg"] for result in failures)
