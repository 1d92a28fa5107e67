"""Key ids that check mode only predicts, as the controller actions (copy, encrypt, vars_file) take
them: the rules in ``_envelope/inputs.py`` (shared with the modules through kms.py) and
``Engine.resolve_key_arns`` in check mode.

KMS calls go to a real boto3 client with botocore's Stubber active: a call that is not stubbed fails
the test, so "no KMS call" is checked.
"""

import pytest

from ansible_collections.envelope.kms.plugins.module_utils import kms
from ansible_collections.envelope.kms.plugins.module_utils._envelope import inputs
from ansible_collections.envelope.kms.plugins.module_utils.envelope import Engine, EnvelopeError, InputError
from tests.harness.stubbed_kms import KEY_ARN, SYMMETRIC

ASSUMED = "assuming an earlier task creates that key in the real run (check mode)"


class Warnings(list):
    def __call__(self, message):
        self.append(message)


def described(stub, key_ref, metadata=SYMMETRIC):
    stub.add_response("describe_key", {"KeyMetadata": metadata}, expected_params={"KeyId": key_ref})


def not_found(stub, key_ref):
    stub.add_client_error("describe_key", "NotFoundException", f"Alias {key_ref} is not found.",
                          expected_params={"KeyId": key_ref})


def test_modules_and_controller_plugins_share_one_rule():
    assert kms.is_unknown_key_ref is inputs.is_unknown_key_ref
    assert kms.unknown_key_warning is inputs.unknown_key_warning
    assert kms.UNKNOWN_KEY_ASSUMPTION == inputs.UNKNOWN_KEY_ASSUMPTION == ASSUMED


@pytest.mark.parametrize("value, expected", [
    (None, [None]),  # given as null: one key not known yet
    ("", [None]),
    (["alias/app", None], ["alias/app", None]),
    (["alias/app", " "], ["alias/app", None]),
    ("alias/app", ["alias/app"]),
    ([], []),
])
def test_predicted_key_ids_in_check_mode(value, expected):
    assert inputs.predicted_key_ids(value, check_mode=True) == expected


@pytest.mark.parametrize("value, where", [(None, ""), ([""], ""), (["alias/app", None], " (entry 2 of 2)"),
                                          ([None, "alias/app", None], " (entry 1 of 3)")])
def test_predicted_key_ids_outside_check_mode_is_one_line(value, where):
    with pytest.raises(InputError) as raised:
        inputs.predicted_key_ids(value, check_mode=False, option="key_id")
    assert raised.value.message.startswith(f"key_id is null or empty{where}: give a KMS key id")
    assert "\n" not in raised.value.message


def test_predicted_key_ids_outside_check_mode_keeps_real_ids():
    assert inputs.predicted_key_ids(["alias/app", KEY_ARN], check_mode=False) == ["alias/app", KEY_ARN]


def test_check_mode_resolution_warns_and_stands_in_for_unknown_keys(stub):
    """A null id costs no call; an alias not found is one DescribeKey; the order of key_id is kept
    (the first key generates the data key) and the result shows the unknown keys as None."""
    described(stub, "alias/app")
    not_found(stub, "alias/later")
    warnings = Warnings()
    arns = Engine(stub.client).resolve_key_arns(["alias/app", None, "alias/later"], True, warnings)
    assert warnings == [f"key_id is null or empty: {ASSUMED}", f"Key alias/later (key_id) was not found: {ASSUMED}"]
    assert inputs.shown_key_arns(arns) == [KEY_ARN, None, None]
    assert inputs.known_key_arns(arns) == [KEY_ARN]
    assert len(set(arns)) == 3 and all(arn.startswith("\0") for arn in arns[1:])  # never an ARN of KMS


def test_check_mode_resolution_raises_other_failures(stub):
    stub.add_client_error("describe_key", "AccessDeniedException", "no", expected_params={"KeyId": "alias/app"})
    warnings = Warnings()
    with pytest.raises(EnvelopeError, match="cannot resolve KMS key alias/app: access denied by KMS"):
        Engine(stub.client).resolve_key_arns(["alias/app"], True, warnings)
    assert warnings == []


def test_outside_check_mode_a_key_not_found_is_still_an_error(stub):
    not_found(stub, "alias/later")
    with pytest.raises(EnvelopeError, match="^cannot resolve KMS key alias/later: the KMS key or alias does not exist"):
        Engine(stub.client).resolve_key_arns(["alias/later"])


def test_check_mode_resolution_needs_one_key_id(stub):
    with pytest.raises(InputError, match="at least one KMS key id is required"):
        Engine(stub.client).resolve_key_arns([], True, Warnings())
