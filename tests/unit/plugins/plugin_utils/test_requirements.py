"""The one line each controller plugin gives when amazon.aws or a controller library is missing."""

import os
import sys

import pytest
import yaml

from ansible.errors import AnsibleActionFail

from ansible_collections.envelope.kms.plugins.plugin_utils import requirements

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
IMPORT_MODULE = requirements.importlib.import_module
ABSENT = ModuleNotFoundError("No module named 'ansible_collections.amazon'", name="ansible_collections.amazon")


def test_the_collection_version_is_galaxy_yml_s():
    with open(os.path.join(ROOT, "galaxy.yml"), encoding="utf-8") as handle:
        galaxy = yaml.safe_load(handle)
    assert galaxy["dependencies"][requirements.COLLECTION] == requirements.COLLECTION_VERSION


def test_a_missing_collection_names_what_to_install():
    assert requirements.missing_collection("envelope.kms.copy", ABSENT) == (
        "envelope.kms.copy needs the amazon.aws collection (>= 9.0.0), which is not installed: "
        "ansible-galaxy collection install amazon.aws (or pip install ansible)")


def test_an_installed_collection_that_cannot_be_used_is_to_upgrade():
    old = ModuleNotFoundError("No module named 'ansible_collections.amazon.aws.plugins.plugin_utils'",
                              name="ansible_collections.amazon.aws.plugins.plugin_utils")
    assert requirements.missing_collection("envelope.kms.vars", old) == (
        "envelope.kms.vars needs the amazon.aws collection (>= 9.0.0), and the one installed cannot be used "
        "(No module named 'ansible_collections.amazon.aws.plugins.plugin_utils'): "
        "ansible-galaxy collection install --upgrade amazon.aws")


def hide(monkeypatch, errors):
    """importlib.import_module raising errors[name] for the names given."""
    def import_module(name):
        if name in errors:
            raise errors[name]
        return IMPORT_MODULE(name)

    monkeypatch.setattr(requirements.importlib, "import_module", import_module)


def test_libraries_missing_only_because_another_one_is_are_not_listed(monkeypatch):
    botocore = ModuleNotFoundError("No module named 'botocore'", name="botocore")
    hide(monkeypatch, {"boto3": botocore, "botocore": botocore, "aws_encryption_sdk": botocore})
    assert requirements.missing_libraries() == ["botocore"]
    broken = ImportError("cannot import name 'x' from 'cryptography'")  # its own problem: listed
    hide(monkeypatch, {"aws_encryption_sdk": broken})
    assert requirements.missing_libraries() == ["aws-encryption-sdk>=3.3.0"]
    hide(monkeypatch, {})
    assert requirements.missing_libraries() == []


def test_missing_libraries_in_one_line_with_the_pip_command(monkeypatch):
    monkeypatch.setattr(sys, "executable", "/opt/my venv/bin/python")
    assert requirements.missing_libraries_message("envelope.kms.copy", ["boto3", "botocore"]) == (
        "envelope.kms.copy needs the Python libraries boto3 and botocore on the controller, which are not installed "
        "for /opt/my venv/bin/python: '/opt/my venv/bin/python' -m pip install boto3 botocore")
    assert requirements.missing_libraries_message("envelope.kms.copy", ["aws-encryption-sdk>=3.3.0"]) == (
        "envelope.kms.copy needs the Python library aws-encryption-sdk (>= 3.3.0) on the controller, which is not "
        "installed for /opt/my venv/bin/python: '/opt/my venv/bin/python' -m pip install 'aws-encryption-sdk>=3.3.0'")
    assert "boto3, botocore and aws-encryption-sdk (>= 3.3.0) on" in requirements.missing_libraries_message(
        "x", [requirement for _module, requirement in requirements.LIBRARIES])


def test_require_names_the_collection_first(monkeypatch):
    hide(monkeypatch, {"boto3": ModuleNotFoundError(name="boto3")})
    with pytest.raises(AnsibleActionFail) as raised:
        requirements.require("envelope.kms.copy", AnsibleActionFail, ABSENT)
    assert "amazon.aws collection" in raised.value.message
    with pytest.raises(AnsibleActionFail) as raised:
        requirements.require("envelope.kms.copy", AnsibleActionFail)
    assert raised.value.message.startswith("envelope.kms.copy needs the Python library boto3 on the controller")
    hide(monkeypatch, {})
    requirements.require("envelope.kms.copy", AnsibleActionFail)  # all there: nothing raised
