# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""For internal collection use only: the library's KMS master key providers, on the engine's clients.

The only code that reaches into the AWS Encryption SDK's key providers. The library would build
its own botocore clients (no endpoint_url, no retry policy, none of Ansible's credential options);
these providers take the clients the engine hands them instead, made by ``module_utils/kms.py``
with the collection's one retry policy, and record the KMS error behind each failed key.
"""

from __future__ import annotations

import functools
import re

try:
    import botocore.session
    from aws_encryption_sdk.exceptions import AWSEncryptionSDKClientError
    from aws_encryption_sdk.key_providers.kms import (
        DiscoveryAwsKmsMasterKeyProvider,
        DiscoveryFilter,
        KMSMasterKey,
        StrictAwsKmsMasterKeyProvider,
    )
except ImportError:
    pass  # envelope.HAS_ESDK tells

from ansible_collections.envelope.kms.plugins.module_utils._envelope.errors import kms_cause
from ansible_collections.envelope.kms.plugins.module_utils._envelope.library import HAS_ESDK

_AWS_ENDPOINT_SUFFIXES = (".amazonaws.com", ".amazonaws.com.cn", ".api.aws", ".c2s.ic.gov", ".sc2s.sgov.gov")


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
                    self.failure_log.append((self._key_id, kms_cause(error)))
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
            kwargs.setdefault("botocore_session", idle_botocore_session())
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

    class StrictProvider(_EngineClientsMixin, StrictAwsKmsMasterKeyProvider):
        """Encrypt under, or decrypt with, exactly the configured keys."""

    class DiscoveryProvider(_EngineClientsMixin, DiscoveryAwsKmsMasterKeyProvider):
        """Decrypt with whichever KMS key wrapped the data key (optionally limited to accounts)."""


def provider_spec(policy):
    """(cache key, provider class, keyword arguments) of the provider that decrypts under a DecryptPolicy."""
    if policy.allowed_key_arns:
        return ("strict",) + policy.allowed_key_arns, StrictProvider, dict(key_ids=list(policy.allowed_key_arns))
    if policy.discovery_account_ids:
        discovery = DiscoveryFilter(account_ids=policy.discovery_account_ids, partition=policy.discovery_partition)
        return ("discovery", discovery), DiscoveryProvider, dict(discovery_filter=discovery)
    return ("discovery",), DiscoveryProvider, {}


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
