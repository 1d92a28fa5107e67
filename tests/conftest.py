"""Fixtures shared by unit and integration tests."""

import os
import sys

import boto3
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The collection is importable as ansible_collections.envelope.kms from the tree the Makefile lays out.
sys.path.insert(0, os.path.join(ROOT, ".build", "collections"))
sys.path.insert(0, ROOT)

from tests.harness.kms_server import REGION, KmsServer  # noqa: E402
from tests.harness.playbook import PlaybookRunner  # noqa: E402
from tests.harness.stubbed_kms import stubbed_client  # noqa: E402


@pytest.fixture(scope="session")
def kms_server():
    with KmsServer() as server:
        yield server


@pytest.fixture
def kms(kms_server):
    """A boto3 KMS client on a freshly reset local endpoint."""
    kms_server.reset()
    return boto3.client(
        "kms",
        endpoint_url=kms_server.url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def stubbed():
    """(client, stubber): a real boto3 KMS client with botocore's Stubber active on it; every
    stubbed answer must have been used by the end of the test."""
    client, stubber = stubbed_client()
    with stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def stub(stubbed):
    """The Stubber of ``stubbed`` with its client as ``stub.client``, for helpers that take one object."""
    client, stubber = stubbed
    stubber.client = client
    return stubber


class AppKey(dict):
    """A KMS key's KeyMetadata (``key["Arn"]``, ``key["KeyId"]``, ...) with the alias made for it."""

    alias = "alias/app"

    @property
    def arn(self):
        return self["Arn"]

    @property
    def key_id(self):
        return self["KeyId"]


@pytest.fixture
def app_key(kms):
    """A fresh symmetric encryption key on the reset local endpoint, with the alias ``alias/app``."""
    key = AppKey(kms.create_key()["KeyMetadata"])
    kms.create_alias(AliasName=key.alias, TargetKeyId=key.key_id)
    return key


@pytest.fixture
def playbook(kms, kms_server, tmp_path):
    """Runs playbooks with the real ansible-playbook against the (reset) local KMS endpoint."""
    return PlaybookRunner(tmp_path, kms_server.environment())


# -- the hostile suite's summary: one line per category, from every worker's reports

_TALLY = {}


def pytest_runtest_logreport(report):
    from tests.harness.tally import add_report  # pylint: disable=import-outside-toplevel

    add_report(_TALLY, report)


def pytest_terminal_summary(terminalreporter):
    from tests.harness.tally import summary_lines  # pylint: disable=import-outside-toplevel

    lines = summary_lines(_TALLY)
    if lines:
        terminalreporter.section("hostile-input suite")
        for line in lines:
            terminalreporter.write_line(line)
