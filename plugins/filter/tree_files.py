# -*- coding: utf-8 -*-
# Copyright: envelope.kms developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja filter: the files below a controller directory, as ansible.builtin.copy lays them out below dest."""

import os

from ansible.errors import AnsibleFilterError
from ansible.plugins.action.copy import _walk_dirs


def tree_files(path):
    """Relative paths of the files below ``path`` as envelope.kms.copy and ansible.builtin.copy put
    them below dest (copy's own walk): ``conf`` gives ``conf/a.env``, ``conf/`` gives ``a.env``.
    Symbolic links are followed; one that makes a loop is an error, as for envelope.kms.copy."""
    if not isinstance(path, str) or not os.path.isdir(path):
        raise AnsibleFilterError(f"tree_files takes the path of a directory on the controller, not {path!r}")
    walked = _walk_dirs(path, local_follow=True, trailing_slash_detector=lambda name: name.endswith(os.sep))
    if walked["symlinks"]:
        target, relative = walked["symlinks"][0]
        raise AnsibleFilterError(f"{path}: the symbolic link {relative} (to {target}) makes a loop")
    return sorted(relative for _full, relative in walked["files"])


class FilterModule:
    """envelope.kms filters."""

    def filters(self):
        return {"tree_files": tree_files}
