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
def playbook(kms, kms_server, tmp_path):
    """Runs playbooks with the real ansible-playbook against the (reset) local KMS endpoint."""
    return PlaybookRunner(tmp_path, kms_server.environment())
