"""Keys that check mode only predicts (issue #14, point 3): the shared rules in kms.py and what each
helper does with a null id or a key that does not exist yet.

In check mode envelope.kms.key returns key_id and key_arn as null for a key it would create; a later
task gets that null, or an alias the real run would create. KMS calls go to a real boto3 client with
botocore's Stubber active: a call that is not stubbed fails the test, so "no KMS call" is checked.
"""

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.envelope.kms.plugins.module_utils import aliases, data_key, decrypt, key_version, kms, rewrap
from ansible_collections.envelope.kms.plugins.module_utils import rotation
from ansible_collections.envelope.kms.plugins.module_utils.envelope import EnvelopeError, EnvelopeFacts
from tests.harness.stubbed_kms import KEY_ARN, OLD_ARN, SYMMETRIC

ASSUMED = "assuming an earlier task creates that key in the real run (check mode)"


class Warnings(list):
    def __call__(self, message):
        self.append(message)


def not_found(stub, key_ref):
    stub.add_client_error("describe_key", "NotFoundException", f"Alias {key_ref} is not found.",
                          expected_params={"KeyId": key_ref})


# --- kms.py: the shared rules ---------------------------------------------------------------------


@pytest.mark.parametrize("value, unknown", [(None, True), ("", True), ("  ", True), ("alias/app", False),
                                            (KEY_ARN, False)])
def test_is_unknown_key_ref(value, unknown):
    assert kms.is_unknown_key_ref(value) is unknown


def test_the_warning_names_the_option_and_the_key():
    assert kms.unknown_key_warning("target_key_id") == f"target_key_id is null or empty: {ASSUMED}"
    assert kms.unknown_key_warning("key_id", "alias/tpyo") == f"Key alias/tpyo (key_id) was not found: {ASSUMED}"


def test_required_key_ref_accepts_null_only_in_check_mode():
    assert kms.required_key_ref("alias/app", "needed", check_mode=False) == "alias/app"
    for value in (None, "", " "):
        assert kms.required_key_ref(value, "needed", check_mode=True) is None
        with pytest.raises(kms.KmsInputError, match="^needed$"):
            kms.required_key_ref(value, "needed", check_mode=False)


def test_find_key_in_check_mode_warns_about_null_without_a_call(stub):
    warnings = Warnings()
    assert kms.find_key(stub.client, None, "key_id", True, warnings, "missing") is None
    assert warnings == [f"key_id is null or empty: {ASSUMED}"]


def test_find_key_in_check_mode_warns_about_a_key_not_found(stub):
    not_found(stub, "alias/later")
    warnings = Warnings()
    assert kms.find_key(stub.client, "alias/later", "key_id", True, warnings, "missing") is None
    assert warnings == [f"Key alias/later (key_id) was not found: {ASSUMED}"]


def test_find_key_outside_check_mode_fails_with_the_modules_line(stub):
    not_found(stub, "alias/tpyo")
    with pytest.raises(kms.KmsInputError, match="^Key alias/tpyo does not exist$"):
        kms.find_key(stub.client, "alias/tpyo", "key_id", False, Warnings(), "Key alias/tpyo does not exist")
    with pytest.raises(kms.KmsInputError, match="^key_id is null or empty$"):
        kms.find_key(stub.client, None, "key_id", False, Warnings(), "unused")  # and no call


def test_find_key_returns_an_existing_key(stub):
    stub.add_response("describe_key", {"KeyMetadata": SYMMETRIC}, {"KeyId": "alias/app"})
    warnings = Warnings()
    assert kms.find_key(stub.client, "alias/app", "key_id", True, warnings, "missing") == SYMMETRIC
    assert warnings == []


def test_known_key_arns_leaves_null_entries_out_in_check_mode():
    warnings = Warnings()
    assert kms.known_key_arns([KEY_ARN, None, ""], "allowed_key_arns", True, warnings) == [KEY_ARN]
    assert warnings == [f"allowed_key_arns is null or holds a null or empty entry, left out: {ASSUMED}"]
    assert kms.known_key_arns(None, "allowed_key_arns", True, warnings, given_null=True) == []
    with pytest.raises(kms.KmsInputError, match="allowed_key_arns is null or holds a null or empty entry"):
        kms.known_key_arns([KEY_ARN, None], "allowed_key_arns", False, warnings)
    with pytest.raises(kms.KmsInputError):
        kms.known_key_arns(None, "allowed_key_arns", False, warnings, given_null=True)


def test_known_key_arns_keeps_what_is_known():
    warnings = Warnings()
    assert kms.known_key_arns(None, "allowed_key_arns", False, warnings) is None  # not given: no restriction
    assert kms.known_key_arns([KEY_ARN], "allowed_key_arns", False, warnings) == [KEY_ARN]
    assert warnings == []


def test_given_as_null_tells_null_from_not_given():
    """module.params cannot: both are None there. ansible-core's _load_params() re-reads the arguments."""
    with patch_module_args({"key_id": None, "alias": "app"}):
        assert kms.given_as_null("key_id") is True
        assert kms.given_as_null("alias") is False
        assert kms.given_as_null("tags") is False
        assert kms.given_as_null("key_arn", "key_id") is True  # an option and its aliases


# --- each helper ----------------------------------------------------------------------------------


@pytest.mark.parametrize("current, expected", [(None, aliases.CREATE), ("k1", aliases.UPDATE)])
def test_an_alias_to_a_key_not_known_yet_is_created_or_re_pointed(current, expected):
    assert aliases.plan_alias("present", current, None) == expected


@pytest.mark.parametrize("action", [aliases.CREATE, aliases.UPDATE])
def test_apply_alias_never_sends_a_null_target(stub, action):
    with pytest.raises(kms.KmsInputError, match="its target key is not known"):
        aliases.apply_alias(stub.client, action, "alias/app", None)  # no stubbed call: none is made


@pytest.mark.parametrize("enabled, period, rotate_now, actions", [
    (True, 180, False, [(rotation.ENABLE, 180)]),
    (True, None, False, [(rotation.ENABLE, None)]),
    (False, None, False, []),
    (False, None, True, [(rotation.ROTATE, None)]),
])
def test_rotation_of_a_key_not_created_yet_is_planned_for_a_new_key(enabled, period, rotate_now, actions):
    assert rotation.check_rotatable(rotation.NEW_KEY, enabled, rotate_now) is True
    plan = rotation.plan_rotation(rotation.NOT_ROTATING, enabled, period, rotate_now)
    rotation.check_changeable(rotation.NEW_KEY, plan)
    assert plan.actions == actions
    assert plan.after["rotation_period_days"] == (period or 365 if enabled else None)


def test_data_key_an_existing_blob_is_under_another_key_than_one_not_known_yet():
    found = data_key.ExistingBlob(True, b"blob", "raw", key_arn=OLD_ARN, length=32)
    assert data_key.classify(found, None, 32, "raw") == data_key.MISMATCH
    assert data_key.classify(found, None, 32, "raw", allowed_key_arns=(OLD_ARN,)) == data_key.OTHER_KEY
    assert f"wrapped under KMS key {OLD_ARN}, which is neither key_id" in data_key.mismatch_problem(found, 32, None)
    assert data_key.classify(data_key.ExistingBlob(False), None, 32, "raw") == data_key.MISSING


def test_rewrap_key_ids_null_only_in_check_mode():
    assert rewrap.wanted_key_ids(None, True, True) == [None]
    assert rewrap.wanted_key_ids(["alias/a", ""], True, True) == ["alias/a", ""]
    assert rewrap.wanted_key_ids(["alias/a"], True, False) == ["alias/a"]
    with pytest.raises(EnvelopeError, match="^missing required arguments: key_id$"):
        rewrap.wanted_key_ids(None, False, True)
    for key_ids in (None, [None], ["alias/a", " "], []):
        with pytest.raises(EnvelopeError, match="^key_id is required: it is null or empty"):
            rewrap.wanted_key_ids(key_ids, True, False)


def resolver(known):
    def resolve(key_id):
        if key_id not in known:
            raise EnvelopeError(f"cannot resolve KMS key {key_id}: the KMS key or alias does not exist", "key_not_found")
        return known[key_id]
    return resolve


def test_rewrap_keys_not_known_yet_stand_apart_and_show_as_none():
    warnings = Warnings()
    arns = rewrap.resolve_key_arns(resolver({"alias/old": OLD_ARN}), ["alias/old", "alias/later", None], True, warnings)
    assert len(arns) == 3 and OLD_ARN in arns
    assert warnings == [f"Key alias/later (key_id) was not found: {ASSUMED}", f"key_id is null or empty: {ASSUMED}"]
    assert rewrap.shown_arns(arns) == [OLD_ARN, None, None]
    under_old = EnvelopeFacts(key_arns=(OLD_ARN,), encryption_context={}, algorithm="AES_256_GCM_HKDF_SHA512_COMMIT_KEY",
                              algorithm_id=0x0478, signed=False, frame_length=262144, message_id="00", data_key_count=1)
    assert under_old.wrapped_as(arns, {}) == ["key"]  # so every file would be rewrapped, even one under a known key
    result = rewrap.shown_result({"path": "/f", "key_arns": sorted(arns)})
    assert result["key_arns"] == [OLD_ARN, None, None]


def test_rewrap_unknown_keys_fail_outside_check_mode_and_other_errors_always():
    with pytest.raises(EnvelopeError, match="alias/later"):
        rewrap.resolve_key_arns(resolver({}), ["alias/later"], False, Warnings())

    def denied(key_id):
        raise EnvelopeError(f"cannot resolve KMS key {key_id}: access denied", "access_denied")

    with pytest.raises(EnvelopeError, match="access denied"):
        rewrap.resolve_key_arns(denied, ["alias/app"], True, Warnings())


def test_decrypt_with_only_unknown_allowed_keys_decrypts_nothing():
    warnings = Warnings()
    params = {"allowed_key_arns": [None]}
    assert decrypt.known_allowed_keys(params, False, True, warnings) is False
    params = {"allowed_key_arns": [KEY_ARN, ""]}
    assert decrypt.known_allowed_keys(params, False, True, warnings) is True and params["allowed_key_arns"] == [KEY_ARN]
    assert decrypt.known_allowed_keys({"allowed_key_arns": None}, True, True, warnings) is False  # given as null
    for not_restricted in (None, []):  # not given, or given empty: no key restriction, as before
        params = {"allowed_key_arns": not_restricted}
        assert decrypt.known_allowed_keys(params, False, True, warnings) is True
        assert params["allowed_key_arns"] == not_restricted
    with pytest.raises(kms.KmsInputError):
        decrypt.known_allowed_keys({"allowed_key_arns": [None]}, False, False, warnings)


def test_decrypt_undecrypted_result_holds_no_plaintext():
    facts = type("Facts", (), {"key_arns": (OLD_ARN,), "encryption_context": {"app": "x"}, "algorithm": "SUITE"})
    warnings = Warnings()
    params = dict(src="/s.enc", dest="/s", return_content=True, content_encoding="text")
    result = decrypt.undecrypted_result(params, facts, warnings)
    assert result == dict(changed=True, src="/s.enc", dest="/s", key_arns=[OLD_ARN], encryption_context={"app": "x"},
                          algorithm="SUITE", content=None, content_encoding="text")
    assert warnings == ["allowed_key_arns only names keys not known yet: /s.enc is not decrypted in check mode, and is "
                        "reported as changed"]


@pytest.mark.parametrize("name", [None, "", "  "])
def test_key_version_name_must_not_be_empty(name):
    with pytest.raises(kms.KmsInputError, match="^name must not be empty$"):
        key_version.check_name(name)


def test_key_version_rotation_needs_its_id():
    key_version.check_rotation_id(False, None)
    key_version.check_rotation_id(True, "2025-q3")
    for rotation_id in (None, ""):
        with pytest.raises(kms.KmsInputError, match="^rotation_id is required with rotate=true"):
            key_version.check_rotation_id(True, rotation_id)
