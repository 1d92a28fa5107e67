"""KMS answers stubbed with botocore's Stubber on a real boto3 client, and a module run in-process.

For the paths moto cannot play (KMS refusing a call, fields moto omits): the canned values below
look like real KMS responses; ``run_main`` runs a module's ``main()`` with arguments and returns
its JSON result, as ansible-playbook would get it.
"""

import json

import boto3
import pytest
from botocore.stub import Stubber

from ansible.module_utils import _internal
from ansible.module_utils.common import warnings as core_warnings
from ansible.module_utils.testing import patch_module_args

KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
KEY_ARN = f"arn:aws:kms:us-east-1:111122223333:key/{KEY_ID}"
OLD_ARN = "arn:aws:kms:us-east-1:111122223333:key/0987dcba-09fe-87dc-65ba-ab0987654321"
SYMMETRIC = {
    "KeyId": KEY_ID,
    "Arn": KEY_ARN,
    "KeySpec": "SYMMETRIC_DEFAULT",
    "KeyUsage": "ENCRYPT_DECRYPT",
    "Origin": "AWS_KMS",
    "KeyManager": "CUSTOMER",
    "Enabled": True,
    "KeyState": "Enabled",
}
BLOB = b"\x01\x02\x02\x00x" + bytes(range(200))  # binary, like a real KMS CiphertextBlob
DATA_KEY = b"K" * 32


def stubbed_client():
    """A real boto3 KMS client (us-east-1, dummy credentials) and a Stubber on it, not yet active."""
    client = boto3.client("kms", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    return client, Stubber(client)


def run_main(module, args, monkeypatch, capsys, stubber=None):
    """Run ``module.main()`` with ``args``; return its JSON result.

    With ``stubber`` (its responses added), the run happens with it active and every stubbed call
    must have been made, and no other. Module warnings are process-global: each run starts clean,
    and goes to the result as on a host even if a test imported controller code (ansible-core then
    sends them to the controller's display).
    """
    monkeypatch.setattr(core_warnings, "_global_warnings", {})
    monkeypatch.setattr(_internal, "is_controller", False)
    with patch_module_args(args), pytest.raises(SystemExit):
        if stubber is None:
            module.main()
        else:
            with stubber:
                module.main()
    if stubber is not None:
        stubber.assert_no_pending_responses()
    return json.loads(capsys.readouterr().out)
