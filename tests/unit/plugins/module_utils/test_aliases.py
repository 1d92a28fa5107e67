import pytest

from ansible_collections.envelope.kms.plugins.module_utils.aliases import CREATE, DELETE, UPDATE, alias_arn, plan_alias


@pytest.mark.parametrize(
    "state, current, desired, expected",
    [
        ("present", None, "k1", CREATE),
        ("present", "k1", "k1", None),
        ("present", "k1", "k2", UPDATE),
        ("absent", "k1", None, DELETE),
        ("absent", None, None, None),
    ],
)
def test_plan_alias(state, current, desired, expected):
    assert plan_alias(state, current, desired) == expected


def test_alias_arn_from_key_arn():
    key_arn = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    assert alias_arn(key_arn, "alias/app") == "arn:aws:kms:eu-west-1:123456789012:alias/app"
    assert alias_arn(None, "alias/app") is None
