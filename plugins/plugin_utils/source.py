# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""For internal collection use only: the plaintext a task's ``src`` | ``content`` names, and its ``dest``.

Shared by the actions that encrypt on the controller (envelope.kms.copy, envelope.kms.encrypt), so
that vault handling, content encoding and the ``dest`` ending in ``/`` rule live in one place.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.module_utils.common.text.converters import to_bytes
from ansible.parsing.vault import is_encrypted_file


@dataclass(frozen=True)
class TaskSource:
    dest: str  # the task's dest, with the name of src appended when it ends with '/'
    name: str  # a file name for scratch files: src's, else dest's
    plaintext: object  # a controller path (plain file, streamed) or bytes (content, vault file) held in memory
    path: str = None  # src as found on the controller; None for content

    @property
    def size(self):
        if isinstance(self.plaintext, bytes):
            return len(self.plaintext)
        return os.path.getsize(self.plaintext)


def task_source(action, src, content, dest):
    """The TaskSource of an action plugin's task: ``src`` is looked up like ansible.builtin.copy
    does (role ``files/``, playbook folder); exactly one of ``src`` and ``content`` is set."""
    if src is not None:
        path = find_source(action, src)
        if os.path.isdir(path):
            # one file per task for now (a folder of files is issue #17)
            name = action._task.resolved_action or action._task.action
            raise AnsibleActionFail(f"src {path} is a directory, not a regular file: {name} encrypts one file per task "
                                    "(loop over the files of ansible.builtin.find, or use with_fileglob)")
        if dest.endswith("/"):
            dest += os.path.basename(path)
        return TaskSource(dest, os.path.basename(path), read_source(action._loader, path), path)
    if dest.endswith("/"):
        raise AnsibleActionFail("dest must be a file path when content is given")
    return TaskSource(dest, os.path.basename(dest) or "content", content_bytes(content))


def find_source(action, src):
    """src as found on the controller; one line when it is not there (Ansible's own message goes on
    to suggest remote_src, which these actions do not take)."""
    try:
        return action._find_needle("files", src)
    except AnsibleError:
        raise AnsibleActionFail(f"Could not find or access '{src}' on the controller "
                                "(searched the role's and the playbook's files/ folders)") from None


def read_source(loader, path):
    """Plain files are streamed from their path; vault files are decrypted in memory only
    (copy's own get_real_file would write the plaintext to a temp file).

    Only a regular file is a source: a FIFO would block the open (or the read) until a writer
    comes, a device such as /dev/zero would be encrypted forever. The path is checked before it is
    opened (opening some devices has effects), then the open descriptor is (the path may have
    been swapped in between); opening non-blocking means a FIFO swapped in cannot hang us."""
    b_path = to_bytes(path, errors="surrogate_or_strict")
    _require_regular(path, lambda: os.stat(b_path))
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(b_path, flags)
    except OSError as error:
        raise AnsibleActionFail(f"cannot read src {path}: {error.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        _require_regular(path, lambda: os.fstat(handle.fileno()))
        if not is_encrypted_file(handle):
            return path
    return bytes(loader._get_file_contents(path)[0])


def _require_regular(path, stat_of):
    try:
        mode = stat_of().st_mode
    except OSError as error:
        raise AnsibleActionFail(f"cannot read src {path}: {error.strerror}") from None
    if not stat.S_ISREG(mode):
        raise AnsibleActionFail(f"src {path} is {_kind(mode)}, not a regular file")


def refuse_special_dest(dest, mode):
    """An existing dest must be a regular file (``mode``: its st_mode; a directory is the caller's
    rule): a FIFO, a device or a socket is never opened nor replaced."""
    if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        raise AnsibleActionFail(f"dest {dest} is {_kind(mode)}, not a regular file")


def _kind(mode):
    for test, kind in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a device"),
                       (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "a special file"


def content_bytes(content):
    # Like ansible.builtin.copy: structured content is written as JSON.
    if isinstance(content, (dict, list)):
        return to_bytes(json.dumps(content))
    return to_bytes(content, errors="surrogate_or_strict")
