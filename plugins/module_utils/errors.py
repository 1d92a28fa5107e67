# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The collection's one error model, and its translation for modules.

Every failure a user can cause or meet is an ``EnvelopeError``: a one-line message that never holds
plaintext or key material, a ``kind`` (see the class) and the ``path`` it is about when there is
one. ``InputError`` is the kind ``invalid_argument``, raised before any KMS call or write. Each
plugin type translates these in one place: modules with ``module_errors`` (below), action plugins
and the lookup with ``plugin_utils/errors.py``.
"""

from __future__ import annotations

import contextlib

try:
    import botocore.exceptions
except ImportError:
    AWS_ERRORS = ()  # AnsibleAWSModule reports the missing library before anything here runs
else:
    AWS_ERRORS = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)


class EnvelopeError(Exception):
    """A one-line, user-facing failure. ``kind`` tells callers which case it is; ``path`` names the
    file it is about, when there is one.

    Kinds: not_envelope, corrupt, trailing_data, context_mismatch, key_not_allowed, key_unusable,
    key_not_found, access_denied, credentials, throttled, kms_error, policy, too_large,
    invalid_argument, io_error.
    """

    def __init__(self, message, kind="error", path=None):
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.path = path


class InputError(EnvelopeError, ValueError):
    """A bad option value, caught before any KMS call or write."""

    def __init__(self, message, path=None):
        super().__init__(message, "invalid_argument", path)


def os_error_message(error, what):
    """One line for an OSError: what failed, why, and on which file."""
    where = f" ({error.filename})" if error.filename else ""
    return f"{what}: {error.strerror or error}{where}"


@contextlib.contextmanager
def module_errors(module, what):
    """``with module_errors(module, "Could not read key x"):`` fails the module with one line for an
    EnvelopeError (its message), an AWS error (``what`` and amazon.aws's details) or an OSError."""
    try:
        yield
    except EnvelopeError as error:
        module.fail_json(msg=error.message)
    except AWS_ERRORS as error:
        module.fail_json_aws(error, msg=what)
    except OSError as error:
        module.fail_json(msg=os_error_message(error, what))
