# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""envelope.kms.copy: encrypt on the controller, then let ansible.builtin.copy deploy the ciphertext.

Like ansible-core's template action, this only prepares a local file and hands over to the copy
action, so mode/owner/group/backup/validate/check mode behave exactly as they do for copy. The local
file only ever holds ciphertext: the existing envelope fetched back from the host, or a new one.
"""

from __future__ import annotations

import base64
import copy as copy_module
import os
import shlex
import shutil
import tempfile

from ansible import constants as C
from ansible.errors import AnsibleActionFail, AnsibleConnectionFailure, AnsibleError
from ansible.module_utils.common.text.converters import to_text

from ansible_collections.envelope.kms.plugins.module_utils.diffs import envelope_diff, facts_metadata
from ansible_collections.envelope.kms.plugins.module_utils.envelope import (
    MAX_DIFF_PLAINTEXT,
    EnvelopeError,
    envelope_could_hold,
    normalize_context,
)
from ansible_collections.envelope.kms.plugins.plugin_utils.action import ENCRYPT_OPTIONS, EncryptActionBase
from ansible_collections.envelope.kms.plugins.plugin_utils.errors import plugin_errors
from ansible_collections.envelope.kms.plugins.plugin_utils.source import task_source

# Options handed to ansible.builtin.copy unchanged (None: not given, copy's own default applies).
COPY_OPTIONS = dict(
    mode=dict(type="raw"),
    owner=dict(type="str"),
    group=dict(type="str"),
    backup=dict(type="bool", default=False),
    force=dict(type="bool", default=True),
    validate=dict(type="str"),
    follow=dict(type="bool", default=False),
    directory_mode=dict(type="raw"),
    unsafe_writes=dict(type="bool", default=False),
    attributes=dict(type="str", aliases=["attr"]),
    seuser=dict(type="str"),
    serole=dict(type="str"),
    setype=dict(type="str"),
    selevel=dict(type="str"),
)

# Above this size, ask the host for the envelope's size before fetching it back: a size that cannot
# hold this plaintext proves a change without moving the file.
SIZE_CHECK_THRESHOLD = 1024 * 1024


class ActionModule(EncryptActionBase):
    TRANSFERS_FILES = True

    ARGUMENT_SPEC = dict(
        ENCRYPT_OPTIONS,
        dest=dict(type="str", required=True),
        diff_plaintext=dict(type="bool", default=False),
        remote_src=dict(type="bool", default=False),
        **COPY_OPTIONS,
    )

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        workdir = None
        try:
            with plugin_errors(AnsibleActionFail):
                options = self.load_options()
                if options["remote_src"]:
                    raise AnsibleActionFail("remote_src is not supported: envelope.kms.copy encrypts on the controller")
                desired = self._desired(options)
                workdir = tempfile.mkdtemp(dir=C.DEFAULT_LOCAL_TMP, prefix="envelope-kms-")
                result.update(self._deploy(options, desired, workdir, task_vars))
        finally:
            if workdir:
                shutil.rmtree(workdir, ignore_errors=True)
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    # -- what the task wants

    def _desired(self, options):
        source = task_source(self, options["src"], options["content"], options["dest"])
        return dict(
            dest=self._remote_expand_user(source.dest),
            name=source.name,
            plaintext=source.plaintext,  # a controller path (streamed) or bytes held in memory
            size=source.size,
            context=normalize_context(options["encryption_context"]),
        )

    # -- the deploy

    def _deploy(self, options, desired, workdir, task_vars):
        engine = self.engine()
        existing = self._fetch_existing(desired, options, workdir, task_vars)
        if existing and not options["force"]:
            # copy's force=false: an existing dest is left alone, so no KMS call is needed either
            return self._hand_over(existing, desired, options, task_vars)

        key_arns = engine.resolve_key_arns(options["key_id"])
        comparison = None
        if existing:
            comparison = engine.compare(existing, desired["plaintext"], key_arns, desired["context"],
                                        options["algorithm"], options["frame_length"])
        if comparison and comparison.same:
            source, facts = existing, comparison.facts
        elif self._play_context.check_mode:
            # No data key in check mode: any different local file makes copy predict the change.
            source, facts = os.path.join(workdir, desired["name"]), None
            with open(source, "wb") as handle:
                handle.write(b"envelope.kms.copy check mode placeholder\n")
        else:
            source = os.path.join(workdir, desired["name"])
            encrypt = engine.encrypt_bytes if isinstance(desired["plaintext"], bytes) else engine.encrypt_file
            # a scratch file: copy hashes and writes it atomically on the host itself
            facts = encrypt(desired["plaintext"], source, key_arns, desired["context"], options["algorithm"],
                            options["frame_length"], checksums=False, durable=False)

        result = self._hand_over(source, desired, options, task_vars)
        result.update(
            key_arns=list(key_arns),
            encryption_context=desired["context"],
            algorithm=options["algorithm"],
            frame_length=options["frame_length"],
        )
        if self._play_context.diff and result.get("changed"):
            result["diff"] = self._diff(comparison, key_arns, desired, options, facts, existing)
        return result

    def _fetch_existing(self, desired, options, workdir, task_vars):
        """The envelope now at dest, copied into workdir, or None when there is none (or it cannot
        hold the plaintext, judging by its size)."""
        if desired["size"] > SIZE_CHECK_THRESHOLD:
            remote_size = self._remote_size(desired["dest"])
            if remote_size is None or not envelope_could_hold(
                remote_size, desired["size"], options["frame_length"], options["algorithm"]
            ):
                return None
        local = os.path.join(workdir, "existing.envelope")
        if self._connection.become:
            return self._slurp(desired["dest"], local, task_vars)
        try:
            self._connection.fetch_file(desired["dest"], local)
        except AnsibleConnectionFailure:
            raise
        except AnsibleError:
            return None  # no file (or not readable): copy reports what it finds when it writes
        return local if os.path.isfile(local) else None

    def _slurp(self, dest, local, task_vars):
        # fetch_file cannot read as the become user; the slurp module can (as ansible-core's fetch does).
        slurped = self._execute_module("ansible.legacy.slurp", module_args=dict(src=dest), task_vars=task_vars)
        if slurped.get("failed"):
            return None
        with open(local, "wb") as handle:
            handle.write(base64.b64decode(slurped["content"]))
        return local

    def _remote_size(self, path):
        command = f"wc -c < {shlex.quote(path)}"
        output = self._low_level_execute_command(command, sudoable=True)
        try:
            return int(output["stdout"].strip()) if output["rc"] == 0 else None
        except ValueError:
            return None

    def _hand_over(self, source, desired, options, task_vars):
        """Run ansible.builtin.copy with our local ciphertext file, without its content diff."""
        task = self._task.copy()
        task.args = {name: options[name] for name in COPY_OPTIONS if options[name] is not None}
        task.args.update(src=source, dest=desired["dest"])
        play_context = copy_module.copy(self._play_context)
        play_context.diff = False  # its diff would be of ciphertext; ours is below
        copy_action = self._shared_loader_obj.action_loader.get(
            "ansible.legacy.copy",
            task=task,
            connection=self._connection,
            play_context=play_context,
            loader=self._loader,
            templar=self._templar,
            shared_loader_obj=self._shared_loader_obj,
        )
        result = copy_action.run(task_vars=task_vars)
        result.pop("src", None)  # our temp file, gone after the task
        result.pop("invocation", None)
        return result

    def _diff(self, comparison, key_arns, desired, options, new_facts, existing):
        before = {}
        if comparison and comparison.facts:
            before = dict(facts_metadata(comparison.facts), size=comparison.facts.size)
        after = dict(
            key_arns=list(key_arns),
            encryption_context=desired["context"],
            algorithm=options["algorithm"],
            frame_length=options["frame_length"],
            plaintext_size=desired["size"],
        )
        if new_facts is not None:
            after["size"] = new_facts.size
        diffs = [envelope_diff(desired["dest"], before, after)]
        if options["diff_plaintext"]:
            diffs.append(self._plaintext_diff(existing, desired, key_arns))
        return diffs

    def _plaintext_diff(self, existing, desired, key_arns):
        """Opt-in only (diff_plaintext): the old plaintext, decrypted in memory, against the new."""
        before = ""
        if existing:
            try:
                old = self.engine().decrypt_bytes(existing, max_size=MAX_DIFF_PLAINTEXT)[0]
                before = to_text(old, errors="surrogate_or_replace")
            except EnvelopeError as error:
                before = f"(old plaintext not shown: {error.message})\n"
        if desired["size"] > MAX_DIFF_PLAINTEXT:
            after = f"(new plaintext not shown: larger than {MAX_DIFF_PLAINTEXT} bytes)\n"
        else:
            data = desired["plaintext"]
            if not isinstance(data, bytes):
                with open(data, "rb") as handle:
                    data = handle.read()
            after = to_text(data, errors="surrogate_or_replace")
        return dict(before_header=f"{desired['dest']} (plaintext)", after_header=f"{desired['dest']} (plaintext)",
                    before=before, after=after)
