# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""envelope.kms.rewrap: which files, what each needs (from its header alone), results and diffs.

Everything here is decided from the envelope headers (envelope.inspect_header, no KMS call) and the
resolved key ARNs, so check mode and unchanged re-runs cost no KMS call beyond DescribeKey. The
rewrap itself is the engine's (envelope.Engine.rewrap_file).
"""

from __future__ import annotations

import glob
import os

from ansible_collections.envelope.kms.plugins.module_utils.diffs import envelope_diff
from ansible_collections.envelope.kms.plugins.module_utils.envelope import EnvelopeError, normalize_context

_GLOB_CHARACTERS = ("*", "?", "[")


def is_pattern(path):
    return any(character in path for character in _GLOB_CHARACTERS)


def expand_paths(patterns):
    """([(path as reported, real path or None, problem or None)], [patterns that matched nothing]).

    In the order given; each pattern's matches sorted. Patterns (``*``, ``?``, ``[...]``, ``**`` for
    any depth) select regular files only; a plain path must be a regular file, else it comes with a
    problem. Symbolic links are followed: the file they point at is rewritten, the link stays. A file
    reached twice is handled once.
    """
    entries, unmatched = [], []
    seen = set()
    for pattern in patterns:
        pattern = os.path.expanduser(pattern)
        if is_pattern(pattern):
            matches = [path for path in sorted(glob.glob(pattern, recursive=True)) if os.path.isfile(path)]
            if not matches:
                unmatched.append(pattern)
        elif not os.path.exists(pattern):
            entries.append((pattern, None, f"cannot rewrap {pattern}: no such file"))
            continue
        elif not os.path.isfile(pattern):
            entries.append((pattern, None, f"cannot rewrap {pattern}: not a regular file"))
            continue
        else:
            matches = [pattern]
        for path in matches:
            real = os.path.realpath(path)
            if real not in seen:
                seen.add(real)
                entries.append((path, real, None))
    return entries, unmatched


def desired_context(facts, encryption_context):
    """The context the file must end up with: its own (None given) or the given one."""
    if encryption_context is None:
        return dict(facts.encryption_context)
    return normalize_context(encryption_context)


def precondition_problem(path, facts, policy):
    """Why a file that needs rewrapping may not be (the engine's header checks against a
    DecryptPolicy, no KMS call), or None: lets check mode predict what the rewrap would refuse."""
    try:
        policy.check(facts, f"cannot rewrap {path}")
    except EnvelopeError as error:
        return error.message
    return None


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
