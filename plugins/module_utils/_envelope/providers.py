# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""For internal collection use only: the library's KMS master key providers, on the engine's clients.

The only code that reaches into the AWS Encryption SDK's key providers. The library would build
its own botocore clients (no endpoint_url, no retry policy, none of Ansible's credential options);
these providers take the clients the engine hands them instead, made by ``module_utils/kms.py``
with the collection's one retry policy, and record the KMS error behind each failed key.

Decrypting is multi-Region-key aware (the library's MRK-aware providers): a data key wrapped under
a multi-Region key (``mrk-`` key id) is decrypted through the related key in the engine's own region
first, then through the key as named in the file, so an outage of the region a file names does not
stop a decrypt where a replica exists. Other keys are used exactly as named; encrypting is unchanged.
"""

from __future__ import annotations

import functools
import re

try:
    import botocore.exceptions
    import botocore.session
    from aws_encryption_sdk.exceptions import (
        AWSEncryptionSDKClientError,
        DecryptKeyError,
        IncorrectMasterKeyError,
        InvalidDataKeyError,
    )
    from aws_encryption_sdk.key_providers.kms import (
        DiscoveryFilter,
        KMSMasterKey,
        KMSMasterKeyConfig,
        MRKAwareDiscoveryAwsKmsMasterKeyProvider,
        MRKAwareKMSMasterKey,
        MRKAwareKMSMasterKeyConfig,
        MRKAwareStrictAwsKmsMasterKeyProvider,
        StrictAwsKmsMasterKeyProvider,
    )
except ImportError:
    pass  # envelope.HAS_ESDK tells

from ansible_collections.envelope.kms.plugins.module_utils._envelope.errors import kms_cause
from ansible_collections.envelope.kms.plugins.module_utils._envelope.library import HAS_ESDK
from ansible_collections.envelope.kms.plugins.module_utils._envelope.policy import (
    is_multi_region_key_arn,
    key_arn_in_region,
    key_arns_match,
)

_AWS_ENDPOINT_SUFFIXES = (".amazonaws.com", ".amazonaws.com.cn", ".api.aws", ".c2s.ic.gov", ".sc2s.sgov.gov")
_KMS_PROVIDER_ID = "aws-kms"
# What the library raises for a wrapped key one master key cannot decrypt (it then tries the next).
_DATA_KEY_ERRORS = () if not HAS_ESDK else (DecryptKeyError, IncorrectMasterKeyError, InvalidDataKeyError)


def _text(key_id):
    """A key id as the library hands it over (bytes from a header, or str) as str, which KMS takes."""
    return key_id.decode("utf-8") if isinstance(key_id, bytes) else key_id


if HAS_ESDK:

    class _RecordingMixin:
        """Records the KMS error behind each failure of a KMS master key: the library swallows
        them while it tries the next wrapped key, and ends with a bare 'Unable to decrypt'."""

        failure_log = None

        def _record(self, call, *args, **kwargs):
            try:
                return call(*args, **kwargs)
            except AWSEncryptionSDKClientError as error:
                if self.failure_log is not None:
                    self.failure_log.append((self._key_id, kms_cause(error)))
                raise

        def _decrypt_data_key(self, encrypted_data_key, algorithm, encryption_context=None):
            try:
                return self._record(super()._decrypt_data_key, encrypted_data_key, algorithm, encryption_context)
            except botocore.exceptions.BotoCoreError as error:
                # A region that cannot be reached: the library lets botocore's connection errors
                # through, which would end the decrypt before the file's other wrapped keys (a
                # replica in another region) are tried. It is this key's failure, recorded.
                if self.failure_log is not None:
                    self.failure_log.append((self._key_id, error))
                raise DecryptKeyError(f"Master Key {self._key_id} unable to decrypt data key") from error

        def _generate_data_key(self, algorithm, encryption_context=None):
            return self._record(super()._generate_data_key, algorithm, encryption_context)

        def _encrypt_data_key(self, data_key, algorithm, encryption_context=None):
            return self._record(super()._encrypt_data_key, data_key, algorithm, encryption_context)

    class _RecordingKmsMasterKey(_RecordingMixin, KMSMasterKey):
        """A KMS master key (any key but a multi-Region one) that records its failures."""

    class _RecordingMrkMasterKey(_RecordingMixin, MRKAwareKMSMasterKey):
        """A multi-Region KMS master key that records its failures; owns the data keys of its
        related keys in other regions."""

    def _master_key(provider, key_id):
        """The recording master key for a key ARN, on the provider's client for its region."""
        if is_multi_region_key_arn(key_id):
            key_class, config_class = _RecordingMrkMasterKey, MRKAwareKMSMasterKeyConfig
        else:
            key_class, config_class = _RecordingKmsMasterKey, KMSMasterKeyConfig
        return key_class(config=config_class(key_id=key_id, client=provider._client(key_id),
                                             grant_tokens=provider.config.grant_tokens))

    class _EngineClientsMixin:
        """Gives the provider the engine's KMS clients. The library builds its own clients from a
        botocore session (``add_regional_client``), which cannot carry an explicit endpoint_url,
        the caller's retry configuration or Ansible's credentials options; this public method is
        the hook, identical in 3.3.x and 4.x. Clients are stored without the library's method
        wrapping so the caller's client is not modified."""

        master_key_class = _RecordingKmsMasterKey

        def __new__(cls, client_for_region=None, failure_log=None, local_region=None, **kwargs):
            # The library's config makes a full botocore Session per provider by default (~15 ms of
            # handler set-up) only to build clients we supply ourselves: hand it an idle one.
            kwargs.setdefault("botocore_session", idle_botocore_session())
            return super().__new__(cls, **kwargs)

        def __init__(self, client_for_region=None, failure_log=None, local_region=None, **kwargs):
            self._client_for_region = client_for_region
            self._failure_log = failure_log
            self._local_region = local_region  # the engine's: multi-Region keys are tried there first
            self._named_region_keys = {}
            super().__init__(**kwargs)

        def add_regional_client(self, region_name):
            if region_name not in self._regional_clients:
                self._regional_clients[region_name] = self._client_for_region(region_name)

        def _new_master_key(self, key_id):
            master_key = super()._new_master_key(key_id)
            master_key.failure_log = self._failure_log
            return master_key

    class StrictProvider(_EngineClientsMixin, StrictAwsKmsMasterKeyProvider):
        """Encrypt under, or decrypt with, exactly the configured keys."""

    class _NamedRegionFallbackMixin:
        """A decrypt that first tries every wrapped key through the keys of the engine's region (a
        multi-Region key through its related key there), and only when none decrypts, each
        multi-Region key the file names through its own region (no replica in the engine's region).
        Wrapped keys the provider may not use are left out of both passes."""

        def decrypt_data_key_from_list(self, encrypted_data_keys, algorithm, encryption_context):
            usable = [key for key in encrypted_data_keys if self._may_use(key)]
            try:
                return super().decrypt_data_key_from_list(usable, algorithm, encryption_context)
            except DecryptKeyError as error:
                unable = error
            for encrypted_data_key in usable:
                master_key = self._named_region_key(encrypted_data_key)
                if master_key is None:
                    continue
                try:
                    return master_key.decrypt_data_key(encrypted_data_key, algorithm, encryption_context)
                except _DATA_KEY_ERRORS:
                    continue
            raise unable

        def _may_use(self, encrypted_data_key):
            """Whether this provider may decrypt a wrapped key at all (not another provider's)."""
            return True

        def _allows(self, key_id):
            """Whether the key ARN ``key_id`` from a header may decrypt its data key in its own region."""
            raise NotImplementedError

        def _named_region_key(self, encrypted_data_key):
            """The master key of a multi-Region key ARN from a header, in its own region; None for
            other keys, keys of the engine's region and keys the provider does not allow."""
            if encrypted_data_key.key_provider.provider_id != _KMS_PROVIDER_ID:
                return None
            key_id = _text(encrypted_data_key.key_provider.key_info)
            if not is_multi_region_key_arn(key_id) or key_id.split(":")[3] == self._local_region:
                return None
            if not self._allows(key_id):
                return None
            if key_id not in self._named_region_keys:
                master_key = self._named_region_keys[key_id] = _master_key(self, key_id)
                master_key.failure_log = self._failure_log
            return self._named_region_keys[key_id]

    class MrkStrictProvider(_NamedRegionFallbackMixin, _EngineClientsMixin, MRKAwareStrictAwsKmsMasterKeyProvider):
        """Decrypt with the allowed keys, where a multi-Region key also decrypts the data keys of its
        related keys: configured with each allowed multi-Region key's related key in the engine's
        region (mrk_decrypt_key_ids), then, as a second pass, the related key the file names."""

        def __new__(cls, allowed_key_arns=(), **kwargs):
            return super().__new__(cls, **kwargs)

        def __init__(self, allowed_key_arns=(), **kwargs):
            self._allowed_key_arns = tuple(allowed_key_arns)
            super().__init__(**kwargs)

        def _new_master_key_impl(self, key_id):
            return _master_key(self, _text(key_id))

        def _allows(self, key_id):
            return any(key_arns_match(key_id, allowed) for allowed in self._allowed_key_arns)

    class DiscoveryProvider(_NamedRegionFallbackMixin, _EngineClientsMixin, MRKAwareDiscoveryAwsKmsMasterKeyProvider):
        """Decrypt with whichever KMS key wrapped the data key (optionally limited to accounts): a
        multi-Region key through its related key in the discovery region (the engine's) first, and
        when no wrapped key decrypts that way, through the key as named in the file."""

        def _new_master_key_impl(self, key_id):
            key_id = _text(key_id)
            if is_multi_region_key_arn(key_id):
                key_id = key_arn_in_region(key_id, self.config.discovery_region)
            return _master_key(self, key_id)

        def _may_use(self, encrypted_data_key):
            # The library refuses a key of an account the filter excludes with an error that ends the
            # whole decrypt (MasterKeyProviderError), not just that key: such keys are left out here.
            if encrypted_data_key.key_provider.provider_id != _KMS_PROVIDER_ID:
                return True
            return self._allows(_text(encrypted_data_key.key_provider.key_info))

        def _allows(self, key_id):
            wanted = self.config.discovery_filter
            if not wanted:
                return True
            parts = key_id.split(":")
            return len(parts) > 4 and parts[1] == wanted.partition and parts[4] in wanted.account_ids


def provider_spec(policy, region=None):
    """(cache key, provider class, keyword arguments) of the provider that decrypts under a DecryptPolicy,
    for an engine in ``region`` (the region multi-Region keys are tried in first; None: the provider's
    first region)."""
    allowed = policy.allowed_key_arns
    if allowed and region and any(is_multi_region_key_arn(arn) for arn in allowed):
        key_ids = mrk_decrypt_key_ids(allowed, region)
        return (("mrk-strict",) + tuple(key_ids), MrkStrictProvider,
                dict(key_ids=key_ids, allowed_key_arns=allowed, local_region=region))
    if allowed:
        return ("strict",) + allowed, StrictProvider, dict(key_ids=list(allowed))
    kwargs = dict(discovery_region=region, local_region=region) if region else {}
    if policy.discovery_account_ids:
        discovery = DiscoveryFilter(account_ids=policy.discovery_account_ids, partition=policy.discovery_partition)
        return ("discovery", discovery), DiscoveryProvider, dict(kwargs, discovery_filter=discovery)
    return ("discovery",), DiscoveryProvider, kwargs


def mrk_decrypt_key_ids(allowed_key_arns, region):
    """The keys a strict decrypt configures, in order: each allowed multi-Region key as its related
    key in ``region``, other allowed keys as given (once each). The related keys the file names are
    the second pass (_NamedRegionFallbackMixin)."""
    return list(dict.fromkeys(key_arn_in_region(arn, region) if is_multi_region_key_arn(arn) else arn
                              for arn in allowed_key_arns))


def encrypt_provider_spec(key_ids):
    """(cache key, provider class, keyword arguments) of the provider that encrypts under key_ids."""
    return ("strict",) + tuple(key_ids), StrictProvider, dict(key_ids=list(key_ids))


@functools.lru_cache(maxsize=1)
def idle_botocore_session():
    """One botocore Session per process that never makes a client (see _EngineClientsMixin)."""
    return botocore.session.Session(include_builtin_handlers=False)


def unwrap_client(client):
    """The botocore client behind amazon.aws's RetryingBotoClientWrapper (the library checks the type)."""
    inner = getattr(client, "client", None)
    if inner is not None and hasattr(inner, "meta"):
        return inner
    return client


def is_custom_endpoint(url):
    host = re.sub(r"^[a-z]+://", "", url or "").split("/")[0].split(":")[0]
    return bool(host) and not host.endswith(_AWS_ENDPOINT_SUFFIXES)


def client_like(base, region):
    """A KMS client for another region with the base client's credentials, config (retry policy
    included) and custom endpoint (a test server or a VPC endpoint); AWS's own endpoints are
    regional, so those are not copied."""
    credentials = getattr(getattr(base, "_request_signer", None), "_credentials", None)  # no public accessor
    kwargs = {}
    if credentials is not None:
        frozen = credentials.get_frozen_credentials()
        kwargs = dict(aws_access_key_id=frozen.access_key, aws_secret_access_key=frozen.secret_key,
                      aws_session_token=frozen.token)
    endpoint_url = base.meta.endpoint_url if is_custom_endpoint(base.meta.endpoint_url) else None
    return botocore.session.Session().create_client(
        "kms", region_name=region, endpoint_url=endpoint_url, config=base.meta.config, **kwargs
    )
