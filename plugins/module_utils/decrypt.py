# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""envelope.kms.decrypt (module and lookup): one decryption, compared with dest, written when different.

Pure parts (modes, encodings) are unit-tested without AWS. Whether dest already holds the
plaintext is the engine's rule (``Engine.compare_plaintext``: no KMS call when the envelope's size
rules it out, one Decrypt otherwise); the decrypt policy is built once from the options
(``DecryptPolicy.from_options``).
"""

from __future__ import annotations

import base64
import os
import stat

from ansible_collections.envelope.kms.plugins.module_utils.envelope import MAX_CONTENT_SIZE, MAX_DIFF_PLAINTEXT
from ansible_collections.envelope.kms.plugins.module_utils.errors import InputError as DecryptInputError
from ansible_collections.envelope.kms.plugins.module_utils.file_attrs import (
    dest_stat,
    foreign_owner_warning,
    format_mode,
    planned_attributes,
)
from ansible_collections.envelope.kms.plugins.module_utils.kms import known_key_arns


def known_allowed_keys(params, given_null, check_mode, warn):
    """Leaves the null entries out of params["allowed_key_arns"] in check mode (keys an earlier task
    would create: no file can be wrapped under them yet); they are an error otherwise. ``given_null``:
    the option was given as null (not the same as not given: no key restriction). False when entries
    were given and none is left: nothing may be decrypted under the real run's policy."""
    given = params.get("allowed_key_arns")
    params["allowed_key_arns"] = known = known_key_arns(given, "allowed_key_arns", check_mode, warn, given_null)
    left_out = given_null or (given is not None and len(known) < len(given))
    return bool(known) or not left_out


def undecrypted_result(params, facts, warn):
    """Check mode with only unknown allowed keys: the header's facts (no KMS call), reported as a change
    since the real run decrypts under keys that do not exist yet; no plaintext."""
    warn(f"allowed_key_arns only names keys not known yet: {params['src']} is not decrypted in check mode, and is "
         "reported as changed")
    result = dict(changed=True, src=params["src"], key_arns=list(facts.key_arns),
                  encryption_context=facts.encryption_context, algorithm=facts.algorithm)
    if params["dest"]:
        result["dest"] = params["dest"]
    if params["return_content"]:
        result.update(content=None, content_encoding=params["content_encoding"])
    return result


def encode_content(data, encoding, what="the plaintext"):
    """Plaintext bytes as a string: UTF-8 text, or base64 for binary data."""
    if encoding == "base64":
        return base64.b64encode(data).decode("ascii")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise DecryptInputError(f"{what} is not UTF-8 text: ask for base64 encoding instead") from None


def preview(data, limit=MAX_DIFF_PLAINTEXT, what="plaintext"):
    """Text for a plaintext diff (opt-in): at most ``limit`` bytes, binary shown as a note."""
    if data is None:
        return ""
    if len(data) > limit:
        return f"({what} not shown: larger than {limit} bytes)\n"
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return f"({what} not shown: binary data, {len(data)} bytes)\n"


def read_head(path, limit):
    """Up to limit + 1 bytes of a file (one more than shown tells "too big" apart)."""
    with open(path, "rb") as handle:
        return handle.read(limit + 1)


class Decryption:
    """One task of the decrypt module: compare with dest, write when different (not in check mode),
    manage attributes, build the result and diff."""

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
            plaintext, facts = self.engine.decrypt_bytes(self.src, self.policy, max_size=MAX_CONTENT_SIZE)
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
        result["dest"] = self.dest
        # Every option is checked (owner, group, mode, the file kind at dest) before anything is read or written.
        dest, existing, is_link = dest_stat(self.dest, self.params["follow"])
        self._refuse_src(dest)
        mode, uid, gid = planned_attributes(self.params, existing)
        old_head = read_head(dest, MAX_DIFF_PLAINTEXT) if existing is not None and self.show_plaintext else None

        same, facts, matcher = self._compare(dest, existing)
        if not same:
            result["changed"] = True
            if not self.check_mode:
                warning = foreign_owner_warning(dest, existing, self.params)
                if warning:
                    self.module.warn(warning)
                facts = self.engine.decrypt_file(self.src, dest, self.policy, mode=mode, uid=uid, gid=gid)

        attribute_diff = {"before": {}, "after": {}}
        if os.path.exists(dest) and not (self.check_mode and is_link):  # a file still to be created has no attributes yet
            file_args = self.module.load_file_common_arguments(self.params, path=dest)
            result["changed"] = self.module.set_fs_attributes_if_different(file_args, result["changed"],
                                                                           diff=attribute_diff)
        diff = None
        if self.module._diff:
            diff = self._diff(dest, existing, is_link, facts, matcher, old_head, attribute_diff, mode)
        return facts, self._content(dest, same, matcher), diff

    def _refuse_src(self, dest):
        """dest must not be src itself (same device and inode, whatever the spelling): it would replace the envelope."""
        try:
            same = os.path.samefile(self.src, dest)
        except OSError:
            return
        if same:
            raise DecryptInputError(f"dest {self.dest} is the envelope src itself: decrypt to another path", self.dest)

    def _compare(self, dest, existing):
        """(same, facts or None, matcher). Check mode always verifies the whole file (nothing else
        will) and keeps the plaintext it may have to show; otherwise the first difference stops the
        comparison and decrypt_file verifies everything while it writes."""
        if existing is None and not self.check_mode:
            return False, None, None
        keep = 0
        if self.check_mode and self.params["return_content"]:
            keep = MAX_CONTENT_SIZE
        elif self.check_mode and self.show_plaintext:
            keep = MAX_DIFF_PLAINTEXT
        return self.engine.compare_plaintext(self.src, dest if existing is not None else None, self.policy,
                                             keep=keep, stop_on_mismatch=not self.check_mode)

    def _content(self, dest, same, matcher):
        if not self.params["return_content"]:
            return None
        if self.check_mode and not same:
            return bounded(matcher.kept, MAX_CONTENT_SIZE)
        return bounded(read_head(dest, MAX_CONTENT_SIZE), MAX_CONTENT_SIZE)

    def _diff(self, dest, existing, is_link, facts, matcher, old_head, attribute_diff, mode):
        """Metadata only (sizes, mode, owner, wrapping keys, context); plaintext only when asked."""
        before = {"path": dest, "state": "link" if is_link else "absent"}
        if existing is not None:
            before = {"path": dest, "state": "file", "size": existing.st_size,
                      "mode": format_mode(stat.S_IMODE(existing.st_mode))}
        before.update(attribute_diff["before"])
        if self.check_mode:
            size = matcher.size
            mode = attribute_diff["after"].get("mode") or format_mode(mode)
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


def bounded(data, limit):
    if len(data) > limit:
        raise DecryptInputError(f"the plaintext is larger than the {limit} bytes return_content can return; use dest")
    return bytes(data)
