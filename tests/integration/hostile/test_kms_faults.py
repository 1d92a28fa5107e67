"""Hostile input, KMS faults: every refusal by KMS, or by the decrypt policy, is one clear line, a
failed task and nothing written (an existing dest stays byte-identical, no temp file appears).

Faults: a wrong encryption context, a wrapping key outside allowed_key_arns, a key of an account
outside discovery_account_ids (all three refused before any KMS call), a disabled key, a key
pending deletion, a deleted alias, access denied, missing credentials, an unreachable endpoint (a
closed port) and an expired session token.

moto does not enforce some of these: it lets a disabled key or a key pending deletion still
GenerateDataKey and Decrypt, and it never checks a session token or denies access. Those keys are
really disabled / scheduled for deletion in moto, and a tests/harness/fault_proxy.py KmsFaultProxy
in front of it answers their calls with the error KMS gives (DisabledException,
KMSInvalidStateException, AccessDeniedException, ExpiredTokenException): the tests prove what the
collection does with KMS's answer, not KMS's behaviour. A deleted alias, the policy checks, the
closed port and the missing credentials are real.

The decrypt module, the copy action and the lookup meet every fault in one ansible-playbook run
(each task its own endpoint, through the proxy of its fault, and its own access key, so the
server's recording tells which task called KMS); the engine in-process takes the long tail
(decrypt to a file and to memory, rewrap in place, encrypt over an existing envelope).
"""

import os
import re

import boto3
import botocore.config
import botocore.credentials
import botocore.session
import pytest

from ansible_collections.envelope.kms.plugins.module_utils.envelope import Engine, EnvelopeError
from tests.harness import tamper
from tests.harness.fault_proxy import KmsFaultProxy
from tests.harness.kms_server import REGION, free_port

CATEGORY = "kms faults"
CONTEXT = {"app": "billing"}
SECRET = b"db_password=kms faults must not leak\n"
OLD_PLAINTEXT = b"old plaintext, must survive\n"
OTHER_ACCOUNT = "111122223333"
# The faults moto cannot play: the error code KMS answers, and the calls it refuses.
INJECTED = {
    "disabled": ("DisabledException", ("Decrypt", "GenerateDataKey")),
    "pending deletion": ("KMSInvalidStateException", ("Decrypt", "GenerateDataKey")),
    "access denied": ("AccessDeniedException", ("Decrypt", "GenerateDataKey", "DescribeKey")),
    "expired token": ("ExpiredTokenException", ("Decrypt", "GenerateDataKey", "DescribeKey")),
}
EXPECT = {
    "wrong context": r"encryption context does not match",
    "key not allowed": r"none of the allowed keys",
    "account not allowed": r"none in the allowed accounts",
    "disabled": r"disabled",
    "pending deletion": r"pending deletion",
    "deleted alias": r"does not exist|not found|NotFound",
    "access denied": r"[Aa]ccess denied|AccessDenied",
    "expired token": r"expired",
    "missing credentials": r"[Cc]redentials",
    "unreachable": r"cannot reach KMS|[Cc]ould not connect|[Cc]onnect",
}
POLICY_FAULTS = ("wrong context", "key not allowed", "account not allowed")
FEW_RETRIES = {"retries": {"mode": "standard", "total_max_attempts": 2}, "connect_timeout": 2, "read_timeout": 10}


class Keys:
    """The application key (alias/app), another key, a disabled key and a key pending deletion (each
    with an envelope made under it before it changed state), and alias/gone, deleted."""

    def __init__(self, kms, workdir):
        self.workdir = str(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.app = kms.create_key(Description="app")["KeyMetadata"]["Arn"]
        kms.create_alias(AliasName="alias/app", TargetKeyId=self.app)
        self.other = kms.create_key(Description="other")["KeyMetadata"]["Arn"]
        self.disabled = kms.create_key(Description="disabled")["KeyMetadata"]["Arn"]
        self.pending = kms.create_key(Description="pending")["KeyMetadata"]["Arn"]
        kms.create_alias(AliasName="alias/gone", TargetKeyId=self.other)
        engine = Engine(kms)
        self.envelopes = {}
        for name, arn in (("app", self.app), ("disabled", self.disabled), ("pending deletion", self.pending)):
            path = os.path.join(self.workdir, f"{name.replace(' ', '-')}.enc")
            engine.encrypt_bytes(SECRET, path, arn, CONTEXT)
            with open(path, "rb") as handle:
                self.envelopes[name] = handle.read()
        kms.disable_key(KeyId=self.disabled.split("/")[-1])  # moto takes key ids here, not ARNs
        kms.schedule_key_deletion(KeyId=self.pending.split("/")[-1], PendingWindowInDays=7)
        kms.delete_alias(AliasName="alias/gone")

    def envelope_for(self, fault):
        return self.envelopes.get(fault, self.envelopes["app"])

    def key_for(self, fault):
        """The key a task encrypts under when it meets ``fault``."""
        return {"disabled": self.disabled, "pending deletion": self.pending, "deleted alias": "alias/gone"}.get(
            fault, "alias/app")


@pytest.fixture
def keys(kms, tmp_path):
    return Keys(kms, tmp_path / "made")


@pytest.fixture
def proxies(kms_server):
    """A KmsFaultProxy per injected fault, all in front of the moto server."""
    started = {}
    try:
        for fault, (code, operations) in INJECTED.items():
            started[fault] = KmsFaultProxy(kms_server.url, fail=operations, code=code, status=400,
                                           message=f"injected by the test: {fault}").start()
        yield started
    finally:
        for proxy in started.values():
            proxy.stop()


def closed_port_url():
    return f"http://127.0.0.1:{free_port()}"  # nothing listens there


def policy_for(fault, keys):
    return {
        "wrong context": dict(encryption_context={"app": "payroll"}),
        "key not allowed": dict(allowed_key_arns=[keys.other]),
        "account not allowed": dict(discovery_account_ids=[OTHER_ACCOUNT]),
    }.get(fault, {})


# -- the engine in-process: every fault, every operation


def engine_for(fault, kms_server, proxies):
    config = botocore.config.Config(**FEW_RETRIES)
    if fault == "missing credentials":
        session = botocore.session.Session()
        session.register_component("credential_provider", botocore.credentials.CredentialResolver(providers=[]))
        return Engine(session.create_client("kms", endpoint_url=kms_server.url, region_name=REGION, config=config))
    url = kms_server.url
    if fault in proxies:
        url = proxies[fault].url
    elif fault == "unreachable":
        url = closed_port_url()
    return Engine(boto3.client("kms", endpoint_url=url, region_name=REGION, aws_access_key_id="testing",
                               aws_secret_access_key="testing", config=config))


def refusal_problem(call, expect, watched):
    """None when ``call`` raises a one-line EnvelopeError matching ``expect`` and every file in
    ``watched`` (path -> bytes) is unchanged with nothing new beside it."""
    directories = {os.path.dirname(path) for path in watched}
    before = {directory: tamper.listing(directory) for directory in directories}
    try:
        call()
    except EnvelopeError as error:
        problem = tamper.one_line_problem(error.message)
        if problem:
            return f"{problem}: {error.message!r}"
        if not re.search(expect, error.message):
            return f"message does not say {expect!r}: {error.message!r}"
        if SECRET.strip() in error.message.encode():
            return "plaintext in the message"
    except Exception as error:  # pylint: disable=broad-except  # anything else is the finding
        return f"raised {type(error).__name__} instead of EnvelopeError: {error}"
    else:
        return "did not fail"
    for path, data in watched.items():
        with open(path, "rb") as handle:
            if handle.read() != data:
                return f"{path} changed"
    for directory, entries in before.items():
        if tamper.listing(directory) != entries:
            return f"{directory} changed: {sorted(set(tamper.listing(directory)) ^ set(entries))}"
    return None


ENGINE_FAULTS = ["wrong context", "key not allowed", "account not allowed", "disabled", "pending deletion",
                 "access denied", "expired token", "missing credentials", "unreachable"]
ENCRYPT_FAULTS = ["disabled", "pending deletion", "deleted alias", "access denied", "expired token",
                  "missing credentials", "unreachable"]


def test_engine_meets_every_fault(kms_server, keys, proxies, tmp_path, tally):
    """Disabled, pending deletion, access denied and expired token come from the fault proxies
    (moto lets such keys decrypt and never checks tokens); the other faults are moto's own, or
    the engine's policy, or a closed port, or a credential resolver that finds nothing."""
    work = tmp_path / "engine"
    work.mkdir()
    dest, src, existing = str(work / "plain.txt"), str(work / "src.enc"), str(work / "existing.enc")
    for fault in ENGINE_FAULTS:
        engine = engine_for(fault, kms_server, proxies)
        envelope, policy = keys.envelope_for(fault), policy_for(fault, keys)
        for path, data in ((dest, OLD_PLAINTEXT), (src, envelope)):
            with open(path, "wb") as handle:
                handle.write(data)
        watched = {dest: OLD_PLAINTEXT, src: envelope}
        operations = {
            "decrypt_file": lambda: engine.decrypt_file(src, dest, **policy),
            "decrypt_bytes": lambda: engine.decrypt_bytes(envelope, **policy),
            "rewrap_file in place": lambda: engine.rewrap_file(
                src, keys.app, required_encryption_context=policy.get("encryption_context"),
                allowed_key_arns=policy.get("allowed_key_arns"),
                discovery_account_ids=policy.get("discovery_account_ids")),
        }
        for operation, call in operations.items():
            problem = refusal_problem(call, EXPECT[fault], watched)
            tally.case(CATEGORY, problem is None, f"engine {operation}, {fault}: {problem}")
    for fault in ENCRYPT_FAULTS:
        engine = engine_for(fault, kms_server, proxies)
        with open(existing, "wb") as handle:
            handle.write(keys.envelopes["app"])
        problem = refusal_problem(lambda: engine.encrypt_bytes(b"new secret\n", existing, keys.key_for(fault), CONTEXT),
                                  EXPECT[fault], {existing: keys.envelopes["app"]})
        tally.case(CATEGORY, problem is None, f"engine encrypt_bytes over an envelope, {fault}: {problem}")
    for fault in INJECTED:
        tally.case(CATEGORY, sum(proxies[fault].refused.values()) > 0, f"the {fault} proxy refused nothing")
    tally.check()


def test_policy_refusals_make_no_kms_call(kms, kms_server, keys, tmp_path, tally):
    """The context, allowed keys and accounts are checked on the header: no KMS call at all."""
    engine = Engine(kms)
    dest = str(tmp_path / "plain.txt")
    with open(dest, "wb") as handle:
        handle.write(OLD_PLAINTEXT)
    for fault in POLICY_FAULTS:
        kms_server.start_recording()
        problem = refusal_problem(lambda: engine.decrypt_file(keys.envelopes["app"], dest, **policy_for(fault, keys)),
                                  EXPECT[fault], {dest: OLD_PLAINTEXT})
        calls = kms_server.kms_calls()
        tally.case(CATEGORY, problem is None and not calls, f"{fault}: {problem}, KMS calls {dict(calls)}")
    tally.check()


# -- the plugins: decrypt module, copy action, lookup, in one run


PLUGIN_FAULTS = ["wrong context", "key not allowed", "account not allowed", "disabled", "pending deletion",
                 "access denied", "expired token", "missing credentials", "unreachable"]
COPY_FAULTS = ["disabled", "pending deletion", "deleted alias", "access denied", "expired token",
               "missing credentials", "unreachable"]


def aws_options(fault, proxies, index, lookup=False):
    """Per task: its own access key (none when credentials must be missing) and endpoint, and few
    retries (the lookup has no aws_config option)."""
    options = {} if lookup else {"aws_config": FEW_RETRIES}
    if fault != "missing credentials":
        options.update(access_key=f"FAULT{index:04d}", secret_key="testing")
    if fault in proxies:
        options["endpoint_url"] = proxies[fault].url
    elif fault == "unreachable":
        options["endpoint_url"] = closed_port_url()
    return options


def lookup_expression(path, options):
    words = [repr(path)] + [f"{key}={value!r}" for key, value in options.items()]
    return "{{ lookup('envelope.kms.decrypt', " + ", ".join(words) + ") }}"


def test_plugins_meet_every_fault(playbook, kms_server, keys, proxies, tally):
    """As the engine test, through the real plugins: the injected faults go through the proxies,
    each task pointing its endpoint_url at the proxy of its fault."""
    host = os.path.join(playbook.workdir, "hosts", "localhost", "faults")
    os.makedirs(host)
    # No credentials in the environment: every task gives its own, except the ones that must miss them.
    playbook.environment = {name: value for name, value in playbook.environment.items()
                            if name not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    playbook.environment.update(AWS_SHARED_CREDENTIALS_FILE=os.path.join(host, "none"),
                                AWS_CONFIG_FILE=os.path.join(host, "none"), AWS_EC2_METADATA_DISABLED="true")
    watched, tasks, checks = {}, [], []

    def add(name, fault, task):
        index = len(tasks)
        options = aws_options(fault, proxies, index, lookup="set_fact" in task)
        if "set_fact" in task:
            expression = lookup_expression(task["set_fact"], {**task["policy"], **options})
            task = {"ansible.builtin.set_fact": {"value": expression}}
        else:
            (plugin, args), = task.items()
            task = {plugin: {**args, **options}}
        tasks.append({"name": name, **task, "ignore_errors": True})
        checks.append((name, fault, options.get("access_key")))

    for fault in PLUGIN_FAULTS:
        slug = fault.replace(" ", "-")
        src = os.path.join(host, f"{slug}.enc")
        dest = os.path.join(host, f"{slug}.txt")
        for path, data in ((src, keys.envelope_for(fault)), (dest, OLD_PLAINTEXT)):
            with open(path, "wb") as handle:
                handle.write(data)
            watched[path] = data
        policy = policy_for(fault, keys)
        add(f"decrypt module, {fault}", fault, {"envelope.kms.decrypt": {"src": src, "dest": dest, **policy}})
        if fault != "unreachable":  # without aws_config, 10 attempts with backoff: a minute (the engine has it)
            add(f"lookup, {fault}", fault, {"set_fact": src, "policy": policy})
    for fault in COPY_FAULTS:
        dest = os.path.join(host, f"copy-{fault.replace(' ', '-')}.enc")
        with open(dest, "wb") as handle:
            handle.write(keys.envelopes["app"])
        watched[dest] = keys.envelopes["app"]
        copy = {"content": "new secret\n", "dest": dest, "key_id": keys.key_for(fault), "encryption_context": CONTEXT}
        add(f"copy action, {fault}", fault, {"envelope.kms.copy": copy})

    before = tamper.listing(host)
    kms_server.start_recording()
    run = tamper.run_bounded(playbook, tasks, timeout=600)
    calls = tamper.kms_calls_by_access_key(kms_server)
    for name, fault, access_key in checks:
        result = run.result(name)
        problem = tamper.task_problem(result)
        if problem is None and not re.search(EXPECT[fault], result["msg"]):
            problem = f"message does not say {EXPECT[fault]!r}: {result['msg'][:300]!r}"
        if problem is None and fault in POLICY_FAULTS and calls.get(access_key):
            problem = f"KMS calls before the policy refusal: {dict(calls[access_key])}"
        tally.case(CATEGORY, problem is None, f"{name}: {problem}")
    for path, data in watched.items():
        with open(path, "rb") as handle:
            tally.case(CATEGORY, handle.read() == data, f"{path} changed")
    tally.case(CATEGORY, tamper.listing(host) == before, "files appeared or changed")
    tally.case(CATEGORY, SECRET.strip().decode() not in run.stdout + run.stderr, "plaintext in the output")
    for fault in INJECTED:
        tally.case(CATEGORY, sum(proxies[fault].refused.values()) > 0, f"the {fault} proxy refused nothing")
    tally.check()
