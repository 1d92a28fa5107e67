"""Role envelope.kms.lifecycle through the real ansible-playbook against the local KMS endpoint.

The "hosts" are local-connection inventory hosts, each with a folder of its own ({{ host_dir }}).
Every deployed file is checked at every step: its header names the expected key, and the official
AWS Encryption SDK alone, with no collection code (tests/harness/esdk.py), decrypts it to its source.
"""

import json
import os
import shutil

import boto3
import pytest
import yaml

from ansible_collections.envelope.kms.plugins.module_utils.envelope import inspect_header
from tests.harness import esdk
from tests.harness.fault_proxy import KmsFaultProxy

pytestmark = pytest.mark.slow

NAME = "billing"
ROLE_CONTEXT = {"app": "billing"}
# name of the file on the hosts -> (source file in files/ or None for inline content, plaintext, own context)
SECRETS = {
    "api.env.enc": ("api.env", "API_TOKEN=4f8a2c7e-91d3-4b0f-a6c5-2e8d7f1b3a90\n", {"purpose": "api"}),
    "db.env.enc": ("db.env", "db_password=correct horse battery staple\n", {}),
    "signing.pem": (None, "-----BEGIN TEST KEY-----\nbm90IGEgcmVhbCBrZXk=\n-----END TEST KEY-----\n", {"purpose": "signing"}),
}
THREE_HOSTS = ["web1", "web2", "web3"]
HOSTS_ROLE = "arn:aws:iam::123456789012:role/billing-hosts"
# The hosts' role may decrypt the billing files only: KMS checks the context written in each header.
GRANTS = [{"name": "billing-hosts", "grantee_principal": HOSTS_ROLE, "operations": ["Decrypt"],
           "constraints": {"encryption_context_subset": ROLE_CONTEXT}}]


def role_task(name):
    """A role task's name as results report it."""
    return f"envelope.kms.lifecycle : {name}"


def lifecycle_files():
    files = []
    for name, (source, plaintext, context) in SECRETS.items():
        entry = {"dest": "{{ host_dir }}/" + name}
        if source:
            entry["src"] = source
        else:
            entry["content"] = plaintext
        if context:
            entry["encryption_context"] = context
        if name == "db.env.enc":
            entry["mode"] = "0640"
        files.append(entry)
    return files


def write_site(playbook, **role_vars):
    """Write the source files and a playbook that applies the role to every host; return its path."""
    files_dir = os.path.join(playbook.workdir, "files")
    os.makedirs(files_dir, exist_ok=True)
    for source, plaintext, context in SECRETS.values():
        if source:
            with open(os.path.join(files_dir, source), "w", encoding="utf-8") as handle:
                handle.write(plaintext)
    variables = {
        "lifecycle_name": NAME,
        "lifecycle_files": lifecycle_files(),
        "lifecycle_encryption_context": ROLE_CONTEXT,
        "lifecycle_rotation_period_days": 180,
        "lifecycle_key_tags": {"team": "billing"},
    }
    variables.update(role_vars)
    play = [{
        "name": "Lifecycle",
        "hosts": "targets",
        "gather_facts": False,
        "roles": [{"role": "envelope.kms.lifecycle", "vars": variables}],
    }]
    return playbook.write(yaml.safe_dump(play, sort_keys=False), name="site.yml")


def rotation(rotation_id, **more):
    return dict({"lifecycle_rotate": True, "lifecycle_rotation_id": rotation_id}, **more)


def cache_dir(playbook):
    return os.path.join(playbook.workdir, ".envelope-kms", NAME)


def host_file(playbook, host, name):
    return os.path.join(playbook.workdir, "hosts", host, name)


def key_arn(kms, alias):
    return kms.describe_key(KeyId=alias)["KeyMetadata"]["Arn"]


def key_state(kms, alias):
    return kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyState"]


def decrypt_with_library(kms_server, paths):
    """Decrypt with the reference library alone (tests/harness/esdk.py): [(context, plaintext)]."""
    decrypted = [esdk.decrypt(kms_server, path) for path in paths]
    return [(dict(header.encryption_context), plaintext.decode()) for plaintext, header in decrypted]


def assert_fleet(playbook, kms_server, hosts, wrapping_key_arn, same_as_cache=True):
    """Every host holds every secret, wrapped under wrapping_key_arn only, and it decrypts to its source.

    The files are byte for byte the controller's cached ciphertext (encrypted once, copied everywhere),
    unless same_as_cache is false (a rotation stopped after the cache was rewrapped).
    """
    paths, expected = [], []
    for host in hosts:
        for name, (source, plaintext, context) in SECRETS.items():
            path = host_file(playbook, host, name)
            with open(path, "rb") as handle:
                ciphertext = handle.read()
            if same_as_cache:
                with open(os.path.join(cache_dir(playbook), name), "rb") as handle:
                    assert handle.read() == ciphertext, f"{path} differs from the cached ciphertext"
            assert plaintext.encode() not in ciphertext
            assert inspect_header(path).key_arns == (wrapping_key_arn,), path
            paths.append(path)
            expected.append((dict(ROLE_CONTEXT, **context), plaintext))
    decrypted = decrypt_with_library(kms_server, paths)
    for path, (context, plaintext), (got_context, got_plaintext) in zip(paths, expected, decrypted):
        assert got_plaintext == plaintext, path
        for key, value in context.items():
            assert got_context[key] == value, path


def lifecycle_result(run, host="web1"):
    return run.result(role_task("Record the outcome in lifecycle_result"), host)["ansible_facts"]["lifecycle_result"]


def key_grants(kms, key):
    """(name, grantee, operations, constraints) of each grant of a key, from KMS."""
    return [(grant["Name"], grant["GranteePrincipal"], grant["Operations"], grant.get("Constraints"))
            for grant in kms.list_grants(KeyId=key)["Grants"]]


def test_three_hosts_deploy_rerun_rotate_rerun(playbook, kms, kms_server):
    playbook.set_hosts(THREE_HOSTS)
    site = write_site(playbook, lifecycle_grants=GRANTS)
    granted = [("billing-hosts", HOSTS_ROLE, ["Decrypt"], {"EncryptionContextSubset": ROLE_CONTEXT})]

    kms_server.start_recording()
    first = playbook.run(site).assert_ok()
    calls = kms_server.kms_calls()
    assert all(first.changed(host) > 0 for host in THREE_HOSTS)
    assert calls["GenerateDataKey"] == len(SECRETS)
    v1 = kms.describe_key(KeyId=f"alias/{NAME}-v1")["KeyMetadata"]
    assert key_arn(kms, f"alias/{NAME}") == v1["Arn"]
    assert v1["Description"] == f"Envelope encryption of the {NAME} secrets"
    tags = {tag["TagKey"]: tag["TagValue"] for tag in kms.list_resource_tags(KeyId=v1["KeyId"])["Tags"]}
    assert tags == {"team": "billing", "envelope-kms-lifecycle": NAME, "envelope-kms-version": "1"}
    assert kms.get_key_rotation_status(KeyId=v1["KeyId"])["KeyRotationEnabled"] is True
    assert key_grants(kms, v1["KeyId"]) == granted
    result = lifecycle_result(first)
    assert (result["version"], result["key_arn"], result["rotation"]) == (1, v1["Arn"], "none")
    assert (result["alias"], result["version_alias"]) == (f"alias/{NAME}", f"alias/{NAME}-v1")
    assert sorted(result["encrypted"]) == sorted(SECRETS)
    assert oct(os.stat(host_file(playbook, "web2", "db.env.enc")).st_mode & 0o777) == "0o640"
    assert oct(os.stat(host_file(playbook, "web2", "api.env.enc")).st_mode & 0o777) == "0o600"
    assert_fleet(playbook, kms_server, THREE_HOSTS, v1["Arn"])
    for secret in SECRETS.values():
        assert secret[1] not in first.stdout

    kms_server.start_recording()
    second = playbook.run(site).assert_ok()
    calls = kms_server.kms_calls()
    assert {host: second.changed(host) for host in THREE_HOSTS} == dict.fromkeys(THREE_HOSTS, 0)
    assert calls["GenerateDataKey"] == 0
    assert calls["Decrypt"] == len(SECRETS), calls
    assert_fleet(playbook, kms_server, THREE_HOSTS, v1["Arn"])

    # Manual rotation: v2, the stable alias moved, the cache rewrapped (no plaintext needed), hosts updated.
    kms_server.start_recording()
    rotated = playbook.run(site, extra_vars=rotation("2025-q3", lifecycle_disable_previous_key=True)).assert_ok()
    calls = kms_server.kms_calls()
    v2_arn = key_arn(kms, f"alias/{NAME}-v2")
    assert key_arn(kms, f"alias/{NAME}") == v2_arn
    assert key_state(kms, f"alias/{NAME}-v1") == "Disabled"
    assert key_state(kms, f"alias/{NAME}-v2") == "Enabled"
    v2_tags = {tag["TagKey"]: tag["TagValue"] for tag in kms.list_resource_tags(KeyId=v2_arn)["Tags"]}
    assert v2_tags["envelope-kms-rotation"] == "2025-q3"
    assert v2_tags["envelope-kms-version"] == "2"
    result = lifecycle_result(rotated)
    assert (result["version"], result["rotation"], result["rotation_id"]) == (2, "new", "2025-q3")
    assert result["version_alias"] == f"alias/{NAME}-v2"
    assert sorted(result["rewrapped"]) == sorted(SECRETS)
    assert result["encrypted"] == [], "the rewrap left nothing for the encrypt step to redo"
    assert result["disabled_key_arn"] == v1["Arn"]
    assert result["previous_key_id"] == v1["KeyId"]
    assert all(rotated.changed(host) > 0 for host in THREE_HOSTS)
    assert calls["GenerateDataKey"] == len(SECRETS), "one new data key per secret, not per host"
    assert key_grants(kms, v2_arn) == granted, "the new version carries the same grants"
    assert key_grants(kms, v1["Arn"]) == granted, "the previous version keeps its own"
    for secret in SECRETS.values():
        assert secret[1] not in rotated.stdout, "the verify step must not show plaintext"
    assert_fleet(playbook, kms_server, THREE_HOSTS, v2_arn)

    again = playbook.run(site, extra_vars=rotation("2025-q3", lifecycle_disable_previous_key=True)).assert_ok()
    assert {host: again.changed(host) for host in THREE_HOSTS} == dict.fromkeys(THREE_HOSTS, 0)
    assert lifecycle_result(again)["rotation"] == "resume"
    assert len(key_grants(kms, v2_arn)) == 1

    # A grant added later: only the current version gets it, and the run says it changed something.
    ci = {"name": "ci-encrypt", "grantee_principal": "arn:aws:iam::123456789012:role/ci", "operations": ["GenerateDataKey"]}
    site = write_site(playbook, lifecycle_grants=GRANTS + [ci])
    more = playbook.run(site).assert_ok()
    assert lifecycle_result(more)["changed"] is True
    assert sorted(name for name, *_rest in key_grants(kms, v2_arn)) == ["billing-hosts", "ci-encrypt"]
    assert key_grants(kms, v1["Arn"]) == granted
    assert key_arn(kms, f"alias/{NAME}") == v2_arn
    with pytest.raises(kms.exceptions.NotFoundException):
        kms.describe_key(KeyId=f"alias/{NAME}-v3")
    assert_fleet(playbook, kms_server, THREE_HOSTS, v2_arn)


def test_interrupted_rotation_keeps_files_decryptable_and_completes_on_rerun(playbook, kms, kms_server):
    """KMS refuses new data keys right after the stable alias moved: the rewrap fails midway."""
    playbook.set_hosts(THREE_HOSTS)
    site = write_site(playbook)
    playbook.run(site).assert_ok()
    v1_arn = key_arn(kms, f"alias/{NAME}-v1")

    # A KMS failure right after the rotation re-pointed the stable alias, like a caller that may not
    # use the new key yet: GenerateDataKey is refused once an UpdateAlias went through.
    direct = playbook.environment
    with KmsFaultProxy(kms_server.url, fail="GenerateDataKey", code="AccessDeniedException", status=400,
                       after="UpdateAlias") as proxy:
        playbook.environment = dict(direct, AWS_ENDPOINT_URL=proxy.url)
        try:
            broken = playbook.run(site, extra_vars=rotation("r1", lifecycle_disable_previous_key=True))
        finally:
            playbook.environment = direct
    assert broken.returncode != 0
    assert proxy.armed and proxy.refused["GenerateDataKey"] > 0
    failure = broken.result(role_task("Rewrap the cached files under the current key version"), "web1")
    assert failure["failed"] is True
    assert "GenerateDataKey refused" in json.dumps(failure)
    # The alias moved to v2, but v1 is still enabled and every file, cached or deployed, still decrypts.
    v2_arn = key_arn(kms, f"alias/{NAME}-v2")
    assert key_arn(kms, f"alias/{NAME}") == v2_arn
    assert key_state(kms, f"alias/{NAME}-v1") == "Enabled"
    assert_fleet(playbook, kms_server, THREE_HOSTS, v1_arn)

    completed = playbook.run(site, extra_vars=rotation("r1", lifecycle_disable_previous_key=True)).assert_ok()
    result = lifecycle_result(completed)
    assert (result["version"], result["rotation"], result["key_arn"]) == (2, "resume", v2_arn)
    assert sorted(result["rewrapped"]) == sorted(SECRETS)
    assert result["disabled_key_arn"] == v1_arn
    assert key_state(kms, f"alias/{NAME}-v1") == "Disabled"
    assert_fleet(playbook, kms_server, THREE_HOSTS, v2_arn)

    again = playbook.run(site, extra_vars=rotation("r1", lifecycle_disable_previous_key=True)).assert_ok()
    assert {host: again.changed(host) for host in THREE_HOSTS} == dict.fromkeys(THREE_HOSTS, 0)
    with pytest.raises(kms.exceptions.NotFoundException):
        kms.describe_key(KeyId=f"alias/{NAME}-v3")


def test_a_host_that_fails_keeps_the_previous_key_enabled(playbook, kms, kms_server):
    playbook.set_hosts(THREE_HOSTS)
    site = write_site(playbook)
    playbook.run(site).assert_ok()
    v1_arn = key_arn(kms, f"alias/{NAME}-v1")

    web2 = os.path.join(playbook.workdir, "hosts", "web2")
    shutil.rmtree(web2)  # its copies fail: "Destination directory ... does not exist"
    broken = playbook.run(site, extra_vars=rotation("r1", lifecycle_disable_previous_key=True))
    assert broken.returncode != 0
    assert broken.failed("web2")
    refusal = broken.result(role_task("Refuse to disable the previous key while some host may still need it"), "web1")
    assert refusal["failed"] is True and "web2" in refusal["msg"]
    assert key_state(kms, f"alias/{NAME}-v1") == "Enabled"
    v2_arn = key_arn(kms, f"alias/{NAME}")
    assert_fleet(playbook, kms_server, ["web1", "web3"], v2_arn)

    os.makedirs(web2)
    completed = playbook.run(site, extra_vars=rotation("r1", lifecycle_disable_previous_key=True)).assert_ok()
    assert completed.changed("web2") > 0 and completed.changed("web3") == 0
    assert lifecycle_result(completed)["disabled_key_arn"] == v1_arn
    assert key_state(kms, f"alias/{NAME}-v1") == "Disabled"
    assert_fleet(playbook, kms_server, THREE_HOSTS, v2_arn)


def test_rotation_ids_later_rotation_and_superseded_id(playbook, kms, kms_server):
    playbook.set_hosts(["web1"])
    site = write_site(playbook)
    playbook.run(site, extra_vars=rotation("r1")).assert_ok()
    # A first run that rotates just makes version 1, tagged with the id
    v1_arn = key_arn(kms, f"alias/{NAME}-v1")
    assert key_arn(kms, f"alias/{NAME}") == v1_arn
    assert {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=v1_arn)["Tags"]}[
        "envelope-kms-rotation"] == "r1"

    playbook.run(site, extra_vars=rotation("r2")).assert_ok()
    v2_arn = key_arn(kms, f"alias/{NAME}-v2")
    assert key_arn(kms, f"alias/{NAME}") == v2_arn
    assert key_state(kms, f"alias/{NAME}-v1") == "Enabled", "not asked to disable it"
    # a plain deploy keeps the rotation tag of the current version (else r2 would rotate again)
    plain = playbook.run(site).assert_ok()
    assert plain.changed("web1") == 0

    superseded = playbook.run(site, extra_vars=rotation("r1")).assert_ok()
    assert superseded.changed("web1") == 0
    assert lifecycle_result(superseded)["rotation"] == "superseded"
    assert key_arn(kms, f"alias/{NAME}") == v2_arn
    assert_fleet(playbook, kms_server, ["web1"], v2_arn)

    # An unfinished rotation (its key version exists, the alias does not point at it yet) blocks another id.
    stray = kms.create_key()["KeyMetadata"]
    kms.tag_resource(KeyId=stray["KeyId"], Tags=[{"TagKey": "envelope-kms-rotation", "TagValue": "r3"}])
    kms.create_alias(AliasName=f"alias/{NAME}-v3", TargetKeyId=stray["KeyId"])
    blocked = playbook.run(site, extra_vars=rotation("r4"))
    assert blocked.returncode != 0
    message = blocked.result(role_task("Choose the key version to use"), "web1")["msg"]
    assert "lifecycle_rotation_id=r3" in message
    resumed = playbook.run(site, extra_vars=rotation("r3")).assert_ok()
    assert lifecycle_result(resumed)["rotation"] == "resume"
    assert key_arn(kms, f"alias/{NAME}") == stray["Arn"]
    assert_fleet(playbook, kms_server, ["web1"], stray["Arn"])


def test_s3_copies_with_sse_kms_follow_the_current_key(playbook, kms, kms_server):
    s3 = boto3.client("s3", **{
        "endpoint_url": kms_server.url, "region_name": "us-east-1",
        "aws_access_key_id": "testing", "aws_secret_access_key": "testing"})
    s3.create_bucket(Bucket="secrets-bucket")
    playbook.set_hosts(["web1"])
    site = write_site(playbook, lifecycle_s3_bucket="secrets-bucket", lifecycle_s3_prefix="prod/billing/")

    first, second = playbook.run_idempotent(site)
    v1_arn = key_arn(kms, f"alias/{NAME}-v1")
    assert lifecycle_result(first)["s3_objects"] == [f"prod/billing/{name}" for name in SECRETS]

    def check_objects(wrapping_key_arn, same_as_cache=True):
        for name in SECRETS:
            obj = s3.get_object(Bucket="secrets-bucket", Key=f"prod/billing/{name}")
            assert obj["ServerSideEncryption"] == "aws:kms"
            assert obj["SSEKMSKeyId"] == wrapping_key_arn
            body = obj["Body"].read()
            assert inspect_header(body).key_arns == (wrapping_key_arn,)
            if same_as_cache:
                with open(os.path.join(cache_dir(playbook), name), "rb") as handle:
                    assert body == handle.read(), "S3 holds the cached ciphertext"

    check_objects(v1_arn)

    # Rotate from the ciphertext cache alone: the plaintext sources are gone. A context that does not
    # match the cached files (the rewrap keeps each file's own) fails the check after the rewrap,
    # before anything is deployed, and names the files.
    shutil.rmtree(os.path.join(playbook.workdir, "files"))
    mismatch = playbook.run(site, extra_vars=rotation(
        "r1", lifecycle_encrypt=False, lifecycle_encryption_context={"app": "payroll"}))
    assert mismatch.returncode != 0
    v2_arn = key_arn(kms, f"alias/{NAME}-v2")
    message = mismatch.result(role_task("Check that every cached file decrypted"), "web1")["msg"]
    assert all(name in message for name in SECRETS), message
    for secret in SECRETS.values():
        assert secret[1] not in mismatch.stdout
    # the cache was rewrapped, the hosts and S3 still hold the v1 files, and v1 stays enabled
    assert inspect_header(os.path.join(cache_dir(playbook), "db.env.enc")).key_arns == (v2_arn,)
    check_objects(v1_arn, same_as_cache=False)
    assert key_state(kms, f"alias/{NAME}-v1") == "Enabled"
    assert_fleet(playbook, kms_server, ["web1"], v1_arn, same_as_cache=False)

    rotated = playbook.run(site, extra_vars=rotation("r1", lifecycle_encrypt=False)).assert_ok()
    assert lifecycle_result(rotated)["rotation"] == "resume"
    check_objects(v2_arn)
    assert_fleet(playbook, kms_server, ["web1"], v2_arn)


def test_check_mode_changes_nothing(playbook, kms, kms_server):
    playbook.set_hosts(["web1"])
    site = write_site(playbook)
    kms_server.start_recording()
    predicted = playbook.run(site, "--check").assert_ok()
    assert predicted.changed("web1") > 0
    assert kms.list_aliases()["Aliases"] == [] or all(
        not alias["AliasName"].startswith(f"alias/{NAME}") for alias in kms.list_aliases()["Aliases"])
    calls = kms_server.kms_calls()
    assert calls["CreateKey"] == 0 and calls["GenerateDataKey"] == 0
    assert not os.path.exists(host_file(playbook, "web1", "api.env.enc"))

    playbook.run(site).assert_ok()
    assert playbook.run(site, "--check").assert_ok().changed("web1") == 0


@pytest.mark.parametrize(
    "role_vars, message",
    [
        ({"lifecycle_files": [{"src": "a", "content": "b", "dest": "/tmp/x"}]}, "mutually exclusive"),
        ({"lifecycle_files": [{"content": "b"}]}, "dest"),
        ({"lifecycle_rotation_period_days": "often"}, "lifecycle_rotation_period_days"),
        ({"lifecycle_files": [{"content": "a", "dest": "/x/same"}, {"content": "b", "dest": "/y/same"}]},
         "unique name"),
        ({"lifecycle_name": "aws/mine"}, "lifecycle_name must use"),
        ({"lifecycle_name": "x" * 241}, "at most 240"),
        # Ranges, names and paths that only KMS, S3 or the hosts would refuse, after the key was made.
        ({"lifecycle_rotation_period_days": 30}, "from 90 to 2560 (it is 30)"),
        ({"lifecycle_rotation_period_days": 2561}, "from 90 to 2560 (it is 2561)"),
        ({"lifecycle_key_tags": {"aws:team": "x"}}, "may not start with 'aws:'"),
        ({"lifecycle_s3_bucket": "Not_A_Bucket"}, "S3 bucket name"),
        ({"lifecycle_rotation_id": ""}, "1 to 256 characters"),
        ({"lifecycle_grants": [dict(GRANTS[0], operations=["Decript"])]}, "Decript"),
        ({"lifecycle_grants": [GRANTS[0], GRANTS[0]]}, "Grant billing-hosts is listed twice"),
        ({"lifecycle_grants": [{"name": "no-grantee", "operations": ["Decrypt"]}]}, "grantee_principal is required"),
        # What only envelope.kms.grant knows, asked of it (grant_problems) before the key is made.
        ({"lifecycle_grants": [dict(GRANTS[0], operations=["Decrypt", "Sign"])]}, "operations Sign take no encryption context"),
        ({"lifecycle_grants": [dict(GRANTS[0], constraints={"encryption_context_subset": {"on": True}})]},
         "keys and values must be strings"),
        ({"lifecycle_grants": [dict(GRANTS[0], constraints={"encryption_context_equals": ROLE_CONTEXT,
                                                            "encryption_context_subset": ROLE_CONTEXT})]},
         "a grant holds one type of constraint"),
        ({"lifecycle_grants": [dict(GRANTS[0], name="no spaces")]}, "Invalid grant name 'no spaces'"),
        ({"lifecycle_files": [{"src": "missing.env", "dest": "/tmp/x"}]}, "src missing.env is not a readable file"),
        # (a directory src is every file below it: test_a_directory_src_is_every_file_below_it_each_idempotent_on_its_own)
        ({"lifecycle_files": [{"src": "/dev/null", "dest": "/tmp/x"}]}, "is not a readable file"),
        ({"lifecycle_files": [{"content": "a", "dest": "relative/x"}]}, "dest must be a full path"),
        ({"lifecycle_files": [{"content": "a", "dest": "/tmp/dir/"}]}, "not a directory with '/' at the end"),
        ({"lifecycle_files": [{"content": "a", "dest": "/tmp/x", "mode": "0999"}]}, "mode must be octal"),
        ({"lifecycle_files": [{"content": "a", "dest": "/tmp/x", "encryption_context": {"aws-crypto-x": "y"}}]},
         "keys may not start with 'aws-crypto-'"),
        ({"lifecycle_encrypt": False}, "lifecycle_encrypt is false but these files are not in the cache"),
        # A secret from a variable that is not set (a vault file not loaded): never encrypted as
        # some default text, the run stops naming the variable.
        ({"lifecycle_files": [{"content": "{{ vault_api_token }}", "dest": "/tmp/x"}]}, "'vault_api_token' is undefined"),
    ],
)
def test_bad_variables_fail_before_any_kms_call(playbook, kms_server, role_vars, message):
    site = write_site(playbook, **role_vars)
    kms_server.start_recording()
    run = playbook.run(site)
    assert run.returncode != 0
    failed = [result for _name, hosts in run.tasks() for result in hosts.values() if result.get("failed")]
    shown = json.dumps(failed)
    assert message in shown, shown
    assert "Traceback" not in shown
    if "lifecycle_name" not in message and "240" not in message:  # only the rule that failed is shown
        assert "lifecycle_name must use" not in shown, shown
    assert sum(kms_server.kms_calls().values()) == 0


def test_inputs_the_checks_must_accept(playbook, kms_server):
    """No false refusal: a src with glob characters is that very file (not a pattern: db1.env beside it
    must not be taken), an 'aws...' context key that is not the SDK's reserved 'aws-crypto-', a number
    as a context value, a 0o mode and a symbolic one."""
    site = write_site(playbook, lifecycle_files=[
        {"src": "db[1].env", "dest": "{{ host_dir }}/db.enc", "mode": "0o640",
         "encryption_context": {"aws_region": "eu-west-1", "version": 2}},
        {"content": "token\n", "dest": "{{ host_dir }}/token.enc", "mode": "u=rw,g=r"},
    ])
    files_dir = os.path.join(playbook.workdir, "files")
    for name, text in (("db[1].env", "RIGHT\n"), ("db1.env", "WRONG\n")):
        with open(os.path.join(files_dir, name), "w", encoding="utf-8") as handle:
            handle.write(text)
    playbook.set_hosts(["web1"])
    run = playbook.run(site).assert_ok()
    assert "WARNING" not in run.stderr, run.stderr
    (db,) = decrypt_with_library(kms_server, [host_file(playbook, "web1", "db.enc")])
    assert db[1] == "RIGHT\n"
    assert db[0]["aws_region"] == "eu-west-1" and db[0]["version"] == "2"
    assert oct(os.stat(host_file(playbook, "web1", "db.enc")).st_mode & 0o777) == "0o640"


def assert_cache_decrypts(playbook, kms_server, wrapping_key_arn):
    """Every cached file is wrapped under wrapping_key_arn only and the reference library decrypts it."""
    paths = [os.path.join(cache_dir(playbook), name) for name in SECRETS]
    for path in paths:
        assert inspect_header(path).key_arns == (wrapping_key_arn,), path
    for path, (source, plaintext, context), (got_context, got_plaintext) in zip(
            paths, SECRETS.values(), decrypt_with_library(kms_server, paths)):
        assert got_plaintext == plaintext, (path, source)
        for key, value in dict(ROLE_CONTEXT, **context).items():
            assert got_context[key] == value, path


@pytest.mark.slow
def test_rotation_without_deploy_refuses_to_disable_the_previous_key(playbook, kms, kms_server):
    """lifecycle_deploy=false rewraps the cache only: the hosts still hold v1 files, so v1 stays enabled."""
    hosts = ["web1", "web2"]
    playbook.set_hosts(hosts)
    site = write_site(playbook)
    playbook.run(site).assert_ok()
    v1_arn = key_arn(kms, f"alias/{NAME}-v1")

    refused = playbook.run(site, extra_vars=rotation("r1", lifecycle_deploy=False, lifecycle_disable_previous_key=True))
    assert refused.returncode != 0
    refusal = refused.result(role_task("Refuse to disable the previous key when the files were not deployed"), "web1")
    assert refusal["failed"] is True
    message = refusal["msg"]
    assert f"Not disabling alias/{NAME}-v1: lifecycle_deploy is false" in message, message
    assert "lifecycle_deploy=true" in message and "\n" not in message.strip(), message
    assert "Traceback" not in refused.stdout + refused.stderr
    with pytest.raises(AssertionError):
        refused.result(role_task("Disable the previous key version"), "web1")
    # The rotation itself went through: alias on v2, cache rewrapped; v1 stays enabled for the hosts' files.
    v2_arn = key_arn(kms, f"alias/{NAME}")
    assert v2_arn == key_arn(kms, f"alias/{NAME}-v2") != v1_arn
    assert key_state(kms, f"alias/{NAME}-v1") == "Enabled"
    assert key_state(kms, f"alias/{NAME}-v2") == "Enabled"
    assert_cache_decrypts(playbook, kms_server, v2_arn)
    assert_fleet(playbook, kms_server, hosts, v1_arn, same_as_cache=False)

    # As the message says: the same rotation with the deploy finishes it.
    completed = playbook.run(site, extra_vars=rotation("r1", lifecycle_disable_previous_key=True)).assert_ok()
    result = lifecycle_result(completed)
    assert (result["rotation"], result["key_arn"], result["disabled_key_arn"]) == ("resume", v2_arn, v1_arn)
    assert key_state(kms, f"alias/{NAME}-v1") == "Disabled"
    assert key_state(kms, f"alias/{NAME}-v2") == "Enabled"
    assert_fleet(playbook, kms_server, hosts, v2_arn)


@pytest.mark.slow
def test_hosts_that_did_not_copy_every_file_keep_the_previous_key_enabled(playbook, kms, kms_server):
    """Hosts that stay in the play batch without the new files: a host's own lifecycle_deploy=false,
    an ignored copy failure, and --limit. Each keeps v1 enabled; check mode only predicts the disable."""
    playbook.set_hosts(THREE_HOSTS)
    site = write_site(playbook)
    playbook.run(site).assert_ok()
    v1_arn = key_arn(kms, f"alias/{NAME}-v1")
    disable_previous = rotation("r1", lifecycle_disable_previous_key=True)
    refusal_task = role_task("Refuse to disable the previous key while some host may still need it")

    # web2 opts out of the deploy by a host variable (over the role default): its copies are skipped.
    with open(playbook.inventory, "a", encoding="utf-8") as handle:
        handle.write("[no_deploy]\nweb2 lifecycle_deploy=false\n")
    skipped = playbook.run(site, extra_vars=disable_previous)
    assert skipped.returncode != 0
    assert skipped.failed("web2") == 0, "web2 stays in the play batch"
    refusal = skipped.result(refusal_task, "web1")
    assert refusal["failed"] is True
    assert f"Not disabling alias/{NAME}-v1" in refusal["msg"] and refusal["msg"].rstrip().endswith(
        "run the same rotation again for every host to finish it."), refusal["msg"]
    assert "web2" in refusal["msg"] and "web1" not in refusal["msg"] and "web3" not in refusal["msg"]
    assert key_state(kms, f"alias/{NAME}-v1") == "Enabled"
    v2_arn = key_arn(kms, f"alias/{NAME}")
    assert v2_arn != v1_arn
    assert_fleet(playbook, kms_server, ["web1", "web3"], v2_arn)
    assert_fleet(playbook, kms_server, ["web2"], v1_arn, same_as_cache=False)

    # --limit: the left-out host is not in ansible_play_hosts_all at all.
    playbook.set_hosts(THREE_HOSTS)
    limited = playbook.run(site, "--limit", "web1,web2", extra_vars=disable_previous)
    assert limited.returncode != 0
    message = limited.result(role_task("Refuse to disable the previous key when --limit leaves hosts out"), "web1")["msg"]
    assert "--limit web1,web2" in message and message.rstrip().endswith(": web3. The key stays enabled; run the same "
                                                                        "rotation again without --limit to finish it."), message
    assert key_state(kms, f"alias/{NAME}-v1") == "Enabled"
    assert_fleet(playbook, kms_server, ["web1", "web2"], v2_arn)

    # The role applied with ignore_errors: web3's copies fail but web3 stays in the batch, and the failed
    # assert is ignored too: the disable task must check again by itself.
    shutil.rmtree(os.path.join(playbook.workdir, "hosts", "web3"))
    with open(site, encoding="utf-8") as handle:
        play = yaml.safe_load(handle)
    play[0]["roles"][0]["ignore_errors"] = True
    lenient = playbook.write(yaml.safe_dump(play, sort_keys=False), name="site-ignore-errors.yml")
    ignored = playbook.run(lenient, extra_vars=disable_previous)
    copies = ignored.result(role_task("Copy each ciphertext file to the host"), "web3")
    assert all(item["failed"] for item in copies["results"]), copies
    refusal = ignored.result(refusal_task, "web1")
    assert refusal["failed"] is True and "web3" in refusal["msg"] and "web2" not in refusal["msg"], refusal["msg"]
    assert ignored.result(role_task("Disable the previous key version"), "web1").get("skipped") is True
    assert lifecycle_result(ignored)["disabled_key_arn"] is None
    assert key_state(kms, f"alias/{NAME}-v1") == "Enabled"

    # Check mode with every host able to copy: it predicts the disable and changes nothing.
    os.makedirs(os.path.join(playbook.workdir, "hosts", "web3"))
    predicted = playbook.run(site, "--check", extra_vars=disable_previous).assert_ok()
    assert predicted.result(role_task("Disable the previous key version"), "web1")["changed"] is True
    assert key_state(kms, f"alias/{NAME}-v1") == "Enabled"
    assert os.listdir(os.path.join(playbook.workdir, "hosts", "web3")) == []

    completed = playbook.run(site, extra_vars=disable_previous).assert_ok()
    assert completed.changed("web3") > 0 and completed.changed("web2") == 0
    result = lifecycle_result(completed)
    assert (result["rotation"], result["key_arn"], result["disabled_key_arn"]) == ("resume", v2_arn, v1_arn)
    assert key_state(kms, f"alias/{NAME}-v1") == "Disabled"
    assert key_state(kms, f"alias/{NAME}-v2") == "Enabled", "the current key is never the one disabled"
    assert_fleet(playbook, kms_server, THREE_HOSTS, v2_arn)


def test_a_directory_src_is_every_file_below_it_each_idempotent_on_its_own(playbook, kms, kms_server):
    """lifecycle_files entries whose src is a directory: with and without the trailing '/', every
    file cached on its own (name--path), folders made with directory_mode (empty ones too, as
    ansible.builtin.copy makes them), a re-run makes no data key, a changed file one; rotate
    rewraps and redeploys them like any other file."""
    playbook.set_hosts(["web1", "web2"])
    tree = os.path.join(playbook.workdir, "files", "conf")
    sources = {"a.env": "A=1\n", "sub/b.env": "B=2\n", "sub/deeper/c.env": "C=3\n"}
    for relative, text in sources.items():
        os.makedirs(os.path.dirname(os.path.join(tree, relative)), exist_ok=True)
        with open(os.path.join(tree, relative), "w", encoding="utf-8") as handle:
            handle.write(text)
    os.makedirs(os.path.join(tree, "sub", "void"))
    files = [{"src": "conf", "dest": "{{ host_dir }}/etc", "mode": "0600", "directory_mode": "0750"},
             {"name": "flat", "src": "conf/", "dest": "{{ host_dir }}/flat/"}]
    site = write_site(playbook, lifecycle_files=files)

    kms_server.start_recording()
    playbook.run(site).assert_ok()
    assert kms_server.kms_calls()["GenerateDataKey"] == 6  # 3 files x 2 entries, encrypted once for both hosts
    cached = sorted(os.listdir(cache_dir(playbook)))
    assert cached == ["conf--a.env", "conf--sub--b.env", "conf--sub--deeper--c.env",
                      "flat--a.env", "flat--sub--b.env", "flat--sub--deeper--c.env"]
    first_key = key_arn(kms, f"alias/{NAME}")
    for host in ("web1", "web2"):
        for below, prefix in (("etc/conf", "conf"), ("flat", "flat")):
            for relative, text in sources.items():
                path = host_file(playbook, host, f"{below}/{relative}")
                assert decrypt_with_library(kms_server, [path])[0][1] == text, path
                assert inspect_header(path).key_arns == (first_key,)
                with open(os.path.join(cache_dir(playbook), prefix + "--" + relative.replace("/", "--")), "rb") as cache:
                    assert cache.read() == open(path, "rb").read()
        assert os.stat(host_file(playbook, host, "etc/conf/a.env")).st_mode & 0o777 == 0o600
        for folder in ("etc", "etc/conf", "etc/conf/sub", "etc/conf/sub/deeper", "etc/conf/sub/void"):
            assert os.stat(host_file(playbook, host, folder)).st_mode & 0o777 == 0o750, folder
        assert os.listdir(host_file(playbook, host, "flat/sub/void")) == []

    kms_server.start_recording()
    again = playbook.run(site).assert_ok()
    assert again.changed("web1") == 0 and again.changed("web2") == 0
    assert "GenerateDataKey" not in kms_server.kms_calls()

    with open(os.path.join(tree, "sub", "b.env"), "w", encoding="utf-8") as handle:
        handle.write("B=changed\n")
    kms_server.start_recording()
    playbook.run(site).assert_ok()
    assert kms_server.kms_calls()["GenerateDataKey"] == 2  # the one file, in both entries
    assert decrypt_with_library(kms_server, [host_file(playbook, "web2", "flat/sub/b.env")])[0][1] == "B=changed\n"

    playbook.run(write_site(playbook, lifecycle_files=files, **rotation("r1"))).assert_ok()
    second_key = key_arn(kms, f"alias/{NAME}")
    assert second_key != first_key
    assert inspect_header(host_file(playbook, "web1", "etc/conf/sub/deeper/c.env")).key_arns == (second_key,)
