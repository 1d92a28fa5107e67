# -*- coding: utf-8 -*-
# Copyright: envelope.kms developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja filter: the files below a controller directory, as ansible.builtin.copy lays them out below dest."""

import os
import posixpath

from ansible.errors import AnsibleFilterError
from ansible.plugins.action.copy import _walk_dirs


def tree_files(path, folders=False):
    """Relative paths of the files below ``path`` as envelope.kms.copy and ansible.builtin.copy put
    them below dest (copy's own walk): ``conf`` gives ``conf/a.env``, ``conf/`` gives ``a.env``.
    With ``folders``, the folders copy makes instead: ``''`` for dest itself, then every folder
    below it (``conf`` itself without the trailing '/'), empty ones too; none for an empty directory.
    Symbolic links are followed; one that makes a loop is an error, as for envelope.kms.copy."""
    if not isinstance(path, str) or not os.path.isdir(path):
        raise AnsibleFilterError(f"tree_files takes the path of a directory on the controller, not {path!r}")
    walked = _walk_dirs(path, local_follow=True, trailing_slash_detector=lambda name: name.endswith(os.sep))
    if walked["symlinks"]:
        target, relative = walked["symlinks"][0]
        raise AnsibleFilterError(f"{path}: the symbolic link {relative} (to {target}) makes a loop")
    if not folders:
        return sorted(relative for _full, relative in walked["files"])
    made = {relative for _full, relative in walked["directories"]}
    made.update(posixpath.dirname(relative) for _full, relative in walked["files"])
    if made:
        made.add("")
    for relative in list(made):
        while relative:  # every parent too (conf itself, without the '/')
            relative = posixpath.dirname(relative)
            made.add(relative)
    return sorted(made)


class FilterModule:
    """envelope.kms filters."""

    def filters(self):
        return {"tree_files": tree_files}
