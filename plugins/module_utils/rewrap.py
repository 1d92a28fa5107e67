# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""envelope.kms.rewrap: which files, what each needs (from its header alone), results and diffs.

Everything here is decided from the envelope headers (envelope.inspect_header, no KMS call) and the
resolved key ARNs, so check mode and unchanged re-runs cost no KMS call beyond DescribeKey. The
rewrap itself is the engine's (envelope.Engine.rewrap_file).
"""

from __future__ import annotations

import fnmatch
import glob
import os

from ansible_collections.envelope.kms.plugins.module_utils.diffs import envelope_diff
from ansible_collections.envelope.kms.plugins.module_utils.envelope import EnvelopeError, normalize_context
from ansible_collections.envelope.kms.plugins.module_utils.kms import wanted_key_ids  # noqa: F401  pylint: disable=unused-import
from ansible_collections.envelope.kms.plugins.module_utils._envelope.inputs import (
    known_key_arns,
    resolve_predicted_key_ids,
)
# The header's size rule: arithmetic on the context, no library call.
from ansible_collections.envelope.kms.plugins.module_utils._envelope.format import check_context_fits

_GLOB_CHARACTERS = ("*", "?", "[")
# Bounds of one task (documented in the module's options): a pattern over a huge tree fails with one
# line before any KMS call, instead of reading the whole file system or rewrapping without end.
MAX_FILES = 10000  # files selected by path and paths together
MAX_DIRECTORIES = 100000  # directories read while expanding the patterns


def resolve_key_arns(resolve, key_ids, check_mode, warn):
    """The sorted key ARNs the files must end up under (``resolve``: the engine's resolve_key_arn).

    In check mode a null key id, or one that names no key, is warned about (naming it) and stands as
    an unknown key ARN (inputs.resolve_predicted_key_ids, the rule every plugin follows); any other
    failure (and every failure outside check mode) is raised.
    """
    if check_mode:
        return sorted(resolve_predicted_key_ids(resolve, key_ids, warn))
    return sorted({resolve(key_id) for key_id in key_ids})


def shown_arns(arns):
    """Key ARNs as results show them: the known ones, then None for each key not known yet."""
    known = known_key_arns(arns)
    return known + [None] * (len(arns) - len(known))


def shown_result(result):
    if "key_arns" in result:
        result["key_arns"] = shown_arns(result["key_arns"])
    return result


def is_pattern(path):
    return any(character in path for character in _GLOB_CHARACTERS)


def expand_paths(patterns, max_files=None, max_directories=None, verb="rewrap"):
    """([(path as reported, real path or None, problem or None)], [patterns that matched nothing]).

    In the order given; each pattern's matches sorted. Patterns (``*``, ``?``, ``[...]``, ``**`` for
    any depth) select regular files only; a plain path must be a regular file, else it comes with a
    problem. ``**`` does not descend into symbolic links to directories (nor into a directory it
    already read: a bind-mount loop), so a link loop cannot make the walk endless; ``*`` and the
    other wildcards match one name each and follow links as any path does. A symbolic link to a
    file is followed: the file it points at is rewritten, the link stays. A file reached twice is
    handled once. More than ``max_files`` files (default MAX_FILES), or patterns reading more than
    ``max_directories`` directories (MAX_DIRECTORIES), raise EnvelopeError (``too_large``) naming the bound.
    ``verb`` names the task in messages ('cannot rewrap ...').
    """
    max_files = MAX_FILES if max_files is None else max_files
    entries, unmatched = [], []
    seen = set()
    walk = _Walk(MAX_DIRECTORIES if max_directories is None else max_directories, verb)
    for pattern in patterns:
        pattern = os.path.expanduser(pattern)
        if is_pattern(pattern):
            matches = [path for path in sorted(set(walk.glob(pattern))) if os.path.isfile(path)]
            if not matches:
                unmatched.append(pattern)
        elif not os.path.exists(pattern):
            entries.append((pattern, None, f"cannot {verb} {pattern}: no such file"))
            continue
        elif not os.path.isfile(pattern):
            entries.append((pattern, None, f"cannot {verb} {pattern}: not a regular file"))
            continue
        else:
            matches = [pattern]
        for path in matches:
            real = os.path.realpath(path)
            if real not in seen:
                seen.add(real)
                entries.append((path, real, None))
                if len(seen) > max_files:
                    raise EnvelopeError(f"cannot {verb} {pattern}: the paths select more than {max_files} files, the "
                                        f"most one task {verb}s; split the task or narrow the patterns", "too_large")
    return entries, unmatched


class _Walk:
    """Glob expansion as ``glob.glob(recursive=True)`` does it (hidden names only for a pattern part
    starting with a dot), except that ``**`` never enters a symbolic link to a directory nor the
    same directory twice, and every directory read counts against one bound for the whole task."""

    def __init__(self, max_directories, verb="rewrap"):
        self.max_directories = max_directories
        self.verb = verb
        self.read = 0
        self.pattern = None

    def glob(self, pattern):
        self.pattern = pattern
        head, parts = _split(pattern)
        paths = [head]
        index = 0
        while index < len(parts):
            part = parts[index]
            following = parts[index + 1] if index + 1 < len(parts) else None
            if part == "**" and following is not None and following != "**" and glob.has_magic(following):
                # '**/*.enc': match the next part on the listings the walk reads anyway (each directory once)
                paths = [found for base in paths for found in self._tree(base, then=following)]
                index += 1
            elif part == "**":
                paths = [found for base in paths for found in self._tree(base, with_files=following is None)]
            elif glob.has_magic(part):
                paths = [os.path.join(base, entry.name) for base in paths for entry in self._matching(self._list(base), part)]
            else:
                paths = [os.path.join(base, part) for base in paths]
            index += 1
        return paths

    def _list(self, directory):
        """The DirEntry objects of a directory, by name; [] when it cannot be read (as glob does)."""
        self.read += 1
        if self.read > self.max_directories:
            raise EnvelopeError(f"cannot {self.verb} {self.pattern}: the patterns reach more than {self.max_directories} "
                                "directories, the most one task reads; narrow the patterns", "too_large")
        try:
            with os.scandir(directory or os.curdir) as scanned:
                return sorted(scanned, key=lambda entry: entry.name)
        except OSError:
            return []

    @staticmethod
    def _matching(entries, part):
        hidden = part.startswith(".")
        return [entry for entry in entries
                if (hidden or not entry.name.startswith(".")) and fnmatch.fnmatchcase(entry.name, part)]

    def _tree(self, base, with_files=False, then=None):
        """``base`` and every directory below it (with_files: and every other entry; ``then``: instead,
        the entries of each matching that pattern part), without following directory links or
        entering a directory twice."""
        found = [] if then else [base]
        try:
            identity = os.stat(base or os.curdir)  # base itself was named (or matched): followed
        except OSError:
            return found
        seen = {(identity.st_dev, identity.st_ino)}
        pending = [base]
        while pending:
            directory = pending.pop()
            entries = self._list(directory)
            if then:
                found.extend(os.path.join(directory, entry.name) for entry in self._matching(entries, then))
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                path = os.path.join(directory, entry.name)
                if _is_real_directory(entry):
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if (info.st_dev, info.st_ino) in seen:
                        continue
                    seen.add((info.st_dev, info.st_ino))
                    pending.append(path)
                    if not then:
                        found.append(path)
                elif with_files:
                    found.append(path)  # a file, or a link (to a file: followed later; to a directory: not a file)
        return found


def _is_real_directory(entry):
    """A directory, not a link to one (no stat call where the file system gives the type)."""
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def _split(pattern):
    """(the fixed start, [the parts after it]): '/a/b/*.enc' -> ('/', ['a', 'b', '*.enc']). Empty
    parts in the middle ('a//b') go; a trailing one stays (a pattern ending in '/' selects no file)."""
    head = os.sep if pattern.startswith(os.sep) else ""
    parts = pattern[len(head):].split(os.sep)
    return head, [part for part in parts[:-1] if part] + parts[-1:]


def is_vars_file(path, extensions):
    """An envelope vars file (YAML/JSON with one envelope per value) by its name."""
    return any(os.path.basename(path).endswith(extension) for extension in extensions)


def desired_context(facts, encryption_context):
    """The context the file must end up with: its own (None given) or the given one."""
    if encryption_context is None:
        return dict(facts.encryption_context)
    return normalize_context(encryption_context)


def precondition_problem(path, facts, policy, context=None):
    """Why a file that needs rewrapping may not be (the engine's header checks against a
    DecryptPolicy; a ``context`` no header of the file's suite can hold), or None, with no KMS
    call: lets check mode predict what the rewrap would refuse, and spares the rewrap's KMS calls."""
    try:
        policy.check(facts, f"cannot rewrap {path}")
        if context is not None:
            check_context_fits(context, f"cannot rewrap {path}", facts.signed)
    except EnvelopeError as error:
        return error.message
    return None


def check_wanted_context(context):
    """Refuse, for the whole task and before any KMS call, an encryption_context no header can hold."""
    if context is not None:
        check_context_fits(context, "cannot rewrap")


def file_result(path, facts, key_arns, context, changed, new_facts=None):
    """The per-file entry of ``results`` (no plaintext, no key material: header facts only)."""
    after = new_facts
    return dict(
        path=path,
        changed=changed,
        failed=False,
        previous_key_arns=list(facts.key_arns),
        previous_encryption_context=dict(facts.encryption_context),
        key_arns=list(after.key_arns) if after is not None else sorted(key_arns),
        encryption_context=dict(after.encryption_context) if after is not None else dict(context),
        algorithm=(after or facts).algorithm,
    )


def failed_result(path, message, facts=None):
    result = dict(path=path, changed=False, failed=True, msg=message)
    if facts is not None:
        result.update(previous_key_arns=list(facts.key_arns),
                      previous_encryption_context=dict(facts.encryption_context))
    return result


def file_diff(result):
    """A --diff entry for a changed file: its keys and context before and after (never content)."""
    before = dict(key_arns=result["previous_key_arns"], encryption_context=result["previous_encryption_context"])
    after = dict(key_arns=result["key_arns"], encryption_context=result["encryption_context"])
    return envelope_diff(result["path"], before, after)


def failure_message(failures, total):
    """One line naming every file that failed, with why."""
    head = f"{len(failures)} of {total} files could not be rewrapped (left as they were)"
    return head + ": " + "; ".join(result["msg"] for result in failures)


def one_line(text, limit=300):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def error_message(error):
    """One line for anything that went wrong with one file: the engine's message, an OS error's
    reason, or the type and text of an exception nobody expected (library messages hold key ids at
    most, never key material or plaintext)."""
    if isinstance(error, EnvelopeError):
        return error.message
    if isinstance(error, OSError):
        return error.strerror or one_line(error)
    text = one_line(error)
    return f"unexpected error ({type(error).__name__}: {text})" if text else f"unexpected error ({type(error).__name__})"
