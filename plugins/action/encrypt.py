# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""envelope.kms.encrypt: envelope-encrypt into a file on the controller, with no module run.

Everything happens in this process: no connection, no module, so a controller-side write (the
lifecycle role's ciphertext cache, build artefacts) costs no stat + copy round trip. Idempotence is
envelope.kms.copy's: the existing envelope is compared with what is wanted (at most one KMS
Decrypt, no GenerateDataKey) and kept when it matches. The engine writes new ciphertext to a temp
file beside dest, fsyncs it and renames it over dest.
"""

from __future__ import annotations

import os
import stat

from ansible.errors import AnsibleActionFail
from ansible.utils.hashing import checksum

from ansible_collections.envelope.kms.plugins.module_utils.diffs import envelope_diff, facts_metadata, with_sizes
from ansible_collections.envelope.kms.plugins.module_utils.envelope import (
    normalize_context,
)
from ansible_collections.envelope.kms.plugins.module_utils._envelope.inputs import shown_key_arns
from ansible_collections.envelope.kms.plugins.plugin_utils.action import ENCRYPT_OPTIONS, EncryptActionBase
from ansible_collections.envelope.kms.plugins.plugin_utils.errors import plugin_errors
from ansible_collections.envelope.kms.plugins.plugin_utils.source import refuse_special_dest, task_source

DEFAULT_MODE = "0600"


class ActionModule(EncryptActionBase):
    TRANSFERS_FILES = False

    ARGUMENT_SPEC = dict(
        ENCRYPT_OPTIONS,
        dest=dict(type="path", required=True),
        mode=dict(type="raw", default=DEFAULT_MODE),
        force=dict(type="bool", default=True),
    )

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        with plugin_errors(AnsibleActionFail):
            options = self.load_options()
            wanted = self._wanted(options)
            result.update(self._write(options, wanted))
        return result

    # -- what the task wants (every refusal here comes before any KMS call)

    def _wanted(self, options):
        source = task_source(self, options["src"], options["content"], options["dest"])
        dest = self._controller_path(source.dest)
        _refuse_bad_dest(source, dest, self._task.check_mode)
        return dict(
            dest=dest,
            source=source,
            mode=_file_mode(options["mode"]),
            context=normalize_context(options["encryption_context"]),
        )

    def _controller_path(self, path):
        # a relative dest is relative to the playbook, as for ansible.builtin.fetch
        if not os.path.isabs(path):
            path = self._loader.path_dwim(path)
        return os.path.normpath(path)

    # -- the write

    def _write(self, options, wanted):
        dest = wanted["dest"]
        current = _stat(dest)
        if current and not options["force"]:
            # copy's force=false: an existing dest is left alone, so no KMS call is needed either
            return dict(dest=dest, changed=False, checksum=checksum(dest), size=current.st_size,
                        mode=_octal(current.st_mode))

        engine = self.engine()
        key_arns = self.resolve_key_arns(options["key_id"])  # in check mode a key not known yet: never the same
        comparison = None
        if current:
            comparison = engine.compare(dest, wanted["source"].plaintext, key_arns, wanted["context"],
                                        options["algorithm"], options["frame_length"])
        if comparison and comparison.same:
            changed, facts = self._keep(dest, current, wanted["mode"]), comparison.facts
            sha1 = checksum(dest)
        elif self._task.check_mode:
            changed, facts, sha1 = True, None, None  # no data key in check mode
        else:
            facts = self._encrypt(engine, wanted, key_arns, options)
            changed, sha1 = True, facts.sha1

        result = dict(dest=dest, changed=changed, key_arns=shown_key_arns(key_arns),
                      encryption_context=wanted["context"], algorithm=options["algorithm"],
                      frame_length=options["frame_length"], mode=_octal(wanted["mode"]))
        if facts is not None:
            result.update(checksum=sha1, size=facts.size)
        if changed and self._task.diff:
            result["diff"] = _diff(dest, current, comparison, result, wanted["source"].size)
        return result

    def _keep(self, dest, current, mode):
        """The envelope already holds what is wanted: only its mode may need fixing."""
        if _octal(current.st_mode) == _octal(mode):
            return False
        if not self._task.check_mode:
            try:
                os.chmod(dest, mode)
            except OSError as error:
                raise AnsibleActionFail(f"cannot set the mode of {dest}: {error.strerror}") from None
        return True

    @staticmethod
    def _encrypt(engine, wanted, key_arns, options):
        plaintext = wanted["source"].plaintext
        encrypt = engine.encrypt_bytes if isinstance(plaintext, bytes) else engine.encrypt_file
        return encrypt(plaintext, wanted["dest"], key_arns, wanted["context"], options["algorithm"],
                       options["frame_length"], mode=wanted["mode"])


def _file_mode(value):
    """Permission bits from an int or an octal string ('0600', '600', '0o600')."""
    try:
        mode = value if isinstance(value, int) and not isinstance(value, bool) else int(str(value), 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o7777:
        raise AnsibleActionFail(f"mode must be an octal string such as '0600' or an int, not {value!r}")
    return mode


def _refuse_bad_dest(source, dest, check_mode):
    current = _stat(dest)
    if current and stat.S_ISDIR(current.st_mode):
        raise AnsibleActionFail(f"dest {dest} is a directory: give the path of the file to write")
    if current:
        refuse_special_dest(dest, current.st_mode)  # a FIFO or a device: never opened, never replaced
    # in check mode an earlier task may only have predicted creating the directory
    if not check_mode and not os.path.isdir(os.path.dirname(dest)):
        raise AnsibleActionFail(f"the directory of dest {dest} does not exist")
    if source.path is not None and os.path.exists(dest) and os.path.samefile(source.path, dest):
        raise AnsibleActionFail(f"src and dest are the same file: {dest}")


def _stat(path):
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise AnsibleActionFail(f"cannot read {path}: {error.strerror}") from None


def _octal(mode):
    return f"{mode & 0o7777:04o}"


def _diff(dest, current, comparison, result, plaintext_size):
    """Envelope metadata and sizes before and after (the old plaintext's size only when it is the
    new one's: it is not decrypted for a diff); never plaintext."""
    before = {}
    if current:
        metadata = dict(facts_metadata(comparison.facts) if comparison and comparison.facts else {},
                        mode=_octal(current.st_mode))
        same = bool(comparison and comparison.same)
        before = with_sizes(metadata, current.st_size, plaintext_size if same else None)
    names = ("key_arns", "encryption_context", "algorithm", "frame_length", "mode")
    after = with_sizes({name: result[name] for name in names}, result.get("size"), plaintext_size)
    return envelope_diff(dest, before, after)
