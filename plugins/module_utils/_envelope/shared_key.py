# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""For internal collection use only: many small messages under one data key (envelope vars files).

Every value of an envelope vars file is a complete, standard AWS Encryption SDK message. They all
carry the same encrypted data keys (the same data key wrapped under the same KMS keys), so any ESDK
decrypts one of them alone with one KMS Decrypt, and a reader of the whole file pays that one
Decrypt once: ``SharedKeyManager`` is a crypto materials manager (the library's extension point for
exactly this) that

* on encrypt, asks the library's default manager (GenerateDataKey, then Encrypt for each further
  key) once and hands the same materials to every later message, or is seeded with the materials
  of an existing file so that new values join it;
* on decrypt, remembers the decryption materials of each set of encrypted data keys (with their
  algorithm, context and the provider that was allowed to unwrap them) in a ``MaterialsCache``.

Each message still gets its own random message id, so with the committing suites every message is
encrypted under its own key derived (HKDF) from the data key and that id. The plaintext data key
stays in process memory only, for the life of the cache.
"""

from __future__ import annotations

try:
    from aws_encryption_sdk.materials_managers import EncryptionMaterials
    from aws_encryption_sdk.materials_managers.base import CryptoMaterialsManager
    from aws_encryption_sdk.materials_managers.default import DefaultCryptoMaterialsManager
    from aws_encryption_sdk.structures import DataKey
except ImportError:
    CryptoMaterialsManager = object  # envelope.HAS_ESDK tells

from ansible_collections.envelope.kms.plugins.module_utils.errors import EnvelopeError


def edk_fingerprint(encrypted_data_keys):
    """A hashable identity of a set of encrypted data keys (the same data key wrapped the same way)."""
    return frozenset(
        (edk.key_provider.provider_id, bytes(edk.key_provider.key_info), bytes(edk.encrypted_data_key))
        for edk in encrypted_data_keys
    )


class MaterialsCache:
    """Decryption materials by (provider, algorithm, encrypted data keys, context), in memory.

    ``kms_decrypts`` counts the misses, each of which cost the library's provider one KMS Decrypt
    (or more when it had to try several wrapped keys)."""

    def __init__(self):
        self._materials = {}
        self.kms_decrypts = 0

    def get(self, key, compute):
        materials = self._materials.get(key)
        if materials is None:
            materials = self._materials[key] = compute()
            self.kms_decrypts += 1
        return materials

    def clear(self):
        self._materials.clear()


class SharedKeyManager(CryptoMaterialsManager):
    """One data key for every message it encrypts; cached data keys for every message it decrypts."""

    def __init__(self, provider, provider_key, cache, encryption=None):
        self._default = DefaultCryptoMaterialsManager(master_key_provider=provider)
        self._provider_key = provider_key
        self._cache = cache
        self.encryption = encryption
        self.last_decryption = None

    def get_encryption_materials(self, request):
        materials = self.encryption
        if materials is None:
            materials = self.encryption = self._default.get_encryption_materials(request)
        elif (materials.algorithm != request.algorithm
              or dict(materials.encryption_context) != dict(request.encryption_context)):
            raise EnvelopeError("internal error: one shared data key serves one algorithm and encryption context",
                                "internal")
        return materials

    def decrypt_materials(self, request):
        key = (self._provider_key, request.algorithm.algorithm_id, edk_fingerprint(request.encrypted_data_keys),
               tuple(sorted(request.encryption_context.items())))
        self.last_decryption = self._cache.get(key, lambda: self._default.decrypt_materials(request))
        return self.last_decryption

    def join(self, header):
        """Encrypt from now on under the data key of the message this manager decrypted last (its
        header): new messages carry exactly that message's encrypted data keys and context."""
        edks = header.encrypted_data_keys
        data_key = self.last_decryption.data_key
        self.encryption = EncryptionMaterials(
            algorithm=header.algorithm,
            data_encryption_key=DataKey(key_provider=data_key.key_provider, data_key=data_key.data_key,
                                        encrypted_data_key=next(iter(edks)).encrypted_data_key),
            encrypted_data_keys=set(edks),
            encryption_context=dict(header.encryption_context),
        )
