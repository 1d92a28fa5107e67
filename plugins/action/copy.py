# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""envelope.kms.copy: encrypt on the controller, then let ansible.builtin.copy deploy the ciphertext.

Like ansible-core's template action, this prepares local files and hands over to the copy action,
so mode/owner/group/backup/validate/directory_mode/check mode behave exactly as they do for copy.
Local files only ever hold ciphertext: an existing envelope fetched back from the host, or a new one.

What is at dest is read first, by one shell command for every file of the task (read_command).
When that proves a dest already holds the wanted plaintext under the wanted keys and context, copy
is not run for it: its attributes are applied the way copy applies them when checksums match (the
file module), or not at all when the command showed they already are what the task asks.
"""

from __future__ import annotations

import base64
import copy as copy_module
import hashlib
import os
import posixpath
import re
import shlex
import shutil
import stat
import tempfile
from dataclasses import dataclass

from ansible import constants as C
from ansible.errors import AnsibleActionFail, AnsibleConnectionFailure, AnsibleError
from ansible.plugins.action.copy import _walk_dirs

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
from ansible_collections.envelope.kms.plugins.plugin_utils.source import find_source, read_source, task_source

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
# What the file module takes of them (copy's own REAL_FILE_ARGS), for a dest that is already right.
FILE_OPTIONS = ("mode", "owner", "group", "unsafe_writes", "attributes", "seuser", "serole", "setype", "selevel",
                "follow")
# Options the read command cannot check: with any of them given, the file module always runs.
UNCHECKED_ATTRIBUTES = ("attributes", "seuser", "serole", "setype", "selevel")

# What is at dest is read back by one command (read_command) that tells its size first: a size no
# envelope of this plaintext can have proves a change with nothing transferred. An envelope of a
# possible size up to this many bytes comes back in the command's output; of a bigger one only its
# first bytes and its sha1 come back, which prove sameness for the unsigned suites
# (Engine.compare_digest); anything else is fetched.
INLINE_READ_LIMIT = 1024 * 1024
PREFIX_LIMIT = 16 * 1024
READ_MARKER = "envelope.kms.copy:"
SHA1_HEX = re.compile(r"[0-9a-fA-F]{40}")
LOCAL_TRANSPORTS = ("local",)
# What read_command says of a dest that is there but not a regular file (nor a directory).
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
                tree = self._source_tree(options)
                if tree is None:
                    desired = self._desired(options)
                else:
                    tree = self._desired_tree(options, tree)
                workdir = tempfile.mkdtemp(dir=C.DEFAULT_LOCAL_TMP, prefix="envelope-kms-")
                if tree is None:
                    result.update(self._deploy(options, desired, workdir, task_vars))
                else:
                    result.update(self._deploy_tree(options, tree, workdir, task_vars))
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
            path=source.path,
            context=normalize_context(options["encryption_context"]),
        )

    def _source_tree(self, options):
        """src as copy finds it, when it is a directory (a trailing '/' kept); else None."""
        if options["src"] is None:
            return None
        path = find_source(self, options["src"])
        if not os.path.isdir(path):
            return None
        if options["src"].endswith("/") and not path.endswith("/"):
            path += "/"
        return path

    def _desired_tree(self, options, top):
        """Every file below a directory src, as ansible.builtin.copy walks it (its own _walk_dirs:
        symlinks followed, a trailing '/' copies the contents): the desired entry of each file, at
        dest/<relative path>, and the directories to make."""
        walked = _walk_dirs(top, local_follow=True, trailing_slash_detector=self._connection._shell.path_has_trailing_slash)
        if walked["symlinks"]:
            target, relative = walked["symlinks"][0]
            raise AnsibleActionFail(f"src {top}: the symbolic link {relative} (to {target}) makes a loop; "
                                    "envelope.kms.copy follows symbolic links and cannot copy a loop")
        dest = self._remote_expand_user(options["dest"])
        context = normalize_context(options["encryption_context"])
        files = []
        for full, relative in walked["files"]:
            plaintext = read_source(self._loader, full)  # a vault file is decrypted in memory only
            target = posixpath.join(dest, relative)
            if self._connection.transport in LOCAL_TRANSPORTS:
                _refuse_same_file(full, target, os.path.basename(full))
            size = len(plaintext) if isinstance(plaintext, bytes) else os.path.getsize(plaintext)
            files.append(dict(dest=target, name=os.path.basename(relative), relative=relative, plaintext=plaintext,
                              size=size, path=full, context=context))
        return dict(top=top, dest=dest, files=files, directories=[relative for _full, relative in walked["directories"]])

    # -- the deploy of one file

    def _deploy(self, options, desired, workdir, task_vars):
        engine = self.engine()
        read = self._read_dests([desired], options, task_vars, name=None if desired["path"] is None else desired["name"])[0]
        if read.into_directory:
            desired["dest"] = posixpath.join(desired["dest"], desired["name"])
        if read.kind == "directory" and desired["path"] is None:
            raise AnsibleActionFail(f"can not use content with a dir as dest: {desired['dest']}")
        if read.kind == "file" and not options["force"]:
            # copy's force=false: an existing dest is left alone, so no KMS call is needed either
            return self._hand_over(_placeholder(workdir, desired), desired, options, task_vars)

        key_arns = self.resolve_key_arns(options["key_id"])  # in check mode a key not known yet: never the same
        comparison, existing = self._compare(engine, read, desired, key_arns, options, workdir, task_vars)
        if comparison and comparison.same:
            result = self._keep(read, desired, options, task_vars)
            facts = comparison.facts
        else:
            if self._play_context.check_mode:
                # No data key in check mode: any different local file makes copy predict the change.
                source, facts = _placeholder(workdir, desired), None
            else:
                source = os.path.join(workdir, desired["name"])
                facts = self._encrypt(engine, desired, source, key_arns, options)
            result = self._hand_over(source, desired, options, task_vars)
        result.update(
            key_arns=shown_key_arns(key_arns),
            encryption_context=desired["context"],
            algorithm=options["algorithm"],
            frame_length=options["frame_length"],
        )
        if self._play_context.diff and result.get("changed"):
            attributes = result.get("diff") if comparison and comparison.same else None
            result["diff"] = self._diff(comparison, key_arns, desired, options, facts, (read.size, existing), attributes)
        return result

    @staticmethod
    def _encrypt(engine, desired, path, key_arns, options):
        encrypt = engine.encrypt_bytes if isinstance(desired["plaintext"], bytes) else engine.encrypt_file
        # a scratch file: copy hashes and writes it atomically on the host itself
        return encrypt(desired["plaintext"], path, key_arns, desired["context"], options["algorithm"],
                       options["frame_length"], checksums=False, durable=False)

    # -- reading and comparing what is at dest

    def _read_dests(self, entries, options, task_vars, name=None):
        """[DestRead] of each entry's dest, from one command on the host (sudoable: what the task's
        become user can read); a dest that is a FIFO, a device or a socket is refused."""
        ranges = [(entry["dest"], *envelope_size_range(entry["size"], options["frame_length"], options["algorithm"]))
                  for entry in entries]
        reads = []
        for batch in read_batches(ranges):
            output = self._low_level_execute_command(read_command(batch, INLINE_READ_LIMIT, PREFIX_LIMIT, name),
                                                     sudoable=True)
            # what the command said of each path holds even if it then failed (an entry it did not reach: kind None)
            reads.extend(parse_read(output["stdout"], len(batch)))
        for entry, read in zip(entries, reads):
            if read.kind in SPECIAL_KINDS:
                # copy would replace it with the envelope; never opened, never replaced (as for encrypt)
                where = posixpath.join(entry["dest"], name) if read.into_directory else entry["dest"]
                raise AnsibleActionFail(f"dest {where} is {SPECIAL_KINDS[read.kind]}, not a regular file")
        return reads

    def _compare(self, engine, read, desired, key_arns, options, workdir, task_vars):
        """(Comparison or None, local copy of the envelope or None) for what read found at dest.

        A symbolic link with follow=false is never the same: copy replaces the link with a file."""
        if read.kind != "file" or (read.link and not options["follow"]):
            return None, None
        if not envelope_could_hold(read.size, desired["size"], options["frame_length"], options["algorithm"]):
            return None, None
        args = (desired["plaintext"], key_arns, desired["context"], options["algorithm"], options["frame_length"])
        if read.content is not None:
            return engine.compare(read.content, *args), read.content
        if read.prefix is not None and read.sha1:
            comparison = engine.compare_digest(read.prefix, read.size, read.sha1, *args)
            if comparison is not None:
                return comparison, None
        # no proof from the digest (a signed suite, no sha1sum on the host): read the whole envelope
        local = self._fetch_whole(desired["dest"], os.path.join(workdir, "existing.envelope"), task_vars)
        if local is None or os.path.getsize(local) != read.size:
            return None, None
        return engine.compare(local, *args), local

    def _fetch_whole(self, dest, local, task_vars):
        if self._connection.become:
            # fetch_file cannot read as the become user; the slurp module can (as ansible-core's fetch does)
            return self._slurp(dest, local, task_vars)
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

    # -- a dest that already holds the wanted envelope

    def _keep(self, read, desired, options, task_vars):
        """What copy does when checksums match, without its stat and its second hashing: the file
        module applies mode/owner/group/SELinux/attributes (check mode and diff its own). Not even
        that when the read command showed mode, owner and group already as asked and nothing else
        is asked."""
        checksum = read.sha1 or (hashlib.sha1(read.content).hexdigest() if read.content is not None else None)
        mode = options["mode"]
        if mode == "preserve":
            mode = _preserved_mode(desired)
        if _attributes_hold(read, dict(options, mode=mode)):
            result = dict(changed=False, dest=desired["dest"], path=desired["dest"], size=read.size, state="file",
                          mode=f"{mode_bits(read.attrs[0]):04o}", owner=read.attrs[1], group=read.attrs[2],
                          uid=_number(read.attrs[3]), gid=_number(read.attrs[4]))
        else:
            args = {name: options[name] for name in FILE_OPTIONS if options[name] is not None}
            if mode is not None:
                args["mode"] = mode
            elif "mode" in args:
                del args["mode"]  # preserve for content: copy's temp file had no mode of its own to keep
            args.update(path=desired["dest"], _original_basename=desired["name"], recurse=False, state="file")
            result = self._execute_module("ansible.legacy.file", module_args=args, task_vars=task_vars)
            result.pop("invocation", None)
            result.setdefault("dest", desired["dest"])
        if checksum:
            result["checksum"] = checksum
        return result

    def _hand_over(self, source, desired, options, task_vars):
        """Run ansible.builtin.copy with our local ciphertext file (or tree), without its content diff."""
        task = self._task.copy()
        task.args = {name: options[name] for name in COPY_OPTIONS if options[name] is not None}
        if task.args.get("mode") == "preserve" and desired.get("path") is not None:
            task.args["mode"] = _preserved_mode(desired)  # src's mode, not the scratch file's
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

    # -- the deploy of a directory

    def _deploy_tree(self, options, tree, workdir, task_vars):
        """Every file below a directory src to dest/<relative path>: one read command for all of
        them, one DescribeKey, a data key only for a file whose dest does not hold it already.
        Files that changed (and every directory, for directory_mode) go to ansible.builtin.copy in
        one run over a scratch tree of their envelopes; the others keep their envelope and get
        their attributes as for one file. As for copy's own recursive copy, links at dest are not
        followed (follow is false for every file)."""
        engine = self.engine()
        options = dict(options, follow=False, diff_plaintext=False)
        files = tree["files"]
        reads = self._read_dests(files, options, task_vars) if files else []
        if not options["force"]:
            # copy's force=false: existing dests are left alone, without a KMS call
            files = [entry for entry, read in zip(files, reads) if read.kind != "file"]
            reads = [DestRead() for _entry in files]
        key_arns = self.resolve_key_arns(options["key_id"]) if files else []
        scratch = os.path.join(workdir, "tree")
        os.makedirs(scratch)
        for relative in tree["directories"]:
            os.makedirs(os.path.join(scratch, relative), exist_ok=True)
        results, diffs = [], []
        for entry, read in zip(files, reads):
            item, diff = self._tree_file(engine, entry, read, key_arns, options, scratch, workdir, task_vars)
            if item.get("failed"):
                return item
            results.append(item)
            diffs.extend(diff)
        result = dict(changed=any(item["changed"] for item in results), dest=tree["dest"])
        if any(item.get("reasons") for item in results) or tree["directories"]:
            handed = self._hand_over(scratch + "/", dict(dest=posixpath.join(tree["dest"], "")), options, task_vars)
            if handed.get("failed"):
                return handed
            result["changed"] = result["changed"] or bool(handed.get("changed"))
        result.update(files=results, key_arns=shown_key_arns(key_arns),
                      encryption_context=normalize_context(options["encryption_context"]),
                      algorithm=options["algorithm"], frame_length=options["frame_length"])
        if self._play_context.diff and diffs:
            result["diff"] = diffs
        return result

    def _tree_file(self, engine, entry, read, key_arns, options, scratch, workdir, task_vars):
        """(result item, diffs) of one file of a directory src: kept (attributes applied here) or
        its new envelope (a placeholder in check mode) put in the scratch tree for copy."""
        comparison, _existing = self._compare(engine, read, entry, key_arns, options, workdir, task_vars)
        diff = self._play_context.diff
        if comparison and comparison.same:
            outcome = self._keep(read, entry, options, task_vars)
            if outcome.get("failed"):
                return dict(outcome, msg=f"{entry['dest']}: {outcome.get('msg', 'failed')}"), []
            changed = bool(outcome.get("changed"))
            diffs = []
            if diff and changed:
                diffs = self._diff(comparison, key_arns, entry, options, comparison.facts, (read.size, None),
                                   outcome.get("diff"))
            return dict(dest=entry["dest"], changed=changed, encrypted=False), diffs
        local = os.path.join(scratch, entry["relative"])
        os.makedirs(os.path.dirname(local), exist_ok=True)
        facts = None
        if self._play_context.check_mode:
            _placeholder_at(local)
        else:
            facts = self._encrypt(engine, entry, local, key_arns, options)
        if options["mode"] == "preserve":
            os.chmod(local, stat.S_IMODE(os.stat(entry["path"]).st_mode))  # copy keeps the scratch file's mode
        reasons = list(comparison.reasons) if comparison else ["content" if read.kind == "file" else read.kind or "unread"]
        diffs = self._diff(comparison, key_arns, entry, options, facts, (read.size, None)) if diff else []
        return dict(dest=entry["dest"], changed=True, encrypted=facts is not None, reasons=reasons), diffs

    def _diff(self, comparison, key_arns, desired, options, new_facts, at_dest, attributes=None):
        """The envelope's metadata and sizes before and after (the old plaintext's size only when it
        is the new one's: it is not decrypted for a diff); the plaintexts too with diff_plaintext;
        then ``attributes``, the file module's diff when the envelope was kept."""
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
        return diffs + _as_list(attributes)

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
                reason = error.message.replace(existing, desired["dest"]) if isinstance(existing, str) else error.message
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
    return _placeholder_at(os.path.join(workdir, desired["name"]))


def _placeholder_at(path):
    with open(path, "wb") as handle:
        handle.write(b"envelope.kms.copy placeholder\n")
    return path


def _as_list(diff):
    if not diff:
        return []
    return list(diff) if isinstance(diff, list) else [diff]


def _preserved_mode(desired):
    """mode=preserve: the mode of src on the controller (None for content: nothing to preserve)."""
    if desired.get("path") is None:
        return None
    return f"0{stat.S_IMODE(os.stat(desired['path']).st_mode):03o}"


def _attributes_hold(read, options):
    """Does what the read command saw at dest already carry the mode, owner and group the task
    asks (and is nothing else asked that only the file module can check)?"""
    if read.attrs is None or any(options[name] is not None for name in UNCHECKED_ATTRIBUTES):
        return False
    current = mode_bits(read.attrs[0])
    if current is None:
        return False
    if options["mode"] is not None:
        mode = options["mode"]
        if isinstance(mode, str) and not mode.strip().isdigit():
            return False  # symbolic: the file module applies it to what is there
        try:
            if resolve_mode(mode) != current:
                return False
        except EnvelopeError:
            return False
    # as the file module reads them: digits are a uid/gid, anything else a name
    for wanted, name, number in ((options["owner"], read.attrs[1], read.attrs[3]),
                                 (options["group"], read.attrs[2], read.attrs[4])):
        if wanted is not None and str(wanted) != (number if str(wanted).isdigit() else name):
            return False
    return True


def _number(text):
    return int(text) if str(text).isdigit() else text


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


# The shell function read_command calls once per path: r INDEX PATH LOW HIGH LIMIT PREFIX [PATH/NAME].
# A path is only ever an operand after -- or a redirection, never an option; a file that cannot be
# read says so for itself (none unreadable) and the others are still read.
_READ_FUNCTION = (
    'r() { m="echo ' + READ_MARKER + ' $1"; p=$2; '
    'if [ -n "$7" ] && [ -d "$p" ]; then $m directory; p=$7; fi; '
    'if [ -L "$p" ]; then $m link; fi; '
    'if [ -f "$p" ]; then size=$(wc -c < "$p") || { $m none unreadable; return 0; }; $m size $size; '
    '$m attrs $(ls -ldL -- "$p" | awk \'{print substr($1, 1, 10), $3, $4}\') $(ls -ldLn -- "$p" | awk \'{print $3, $4}\'); '
    'if [ $size -ge $3 ] && [ $size -le $5 ]; then $m content; od -A n -v -t x1 -N $5 < "$p" || $m none unreadable; '
    'elif [ $size -ge $3 ] && [ $size -le $4 ]; then $m prefix; od -A n -v -t x1 -N $6 < "$p" || $m none unreadable; '
    'sum=; if command -v openssl > /dev/null 2>&1; then sum=$(openssl dgst -sha1 -r < "$p" 2> /dev/null) || sum=; '
    'sum=${sum%% *}; case $sum in *[!0-9a-fA-F]*) sum= ;; esac; fi; '
    'if [ -z "$sum" ] && command -v sha1sum > /dev/null 2>&1; then sum=$(sha1sum < "$p") || sum=; sum=${sum%% *}; fi; '
    'if [ -n "$sum" ]; then $m sha1 $sum; fi; fi; '
    'elif [ -d "$p" ]; then $m none directory; elif [ -p "$p" ]; then $m none fifo; '
    'elif [ -c "$p" ] || [ -b "$p" ]; then $m none device; elif [ -S "$p" ]; then $m none socket; '
    'elif [ -e "$p" ]; then $m none special; else $m none missing; fi; }'
)
# Paths per command: a shell command is one argument to sh -c, which Linux caps at 128 KiB.
READ_BATCH_BYTES = 64 * 1024


def read_command(entries, inline_limit, prefix_limit=PREFIX_LIMIT, name=None):
    """One POSIX shell command for many (path, low, high): for each, in order, ``READ_MARKER I``
    lines (I its index) that say

    - ``directory`` when ``name`` is given and path is a directory: what follows is of path/name,
      the file ansible.builtin.copy writes there;
    - ``link`` when it is a symbolic link; ``attrs MODE OWNER GROUP UID GID`` of the file (links
      followed) from ``ls -ld``;
    - ``size N`` when it is a regular file, then, when low <= N <= min(high, inline_limit),
      ``content`` and the file as hex (od, POSIX); when low <= N <= high only, ``prefix`` and its
      first prefix_limit bytes as hex, then ``sha1 HEX`` (OpenSSL's, 2-3 times as fast as coreutils'
      sha1sum on 256 MiB; sha1sum's when the host has no openssl; none without either);
    - ``none KIND`` when there is no regular file there, KIND being missing, directory, fifo,
      device, socket or special (a FIFO or a device is never opened), or unreadable.

    Nothing of a file that no envelope of the plaintext could be is ever read out."""
    calls = []
    for index, (path, low, high) in enumerate(entries):
        joined = posixpath.join(path, name) if name is not None else ""
        calls.append(f"r {index} {shlex.quote(path)} {int(low)} {int(high)} {min(int(high), int(inline_limit))} "
                     f"{int(prefix_limit)} {shlex.quote(joined)}")
    return _READ_FUNCTION + "; " + "; ".join(calls)


def read_batches(entries, limit=READ_BATCH_BYTES):
    """entries cut into consecutive batches whose read_command stays under limit bytes."""
    batch, size = [], 0
    for entry in entries:
        cost = len(shlex.quote(entry[0])) * 2 + 80
        if batch and size + cost > limit:
            yield batch
            batch, size = [], 0
        batch.append(entry)
        size += cost
    if batch:
        yield batch


@dataclass
class DestRead:
    """What read_command said of one path."""
    kind: str = None  # file, missing, directory, fifo, device, socket, special; None: no answer
    size: int = None
    content: bytes = None  # the whole file (small envelopes)
    prefix: bytes = None  # its first bytes (big envelopes), with sha1
    sha1: str = None
    link: bool = False
    into_directory: bool = False  # the path was a directory: this is of path/name
    attrs: tuple = None  # (mode string, owner, group, uid, gid)


def parse_read(stdout, count=1):
    """[DestRead] for read_command's output of ``count`` entries; an entry it said nothing of has
    kind None (output that is not the command's: a broken shell, a login banner alone)."""
    reads = [DestRead() for _index in range(count)]
    receiving, hex_words = None, []  # (DestRead, field) that the hex lines that follow fill
    for line in stdout.splitlines():
        words = line.split()
        if words[:1] == [READ_MARKER] and len(words) >= 3 and words[1].isdigit() and int(words[1]) < count:
            _fill(receiving, hex_words)
            read = reads[int(words[1])]
            receiving = (read, words[2]) if _take(read, words[2], words[3:]) else None
        elif receiving is not None:
            hex_words.extend(words)
    _fill(receiving, hex_words)
    for read in reads:
        if read.content is not None and len(read.content) != read.size:
            read.content = None  # changed while being read: not the same either
    return reads


def _take(read, what, rest):
    """Record one marker line's news in read; True when hex lines of content or prefix follow."""
    if what in ("content", "prefix") and not rest:
        setattr(read, what, b"")
        return True
    if what == "size" and len(rest) == 1 and rest[0].isdigit():
        read.kind, read.size = "file", int(rest[0])
    elif what == "sha1" and len(rest) == 1 and SHA1_HEX.fullmatch(rest[0]):
        read.sha1 = rest[0].lower()
    elif what == "none" and len(rest) == 1:
        read.kind = rest[0]
    elif what == "attrs" and len(rest) == 5:
        read.attrs = tuple(rest)
    elif what in ("link", "directory") and not rest:
        setattr(read, "link" if what == "link" else "into_directory", True)
    return False


def _fill(receiving, hex_words):
    if receiving is not None and hex_words:
        try:
            setattr(receiving[0], receiving[1], bytes.fromhex("".join(hex_words)))
        except ValueError:
            setattr(receiving[0], receiving[1], None)  # not od's output: nothing read
    hex_words.clear()


def mode_bits(text):
    """Permission bits from ls's mode string ('-rw-r-----', 's'/'t' included); None if not one."""
    if len(text) != 10 or text[0] != "-":
        return None  # not a regular file's mode string
    bits = 0
    for index, (char, value) in enumerate(zip(text[1:], (0o400, 0o200, 0o100, 0o40, 0o20, 0o10, 0o4, 0o2, 0o1))):
        special = {2: 0o4000, 5: 0o2000, 8: 0o1000}.get(index)
        if char in "rwx":
            bits |= value
        elif char in "st" and special:
            bits |= value | special
        elif char in "ST" and special:
            bits |= special
        elif char != "-":
            return None
    return bits
