"""The reference AWS Encryption SDK used as any other reader or writer of the format would use it.

Tests read what the collection wrote (and write what it must read) with the plain
``aws_encryption_sdk`` library: its own client, its own master key providers, its own KMS clients
made from a botocore session. No collection code is imported here, so a file that decrypts here
decrypts for every other implementation of the format too. The session only carries the local
endpoint (the library passes no ``endpoint_url``: what ``AWS_ENDPOINT_URL`` would do for a script)
and dummy credentials.
"""

import io

import aws_encryption_sdk
import botocore.session
from aws_encryption_sdk.identifiers import CommitmentPolicy

from tests.harness.kms_server import REGION


class EndpointSession(botocore.session.Session):
    """A botocore session whose clients go to one endpoint, with dummy credentials and a region."""

    def __init__(self, endpoint_url, region=REGION):
        super().__init__()
        self.endpoint_url = endpoint_url
        self.set_credentials("testing", "testing")
        self.set_config_variable("region", region)

    def create_client(self, *args, **kwargs):
        if not kwargs.get("endpoint_url"):
            kwargs["endpoint_url"] = self.endpoint_url
        return super().create_client(*args, **kwargs)


def _endpoint_url(endpoint):
    return getattr(endpoint, "url", endpoint)  # a KmsServer (or fault proxy) or a URL


def provider(endpoint, key_ids=None):
    """StrictAwsKmsMasterKeyProvider for ``key_ids`` (ids, ARNs or aliases), else a discovery provider."""
    session = EndpointSession(_endpoint_url(endpoint))
    if key_ids:
        key_ids = [key_ids] if isinstance(key_ids, str) else list(key_ids)
        return aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(key_ids=key_ids, botocore_session=session)
    return aws_encryption_sdk.DiscoveryAwsKmsMasterKeyProvider(botocore_session=session)


def client():
    return aws_encryption_sdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)


def _read(source):
    if isinstance(source, (bytes, bytearray)):
        return bytes(source)
    with open(source, "rb") as handle:
        return handle.read()


def decrypt(endpoint, source, key_ids=None):
    """Decrypt an envelope (a path or the bytes) with the library alone: (plaintext, header).

    ``endpoint``: the ``kms_server`` fixture (or its URL). ``key_ids``: decrypt in strict mode with
    only these keys; by default in discovery mode (whichever key wrapped the data key).
    ``header.encryption_context`` holds the whole context, the library's own ``aws-crypto-*`` keys
    included.
    """
    return client().decrypt(source=_read(source), key_provider=provider(endpoint, key_ids))


def encrypt(endpoint, key_ids, plaintext, encryption_context=None, frame_length=4096, algorithm=None):
    """Encrypt ``plaintext`` (bytes or str) under ``key_ids`` with the library's stream API: the envelope.

    ``algorithm``: an ``aws_encryption_sdk.identifiers.Algorithm`` (the library's default otherwise).
    """
    if isinstance(plaintext, str):
        plaintext = plaintext.encode()
    options = dict(mode="e", source=io.BytesIO(plaintext), key_provider=provider(endpoint, key_ids),
                   encryption_context=dict(encryption_context or {}), frame_length=frame_length)
    if algorithm is not None:
        options["algorithm"] = algorithm
    with client().stream(**options) as encryptor:
        return b"".join(encryptor)


def encrypt_file(endpoint, key_ids, plaintext, path, encryption_context=None, frame_length=4096, algorithm=None):
    """Write the envelope of ``plaintext`` to ``path`` (see encrypt()); return ``path``."""
    data = encrypt(endpoint, key_ids, plaintext, encryption_context, frame_length, algorithm)
    with open(path, "wb") as handle:
        handle.write(data)
    return path
