"""envelope.kms.key_material run in-process against KMS answers stubbed with botocore's Stubber.

Why Stubber: moto 5.2.5 (the integration tests' endpoint) has no GetParametersForImport,
ImportKeyMaterial nor DeleteImportedKeyMaterial, and creates keys of origin EXTERNAL in state Enabled
instead of PendingImport. So the whole flow runs here through the module's main(), on a real boto3
client with real-looking KMS answers. A real RSA key pair made by the test plays KMS's wrapping key:
what the module sent to ImportKeyMaterial is unwrapped with its private key and compared with the
material, as KMS would do it.
"""

import base64
import datetime
import json

import pytest
from botocore.stub import ANY
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap_with_padding
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ansible_collections.envelope.kms.plugins.modules import key_material
from tests.harness.leaks import Needles
from tests.harness.stubbed_kms import KEY_ARN, KEY_ID, SYMMETRIC, run_main, stubbed_client

MATERIAL = bytes(range(1, 33))
MATERIAL_B64 = base64.b64encode(MATERIAL).decode()
TOKEN = b"import-token-" + bytes(range(64))
EXTERNAL = dict(SYMMETRIC, Origin="EXTERNAL", KeyState="PendingImport", Enabled=False)
IMPORTED = dict(EXTERNAL, KeyState="Enabled", Enabled=True, ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
CHANGING = {"get_parameters_for_import", "import_key_material", "delete_imported_key_material"}


@pytest.fixture(scope="module")
def wrapping_key():
    """The RSA key pair playing KMS's wrapping key (RSA_4096, the module's default wrapping_key_spec)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=4096)


def valid_to_in(days):
    return (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=days)).replace(microsecond=0)


def run_module(monkeypatch, capsys, setup, check_mode=False, diff=False, **args):
    """Run key_material.main() with `args` against a stubbed client; return (result, calls made, their params).

    Every stubbed answer must be used, and a call not stubbed fails the run."""
    client, stubber = stubbed_client()
    setup(stubber)
    sent = []
    client.meta.events.register("before-parameter-build.kms.*",
                                lambda params, model, **kwargs: sent.append((model.name, dict(params))))
    monkeypatch.setattr(key_material, "kms_client", lambda module: client)
    args.update(_ansible_check_mode=check_mode, _ansible_diff=diff)
    return run_main(key_material, args, monkeypatch, capsys, stubber), sent


def describe(stubber, metadata, ref=KEY_ID):
    stubber.add_response("describe_key", {"KeyMetadata": metadata}, {"KeyId": ref})


def parameters(stubber, private_key, algorithm="RSAES_OAEP_SHA_256", spec="RSA_4096"):
    public_key = private_key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    stubber.add_response(
        "get_parameters_for_import",
        {"KeyId": KEY_ARN, "ImportToken": TOKEN, "PublicKey": public_key,
         "ParametersValidTo": datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=24)},
        {"KeyId": KEY_ARN, "WrappingAlgorithm": algorithm, "WrappingKeySpec": spec},
    )


def imports(stubber, **expiration):
    expected = {"KeyId": KEY_ARN, "ImportToken": TOKEN, "EncryptedKeyMaterial": ANY}
    expected.update(expiration or {"ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"})
    stubber.add_response("import_key_material", {"KeyId": KEY_ARN}, expected)


def sent_material(sent):
    (params,) = [params for name, params in sent if name == "ImportKeyMaterial"]
    return params["EncryptedKeyMaterial"]


def unwrap(private_key, blob, algorithm):
    """What KMS does with EncryptedKeyMaterial (AWS KMS Developer Guide, Importing key material, step 3)."""
    digest = hashes.SHA256() if algorithm.endswith("SHA_256") else hashes.SHA1()
    oaep = padding.OAEP(mgf=padding.MGF1(algorithm=digest), algorithm=digest, label=None)
    if algorithm.startswith("RSAES_OAEP_"):
        return private_key.decrypt(blob, oaep)
    size = private_key.key_size // 8
    return aes_key_unwrap_with_padding(private_key.decrypt(blob[:size], oaep), blob[size:])


def leaks(result):
    """The forms of the material (raw, base64, hex, ...) found in the module's output."""
    return Needles().add("key material", MATERIAL).search(json.dumps(result))


@pytest.mark.parametrize("algorithm", ["RSAES_OAEP_SHA_256", "RSAES_OAEP_SHA_1", "RSA_AES_KEY_WRAP_SHA_256",
                                       "RSA_AES_KEY_WRAP_SHA_1"])
def test_imports_material_kms_can_unwrap(monkeypatch, capsys, wrapping_key, algorithm):
    def setup(stubber):
        describe(stubber, EXTERNAL, ref="alias/byok")
        parameters(stubber, wrapping_key, algorithm)
        imports(stubber)
        describe(stubber, IMPORTED, ref=KEY_ARN)

    result, sent = run_module(monkeypatch, capsys, setup, diff=True, key_id="alias/byok", key_material=MATERIAL_B64,
                              wrapping_algorithm=algorithm)
    assert unwrap(wrapping_key, sent_material(sent), algorithm) == MATERIAL
    assert result["changed"] is True
    assert (result["key_id"], result["key_arn"]) == (KEY_ID, KEY_ARN)
    assert result["imported"] is True and result["key_state"] == "Enabled"
    assert result["expiration_model"] == "KEY_MATERIAL_DOES_NOT_EXPIRE" and result["valid_to"] is None
    assert result["diff"] == {
        "before": {"state": "absent", "key_state": "PendingImport", "expiration_model": None, "valid_to": None},
        "after": {"state": "present", "key_state": "Enabled", "expiration_model": "KEY_MATERIAL_DOES_NOT_EXPIRE",
                  "valid_to": None},
    }
    assert not leaks(result)


def test_wrapping_key_spec_is_asked_for(monkeypatch, capsys):
    small = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def setup(stubber):
        describe(stubber, EXTERNAL)
        parameters(stubber, small, "RSA_AES_KEY_WRAP_SHA_256", "RSA_2048")
        imports(stubber)
        describe(stubber, IMPORTED, ref=KEY_ARN)

    result, sent = run_module(monkeypatch, capsys, setup, key_id=KEY_ID, key_material=MATERIAL_B64,
                              wrapping_algorithm="RSA_AES_KEY_WRAP_SHA_256", wrapping_key_spec="RSA_2048")
    assert result["changed"] is True
    assert unwrap(small, sent_material(sent), "RSA_AES_KEY_WRAP_SHA_256") == MATERIAL


@pytest.mark.parametrize("before, days", [(EXTERNAL, 30), (IMPORTED, 90)])  # new material; another expiration
def test_expiry_is_passed_through(monkeypatch, capsys, wrapping_key, before, days):
    valid_to = valid_to_in(days)

    def setup(stubber):
        describe(stubber, before)
        parameters(stubber, wrapping_key)
        imports(stubber, ExpirationModel="KEY_MATERIAL_EXPIRES", ValidTo=valid_to)
        describe(stubber, dict(IMPORTED, ExpirationModel="KEY_MATERIAL_EXPIRES", ValidTo=valid_to), ref=KEY_ARN)

    result, _sent = run_module(monkeypatch, capsys, setup, key_id=KEY_ID, key_material=MATERIAL_B64,
                               valid_to=valid_to.isoformat().replace("+00:00", "Z"))
    assert result["changed"] is True
    assert result["expiration_model"] == "KEY_MATERIAL_EXPIRES"
    assert result["valid_to"] == valid_to.isoformat()


def test_already_imported_with_the_same_expiration_is_unchanged(monkeypatch, capsys):
    valid_to = valid_to_in(30)
    expiring = dict(IMPORTED, ExpirationModel="KEY_MATERIAL_EXPIRES", ValidTo=valid_to)
    # DescribeKey only: any other call fails the run
    result, sent = run_module(monkeypatch, capsys, lambda s: describe(s, IMPORTED), diff=True, key_id=KEY_ID,
                              key_material=MATERIAL_B64)
    assert result["changed"] is False and result["imported"] is True
    assert result["diff"]["before"] == result["diff"]["after"]
    assert [name for name, _params in sent] == ["DescribeKey"]
    result, sent = run_module(monkeypatch, capsys, lambda s: describe(s, expiring), key_id=KEY_ID,
                              key_material=MATERIAL_B64, valid_to=valid_to.isoformat())
    assert result["changed"] is False and result["valid_to"] == valid_to.isoformat()
    assert [name for name, _params in sent] == ["DescribeKey"]


def test_force_imports_again(monkeypatch, capsys, wrapping_key):
    def setup(stubber):
        describe(stubber, IMPORTED)
        parameters(stubber, wrapping_key)
        imports(stubber)
        describe(stubber, IMPORTED, ref=KEY_ARN)

    result, sent = run_module(monkeypatch, capsys, setup, key_id=KEY_ID, key_material=MATERIAL_B64, force=True)
    assert result["changed"] is True
    assert unwrap(wrapping_key, sent_material(sent), "RSAES_OAEP_SHA_256") == MATERIAL


def test_absent_deletes_the_material(monkeypatch, capsys):
    def setup(stubber):
        describe(stubber, IMPORTED)
        stubber.add_response("delete_imported_key_material", {}, {"KeyId": KEY_ARN})
        describe(stubber, EXTERNAL, ref=KEY_ARN)

    result, _sent = run_module(monkeypatch, capsys, setup, diff=True, key_id=KEY_ID, state="absent")
    assert result["changed"] is True and result["imported"] is False and result["key_state"] == "PendingImport"
    assert result["diff"]["before"]["state"] == "present" and result["diff"]["after"]["state"] == "absent"

    result, _sent = run_module(monkeypatch, capsys, lambda s: describe(s, EXTERNAL), key_id=KEY_ID, state="absent")
    assert result["changed"] is False and result["imported"] is False


@pytest.mark.parametrize(
    "args, message",
    [
        (dict(key_material=base64.b64encode(MATERIAL[:16]).decode()),
         "key_material must be 32 bytes (the 256-bit key of a SYMMETRIC_DEFAULT key) once base64-decoded, got 16"),
        (dict(key_material=MATERIAL_B64[:-4] + "!!!!"), "key_material is not valid base64 text"),
        (dict(key_material=MATERIAL_B64, valid_to="2020-01-01T00:00:00Z"), "valid_to must be in the future, got 2020-01-01"),
        (dict(key_material=MATERIAL_B64, valid_to="soon"), "valid_to is not an ISO 8601 date or date and time: 'soon'"),
        (dict(key_material=MATERIAL_B64, key_id=" "), "key_id is required (it is null or empty)"),
    ],
)
def test_bad_options_fail_in_one_line_before_any_call(monkeypatch, capsys, args, message):
    made = []
    monkeypatch.setattr(key_material, "kms_client", made.append)
    result = run_main(key_material, dict(dict(key_id=KEY_ID), **args), monkeypatch, capsys)
    assert result["failed"] is True and result["msg"].startswith(message)
    assert "\n" not in result["msg"]
    assert made == []  # no client, so no KMS call at all
    assert not leaks(result)


@pytest.mark.parametrize("metadata, origin", [(SYMMETRIC, "AWS_KMS"), (dict(SYMMETRIC, Origin="AWS_CLOUDHSM"), "AWS_CLOUDHSM")])
def test_a_key_not_of_origin_external_is_refused_without_a_change_call(monkeypatch, capsys, metadata, origin):
    for state in ("present", "absent"):
        result, sent = run_module(monkeypatch, capsys, lambda s: describe(s, metadata), key_id=KEY_ID,
                                  key_material=MATERIAL_B64, state=state)
        assert result["failed"] is True
        assert result["msg"] == (f"Key {KEY_ARN} has origin {origin}: key material can only be imported into a key "
                                 "created with origin EXTERNAL (envelope.kms.key origin=EXTERNAL)")
        assert [name for name, _params in sent] == ["DescribeKey"]


def test_check_mode_makes_no_change_call(monkeypatch, capsys):
    for metadata, state, imported in ((EXTERNAL, "present", True), (IMPORTED, "absent", False)):
        result, sent = run_module(monkeypatch, capsys, lambda s, m=metadata: describe(s, m), check_mode=True, diff=True,
                                  key_id=KEY_ID, key_material=MATERIAL_B64, state=state, valid_to=None)
        assert result["changed"] is True and result["imported"] is imported
        assert [name for name, _params in sent] == ["DescribeKey"]
        assert result["diff"]["after"]["state"] == ("present" if imported else "absent")
        assert not leaks(result)


def test_check_mode_with_a_key_an_earlier_task_would_create(monkeypatch, capsys):
    result, sent = run_module(monkeypatch, capsys, lambda s: None, check_mode=True, key_id=None, key_material=MATERIAL_B64)
    assert result["changed"] is True and result["key_id"] is None and result["imported"] is True
    assert sent == []
    assert any("key_id is null or empty" in str(w) for w in result.get("warnings", []))


def test_kms_refusing_the_import_is_one_line_without_the_material(monkeypatch, capsys, wrapping_key):
    def setup(stubber):
        describe(stubber, IMPORTED)
        parameters(stubber, wrapping_key)
        stubber.add_client_error("import_key_material", service_error_code="IncorrectKeyMaterialException",
                                 service_message="The key material does not match the key material previously imported",
                                 http_status_code=400)

    result, _sent = run_module(monkeypatch, capsys, setup, key_id=KEY_ID, key_material=MATERIAL_B64, force=True)
    assert result["failed"] is True
    assert result["msg"].startswith(f"Could not import key material into key {KEY_ARN}: ")
    assert "IncorrectKeyMaterialException" in result["msg"]
    assert not leaks(result)


def test_the_leak_check_can_fail():
    assert leaks({"msg": MATERIAL.hex()}) and leaks({"msg": MATERIAL_B64}) and not leaks({"msg": "nothing"})
