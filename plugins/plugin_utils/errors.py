# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""For internal collection use only: the one translation of an EnvelopeError for controller plugins.

Modules translate with ``module_utils/errors.py``'s ``module_errors``; action plugins, the lookup
and future controller plugins raise their own Ansible error class with the same one-line message.
"""

from __future__ import annotations

import contextlib

from ansible_collections.envelope.kms.plugins.module_utils.errors import EnvelopeError


@contextlib.contextmanager
def plugin_errors(error_class):
    """``with plugin_errors(AnsibleActionFail):`` raises ``error_class(message)`` for an EnvelopeError,
    without the traceback chain (the message is the whole story and never holds secrets)."""
    try:
        yield
    except EnvelopeError as error:
        raise error_class(error.message) from None
