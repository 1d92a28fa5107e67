# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""For internal collection use only: what the library, botocore and the OS raise, as EnvelopeError.

``EnvelopeError`` (``module_utils/errors.py``) is the one error every engine function raises;
``translate`` turns anything else into one, ``Translated`` does it for a block.
"""

from __future__ import annotations

try:
    import botocore.exceptions
    from aws_encryption_sdk.exceptions import (
        ActionNotAllowedError,
        AWSEncryptionSDKClientError,
        CustomMaximumValueExceeded,
        DecryptKeyError,
        EncryptKeyError,
        GenerateKeyError,
        MasterKeyProviderError,
        MaxEncryptedDataKeysExceeded,
        NotSupportedError,
        SerializationError,
        UnknownIdentityError,
    )
    from cryptography.exceptions import InvalidSignature, InvalidTag
except ImportError:
    pass  # envelope.HAS_ESDK tells; nothing here runs without the library

from ansible_collections.envelope.kms.plugins.module_utils._envelope.constants import DEFAULT_MAX_FRAME_LENGTH
from ansible_collections.envelope.kms.plugins.module_utils._envelope.format import (
    NOT_UTF8_HEADER,
    size_refusal,
    too_many_data_keys,
)
from ansible_collections.envelope.kms.plugins.module_utils.errors import EnvelopeError, os_error_message

# KMS error code -> (EnvelopeError kind, what it means for the user).
KMS_ERRORS = {
    "DisabledException": ("key_unusable", "the KMS key is disabled"),
    "KMSInvalidStateException": ("key_unusable", "the KMS key is pending deletion or not in a usable state"),
    "KeyUnavailableException": ("key_unusable", "the KMS key is unavailable"),
    "NotFoundException": ("key_not_found", "the KMS key or alias does not exist"),
    "AccessDeniedException": ("access_denied", "access denied by KMS"),
    "ThrottlingException": ("throttled", "KMS kept throttling the requests after retries"),
    "InvalidCiphertextException": ("corrupt", "KMS rejected the wrapped data key: tampered file or wrong context"),
    "IncorrectKeyException": ("corrupt", "KMS says the data key was not wrapped under this key"),
    "InvalidKeyUsageException": ("key_unusable", "the KMS key cannot be used to encrypt and decrypt"),
    "UnrecognizedClientException": ("credentials", "the AWS credentials are not valid"),
    "InvalidClientTokenId": ("credentials", "the AWS credentials are not valid"),
    "InvalidSignatureException": ("credentials", "the AWS secret key does not match"),
    "ExpiredTokenException": ("credentials", "the AWS session token has expired"),
    "KMSInternalException": ("kms_error", "KMS had an internal error"),
    "DependencyTimeoutException": ("kms_error", "KMS timed out"),
}


def one_line(text, limit=300):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def kms_cause(error):
    """The botocore error behind a library error (4.x chains with `from`, 3.3 implicitly)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError)):
            return error
        error = error.__cause__ or error.__context__
    return None


def botocore_error(error, what, key_id=None):
    """EnvelopeError for a ClientError or BotoCoreError."""
    on_key = f" (key {key_id})" if key_id else ""
    if isinstance(error, botocore.exceptions.ClientError):
        details = error.response.get("Error", {})
        code = details.get("Code", "Unknown")
        kind, meaning = KMS_ERRORS.get(code, ("kms_error", "KMS refused the request"))
        message = one_line(details.get("Message") or "")
        suffix = f"{code}: {message}" if message else code
        return EnvelopeError(f"{what}: {meaning}{on_key} ({suffix})", kind)
    if isinstance(error, (botocore.exceptions.NoCredentialsError, botocore.exceptions.PartialCredentialsError,
                          botocore.exceptions.CredentialRetrievalError)):
        return EnvelopeError(f"{what}: no usable AWS credentials found ({one_line(error)})", "credentials")
    if isinstance(error, botocore.exceptions.NoRegionError):
        return EnvelopeError(f"{what}: no AWS region configured", "invalid_argument")
    if isinstance(error, botocore.exceptions.EndpointConnectionError):
        return EnvelopeError(f"{what}: cannot reach KMS ({one_line(error)})", "kms_error")
    return EnvelopeError(f"{what}: {one_line(error)}{on_key}", "kms_error")


def _library_error(error, what, failures):
    """EnvelopeError for an error of the library itself, or None."""
    if isinstance(error, DecryptKeyError):
        return _decrypt_key_error(what, failures)
    if isinstance(error, (GenerateKeyError, EncryptKeyError)):
        return _key_failure(error, what, failures)
    if isinstance(error, MaxEncryptedDataKeysExceeded):
        return too_many_data_keys(error, what)
    if isinstance(error, SerializationError):
        refusal = size_refusal(error, what)  # a frame, body or encryption context too large: say which
        if refusal is not None:
            return refusal
    if isinstance(error, CustomMaximumValueExceeded):
        return EnvelopeError(f"{what}: a frame is larger than the {DEFAULT_MAX_FRAME_LENGTH} bytes accepted", "too_large")
    if isinstance(error, SerializationError):
        if "authoriz" in str(error).lower():
            return EnvelopeError(f"{what}: the envelope header is tampered (header authentication failed)", "corrupt")
        return EnvelopeError(f"{what}: the envelope is truncated or corrupt", "corrupt")
    if isinstance(error, MasterKeyProviderError):
        if "commitment" in str(error).lower():
            return EnvelopeError(f"{what}: the envelope is tampered (key commitment check failed)", "corrupt")
        if "not allowed" in str(error).lower():
            return EnvelopeError(f"{what}: {one_line(error)}", "key_not_allowed")
        return _key_failure(error, what, failures)
    if isinstance(error, ActionNotAllowedError):
        return EnvelopeError(f"{what}: refused by the commitment policy ({one_line(error)})", "policy")
    if isinstance(error, (NotSupportedError, UnknownIdentityError)):
        return EnvelopeError(f"{what}: unsupported envelope ({one_line(error)})", "not_envelope")
    if isinstance(error, AWSEncryptionSDKClientError):
        return EnvelopeError(f"{what}: {one_line(error)}", "kms_error")
    return None


def translate(error, what, failures=()):
    """EnvelopeError for anything the library, botocore or the OS raised, or None for anything else.
    Library messages hold key ids at most, never key material or plaintext."""
    if isinstance(error, EnvelopeError):
        return error
    if isinstance(error, InvalidTag):
        return EnvelopeError(f"{what}: the envelope is tampered or corrupt (a frame failed authentication)", "corrupt")
    if isinstance(error, InvalidSignature):
        return EnvelopeError(f"{what}: the envelope is tampered or corrupt (its signature does not verify)", "corrupt")
    if isinstance(error, (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError)):
        return botocore_error(error, what)
    if isinstance(error, OSError):
        return EnvelopeError(os_error_message(error, what), "io_error", error.filename)
    if isinstance(error, UnicodeDecodeError):
        # The library decodes header text (a KMS key ARN) as it goes: bytes that are not UTF-8 are
        # tampering, reported as such (read_facts refuses them earlier, before any KMS call).
        return EnvelopeError(f"{what}: {NOT_UTF8_HEADER}", "corrupt")
    return _library_error(error, what, failures)


def _key_failure(error, what, failures):
    cause = kms_cause(error)
    key_id = failures[-1][0] if failures else None
    if cause is not None:
        return botocore_error(cause, what, key_id)
    return EnvelopeError(f"{what}: {one_line(error)}", "kms_error")


def _decrypt_key_error(what, failures):
    """The library tries each wrapped key and keeps none of the KMS errors: we recorded them."""
    with_cause = [(key_id, cause) for key_id, cause in failures if cause is not None]
    if not with_cause:
        return EnvelopeError(f"{what}: none of the allowed KMS keys could decrypt the data key", "key_not_allowed")
    errors = [botocore_error(cause, what, key_id) for key_id, cause in with_cause]
    if len(errors) == 1:
        return errors[0]
    parts = "; ".join(error.message[len(what) + 2:] for error in errors)
    return EnvelopeError(f"{what}: no wrapping key could decrypt the data key: {parts}", errors[0].kind)


class Translated:
    """``with Translated(what, failures):`` turns known errors into EnvelopeError."""

    def __init__(self, what, failures=()):
        self.what = what
        self.failures = failures

    def __enter__(self):
        return self

    def __exit__(self, exc_type, error, tb):
        if error is None or not isinstance(error, Exception):
            return False
        translated = translate(error, self.what, self.failures)
        if translated is None or translated is error:
            return False
        raise translated from error
