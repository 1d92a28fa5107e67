# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The envelope engine: AWS Encryption SDK messages in, out and compared, file to file.

Every envelope is an AWS Encryption SDK message written and read by the official
``aws-encryption-sdk`` library (3.3.x and 4.x), with data keys from KMS. This module is the only
place that touches the library. It adds what the library leaves to its callers:

* decrypt checks the required encryption context pairs and the allowed wrapping keys (or account
  ids), refuses bytes after the end of the message, and writes plaintext to a 0600 temp file beside
  the destination that replaces it only once the whole message verified;
* header facts (wrapping key ARNs, context, suite, frame length) without KMS calls;
* one-line ``EnvelopeError`` messages for everything a user can get wrong, never holding plaintext
  or key material;
* an idempotence check (``Engine.compare``) that costs no KMS call when metadata or size already
  differ, and at most one Decrypt otherwise.

Use one ``Engine`` per process (per task, across loop items): it keeps the KMS clients, master key
providers and resolved key ARNs. It is not thread-safe.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import os
import re
import tempfile
import traceback
from dataclasses import asdict, dataclass, field

try:
    import aws_encryption_sdk
    import botocore.exceptions
    import botocore.session
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
    from aws_encryption_sdk.identifiers import Algorithm, CommitmentPolicy, ContentType, SerializationVersion
    from aws_encryption_sdk.internal.formatting.deserialize import deserialize_header
    from aws_encryption_sdk.key_providers.kms import (
        DiscoveryAwsKmsMasterKeyProvider,
        DiscoveryFilter,
        KMSMasterKey,
        StrictAwsKmsMasterKeyProvider,
    )
    from cryptography.exceptions import InvalidSignature, InvalidTag
except ImportError:
    HAS_ESDK = False
    ESDK_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_ESDK = True
    ESDK_IMPORT_ERROR = None
    # The library logs every failed KMS call with a traceback; without a handler of its own, Python's
    # last-resort handler would print those to stderr (module output, controller terminal).
    logging.getLogger("aws_encryption_sdk").addHandler(logging.NullHandler())


DEFAULT_ALGORITHM = "AES_256_GCM_HKDF_SHA512_COMMIT_KEY"  # 0x0478: committing, unsigned
SIGNED_ALGORITHM = "AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384"  # 0x0578: committing, signed
DEFAULT_COMMITMENT_POLICY = "REQUIRE_ENCRYPT_REQUIRE_DECRYPT"

# Measured (see the closing note): the library copies its buffer once per frame inside a
# read, so each read() must span exactly one frame; 64-256 KiB frames are the fast plateau.
DEFAULT_FRAME_LENGTH = 256 * 1024
# Decrypt holds one whole frame in memory before authenticating it: refuse bigger frames (and
# non-framed bodies) than this, so a hostile file cannot make us allocate gigabytes.
DEFAULT_MAX_FRAME_LENGTH = 64 * 1024 * 1024
# Each wrapped data key may cost one KMS call on decrypt; the ESDK guidance is to cap them.
DEFAULT_MAX_ENCRYPTED_DATA_KEYS = 10
# Read size used for non-framed bodies and for plaintext comparisons.
CHUNK_SIZE = 256 * 1024

RESERVED_CONTEXT_PREFIX = "aws-crypto-"
# The signed suites store their public verification key in the context; it is the library's, not
# the user's, and differs per message, so facts and comparisons leave it out.
PUBLIC_KEY_CONTEXT_KEY = "aws-crypto-public-key"
KMS_PROVIDER_ID = "aws-kms"
ALIAS_PREFIX = "alias/"

_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$")
_BARE_KEY_ID = re.compile(r"^(mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$")
_AWS_ENDPOINT_SUFFIXES = (".amazonaws.com", ".amazonaws.com.cn", ".api.aws", ".c2s.ic.gov", ".sc2s.sgov.gov")

# KMS error code -> (EnvelopeError kind, what it means for the user).
_KMS_ERRORS = {
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


class EnvelopeError(Exception):
    """A one-line, user-facing failure. ``kind`` tells callers which case it is.

    Kinds: not_envelope, corrupt, trailing_data, context_mismatch, key_not_allowed, key_unusable,
    key_not_found, access_denied, credentials, throttled, kms_error, policy, too_large,
    invalid_argument, io_error.
    """

    def __init__(self, message, kind="error"):
        super().__init__(message)
        self.message = message
        self.kind = kind


@dataclass(frozen=True)
class EnvelopeFacts:
    """What an envelope's header says, plus checksums when the engine has just written it.

    From ``inspect_header`` these facts are not authenticated (that needs the data key); the
    engine's decrypt re-checks them on the authenticated header.
    """

    key_arns: tuple  # KMS keys the data key is wrapped under, sorted
    encryption_context: dict  # without the library's reserved aws-crypto-public-key entry
    algorithm: str  # suite name, e.g. AES_256_GCM_HKDF_SHA512_COMMIT_KEY
    algorithm_id: int  # e.g. 0x0478
    signed: bool
    frame_length: int  # 0 for a non-framed message
    message_id: str  # hex
    data_key_count: int  # all wrapped data keys, KMS or not
    size: int = None  # ciphertext bytes, when known
    sha1: str = None  # of the ciphertext, set by encrypt/rewrap
    sha256: str = None

    def to_dict(self):
        facts = asdict(self)
        facts["key_arns"] = list(self.key_arns)
        return facts


@dataclass(frozen=True)
class Comparison:
    """Whether an existing envelope already holds what is wanted; ``reasons`` lists what differs:
    'invalid' (not a readable envelope), 'key', 'context', 'algorithm', 'content'."""

    same: bool
    reasons: tuple
    facts: EnvelopeFacts = None
    kms_calls: int = 0  # Decrypt calls it needed: 0 or 1


@dataclass(frozen=True)
class _DecryptPolicy:
    required_context: dict = field(default_factory=dict)
    allowed_key_arns: tuple = ()
    discovery_account_ids: tuple = ()
    discovery_partition: str = None


# ---------------------------------------------------------------------------------------------
# Inputs


def require_esdk():
    """Raise a clear EnvelopeError when the library is missing (modules use missing_required_lib)."""
    if not HAS_ESDK:
        raise EnvelopeError("the aws-encryption-sdk Python library (3.3 or later) is required", "invalid_argument")


def normalize_key_id(key_id):
    """Key id, key ARN, alias ARN or 'alias/name' as KMS takes them; a bare name becomes 'alias/name'."""
    key_id = (key_id or "").strip()
    if not key_id:
        raise EnvelopeError("a KMS key id must not be empty", "invalid_argument")
    if key_id.startswith("arn:") or key_id.startswith(ALIAS_PREFIX) or _BARE_KEY_ID.match(key_id):
        return key_id
    return ALIAS_PREFIX + key_id


def _key_id_list(key_ids):
    if isinstance(key_ids, str):
        key_ids = [key_ids]
    normalized = []
    for key_id in key_ids or ():
        key_id = normalize_key_id(key_id)
        if key_id not in normalized:
            normalized.append(key_id)
    if not normalized:
        raise EnvelopeError("at least one KMS key id is required to encrypt", "invalid_argument")
    return normalized


def normalize_context(context, purpose="encryption context"):
    """A str->str dict; numbers become strings; reserved 'aws-crypto-' keys are refused."""
    normalized = {}
    for key, value in (context or {}).items():
        if isinstance(value, bool) or not isinstance(value, (str, int, float)) or not isinstance(key, str):
            raise EnvelopeError(f"{purpose} keys and values must be strings (key {key!r})", "invalid_argument")
        if key.startswith(RESERVED_CONTEXT_PREFIX):
            raise EnvelopeError(f"{purpose} key {key!r} is reserved by the AWS Encryption SDK", "invalid_argument")
        normalized[key] = str(value)
    return normalized


def _algorithm(name):
    """Suite by name (case-insensitive) or id ('0x0478', 1144)."""
    require_esdk()
    if name is None:
        name = DEFAULT_ALGORITHM
    if isinstance(name, int) or (isinstance(name, str) and name.lower().startswith("0x")):
        try:
            return Algorithm.get_by_id(int(name, 16) if isinstance(name, str) else name)
        except (KeyError, ValueError):
            pass
    else:
        member = getattr(Algorithm, str(name).upper(), None)
        if isinstance(member, Algorithm):
            return member
    raise EnvelopeError(f"unknown algorithm suite {name!r}; use {DEFAULT_ALGORITHM} or {SIGNED_ALGORITHM}",
                        "invalid_argument")


def _commitment_policy(name):
    member = getattr(CommitmentPolicy, str(name).upper(), None)
    if not isinstance(member, CommitmentPolicy):
        raise EnvelopeError(f"unknown commitment policy {name!r}", "invalid_argument")
    return member


def _frame_length(value):
    frame_length = DEFAULT_FRAME_LENGTH if value is None else int(value)
    if frame_length < 1 or frame_length > DEFAULT_MAX_FRAME_LENGTH or frame_length % 16:
        raise EnvelopeError(
            f"frame length must be a multiple of 16 between 16 and {DEFAULT_MAX_FRAME_LENGTH} bytes", "invalid_argument"
        )
    return frame_length


def decrypt_policy(encryption_context, allowed_key_arns, discovery_account_ids, discovery_partition, region):
    """What a decrypt requires (validated): context pairs, allowed key ARNs or discovery accounts."""
    allowed = tuple(sorted(set(allowed_key_arns or ())))
    accounts = tuple(sorted({str(account) for account in discovery_account_ids or ()}))
    if allowed and accounts:
        raise EnvelopeError("give either allowed key ARNs or discovery account ids, not both", "invalid_argument")
    for arn in allowed:
        if not _KEY_ARN.match(arn):
            raise EnvelopeError(f"allowed keys must be key ARNs (arn:aws:kms:REGION:ACCOUNT:key/ID), not {arn!r}",
                                "invalid_argument")
    partition = discovery_partition or _partition_of_region(region)
    return _DecryptPolicy(normalize_context(encryption_context, "required encryption context"),
                          allowed, accounts, partition)


def _partition_of_region(region):
    region = region or ""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


class _Source:
    """Opens a path, wraps bytes, or borrows a binary file object (left open, position kept)."""

    def __init__(self, source):
        self.label = "content"
        self._owned = None
        if isinstance(source, (bytes, bytearray, memoryview)):
            self.stream = self._owned = io.BytesIO(bytes(source))
        elif isinstance(source, (str, os.PathLike)):
            self.label = os.fspath(source)
            self.stream = self._owned = open(source, "rb")
        elif hasattr(source, "read"):
            self.stream = source
            self.label = getattr(source, "name", "stream")
        else:
            raise EnvelopeError(f"cannot read from a {type(source).__name__}", "invalid_argument")

    def size(self):
        position = self.stream.tell()
        end = self.stream.seek(0, io.SEEK_END)
        self.stream.seek(position)
        return end - position

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._owned is not None:
            self._owned.close()


def _require_path(path, caller):
    """Bytes would be taken as content by _Source: a method that wants a path says so."""
    if not isinstance(path, (str, os.PathLike)):
        raise EnvelopeError(f"{caller} needs a file path, not {type(path).__name__}", "invalid_argument")


def _label(source):
    return os.fspath(source) if isinstance(source, (str, os.PathLike)) else "content"


def _open_source(source, what):
    try:
        return _Source(source)
    except OSError as error:
        raise EnvelopeError(f"{what}: cannot read {source}: {error.strerror}", "io_error") from error


# ---------------------------------------------------------------------------------------------
# Output: a temp file beside the destination, renamed over it only when everything verified


class _AtomicFile:
    """Writes to ``.NAME.XXXX.tmp`` (0600 from creation) in dest's directory; ``commit`` fsyncs
    (unless not ``durable``), applies the mode and renames it over dest. Leaving the block without
    commit removes it."""

    def __init__(self, dest, mode=None, like=None, durable=True):
        self.dest = os.fspath(dest)
        self.mode = mode
        self.durable = durable
        self.like = like  # a path whose mode and owner to keep (in-place rewrap)
        self.sha1 = hashlib.sha1()
        self.sha256 = hashlib.sha256()
        self.size = 0
        self._file = None
        self.path = None

    def __enter__(self):
        if os.path.isdir(self.dest):
            raise EnvelopeError(f"destination {self.dest} is a directory", "invalid_argument")
        directory, name = os.path.split(os.path.abspath(self.dest))
        try:
            fd, self.path = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
        except OSError as error:
            raise EnvelopeError(f"cannot write in {directory}: {error.strerror}", "io_error") from error
        self._file = os.fdopen(fd, "wb")
        return self

    def write(self, data):
        self._file.write(data)
        self.size += len(data)

    def write_hashed(self, data):
        self.write(data)
        self.sha1.update(data)
        self.sha256.update(data)

    def facts(self, header, checksums):
        """EnvelopeFacts of the ciphertext written here."""
        if not checksums:
            return _facts_from_header(header, self.size)
        return _facts_from_header(header, self.size, self.sha1.hexdigest(), self.sha256.hexdigest())

    def commit(self):
        self._file.flush()
        if self.durable:
            os.fsync(self._file.fileno())
        self._file.close()
        self._apply_attributes()
        os.replace(self.path, self.dest)
        self.path = None

    def _apply_attributes(self):
        mode = self.mode
        if self.like is not None:
            stat = os.stat(self.like)
            mode = stat.st_mode & 0o7777 if mode is None else mode
            try:
                os.chown(self.path, stat.st_uid, stat.st_gid)
            except OSError:
                pass  # not root: the file keeps our owner, like any rewritten file would
        if mode is not None:
            os.chmod(self.path, mode)

    def __exit__(self, *exc):
        if self._file is not None and not self._file.closed:
            self._file.close()
        if self.path is not None:
            try:
                os.unlink(self.path)
            except OSError:
                pass


# ---------------------------------------------------------------------------------------------
# Header inspection (no KMS)


def inspect_header(source):
    """EnvelopeFacts from the header of a path, bytes or binary file, without KMS calls.

    The facts are unauthenticated; decrypt (or compare) re-checks them once the data key is known.
    """
    require_esdk()
    with _open_source(source, "cannot inspect envelope") as opened:
        facts = _read_facts(opened.stream, opened.label, None)[0]
        return _with_size(facts, opened.size())


def _read_facts(stream, label, max_data_keys):
    """(facts, header length with its auth tag) from the stream's position, which is restored."""
    start = stream.tell()
    try:
        _check_magic(stream.read(4), label)
        stream.seek(start)
        try:
            header, raw_header = deserialize_header(stream, max_data_keys)
        except MaxEncryptedDataKeysExceeded as error:
            raise EnvelopeError(f"{label}: more wrapped data keys than the allowed {max_data_keys}",
                                "too_large") from error
        except (AWSEncryptionSDKClientError, ValueError, TypeError) as error:
            raise EnvelopeError(f"{label}: the envelope header is truncated or corrupt", "corrupt") from error
    finally:
        stream.seek(start)
    algorithm = header.algorithm
    auth_length = algorithm.auth_len + (algorithm.iv_len if header.version == SerializationVersion.V1 else 0)
    return _facts_from_header(header), len(raw_header) + auth_length


def _check_magic(first_bytes, label):
    """Tell "this is not an envelope at all" apart from a damaged one, from the first bytes."""
    if not first_bytes:
        raise EnvelopeError(f"{label}: empty file, not an AWS Encryption SDK message", "not_envelope")
    version = first_bytes[0]
    if version == 1:
        known = first_bytes[1:2] in (b"", b"\x80")  # v1: version, type 0x80, suite id
    elif version == 2:
        known = len(first_bytes) < 3 or _is_known_suite(int.from_bytes(first_bytes[1:3], "big"))
    else:
        known = False
    if not known:
        raise EnvelopeError(f"{label}: not an AWS Encryption SDK message (envelope)", "not_envelope")


def _is_known_suite(algorithm_id):
    try:
        Algorithm.get_by_id(algorithm_id)
    except KeyError:
        return False
    return True


def _facts_from_header(header, size=None, sha1=None, sha256=None):
    key_arns = sorted(
        _text(data_key.key_provider.key_info)
        for data_key in header.encrypted_data_keys
        if _text(data_key.key_provider.provider_id) == KMS_PROVIDER_ID
    )
    context = {key: value for key, value in header.encryption_context.items() if key != PUBLIC_KEY_CONTEXT_KEY}
    framed = header.content_type == ContentType.FRAMED_DATA
    return EnvelopeFacts(
        key_arns=tuple(key_arns),
        encryption_context=context,
        algorithm=header.algorithm.name,
        algorithm_id=header.algorithm.algorithm_id,
        signed=header.algorithm.is_signing(),
        frame_length=header.frame_length if framed else 0,
        message_id=header.message_id.hex(),
        data_key_count=len(header.encrypted_data_keys),
        size=size,
        sha1=sha1,
        sha256=sha256,
    )


def _with_size(facts, size):
    return EnvelopeFacts(**dict(asdict(facts), size=size))


def _text(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def envelope_could_hold(envelope_size, plaintext_size, frame_length, algorithm=None, header_lengths=(64, 128 * 1024)):
    """Could an envelope of ``envelope_size`` bytes, framed at ``frame_length``, hold ``plaintext_size``
    bytes, for any header length in ``header_lengths`` (default: any plausible header, up to 10
    wrapped keys and a large context)? Lets a caller that only knows a remote file's size rule out a
    match without reading the file."""
    suite = _algorithm(algorithm)
    shortest, longest = header_lengths
    return any(
        low + shortest <= envelope_size <= high + longest
        for low, high in expected_ciphertext_sizes(0, suite, frame_length, plaintext_size)
    )


def expected_ciphertext_sizes(facts_header_length, algorithm, frame_length, plaintext_size):
    """Possible sizes (low, high) of a framed envelope holding plaintext_size bytes, given the
    length of its header. Lets compare() spot a content change with no KMS call."""
    overhead = algorithm.iv_len + algorithm.auth_len
    regular = 4 + overhead + frame_length  # sequence number, iv, content, tag
    final_fixed = 4 + 4 + 4 + overhead  # end marker, sequence number, content length, iv, tag
    layouts = [(plaintext_size // frame_length, plaintext_size % frame_length)]
    if plaintext_size and plaintext_size % frame_length == 0:
        # Other ESDKs may put a full last frame in the final frame instead of an empty one.
        layouts.append((plaintext_size // frame_length - 1, frame_length))
    footer = (2, 2 + algorithm.signature_len) if algorithm.is_signing() else (0, 0)
    sizes = []
    for full_frames, final_content in layouts:
        body = facts_header_length + full_frames * regular + final_fixed + final_content
        sizes.append((body + footer[0], body + footer[1]))
    return sizes


# ---------------------------------------------------------------------------------------------
# Error translation


def _kms_cause(error):
    """The botocore error behind a library error (4.x chains with `from`, 3.3 implicitly)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError)):
            return error
        error = error.__cause__ or error.__context__
    return None


def _one_line(text, limit=300):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _botocore_error(error, what, key_id=None):
    """EnvelopeError for a ClientError or BotoCoreError."""
    on_key = f" (key {key_id})" if key_id else ""
    if isinstance(error, botocore.exceptions.ClientError):
        details = error.response.get("Error", {})
        code = details.get("Code", "Unknown")
        kind, meaning = _KMS_ERRORS.get(code, ("kms_error", "KMS refused the request"))
        message = _one_line(details.get("Message") or "")
        suffix = f"{code}: {message}" if message else code
        return EnvelopeError(f"{what}: {meaning}{on_key} ({suffix})", kind)
    if isinstance(error, (botocore.exceptions.NoCredentialsError, botocore.exceptions.PartialCredentialsError,
                          botocore.exceptions.CredentialRetrievalError)):
        return EnvelopeError(f"{what}: no usable AWS credentials found ({_one_line(error)})", "credentials")
    if isinstance(error, botocore.exceptions.NoRegionError):
        return EnvelopeError(f"{what}: no AWS region configured", "invalid_argument")
    if isinstance(error, botocore.exceptions.EndpointConnectionError):
        return EnvelopeError(f"{what}: cannot reach KMS ({_one_line(error)})", "kms_error")
    return EnvelopeError(f"{what}: {_one_line(error)}{on_key}", "kms_error")


def _translate(error, what, failures=()):
    """EnvelopeError for anything the library, botocore or the OS raised. Library messages hold
    key ids at most, never key material or plaintext."""
    if isinstance(error, EnvelopeError):
        return error
    if isinstance(error, InvalidTag):
        return EnvelopeError(f"{what}: the envelope is tampered or corrupt (a frame failed authentication)", "corrupt")
    if isinstance(error, InvalidSignature):
        return EnvelopeError(f"{what}: the envelope is tampered or corrupt (its signature does not verify)", "corrupt")
    if isinstance(error, (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError)):
        return _botocore_error(error, what)
    if isinstance(error, DecryptKeyError):
        return _decrypt_key_error(what, failures)
    if isinstance(error, (GenerateKeyError, EncryptKeyError)):
        return _key_failure(error, what, failures)
    if isinstance(error, MaxEncryptedDataKeysExceeded):
        return EnvelopeError(f"{what}: too many wrapped data keys", "too_large")
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
            return EnvelopeError(f"{what}: {_one_line(error)}", "key_not_allowed")
        return _key_failure(error, what, failures)
    if isinstance(error, ActionNotAllowedError):
        return EnvelopeError(f"{what}: refused by the commitment policy ({_one_line(error)})", "policy")
    if isinstance(error, (NotSupportedError, UnknownIdentityError)):
        return EnvelopeError(f"{what}: unsupported envelope ({_one_line(error)})", "not_envelope")
    if isinstance(error, AWSEncryptionSDKClientError):
        return EnvelopeError(f"{what}: {_one_line(error)}", "kms_error")
    if isinstance(error, OSError):
        where = f" {error.filename}" if error.filename else ""
        return EnvelopeError(f"{what}: {error.strerror or error}{where}", "io_error")
    return None


def _key_failure(error, what, failures):
    cause = _kms_cause(error)
    key_id = failures[-1][0] if failures else None
    if cause is not None:
        return _botocore_error(cause, what, key_id)
    return EnvelopeError(f"{what}: {_one_line(error)}", "kms_error")


def _decrypt_key_error(what, failures):
    """The library tries each wrapped key and keeps none of the KMS errors: we recorded them."""
    with_cause = [(key_id, cause) for key_id, cause in failures if cause is not None]
    if not with_cause:
        return EnvelopeError(f"{what}: none of the allowed KMS keys could decrypt the data key", "key_not_allowed")
    errors = [_botocore_error(cause, what, key_id) for key_id, cause in with_cause]
    if len(errors) == 1:
        return errors[0]
    parts = "; ".join(error.message[len(what) + 2:] for error in errors)
    return EnvelopeError(f"{what}: no wrapping key could decrypt the data key: {parts}", errors[0].kind)


class _Translated:
    """``with _Translated(what, failures):`` turns known errors into EnvelopeError."""

    def __init__(self, what, failures=()):
        self.what = what
        self.failures = failures

    def __enter__(self):
        return self

    def __exit__(self, exc_type, error, tb):
        if error is None or not isinstance(error, Exception):
            return False
        translated = _translate(error, self.what, self.failures)
        if translated is None or translated is error:
            return False
        raise translated from error


# ---------------------------------------------------------------------------------------------
# Master key providers that use the engine's KMS clients


if HAS_ESDK:

    class _RecordingKmsMasterKey(KMSMasterKey):
        """A KMS master key that records the KMS error behind each failure: the library swallows
        them while it tries the next wrapped key, and ends with a bare 'Unable to decrypt'."""

        failure_log = None

        def _record(self, call, *args, **kwargs):
            try:
                return call(*args, **kwargs)
            except AWSEncryptionSDKClientError as error:
                if self.failure_log is not None:
                    self.failure_log.append((self._key_id, _kms_cause(error)))
                raise

        def _decrypt_data_key(self, encrypted_data_key, algorithm, encryption_context=None):
            return self._record(super()._decrypt_data_key, encrypted_data_key, algorithm, encryption_context)

        def _generate_data_key(self, algorithm, encryption_context=None):
            return self._record(super()._generate_data_key, algorithm, encryption_context)

        def _encrypt_data_key(self, data_key, algorithm, encryption_context=None):
            return self._record(super()._encrypt_data_key, data_key, algorithm, encryption_context)

    class _EngineClientsMixin:
        """Gives the provider the engine's KMS clients. The library builds its own clients from a
        botocore session (``add_regional_client``), which cannot carry an explicit endpoint_url,
        the caller's retry configuration or Ansible's credentials options; this public method is
        the hook, identical in 3.3.x and 4.x. Clients are stored without the library's method
        wrapping so the caller's client is not modified."""

        master_key_class = _RecordingKmsMasterKey

        def __new__(cls, client_for_region=None, failure_log=None, **kwargs):
            # The library's config makes a full botocore Session per provider by default (~15 ms of
            # handler set-up) only to build clients we supply ourselves: hand it an idle one.
            kwargs.setdefault("botocore_session", _idle_botocore_session())
            return super().__new__(cls, **kwargs)

        def __init__(self, client_for_region=None, failure_log=None, **kwargs):
            self._client_for_region = client_for_region
            self._failure_log = failure_log
            super().__init__(**kwargs)

        def add_regional_client(self, region_name):
            if region_name not in self._regional_clients:
                self._regional_clients[region_name] = self._client_for_region(region_name)

        def _new_master_key(self, key_id):
            master_key = super()._new_master_key(key_id)
            master_key.failure_log = self._failure_log
            return master_key

    class _StrictProvider(_EngineClientsMixin, StrictAwsKmsMasterKeyProvider):
        """Encrypt under, or decrypt with, exactly the configured keys."""

    class _DiscoveryProvider(_EngineClientsMixin, DiscoveryAwsKmsMasterKeyProvider):
        """Decrypt with whichever KMS key wrapped the data key (optionally limited to accounts)."""


@functools.lru_cache(maxsize=1)
def _idle_botocore_session():
    """One botocore Session per process that never makes a client (see _EngineClientsMixin)."""
    return botocore.session.Session(include_builtin_handlers=False)


def _unwrap_client(client):
    """The botocore client behind amazon.aws's RetryingBotoClientWrapper (the library checks the type)."""
    inner = getattr(client, "client", None)
    if inner is not None and hasattr(inner, "meta"):
        return inner
    return client


def _is_custom_endpoint(url):
    host = re.sub(r"^[a-z]+://", "", url or "").split("/")[0].split(":")[0]
    return bool(host) and not host.endswith(_AWS_ENDPOINT_SUFFIXES)


def _client_like(base, region):
    """A KMS client for another region with the base client's credentials, config and custom endpoint
    (a test server or a VPC endpoint); AWS's own endpoints are regional, so those are not copied."""
    credentials = getattr(getattr(base, "_request_signer", None), "_credentials", None)  # no public accessor
    kwargs = {}
    if credentials is not None:
        frozen = credentials.get_frozen_credentials()
        kwargs = dict(aws_access_key_id=frozen.access_key, aws_secret_access_key=frozen.secret_key,
                      aws_session_token=frozen.token)
    endpoint_url = base.meta.endpoint_url if _is_custom_endpoint(base.meta.endpoint_url) else None
    return botocore.session.Session().create_client(
        "kms", region_name=region, endpoint_url=endpoint_url, config=base.meta.config, **kwargs
    )


# ---------------------------------------------------------------------------------------------
# The engine


class _DecryptedReader:
    """A read(n) source over a decrypting stream, in whole frames (rewrap feeds it to an encryptor;
    asking the decryptor for many frames at once would be quadratic)."""

    def __init__(self, decryptor, frame_length):
        self._decryptor = decryptor
        self._frame_length = frame_length or CHUNK_SIZE
        self._buffer = bytearray()
        self.finished = False

    def read(self, size=-1):
        while not self.finished and (size < 0 or len(self._buffer) < size):
            chunk = self._decryptor.read(self._frame_length)
            if not chunk:
                self.finished = True
            self._buffer += chunk
        size = len(self._buffer) if size < 0 else size
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data


class Engine:
    """Encrypts, decrypts, rewraps, inspects and compares envelopes with KMS data keys.

    ``kms_client``: a boto3 KMS client (amazon.aws's retrying wrapper is accepted); used for its own
    region. ``client_for_region(region)``: makes clients for keys in other regions (default: same
    credentials, config and custom endpoint as ``kms_client``).
    """

    def __init__(self, kms_client, client_for_region=None, commitment_policy=DEFAULT_COMMITMENT_POLICY,
                 max_encrypted_data_keys=DEFAULT_MAX_ENCRYPTED_DATA_KEYS, max_frame_length=DEFAULT_MAX_FRAME_LENGTH):
        require_esdk()
        self._kms = _unwrap_client(kms_client)
        self.region = self._kms.meta.region_name
        self._client_factory = client_for_region
        self._clients = {self.region: self._kms}
        self._max_data_keys = max_encrypted_data_keys
        self._max_frame_length = max_frame_length
        self._sdk = aws_encryption_sdk.EncryptionSDKClient(
            commitment_policy=_commitment_policy(commitment_policy), max_encrypted_data_keys=max_encrypted_data_keys
        )
        self._providers = {}
        self._key_arns = {}
        self._failures = []  # (key id, botocore error or None) per failed KMS master key call

    @classmethod
    def for_aws(cls, aws, **kwargs):
        """From an AnsibleAWSModule or an amazon.aws plugin: anything with ``client(service, region=...)``."""
        return cls(aws.client("kms"), client_for_region=lambda region: aws.client("kms", region=region), **kwargs)

    # -- clients, providers, key ARNs

    def client_for_region(self, region):
        client = self._clients.get(region)
        if client is None:
            client = self._client_factory(region) if self._client_factory else _client_like(self._kms, region)
            client = self._clients[region] = _unwrap_client(client)
        return client

    def _provider(self, cache_key, factory, **kwargs):
        provider = self._providers.get(cache_key)
        if provider is None:
            provider = factory(client_for_region=self.client_for_region, failure_log=self._failures,
                               region_names=[self.region], **kwargs)
            self._providers[cache_key] = provider
        return provider

    def _encrypt_provider(self, key_ids):
        return self._provider(("strict",) + tuple(key_ids), _StrictProvider, key_ids=list(key_ids))

    def _decrypt_provider(self, policy):
        if policy.allowed_key_arns:
            return self._provider(("strict",) + policy.allowed_key_arns, _StrictProvider,
                                  key_ids=list(policy.allowed_key_arns))
        if policy.discovery_account_ids:
            discovery = DiscoveryFilter(account_ids=policy.discovery_account_ids, partition=policy.discovery_partition)
            return self._provider(("discovery", discovery), _DiscoveryProvider, discovery_filter=discovery)
        return self._provider(("discovery",), _DiscoveryProvider)

    def resolve_key_arn(self, key_id):
        """Key ARN for a key id, key ARN, alias name or alias ARN (DescribeKey, cached per engine)."""
        key_id = normalize_key_id(key_id)
        if key_id not in self._key_arns:
            what = f"cannot resolve KMS key {key_id}"
            with _Translated(what):
                region = key_id.split(":")[3] if key_id.startswith("arn:") else self.region
                metadata = self.client_for_region(region).describe_key(KeyId=key_id)["KeyMetadata"]
            self._key_arns[key_id] = metadata["Arn"]
        return self._key_arns[key_id]

    def resolve_key_arns(self, key_ids):
        return [self.resolve_key_arn(key_id) for key_id in _key_id_list(key_ids)]

    # -- encrypt

    def encrypt_file(self, src, dest, key_ids, encryption_context=None, algorithm=None, frame_length=None, mode=0o600,
                     checksums=True, durable=True):
        """Encrypt the file ``src`` into ``dest`` (temp file beside it, then rename). Returns EnvelopeFacts
        with size, sha1 and sha256 of the ciphertext (hashing is the biggest cost after AES on large
        files: ``checksums=False`` skips it; ``durable=False`` skips the fsync, for a scratch file
        that another tool copies right away). ``key_ids``: one or a list; the first generates the
        data key, each other one wraps it too."""
        _require_path(src, "encrypt_file")
        with _open_source(src, "cannot encrypt") as source:
            return self._encrypt_to_file(source, dest, key_ids, encryption_context, algorithm, frame_length, mode,
                                         checksums, durable)

    def encrypt_bytes(self, plaintext, dest, key_ids, encryption_context=None, algorithm=None, frame_length=None,
                      mode=0o600, checksums=True, durable=True):
        """Like encrypt_file, from bytes (or str, encoded as UTF-8) held in memory."""
        if isinstance(plaintext, str):
            plaintext = plaintext.encode("utf-8")
        with _open_source(bytes(plaintext), "cannot encrypt") as source:
            return self._encrypt_to_file(source, dest, key_ids, encryption_context, algorithm, frame_length, mode,
                                         checksums, durable)

    def _encrypt_to_file(self, source, dest, key_ids, context, algorithm, frame_length, mode, checksums, durable):
        what = f"cannot encrypt {source.label} to {dest}"
        with _AtomicFile(dest, mode, durable=durable) as out:
            sink = out.write_hashed if checksums else out.write
            header = self._encrypt_stream(source.stream, sink, key_ids, context, algorithm, frame_length, what)
            with _Translated(what):
                out.commit()
        return out.facts(header, checksums)

    def _encrypt_stream(self, plaintext_stream, sink, key_ids, context, algorithm, frame_length, what):
        key_ids = _key_id_list(key_ids)
        context = normalize_context(context)
        suite = _algorithm(algorithm)
        frame_length = _frame_length(frame_length)
        del self._failures[:]
        with _Translated(what, self._failures):
            provider = self._encrypt_provider(key_ids)
            with self._sdk.stream(mode="e", source=plaintext_stream, key_provider=provider,
                                  encryption_context=context, algorithm=suite, frame_length=frame_length) as encryptor:
                # One frame per read keeps the library linear (see DEFAULT_FRAME_LENGTH).
                for chunk in iter(lambda: encryptor.read(frame_length), b""):
                    sink(chunk)
                return encryptor.header

    # -- decrypt

    def decrypt_file(self, src, dest, encryption_context=None, allowed_key_arns=None, discovery_account_ids=None,
                     discovery_partition=None, mode=0o600):
        """Decrypt ``src`` into ``dest``: plaintext goes to a 0600 temp file beside dest that replaces
        it only after the whole message verified, the required context pairs matched and nothing
        followed the message. Returns the EnvelopeFacts (authenticated).

        ``encryption_context``: pairs the file must carry (extra pairs in the file are fine).
        ``allowed_key_arns``: only these key ARNs may unwrap (strict); else ``discovery_account_ids``
        (and ``discovery_partition``, default from the region) limit discovery; with neither, any
        KMS key the credentials can use."""
        policy = decrypt_policy(encryption_context, allowed_key_arns, discovery_account_ids, discovery_partition,
                                self.region)
        with _open_source(src, "cannot decrypt") as source:
            what = f"cannot decrypt {source.label}"
            with _AtomicFile(dest, mode) as out:
                facts = self._decrypt_stream(source, out.write, policy, what)
                with _Translated(what):
                    out.commit()
        return facts

    def decrypt_bytes(self, src, encryption_context=None, allowed_key_arns=None, discovery_account_ids=None,
                      discovery_partition=None, max_size=None):
        """(plaintext bytes, EnvelopeFacts) for a path, bytes or binary file, with the same checks as
        decrypt_file. ``max_size`` bounds the plaintext held in memory."""
        plaintext = bytearray()

        def collect(chunk):
            if max_size is not None and len(plaintext) + len(chunk) > max_size:
                raise EnvelopeError(f"cannot decrypt {_label(src)}: the plaintext is larger than {max_size} bytes",
                                    "too_large")
            plaintext.extend(chunk)

        facts = self.decrypt_to(src, collect, encryption_context, allowed_key_arns, discovery_account_ids,
                                discovery_partition)
        return bytes(plaintext), facts

    def decrypt_to(self, src, sink, encryption_context=None, allowed_key_arns=None, discovery_account_ids=None,
                   discovery_partition=None):
        """Decrypt with the checks of decrypt_file, handing plaintext chunks to ``sink(chunk)``.
        Returns the authenticated EnvelopeFacts.

        Chunks arrive before the end of the message is verified: the caller must not release them
        when this raises. An exception from ``sink`` (e.g. Mismatch) stops decrypting and propagates."""
        policy = decrypt_policy(encryption_context, allowed_key_arns, discovery_account_ids, discovery_partition,
                                self.region)
        with _open_source(src, "cannot decrypt") as source:
            return self._decrypt_stream(source, sink, policy, f"cannot decrypt {source.label}")

    def _decrypt_stream(self, source, sink, policy, what):
        """Preflight on the raw header (no KMS), decrypt, re-check on the authenticated header,
        stream plaintext to sink, then require end of input."""
        facts = _read_facts(source.stream, what, self._max_data_keys)[0]
        check_header(facts, policy, what)
        size = source.size()
        del self._failures[:]
        with _Translated(what, self._failures):
            with self._decryptor(source.stream, policy) as decryptor:
                facts = _facts_from_header(decryptor.header, size)
                check_header(facts, policy, what)
                read_size = facts.frame_length or CHUNK_SIZE
                for chunk in iter(lambda: decryptor.read(read_size), b""):
                    sink(chunk)
            _require_end_of_input(source.stream, what)
        return facts

    def _decryptor(self, stream, policy):
        return self._sdk.stream(mode="d", source=stream, key_provider=self._decrypt_provider(policy),
                                max_body_length=self._max_frame_length)

    # -- rewrap

    def rewrap_file(self, src, key_ids, dest=None, encryption_context=None, required_encryption_context=None,
                    allowed_key_arns=None, discovery_account_ids=None, discovery_partition=None, algorithm=None,
                    frame_length=None, mode=None):
        """Re-encrypt ``src`` under ``key_ids`` into ``dest`` (default: in place, keeping mode and owner),
        streaming plaintext from the decryptor to the encryptor in memory: plaintext never reaches
        disk. ``encryption_context``, ``algorithm`` and ``frame_length`` default to the file's own.
        Returns (old facts, new facts)."""
        _require_path(src, "rewrap_file")
        policy = decrypt_policy(required_encryption_context, allowed_key_arns, discovery_account_ids,
                                discovery_partition, self.region)
        dest = src if dest is None else dest
        with _open_source(src, "cannot rewrap") as source:
            what = f"cannot rewrap {source.label}"
            old = _read_facts(source.stream, what, self._max_data_keys)[0]
            check_header(old, policy, what)
            context = old.encryption_context if encryption_context is None else encryption_context
            # Keep the file's own suite and framing unless told otherwise (a signed file stays signed).
            algorithm = old.algorithm if algorithm is None else algorithm
            frame_length = (old.frame_length or None) if frame_length is None else frame_length
            # Rewriting an existing file keeps its mode and owner unless a mode is given.
            like = dest if mode is None and os.path.exists(dest) else None
            with _AtomicFile(dest, 0o600 if mode is None and like is None else mode, like=like) as out:
                del self._failures[:]
                with _Translated(what, self._failures):
                    with self._decryptor(source.stream, policy) as decryptor:
                        old = _facts_from_header(decryptor.header)
                        check_header(old, policy, what)
                        plaintext = _DecryptedReader(decryptor, old.frame_length)
                        header = self._encrypt_stream(plaintext, out.write_hashed, key_ids, context, algorithm,
                                                      frame_length, what)
                        plaintext.read()  # the encryptor stopped at the end of data: let the decryptor finish
                    _require_end_of_input(source.stream, what)
                    out.commit()
        return old, out.facts(header, True)

    # -- idempotence

    def compare(self, ciphertext, plaintext, key_arns, encryption_context=None, algorithm=None):
        """Does the envelope ``ciphertext`` (path, bytes or binary file) already hold ``plaintext``
        (bytes, or a path as str) wrapped under exactly ``key_arns`` with exactly this context
        (and, if given, this suite)? Metadata and size are checked first with no KMS call; only when
        they all match is the envelope decrypted (one KMS Decrypt, with key_arns as the only allowed
        keys) and compared chunk by chunk in constant memory.

        A file that is not a valid envelope compares as different ('invalid'); KMS, credentials
        and I/O problems raise EnvelopeError."""
        wanted_keys = set(key_arns)
        wanted_context = normalize_context(encryption_context)
        with _open_source(ciphertext, "cannot compare") as envelope:
            what = f"cannot compare {envelope.label}"
            try:
                facts, header_length = _read_facts(envelope.stream, what, self._max_data_keys)
            except EnvelopeError as error:
                if error.kind in ("not_envelope", "corrupt", "too_large"):
                    return Comparison(False, ("invalid",))
                raise
            facts = _with_size(facts, envelope.size())
            reasons = _metadata_differences(facts, wanted_keys, wanted_context, algorithm)
            if reasons:
                return Comparison(False, tuple(reasons), facts)
            with _open_plaintext(plaintext) as expected:
                if not _size_is_possible(facts, header_length, expected.size()):
                    return Comparison(False, ("content",), facts)
                return self._compare_content(envelope, expected, facts, wanted_keys, wanted_context, what)

    def _compare_content(self, envelope, expected, facts, wanted_keys, wanted_context, what):
        policy = _DecryptPolicy(wanted_context, tuple(sorted(wanted_keys)))
        matcher = PlaintextMatcher(expected.stream)
        try:
            self._decrypt_stream(envelope, matcher.feed, policy, what)
        except Mismatch:
            return Comparison(False, ("content",), facts, kms_calls=1)
        except EnvelopeError as error:
            if error.kind in ("corrupt", "trailing_data"):
                return Comparison(False, ("invalid",), facts, kms_calls=1)
            raise
        if not matcher.finish():
            return Comparison(False, ("content",), facts, kms_calls=1)
        return Comparison(True, (), facts, kms_calls=1)


def check_header(facts, policy, what):
    """Raise EnvelopeError when header facts fail a decrypt_policy: required context pairs, allowed
    keys or accounts. No KMS call, so callers can predict a refusal (check mode); decrypt repeats it
    on the authenticated header."""
    _check_required_context(facts, policy.required_context, what)
    if policy.allowed_key_arns and not set(facts.key_arns) & set(policy.allowed_key_arns):
        raise EnvelopeError(
            f"{what}: wrapped under {_names(facts.key_arns)}, none of the allowed keys {_names(policy.allowed_key_arns)}",
            "key_not_allowed",
        )
    if policy.discovery_account_ids and not any(_in_accounts(arn, policy) for arn in facts.key_arns):
        raise EnvelopeError(
            f"{what}: wrapped under {_names(facts.key_arns)}, none in the allowed accounts "
            f"{', '.join(policy.discovery_account_ids)} (partition {policy.discovery_partition})",
            "key_not_allowed",
        )


def _check_required_context(facts, required, what):
    missing = sorted(key for key in required if key not in facts.encryption_context)
    wrong = sorted(key for key in required if key in facts.encryption_context and facts.encryption_context[key] != required[key])
    if missing or wrong:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(missing))
        if wrong:
            parts.append("different value for " + ", ".join(wrong))
        raise EnvelopeError(f"{what}: encryption context does not match the required pairs ({'; '.join(parts)})",
                            "context_mismatch")


def _in_accounts(arn, policy):
    parts = arn.split(":")
    return len(parts) > 4 and parts[1] == policy.discovery_partition and parts[4] in policy.discovery_account_ids


def _names(values):
    return ", ".join(values) if values else "no KMS key"


def _require_end_of_input(stream, what):
    """The library stops reading after the footer and accepts anything behind it: we do not."""
    if stream.read(1):
        raise EnvelopeError(f"{what}: unexpected data after the end of the envelope", "trailing_data")


def _metadata_differences(facts, wanted_keys, wanted_context, algorithm):
    reasons = []
    if set(facts.key_arns) != wanted_keys or facts.data_key_count != len(facts.key_arns):
        reasons.append("key")
    if facts.encryption_context != wanted_context:
        reasons.append("context")
    if algorithm is not None and _algorithm(algorithm).algorithm_id != facts.algorithm_id:
        reasons.append("algorithm")
    return reasons


def _size_is_possible(facts, header_length, plaintext_size):
    if not facts.frame_length:
        return True  # non-framed: no cheap answer, decrypt decides
    suite = Algorithm.get_by_id(facts.algorithm_id)
    sizes = expected_ciphertext_sizes(header_length, suite, facts.frame_length, plaintext_size)
    return any(low <= facts.size <= high for low, high in sizes)


def _open_plaintext(plaintext):
    if isinstance(plaintext, str) and not os.path.exists(plaintext):
        raise EnvelopeError(f"cannot compare: plaintext file {plaintext} does not exist", "io_error")
    return _open_source(plaintext, "cannot compare")


class Mismatch(Exception):
    """Raised from PlaintextMatcher.feed to stop decrypting at the first difference."""


class PlaintextMatcher:
    """Sink for decrypted chunks that compares them with an expected binary stream as they come
    (constant memory).

    ``stop_on_mismatch``: raise Mismatch at the first difference (saves decrypting the rest);
    otherwise keep consuming so the whole envelope is still verified. ``keep``: also hold the first
    ``keep`` + 1 bytes of plaintext (for an opt-in diff, or content in check mode)."""

    def __init__(self, expected=None, stop_on_mismatch=True, keep=0):
        self._expected = expected
        self._stop = stop_on_mismatch
        self._keep = keep
        self.kept = bytearray()
        self.size = 0
        self.same = expected is not None

    def feed(self, chunk):
        self.size += len(chunk)
        if self._keep and len(self.kept) <= self._keep:
            self.kept.extend(chunk[: self._keep + 1 - len(self.kept)])
        if self.same and _read_exactly(self._expected, len(chunk)) != chunk:
            self.same = False
            if self._stop:
                raise Mismatch()

    def finish(self):
        """True when everything matched and the expected stream has nothing more."""
        if self.same and self._expected.read(1):
            self.same = False
        return self.same


def _read_exactly(stream, size):
    parts = []
    while size > 0:
        part = stream.read(size)
        if not part:
            break
        parts.append(part)
        size -= len(part)
    return b"".join(parts)
