# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""For internal collection use only: the owner, group and mode of a file a host module writes,
checked and resolved before anything is written.

The modules that write files on the host (decrypt, data_key) create them through AtomicFile, which
sets these on the temp file's descriptor before the rename: a bad owner or mode fails the task with
nothing written, and a path swapped under us cannot redirect a chmod or chown. Ansible's own file
handling (selinux, attributes, and attributes of an unchanged file) runs afterwards as usual.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.envelope.kms.plugins.module_utils.errors import InputError

# Files that hold secrets are created private unless a mode is asked for.
PRIVATE_MODE = 0o600


def resolve_owner(owner):
    """uid of a user name or number; -1 for None."""
    return _resolve(owner, "owner", lambda name: pwd.getpwnam(name).pw_uid)


def resolve_group(group):
    """gid of a group name or number; -1 for None."""
    return _resolve(group, "group", lambda name: grp.getgrnam(name).gr_gid)


def _resolve(value, what, lookup):
    if value is None or value == "":
        return -1
    text = str(value)
    if text.isdigit():
        return int(text)
    try:
        return lookup(text)
    except KeyError:
        raise InputError(f"{what} {text!r} does not exist on this host") from None


def resolve_mode(mode, base=PRIVATE_MODE):
    """The numeric mode for ``mode`` (an int, an octal string such as '0640', or a symbolic mode such
    as 'u=rw,g=r' applied to ``base``); None gives ``base``. InputError for anything else ('0999',
    'u+rwz', 0o17777)."""
    if mode is None:
        return base
    if isinstance(mode, bool):
        raise InputError(f"mode must be in octal or symbolic form, not {mode!r}")
    if isinstance(mode, int):
        numeric = mode
    elif isinstance(mode, str) and mode.strip().isdigit():
        try:
            numeric = int(mode.strip(), 8)
        except ValueError:
            raise InputError(f"mode {mode!r} is not an octal number") from None
    elif isinstance(mode, str) and mode.strip():
        fake = os.stat_result((stat.S_IFREG | base, 0, 0, 1, 0, 0, 0, 0, 0, 0))
        try:
            numeric = AnsibleModule._symbolic_mode_to_octal(fake, mode.strip())  # pylint: disable=protected-access
        except Exception as error:  # pylint: disable=broad-except  # ansible raises ValueError and others
            raise InputError(f"mode {mode!r} must be in octal or symbolic form ({error})") from None
    else:
        raise InputError(f"mode must be in octal or symbolic form, not {mode!r}")
    if numeric < 0 or numeric > 0o7777:
        raise InputError(f"mode {mode!r} is out of range (0000 to 7777 in octal)")
    return numeric


def format_mode(value):
    return f"{value:04o}"


def dest_stat(path, follow):
    """(path to write, its os.stat_result or None, is_link): a symbolic link at path is followed to
    its target when ``follow`` (as ansible.builtin.copy does), else reported as is_link (the link
    itself is replaced, the file it points to is neither read nor changed). Directories, FIFOs,
    devices and sockets are refused."""
    if follow and os.path.islink(path):
        path = os.path.realpath(path)
    try:
        found = os.lstat(path)
    except FileNotFoundError:
        return path, None, False
    if stat.S_ISLNK(found.st_mode):
        return path, None, True
    if not stat.S_ISREG(found.st_mode):
        kind = "a directory" if stat.S_ISDIR(found.st_mode) else "not a regular file"
        raise InputError(f"dest {path} is {kind}: give the path of a file", path)
    return path, found, False


def planned_attributes(params, existing):
    """(mode, uid, gid) for the file that replaces ``existing`` (an os.stat_result or None), from the
    task's mode/owner/group. A replaced file of the effective user passes on its mode and owner
    (as ansible.builtin.copy keeps them); a file someone else owns passes on nothing: it may have
    been planted (a world-writable directory), so the plaintext gets the mode asked for, or 0600,
    and our owner, unless owner/group are given."""
    kept = existing if existing is not None and existing.st_uid == os.geteuid() else None
    base = stat.S_IMODE(kept.st_mode) if kept is not None else PRIVATE_MODE
    mode = resolve_mode(params.get("mode"), base)
    uid = resolve_owner(params.get("owner"))
    gid = resolve_group(params.get("group"))
    if kept is not None:
        uid = kept.st_uid if uid == -1 else uid
        gid = kept.st_gid if gid == -1 else gid
    return mode, uid, gid


def foreign_owner_warning(path, existing, params):
    """A warning when a file of another owner is replaced without owner/group/mode: its owner and
    mode are not passed on (see planned_attributes)."""
    if existing is None or existing.st_uid == os.geteuid():
        return None
    if params.get("owner") is not None and params.get("mode") is not None:
        return None
    return (f"{path} belonged to uid {existing.st_uid} with mode {format_mode(stat.S_IMODE(existing.st_mode))}; "
            "its replacement does not inherit them from a file of another user: set owner, group and mode to choose")
