"""The one retry policy of module_utils/kms.py, end to end: every plugin that calls KMS, through the
real ansible-playbook, behind a proxy that answers a third of the calls with ThrottlingException.

GenerateDataKey and Decrypt here are made by the AWS Encryption SDK with the clients kms_client
makes (copy and the lookup on the controller, decrypt and rewrap on the host); DescribeKey by our
own code. The refusals are drawn from a seeded generator, so every run meets the same ones.
"""

import glob
import os

from ansible_collections.envelope.kms.plugins.module_utils.envelope import inspect_header
from tests.harness import esdk
from tests.harness.fault_proxy import KmsFaultProxy

FILES = 6
CONTEXT = {"app": "billing"}
ROTATED = {"app": "billing", "generation": "2"}
THROTTLED = ("DescribeKey", "GenerateDataKey", "Decrypt")


def secret(index):
    return f"token-{index}=throttling survived\n"


def test_every_plugin_survives_a_third_of_kms_calls_throttled(playbook, kms_server, app_key):
    hosts = os.path.join(playbook.workdir, "hosts", "localhost")
    tasks = [
        {"name": "Copy", "envelope.kms.copy": {"content": "{{ item }}", "dest": hosts + "/s{{ index }}.enc",
                                               "key_id": "alias/app", "encryption_context": CONTEXT},
         "loop": [secret(index) for index in range(FILES)], "loop_control": {"index_var": "index"}},
        {"name": "Decrypt", "envelope.kms.decrypt": {"src": hosts + "/s{{ item }}.enc",
                                                     "dest": hosts + "/s{{ item }}.txt",
                                                     "encryption_context": CONTEXT,
                                                     "allowed_key_arns": [app_key["Arn"]]},
         "loop": list(range(FILES))},
        {"name": "Rewrap", "envelope.kms.rewrap": {"path": hosts + "/*.enc", "key_id": "alias/app",
                                                   "encryption_context": ROTATED}},
        {"name": "Lookup", "ansible.builtin.set_fact": {
            "looked_up": "{{ lookup('envelope.kms.decrypt', hosts_dir + '/s0.enc', encryption_context=rotated) }}"},
         "vars": {"hosts_dir": hosts, "rotated": ROTATED}, "no_log": True},
        {"name": "Check", "ansible.builtin.assert": {"that": f"looked_up == {secret(0).rstrip()!r}"}},  # rstrip default
    ]
    direct = playbook.environment
    with KmsFaultProxy(kms_server.url, fail=THROTTLED, probability=0.34, seed=11) as proxy:
        playbook.environment = dict(direct, AWS_ENDPOINT_URL=proxy.url)
        try:
            run = playbook.run(tasks).assert_ok()
        finally:
            playbook.environment = direct

    # The proxy really refused calls of each kind, and every refused call was made again.
    assert all(proxy.refused[operation] > 0 for operation in ("GenerateDataKey", "Decrypt")), proxy.refused
    assert proxy.forwarded["GenerateDataKey"] == 2 * FILES  # copy, then rewrap: one data key per file each
    assert proxy.forwarded["Decrypt"] == 2 * FILES + 1  # decrypt, rewrap, and the lookup's one file
    assert run.result("Rewrap")["changed"] is True
    assert sorted(glob.glob(hosts + "/*.enc")) == sorted(f"{hosts}/s{index}.enc" for index in range(FILES))
    for index in range(FILES):
        with open(f"{hosts}/s{index}.txt", encoding="utf-8") as handle:
            assert handle.read() == secret(index)
        plaintext, header = esdk.decrypt(kms_server, f"{hosts}/s{index}.enc")
        assert plaintext.decode() == secret(index)
        assert inspect_header(f"{hosts}/s{index}.enc").encryption_context == ROTATED
        assert header.encryption_context["generation"] == "2"
