# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""For internal collection use only: is the AWS Encryption SDK here, and quiet."""

from __future__ import annotations

import logging
import traceback

try:
    import aws_encryption_sdk  # noqa: F401  pylint: disable=unused-import
    import botocore  # noqa: F401  pylint: disable=unused-import
except ImportError:
    HAS_ESDK = False
    ESDK_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_ESDK = True
    ESDK_IMPORT_ERROR = None
    # The library logs every failed KMS call with a traceback; without a handler of its own, Python's
    # last-resort handler would print those to stderr (module output, controller terminal).
    logging.getLogger("aws_encryption_sdk").addHandler(logging.NullHandler())

from ansible_collections.envelope.kms.plugins.module_utils.errors import InputError  # noqa: E402


def require_esdk():
    """Raise a clear EnvelopeError when the library is missing (modules use missing_required_lib)."""
    if not HAS_ESDK:
        raise InputError("the aws-encryption-sdk Python library (3.3 or later) is required")
