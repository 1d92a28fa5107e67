# -*- coding: utf-8 -*-
# Copyright: envelope.kms developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja test: is this a regular file the controller's user can read?"""

import os


def readable(path):
    """True for a regular file (links followed) that this process may open for reading."""
    if not isinstance(path, str) or not path:
        return False
    path = os.path.expanduser(path)
    return os.path.isfile(path) and os.access(path, os.R_OK)


class TestModule:
    """envelope.kms tests."""

    def tests(self):
        return {"readable": readable}
