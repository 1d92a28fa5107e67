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

from ansible_collections.envelope.kms.plugins.module_utils.diffs import envelope_diff, facts_metadata, with_sizes
from ansible_collections.envelope.kms.plugins.module_utils.file_attrs import resolve_mode
from ansible_collections.envelope.kms.plugins.module_utils.envelope import (
    MAX_DIFF_PLAINTEXT,
    EnvelopeError,
    envelope_could_hold,
    expected_ciphertext_sizes,
    normalize_context,
)
# The facade has no size range yet (envelope_could_hold is a yes/no): its parts, directly.
from ansible_collections.envelope.kms.plugins.module_utils._envelope.format import PLAUSIBLE_HEADER_LENGTHS
from ansible_collections.envelope.kms.plugins.module_utils._envelope.inputs import (
    algorithm_suite,
    frame_length as checked_frame_length,
    known_key_arns,
    shown_key_arns,
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

# What is at dest is read back by one command (bounded_read_command) that tells its size first: a
# size no envelope of this plaintext can have proves a change with nothing transferred. An envelope
# of a possible size up to this many bytes comes back in the command's output, a bigger one is
# fetched by the connection (over ssh: one round trip either way, as the fetch alone was).
INLINE_READ_LIMIT = 1024 * 1024
READ_MARKER = "envelope.kms.copy:"
LOCAL_TRANSPORTS = ("local",)
# What bounded_read_command says of a dest that is there but not a regular file (nor a directory).
SPECIAL_KINDS = {"fifo": "a FIFO", "device": "a device", "socket": "a socket", "special": "a special file"}


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
                if options["mode"] not in (None, "preserve"):
                    resolve_mode(options["mode"])  # refused here, before any KMS call, not by copy afterwards
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
        dest = self._remote_expand_user(source.dest)
        if source.path is not None and self._connection.transport in LOCAL_TRANSPORTS:
            # the host is this machine: copying src onto itself would replace the plaintext with its
            # envelope (and re-encrypt that envelope on every later run)
            _refuse_same_file(source.path, dest, source.name)
        return dict(
            dest=dest,
            name=source.name,
            plaintext=source.plaintext,  # a controller path (streamed) or bytes held in memory
            size=source.size,
            context=normalize_context(options["encryption_context"]),
        )

    # -- the deploy

    def _deploy(self, options, desired, workdir, task_vars):
        engine = self.engine()
        dest_size, existing = self._fetch_existing(desired, options, workdir, task_vars)
        if dest_size is not None and not options["force"]:
            # copy's force=false: an existing dest is left alone, so no KMS call is needed either
            return self._hand_over(existing or _placeholder(workdir, desired), desired, options, task_vars)

        key_arns = self.resolve_key_arns(options["key_id"])  # in check mode a key not known yet: never the same
        comparison = None
        if existing:
            comparison = engine.compare(existing, desired["plaintext"], key_arns, desired["context"],
                                        options["algorithm"], options["frame_length"])
        if comparison and comparison.same:
            source, facts = existing, comparison.facts
        elif self._play_context.check_mode:
            # No data key in check mode: any different local file makes copy predict the change.
            source, facts = _placeholder(workdir, desired), None
        else:
            source = os.path.join(workdir, desired["name"])
            encrypt = engine.encrypt_bytes if isinstance(desired["plaintext"], bytes) else engine.encrypt_file
            # a scratch file: copy hashes and writes it atomically on the host itself
            facts = encrypt(desired["plaintext"], source, key_arns, desired["context"], options["algorithm"],
                            options["frame_length"], checksums=False, durable=False)

        result = self._hand_over(source, desired, options, task_vars)
        result.update(
            key_arns=shown_key_arns(key_arns),
            encryption_context=desired["context"],
            algorithm=options["algorithm"],
            frame_length=options["frame_length"],
        )
        if self._play_context.diff and result.get("changed"):
            result["diff"] = self._diff(comparison, key_arns, desired, options, facts, (dest_size, existing))
        return result

    def _fetch_existing(self, desired, options, workdir, task_vars):
        """(the size of dest when it is a regular file else None, the envelope now at dest copied into
        workdir or None).

        One command on the host tells dest's size and, when an envelope of this plaintext could
        have that size and it is small, its content: nothing else is ever read back, so a huge or
        endless file at dest costs nothing. None for the copy when dest is missing, not a regular
        file, not readable (copy reports what it finds when it writes) or cannot hold the plaintext."""
        low, high = envelope_size_range(desired["size"], options["frame_length"], options["algorithm"])
        output = self._low_level_execute_command(bounded_read_command(desired["dest"], low, high, INLINE_READ_LIMIT),
                                                 sudoable=True)
        answer = parse_bounded_read(output["stdout"]) if output["rc"] == 0 else None
        if answer is None:
            kind = parse_dest_kind(output["stdout"]) if output["rc"] == 0 else None
            if kind in SPECIAL_KINDS:
                # copy would replace it with the envelope; never opened, never replaced (as for encrypt)
                raise AnsibleActionFail(f"dest {desired['dest']} is {SPECIAL_KINDS[kind]}, not a regular file")
            return None, None  # missing, or a directory copy writes into
        size, data = answer
        if not envelope_could_hold(size, desired["size"], options["frame_length"], options["algorithm"]):
            return size, None
        local = os.path.join(workdir, "existing.envelope")
        if data is not None:
            if len(data) != size:
                return size, None  # changed while being read: not the same either
            with open(local, "wb") as handle:
                handle.write(data)
            return size, local
        # a possible envelope, too big for the command's output
        if self._connection.become:
            # fetch_file cannot read as the become user; the slurp module can (as ansible-core's fetch does)
            local = self._slurp(desired["dest"], local, task_vars)
        else:
            local = self._fetch(desired["dest"], local)
        if local is None or os.path.getsize(local) > high:
            return size, None
        return size, local

    def _fetch(self, dest, local):
        try:
            self._connection.fetch_file(dest, local)
        except AnsibleConnectionFailure:
            raise
        except AnsibleError:
            return None
        return local if os.path.isfile(local) else None

    def _slurp(self, dest, local, task_vars):
        slurped = self._execute_module("ansible.legacy.slurp", module_args=dict(src=dest), task_vars=task_vars)
        if slurped.get("failed"):
            return None
        with open(local, "wb") as handle:
            handle.write(base64.b64decode(slurped["content"]))
        return local

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

    def _diff(self, comparison, key_arns, desired, options, new_facts, at_dest):
        """The envelope's metadata and sizes before and after (the old plaintext's size only when it
        is the new one's: it is not decrypted for a diff); the plaintexts too with diff_plaintext."""
        dest_size = at_dest[0]
        before = {}
        if dest_size is not None:
            same = bool(comparison and comparison.same)
            metadata = facts_metadata(comparison.facts) if comparison and comparison.facts else {}
            before = with_sizes(metadata, dest_size, desired["size"] if same else None)
        after = with_sizes(
            dict(key_arns=shown_key_arns(key_arns), encryption_context=desired["context"],
                 algorithm=options["algorithm"], frame_length=options["frame_length"]),
            new_facts.size if new_facts is not None else None,
            desired["size"],
        )
        diffs = [envelope_diff(desired["dest"], before, after)]
        if options["diff_plaintext"]:
            diffs.append(self._plaintext_diff(*at_dest, desired, key_arns))
        return diffs

    def _plaintext_diff(self, dest_size, existing, desired, key_arns):
        """Opt-in only (diff_plaintext): the old plaintext, decrypted in memory, against the new.

        The old plaintext is shown only if the envelope at dest passes the task's own policy:
        wrapped under one of the task's keys (that exist: in check mode some may not yet) and
        carrying the task's context pairs. Anything else (another key's envelope, another context,
        garbage) is not the task's to show."""
        before = ""
        allowed = known_key_arns(key_arns)
        if dest_size is not None and not existing:
            before = "(old plaintext not shown: dest was not read back, its size rules out the new plaintext)\n"
        elif existing and not allowed:
            before = "(old plaintext not shown: none of the keys of key_id exists yet)\n"
        elif existing:
            engine = self.engine()
            policy = engine.policy(desired["context"], allowed_key_arns=allowed)
            try:
                old = engine.decrypt_bytes(existing, policy, max_size=MAX_DIFF_PLAINTEXT)[0]
                before = _shown_text(old, "old")
            except EnvelopeError as error:
                # the scratch copy's name means nothing to the user: name dest
                reason = error.message.replace(existing, desired["dest"])
                before = f"(old plaintext not shown: {reason})\n"
        if desired["size"] > MAX_DIFF_PLAINTEXT:
            after = f"(new plaintext not shown: larger than {MAX_DIFF_PLAINTEXT} bytes)\n"
        else:
            data = desired["plaintext"]
            if not isinstance(data, bytes):
                with open(data, "rb") as handle:
                    data = handle.read(MAX_DIFF_PLAINTEXT + 1)
            after = _shown_text(data, "new")
        return dict(before_header=f"{desired['dest']} (plaintext)", after_header=f"{desired['dest']} (plaintext)",
                    before=before, after=after)


def _shown_text(data, which):
    """Plaintext as diff text: UTF-8 only (anything else cannot be shown as text, and must not
    reach the output as surrogates)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return f"({which} plaintext not shown: binary data, {len(data)} bytes)\n"


def _placeholder(workdir, desired):
    """A local file for copy when its content does not matter (check mode; force=false over an
    existing dest): never plaintext, never a real envelope."""
    path = os.path.join(workdir, desired["name"])
    with open(path, "wb") as handle:
        handle.write(b"envelope.kms.copy placeholder\n")
    return path


def _refuse_same_file(src, dest, name):
    """On a local connection: refuse a dest that is src itself (by device and inode: links and '..'
    paths included), or a directory that copy would write src's name into."""
    target = os.path.join(dest, name) if os.path.isdir(dest) else dest
    try:
        same = os.path.samestat(os.stat(src), os.stat(target))
    except OSError:
        return  # no dest yet (or not one we can see): not the same file
    if same:
        raise AnsibleActionFail(f"src and dest are the same file: {target}")


def envelope_size_range(plaintext_size, frame_length, algorithm):
    """(smallest, largest) size in bytes of an envelope that could hold plaintext_size bytes, for
    any plausible header (the bounds of envelope_could_hold)."""
    sizes = expected_ciphertext_sizes(0, algorithm_suite(algorithm), checked_frame_length(frame_length), plaintext_size)
    shortest, longest = PLAUSIBLE_HEADER_LENGTHS
    return min(low for low, _high in sizes) + shortest, max(high for _low, high in sizes) + longest


def bounded_read_command(path, low, high, inline_limit):
    """A POSIX shell command for the file at path: ``READ_MARKER size N`` when it is a regular file,
    then, only when low <= N <= min(high, inline_limit), ``READ_MARKER content`` and at most that
    many bytes of it as hex (od, POSIX); ``READ_MARKER none KIND`` when there is no regular file
    there, KIND being missing, directory, fifo, device, socket or special (a FIFO or a device is
    never opened). Exits non-zero when the file cannot be read."""
    quoted = shlex.quote(path)
    limit = min(int(high), int(inline_limit))
    none = f"echo {READ_MARKER} none"
    return (
        f"if [ -f {quoted} ]; then size=$(wc -c < {quoted}) || exit 1; echo {READ_MARKER} size $size; "
        f"if [ $size -ge {int(low)} ] && [ $size -le {limit} ]; then echo {READ_MARKER} content; "
        f"od -A n -v -t x1 -N {limit} {quoted} || exit 1; fi; "
        f"elif [ -d {quoted} ]; then {none} directory; elif [ -p {quoted} ]; then {none} fifo; "
        f"elif [ -c {quoted} ] || [ -b {quoted} ]; then {none} device; elif [ -S {quoted} ]; then {none} socket; "
        f"elif [ -e {quoted} ]; then {none} special; else {none} missing; fi"
    )


def parse_dest_kind(stdout):
    """What bounded_read_command's output says is at dest when it is not a regular file (missing,
    directory, fifo, device, socket, special); None for a regular file or output not the command's."""
    for line in stdout.splitlines():
        words = line.split()
        if words[:1] == [READ_MARKER]:
            return words[2] if len(words) == 3 and words[1] == "none" else None
    return None


def parse_bounded_read(stdout):
    """(size, content bytes or None when not sent) from bounded_read_command's output; None when
    there is no regular file (or the output is not the command's)."""
    lines = stdout.splitlines()
    for index, line in enumerate(lines):
        words = line.split()
        if words[:1] != [READ_MARKER]:
            continue  # anything a login shell printed first
        if len(words) != 3 or words[1] != "size" or not words[2].isdigit():
            return None
        if lines[index + 1:index + 2] != [f"{READ_MARKER} content"]:
            return int(words[2]), None
        try:
            return int(words[2]), bytes.fromhex(" ".join(lines[index + 2:]))
        except ValueError:
            return None
    return None
