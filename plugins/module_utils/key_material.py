# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Imported key material of a KMS key with origin EXTERNAL: the option checks, a pure plan (what to do,
what the key looks like after it), the wrapping of the material for KMS, and the calls that do it.

The plaintext key material only lives in the bytes handed to ``wrap_key_material`` and
``import_key_material``: no message, plan or result of this file holds it, or its base64.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import os
import traceback
from collections import namedtuple

try:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding
    from cryptography.hazmat.primitives.serialization import load_der_public_key
except ImportError:
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None

from ansible_collections.envelope.kms.plugins.module_utils.errors import EnvelopeError, InputError

# GetParametersForImport's wrapping algorithms, RSAES_PKCS1_V1_5 left out: KMS no longer supports it
# (since 2023-10-10), and SM2PKE is for SM2 wrapping keys in China Regions only.
WRAPPING_ALGORITHMS = ["RSAES_OAEP_SHA_256", "RSAES_OAEP_SHA_1", "RSA_AES_KEY_WRAP_SHA_256", "RSA_AES_KEY_WRAP_SHA_1"]
DEFAULT_WRAPPING_ALGORITHM = "RSAES_OAEP_SHA_256"
WRAPPING_KEY_SPECS = ["RSA_2048", "RSA_3072", "RSA_4096"]
# The API reference (GetParametersForImport, WrappingKeySpec): "Use the longest RSA wrapping key that is practical."
DEFAULT_WRAPPING_KEY_SPEC = "RSA_4096"
# The key material of a SYMMETRIC_DEFAULT key: a 256-bit AES key.
MATERIAL_BYTES = 32
SYMMETRIC_DEFAULT = "SYMMETRIC_DEFAULT"
# ImportKeyMaterial: ValidTo must be in the future, at most 365 days from the request.
MAX_VALID_DAYS = 365
EXPIRES = "KEY_MATERIAL_EXPIRES"
DOES_NOT_EXPIRE = "KEY_MATERIAL_DOES_NOT_EXPIRE"
EXTERNAL = "EXTERNAL"
PENDING_IMPORT = "PendingImport"
PENDING_DELETION = "PendingDeletion"

IMPORT = "import_key_material"
DELETE = "delete_imported_key_material"

# What check mode assumes for a key an earlier task would create (key_id null or naming no key yet):
# an EXTERNAL symmetric key without key material, as envelope.kms.key creates it.
NEW_KEY = {"KeyId": None, "Arn": None, "Origin": EXTERNAL, "KeySpec": SYMMETRIC_DEFAULT, "KeyState": PENDING_IMPORT}

# action: IMPORT, DELETE or None; before / after: material_state() of the key, after the prediction.
MaterialPlan = namedtuple("MaterialPlan", "action before after")


def decode_key_material(text):
    """The key_material option (base64 text, whitespace ignored) as bytes, MATERIAL_BYTES long.

    The messages name neither the text nor any part of it."""
    if text is None or not text.strip():
        raise InputError("key_material is required with state=present (the key material, base64-encoded)")
    try:
        material = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise InputError("key_material is not valid base64 text") from None
    if len(material) != MATERIAL_BYTES:
        raise InputError(
            f"key_material must be {MATERIAL_BYTES} bytes (the 256-bit key of a {SYMMETRIC_DEFAULT} key) "
            f"once base64-decoded, got {len(material)}"
        )
    return material


def parse_valid_to(value, now):
    """valid_to (ISO 8601 date or date and time; no offset means UTC) as an aware UTC datetime to the
    second; None stays None (the material does not expire). Must be after ``now`` and at most
    MAX_VALID_DAYS later."""
    if value is None:
        return None
    text = str(value).strip()
    try:
        if len(text) == 10:  # a date alone: its midnight
            parsed = datetime.datetime.combine(datetime.date.fromisoformat(text), datetime.time())
        else:  # fromisoformat takes a trailing Z only from Python 3.11
            parsed = datetime.datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "zZ" else text)
    except ValueError:
        raise InputError(f"valid_to is not an ISO 8601 date or date and time: {text!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    parsed = parsed.astimezone(datetime.timezone.utc).replace(microsecond=0)
    if parsed <= now:
        raise InputError(f"valid_to must be in the future, got {parsed.isoformat()} (now {now.replace(microsecond=0).isoformat()})")
    if parsed > now + datetime.timedelta(days=MAX_VALID_DAYS):
        raise InputError(f"valid_to must be at most {MAX_VALID_DAYS} days from now (a KMS limit), got {parsed.isoformat()}")
    return parsed


def expiration_args(valid_to):
    """ImportKeyMaterial's ExpirationModel (and ValidTo) for valid_to (None: never expires)."""
    if valid_to is None:
        return {"ExpirationModel": DOES_NOT_EXPIRE}
    return {"ExpirationModel": EXPIRES, "ValidTo": valid_to}


def holds_material(metadata):
    """Whether the key holds key material: Enabled or Disabled keys do; PendingImport keys do not. For
    other states (PendingDeletion) the expiration model tells, since KMS gives it for imported material."""
    state = metadata.get("KeyState")
    if state in ("Enabled", "Disabled"):
        return True
    return state != PENDING_IMPORT and bool(metadata.get("ExpirationModel"))


def material_state(metadata):
    """What the diff and the result show of a key's material: never the material itself."""
    imported = holds_material(metadata)
    valid_to = metadata.get("ValidTo") if imported else None
    return {
        "state": "present" if imported else "absent",
        "key_state": metadata.get("KeyState"),
        "expiration_model": metadata.get("ExpirationModel") if imported else None,
        "valid_to": _utc(valid_to).isoformat() if hasattr(valid_to, "isoformat") else valid_to,
    }


def _utc(moment):
    """botocore gives KMS's timestamps in the controller's time zone: shown in UTC, as check mode predicts."""
    return moment.astimezone(datetime.timezone.utc) if moment.tzinfo else moment


def check_importable(metadata):
    """InputError unless the key can hold imported key material: origin EXTERNAL."""
    key = metadata.get("Arn") or "that an earlier task would create"
    origin = metadata.get("Origin")
    if origin != EXTERNAL:
        raise InputError(
            f"Key {key} has origin {origin}: key material can only be imported into a key created with origin "
            f"{EXTERNAL} (envelope.kms.key origin=EXTERNAL)"
        )


def plan_material(metadata, state, valid_to=None, force=False):
    """MaterialPlan for the key (KeyMetadata) and the wanted state, valid_to (parse_valid_to), force.

    present: import into a key without material; into one that holds material only when its expiration
    differs from the one asked for, or with force (KMS cannot tell whether the material it holds equals
    the given one). absent: delete the material the key holds. InputError for keys KMS would refuse.
    """
    check_importable(metadata)
    key, key_state = metadata.get("Arn") or "that an earlier task would create", metadata.get("KeyState")
    before = material_state(metadata)
    if state == "absent":
        # A key pending deletion is unusable already; its material goes with it.
        if before["state"] != "present" or key_state == PENDING_DELETION:
            return MaterialPlan(None, before, before)
        return MaterialPlan(DELETE, before, dict(before, state="absent", key_state=PENDING_IMPORT,
                                                 expiration_model=None, valid_to=None))

    key_spec = metadata.get("KeySpec", SYMMETRIC_DEFAULT)
    if key_spec != SYMMETRIC_DEFAULT:
        raise InputError(f"Key {key} is a {key_spec} key: this module imports the key material of {SYMMETRIC_DEFAULT} keys only")
    wanted = expiration_args(valid_to)
    after = dict(before, state="present", expiration_model=wanted["ExpirationModel"],
                 valid_to=valid_to.isoformat() if valid_to else None)
    if before["state"] == "present" and not force and _same_expiration(metadata, valid_to):
        return MaterialPlan(None, before, before)
    if key_state == PENDING_DELETION:
        raise InputError(f"Key {key} is pending deletion: cancel the deletion (envelope.kms.key state=present) "
                         "before importing key material")
    if key_state not in (PENDING_IMPORT, "Enabled"):
        # ImportKeyMaterial: the key state must be PendingImport or Enabled.
        raise InputError(f"Key {key} is {key_state}: KMS imports key material only into a key that is "
                         f"{PENDING_IMPORT} or Enabled (enable it with envelope.kms.key enabled=true)")
    return MaterialPlan(IMPORT, before, dict(after, key_state="Enabled"))


def _same_expiration(metadata, valid_to):
    if metadata.get("ExpirationModel") != expiration_args(valid_to)["ExpirationModel"]:
        return False
    if valid_to is None:
        return True
    current = metadata.get("ValidTo")
    return hasattr(current, "timestamp") and int(current.timestamp()) == int(valid_to.timestamp())


def wrap_key_material(material, public_key_der, algorithm, wrapping_key_spec):
    """The EncryptedKeyMaterial of ImportKeyMaterial: ``material`` wrapped under the DER public key of
    GetParametersForImport, as the AWS KMS Developer Guide says (Importing key material, step 3).

    RSAES_OAEP_SHA_*: RSA-OAEP of the material, with that hash for OAEP and MGF1.
    RSA_AES_KEY_WRAP_SHA_*: a fresh 256-bit AES key, RSA-OAEP-encrypted as above, followed by the
    material wrapped under that AES key with AES key wrap with padding (RFC 5649; ``openssl enc
    -id-aes256-wrap-pad``), RSA part first (PKCS #11 CKM_RSA_AES_KEY_WRAP).
    """
    public_key = load_der_public_key(public_key_der)
    bits = int(wrapping_key_spec.split("_")[1])
    if not isinstance(public_key, rsa.RSAPublicKey) or public_key.key_size != bits:
        raise EnvelopeError(f"KMS returned a wrapping key that is not the {wrapping_key_spec} public key asked for",
                            "kms_error")
    digest = hashes.SHA256() if algorithm.endswith("_SHA_256") else hashes.SHA1()
    oaep = padding.OAEP(mgf=padding.MGF1(algorithm=digest), algorithm=digest, label=None)
    if algorithm.startswith("RSAES_OAEP_"):
        return public_key.encrypt(material, oaep)
    aes_key = os.urandom(32)
    return public_key.encrypt(aes_key, oaep) + aes_key_wrap_with_padding(aes_key, material)


def import_key_material(client, key_arn, material, algorithm, wrapping_key_spec, valid_to):
    """GetParametersForImport, wrap, ImportKeyMaterial (AWS errors propagate; none holds the material)."""
    parameters = client.get_parameters_for_import(KeyId=key_arn, WrappingAlgorithm=algorithm,
                                                  WrappingKeySpec=wrapping_key_spec)
    encrypted = wrap_key_material(material, parameters["PublicKey"], algorithm, wrapping_key_spec)
    client.import_key_material(KeyId=key_arn, ImportToken=parameters["ImportToken"], EncryptedKeyMaterial=encrypted,
                               **expiration_args(valid_to))


def delete_key_material(client, key_arn):
    client.delete_imported_key_material(KeyId=key_arn)
