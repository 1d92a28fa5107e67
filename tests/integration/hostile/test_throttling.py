"""Hostile input, throttling: about 30 % of ALL KMS requests answered ThrottlingException (HTTP 400,
the shape KMS uses), while 50 files are deployed with envelope.kms.copy and then rewrapped to a
second key with envelope.kms.rewrap, each in one real ansible-playbook run.

Every call of every KMS operation goes through the seeded fault proxy (tests/harness/fault_proxy.py),
so the calls our own code makes (DescribeKey) and those the AWS Encryption SDK makes (GenerateDataKey,
Decrypt) are refused alike. Each file is one case: it must be there once, wrapped as asked at each
stage, and decrypt with the reference library to its own plaintext.
"""

import collections
import os
import uuid

import botocore.session
import pytest

from ansible_collections.envelope.kms.plugins.module_utils.envelope import inspect_header
from tests.harness import esdk
from tests.harness.fault_proxy import KmsFaultProxy

CATEGORY = "throttling"
FILES = 50
PROBABILITY = 0.30
# The refusals are drawn from this seed, so every run meets the same ones: with it the share refused
# is the nominal 30 % in each stage, in runs of at most three refusals of one call (longer runs only
# add back-off time: botocore waits up to 1, 2, 4 ... seconds before the 1st, 2nd, 3rd ... retry).
SEED = 934
CONTEXT = {"app": "billing", "suite": "hostile-throttling"}
# Every operation of the KMS API, as botocore knows it: the proxy throttles them all.
ALL_KMS_OPERATIONS = tuple(botocore.session.get_session().get_service_model("kms").operation_names)


def plaintext(token, index):
    return f"throttled secret {index:02d} {token}\n" + "x" * index  # distinct contents and sizes


def read(path):
    with open(path, "rb") as handle:
        return handle.read()


def run_through(playbook, proxy, tasks):
    direct = playbook.environment
    playbook.environment = dict(direct, AWS_ENDPOINT_URL=proxy.url)
    try:
        return playbook.run(tasks)
    finally:
        playbook.environment = direct


def throttled_share(refused, forwarded):
    total = sum(refused.values()) + sum(forwarded.values())
    return sum(refused.values()) / total if total else 0.0


@pytest.mark.slow  # a loop of 50 copies plus the retries' back-off: two minutes or more on a busy machine
def test_copy_then_rewrap_fifty_files_with_a_third_of_kms_requests_throttled(
        playbook, kms, kms_server, app_key, tally):
    second = kms.create_key(Description="second")["KeyMetadata"]
    kms.create_alias(AliasName="alias/second", TargetKeyId=second["KeyId"])
    token = uuid.uuid4().hex
    dest_dir = os.path.join(playbook.workdir, "hosts", "localhost", "throttled")
    os.makedirs(dest_dir)
    names = [f"s{index:02d}.enc" for index in range(FILES)]
    expected = {name: plaintext(token, index).encode() for index, name in enumerate(names)}

    copy = [{"name": "Copy", "envelope.kms.copy": {"content": "{{ item }}", "dest": dest_dir + "/s{{ '%02d' % index }}.enc",
                                                   "key_id": "alias/app", "encryption_context": CONTEXT,
                                                   "mode": "0640"},
             "loop": [plaintext(token, index) for index in range(FILES)],
             "loop_control": {"index_var": "index", "label": "{{ index }}"}}]
    rewrap = [{"name": "Rewrap", "envelope.kms.rewrap": {"path": dest_dir + "/*.enc", "key_id": "alias/second",
                                                         "required_encryption_context": CONTEXT,
                                                         "allowed_key_arns": [app_key.arn]}}]

    with KmsFaultProxy(kms_server.url, fail=ALL_KMS_OPERATIONS, code="ThrottlingException", status=400,
                       message="Rate exceeded", probability=PROBABILITY, seed=SEED) as proxy:
        copied = run_through(playbook, proxy, copy).assert_ok()
        after_copy = {name: read(os.path.join(dest_dir, name)) for name in sorted(os.listdir(dest_dir))}
        copy_refused, copy_forwarded = collections.Counter(proxy.refused), collections.Counter(proxy.forwarded)
        rewrapped = run_through(playbook, proxy, rewrap)

    rewrapped.assert_ok()
    assert copied.changed() == 1 and copied.failed() == 0
    assert rewrapped.result("Rewrap")["changed"] is True
    rewrap_results = {os.path.basename(entry["path"]): entry for entry in rewrapped.result("Rewrap")["results"]}

    # The proxy really throttled: a fifth or more of all requests, the library's calls among them.
    share = throttled_share(proxy.refused, proxy.forwarded)
    assert share >= 0.20, (share, proxy.refused, proxy.forwarded)
    assert throttled_share(copy_refused, copy_forwarded) >= 0.20, (copy_refused, copy_forwarded)
    rewrap_refused = proxy.refused - copy_refused
    for operation in ("GenerateDataKey", "Decrypt"):
        assert proxy.refused[operation] > 0, (operation, proxy.refused)
    assert copy_refused["GenerateDataKey"] > 0 and rewrap_refused["GenerateDataKey"] > 0, proxy.refused
    assert rewrap_refused["Decrypt"] > 0, proxy.refused
    # Every refused call was made again, and no work was done twice: one data key per file and stage.
    assert copy_forwarded["GenerateDataKey"] == FILES, copy_forwarded
    rewrap_forwarded = proxy.forwarded - copy_forwarded
    assert rewrap_forwarded["GenerateDataKey"] == FILES, rewrap_forwarded
    assert rewrap_forwarded["Decrypt"] == FILES, rewrap_forwarded

    first_key = esdk.provider(kms_server, app_key.arn)
    second_key = esdk.provider(kms_server, second["Arn"])
    library = esdk.client()
    for name in names:
        path = os.path.join(dest_dir, name)
        problems = []
        try:
            copied_plaintext, copied_header = library.decrypt(source=after_copy[name], key_provider=first_key)
            if copied_plaintext != expected[name]:
                problems.append("the copied envelope holds another plaintext")
            if {k: copied_header.encryption_context.get(k) for k in CONTEXT} != CONTEXT:
                problems.append(f"copied context {copied_header.encryption_context}")
            final = read(path)
            final_plaintext, final_header = library.decrypt(source=final, key_provider=second_key)
            if final_plaintext != expected[name]:
                problems.append("the rewrapped envelope holds another plaintext")
            facts = inspect_header(path)
            if facts.key_arns != (second["Arn"],):
                problems.append(f"rewrapped under {facts.key_arns}")
            if {k: final_header.encryption_context.get(k) for k in CONTEXT} != CONTEXT:
                problems.append(f"rewrapped context {final_header.encryption_context}")
            if final == after_copy[name]:
                problems.append("not rewritten by rewrap")
            if oct(os.stat(path).st_mode & 0o777) != "0o640":
                problems.append(f"mode {oct(os.stat(path).st_mode & 0o777)} (rewrap keeps the file's mode)")
            entry = rewrap_results.get(name)
            if not entry or entry.get("failed") or entry.get("changed") is not True:
                problems.append(f"rewrap result {entry}")
        except Exception as error:  # pylint: disable=broad-exception-caught  # one bad file is one failed case
            problems.append(f"{type(error).__name__}: {error}")
        tally.case(CATEGORY, not problems, f"{name}: {'; '.join(problems)}")

    # Nothing lost or duplicated: exactly the 50 envelopes, no temp file, after each stage.
    assert sorted(after_copy) == names, sorted(after_copy)
    assert sorted(os.listdir(dest_dir)) == names, sorted(os.listdir(dest_dir))
