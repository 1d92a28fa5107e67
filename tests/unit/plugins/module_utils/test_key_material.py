"""The pure parts of envelope.kms.key_material: option checks, plan_material and the wrapping of key material.

The wrapping is checked the way KMS would read it: a real RSA key pair made here plays KMS's wrapping key,
and what wrap_key_material returns is unwrapped with its private key.
"""

import base64
import datetime

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_unwrap_with_padding
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ansible_collections.envelope.kms.plugins.module_utils import key_material
from ansible_collections.envelope.kms.plugins.module_utils.errors import EnvelopeError, InputError
from ansible_collections.envelope.kms.plugins.module_utils.key_material import (
    DELETE,
    DOES_NOT_EXPIRE,
    EXPIRES,
    IMPORT,
    NEW_KEY,
    decode_key_material,
    expiration_args,
    material_state,
    parse_valid_to,
    plan_material,
    wrap_key_material,
)

NOW = datetime.datetime(2025, 3, 1, 12, 0, tzinfo=datetime.timezone.utc)
LATER = datetime.datetime(2025, 9, 1, tzinfo=datetime.timezone.utc)
ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
MATERIAL = bytes(range(100, 132))


def key(**overrides):
    metadata = {"KeyId": ARN.rsplit("/", 1)[1], "Arn": ARN, "Origin": "EXTERNAL", "KeySpec": "SYMMETRIC_DEFAULT",
                "KeyState": "PendingImport", "Enabled": False}
    metadata.update(overrides)
    return metadata


def imported(valid_to=None, **overrides):
    """A key holding key material (Enabled unless overridden) that expires at valid_to (None: never)."""
    expiration = {"ExpirationModel": DOES_NOT_EXPIRE} if valid_to is None else {"ExpirationModel": EXPIRES, "ValidTo": valid_to}
    return key(**dict(dict(KeyState="Enabled", Enabled=True, **expiration), **overrides))


# --- key_material -----------------------------------------------------------------------------


def test_key_material_decoded_whitespace_ignored():
    text = base64.b64encode(MATERIAL).decode()
    assert decode_key_material(text) == MATERIAL
    assert decode_key_material(f"  {text[:20]}\n{text[20:]}\n") == MATERIAL


@pytest.mark.parametrize("text", ["not base64 at all!", "QUJD*", "QUJDRA"])  # bad characters, bad padding
def test_key_material_not_base64_is_refused_without_echoing_it(text):
    with pytest.raises(InputError) as error:
        decode_key_material(text)
    assert str(error.value) == "key_material is not valid base64 text"


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_key_material_of_another_length_is_refused(size):
    text = base64.b64encode(b"\x07" * size).decode()
    with pytest.raises(InputError) as error:
        decode_key_material(text)
    message = str(error.value)
    assert message in (f"key_material must be 32 bytes (the 256-bit key of a SYMMETRIC_DEFAULT key) once "
                       f"base64-decoded, got {size}",
                       "key_material is required with state=present (the key material, base64-encoded)")
    assert not text or text not in message


def test_key_material_missing_is_refused():
    for text in (None, "", "  \n"):
        with pytest.raises(InputError, match="key_material is required with state=present"):
            decode_key_material(text)


# --- valid_to ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2025-09-01", LATER),
        ("2025-09-01T00:00:00Z", LATER),
        ("2025-09-01T00:00:00", LATER),  # no offset: UTC
        ("2025-09-01T02:00:00+02:00", LATER),
        ("2025-09-01T00:00:00.750000+00:00", LATER),  # to the second, as KMS keeps it
        ("2025-09-01 00:00:00", LATER),  # what Ansible makes of an unquoted YAML timestamp
    ],
)
def test_valid_to_forms(text, expected):
    parsed = parse_valid_to(text, NOW)
    assert parsed == expected and parsed.tzinfo is not None and parsed.microsecond == 0


def test_valid_to_none_means_no_expiry():
    assert parse_valid_to(None, NOW) is None
    assert expiration_args(None) == {"ExpirationModel": DOES_NOT_EXPIRE}
    assert expiration_args(LATER) == {"ExpirationModel": EXPIRES, "ValidTo": LATER}


@pytest.mark.parametrize(
    "text, message",
    [
        ("2025-03-01T11:59:59Z", "valid_to must be in the future, got 2025-03-01T11:59:59+00:00 (now 2025-03-01T12:00:00+00:00)"),
        ("2025-03-01T12:00:00Z", "valid_to must be in the future"),
        ("2024-12-31", "valid_to must be in the future"),
        ("2026-03-01T12:00:01Z", "valid_to must be at most 365 days from now (a KMS limit)"),
        ("next tuesday", "valid_to is not an ISO 8601 date or date and time: 'next tuesday'"),
        ("2025-13-01", "valid_to is not an ISO 8601 date"),
    ],
)
def test_valid_to_refused(text, message):
    with pytest.raises(InputError) as error:
        parse_valid_to(text, NOW)
    assert str(error.value).startswith(message)


def test_valid_to_365_days_is_accepted():
    assert parse_valid_to("2026-03-01T12:00:00Z", NOW) == NOW + datetime.timedelta(days=365)


# --- plan -------------------------------------------------------------------------------------


def test_key_without_material_is_imported():
    plan = plan_material(key(), "present", LATER)
    assert plan.action == IMPORT
    assert plan.before == {"state": "absent", "key_state": "PendingImport", "expiration_model": None, "valid_to": None}
    assert plan.after == {"state": "present", "key_state": "Enabled", "expiration_model": EXPIRES,
                          "valid_to": "2025-09-01T00:00:00+00:00"}


@pytest.mark.parametrize("metadata, valid_to", [(imported(), None), (imported(LATER), LATER),
                                                (imported(LATER, KeyState="Disabled", Enabled=False), LATER)])
def test_material_with_the_same_expiration_is_left_alone(metadata, valid_to):
    plan = plan_material(metadata, "present", valid_to)
    assert plan.action is None and plan.before == plan.after
    assert plan.after["state"] == "present"


@pytest.mark.parametrize(
    "metadata, valid_to",
    [
        (imported(), LATER),  # never expired, now should
        (imported(LATER), None),  # expires, now should not
        (imported(LATER), LATER + datetime.timedelta(seconds=1)),  # another date
    ],
)
def test_material_with_another_expiration_is_imported_again(metadata, valid_to):
    plan = plan_material(metadata, "present", valid_to)
    assert plan.action == IMPORT
    assert plan.after["expiration_model"] == expiration_args(valid_to)["ExpirationModel"]
    assert plan.after["valid_to"] == (valid_to.isoformat() if valid_to else None)


def test_force_imports_again():
    assert plan_material(imported(), "present", None, force=True).action == IMPORT
    assert plan_material(imported(), "present", None, force=False).action is None


def test_absent_deletes_held_material_only():
    plan = plan_material(imported(LATER), "absent")
    assert plan.action == DELETE
    assert plan.before["valid_to"] == "2025-09-01T00:00:00+00:00"
    assert plan.after == {"state": "absent", "key_state": "PendingImport", "expiration_model": None, "valid_to": None}
    assert plan_material(imported(KeyState="Disabled"), "absent").action == DELETE
    assert plan_material(key(), "absent").action is None
    assert plan_material(imported(KeyState="PendingDeletion"), "absent").action is None


@pytest.mark.parametrize(
    "metadata, state, message",
    [
        (key(Origin="AWS_KMS"), "present", f"Key {ARN} has origin AWS_KMS: key material can only be imported into a key "
                                           "created with origin EXTERNAL (envelope.kms.key origin=EXTERNAL)"),
        (key(Origin="AWS_CLOUDHSM"), "absent", f"Key {ARN} has origin AWS_CLOUDHSM"),
        (key(KeySpec="HMAC_256"), "present", f"Key {ARN} is a HMAC_256 key: this module imports the key material of "
                                             "SYMMETRIC_DEFAULT keys only"),
        (key(KeyState="PendingDeletion"), "present", f"Key {ARN} is pending deletion"),
        (imported(KeyState="Disabled", Enabled=False), "present", f"Key {ARN} is Disabled: KMS imports key material only "
                                                                  "into a key that is PendingImport or Enabled"),
    ],
)
def test_keys_kms_would_refuse(metadata, state, message):
    with pytest.raises(InputError) as error:
        plan_material(metadata, state, LATER)
    assert str(error.value).startswith(message)


def test_a_key_check_mode_does_not_know_yet_would_be_imported():
    plan = plan_material(NEW_KEY, "present", None)
    assert plan.action == IMPORT and plan.after["expiration_model"] == DOES_NOT_EXPIRE
    assert plan_material(NEW_KEY, "absent").action is None


def test_material_state_never_holds_material():
    state = material_state(imported(LATER))
    assert state == {"state": "present", "key_state": "Enabled", "expiration_model": EXPIRES,
                     "valid_to": "2025-09-01T00:00:00+00:00"}


# --- wrapping ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wrapping_keys():
    """{bits: private key}: the RSA key pairs that play KMS's wrapping keys."""
    return {bits: rsa.generate_private_key(public_exponent=65537, key_size=bits) for bits in (2048, 3072)}


def public_der(private_key):
    return private_key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def oaep(digest):
    return padding.OAEP(mgf=padding.MGF1(algorithm=digest), algorithm=digest, label=None)


@pytest.mark.parametrize("algorithm, digest", [("RSAES_OAEP_SHA_256", hashes.SHA256), ("RSAES_OAEP_SHA_1", hashes.SHA1)])
def test_rsaes_oaep_is_rsa_oaep_of_the_material_with_that_hash(wrapping_keys, algorithm, digest):
    private_key = wrapping_keys[3072]
    wrapped = wrap_key_material(MATERIAL, public_der(private_key), algorithm, "RSA_3072")
    assert len(wrapped) == 3072 // 8
    assert private_key.decrypt(wrapped, oaep(digest())) == MATERIAL
    other = hashes.SHA1 if digest is hashes.SHA256 else hashes.SHA256
    with pytest.raises(ValueError):  # the hash matters: KMS would fail to decrypt with the other one
        private_key.decrypt(wrapped, oaep(other()))


@pytest.mark.parametrize("algorithm, digest", [("RSA_AES_KEY_WRAP_SHA_256", hashes.SHA256),
                                               ("RSA_AES_KEY_WRAP_SHA_1", hashes.SHA1)])
def test_rsa_aes_key_wrap_is_rsa_oaep_of_an_aes_key_then_kwp_of_the_material(wrapping_keys, algorithm, digest):
    private_key = wrapping_keys[2048]
    wrapped = wrap_key_material(MATERIAL, public_der(private_key), algorithm, "RSA_2048")
    rsa_part, aes_part = wrapped[:2048 // 8], wrapped[2048 // 8:]
    assert len(aes_part) == 40  # RFC 5649: 32 bytes of material, one 8-byte integrity block
    aes_key = private_key.decrypt(rsa_part, oaep(digest()))
    assert len(aes_key) == 32
    assert aes_key_unwrap_with_padding(aes_key, aes_part) == MATERIAL
    with pytest.raises(InvalidUnwrap):  # with padding (RFC 5649), not RFC 3394's plain key wrap
        aes_key_unwrap(aes_key, aes_part)
    # a fresh AES key each time
    again = wrap_key_material(MATERIAL, public_der(private_key), algorithm, "RSA_2048")
    assert private_key.decrypt(again[:256], oaep(digest())) != aes_key


def test_a_wrapping_key_of_another_size_is_refused(wrapping_keys):
    with pytest.raises(EnvelopeError) as error:
        wrap_key_material(MATERIAL, public_der(wrapping_keys[2048]), "RSAES_OAEP_SHA_256", "RSA_4096")
    assert str(error.value) == "KMS returned a wrapping key that is not the RSA_4096 public key asked for"


def test_choices_match_the_botocore_model():
    botocore_session = pytest.importorskip("botocore.session")
    model = botocore_session.get_session().get_service_model("kms")
    shape = model.operation_model("GetParametersForImport").input_shape
    assert set(key_material.WRAPPING_ALGORITHMS) <= set(shape.members["WrappingAlgorithm"].enum)
    assert "RSAES_PKCS1_V1_5" not in key_material.WRAPPING_ALGORITHMS
    assert set(key_material.WRAPPING_KEY_SPECS) <= set(shape.members["WrappingKeySpec"].enum)
    assert key_material.DEFAULT_WRAPPING_KEY_SPEC == "RSA_4096"
