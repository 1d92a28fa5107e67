"""Hostile input, bad options: every plugin refuses wrong types, out-of-range values, unknown option
names and paths that are directories, FIFOs, devices or missing, with one clear line, before any
KMS call and without writing anything.

Cases run as failing tasks (ignore_errors) batched into four ansible-playbook runs: the key
management modules; the decrypt module; rewrap and data_key; the controller plugins (copy and
encrypt actions, decrypt lookup). Each task authenticates with an access key of its own, so the
moto server's request recording tells which task made which KMS call: a case holds when its task
failed with a one-line message naming the problem, made no KMS call (``reads`` lists the read-only
calls a case may make, with why) and created no file. Tasks that touch a FIFO have a task timeout
(a hang is a failed case, not a hung test) and each run has a time limit (tamper.run_bounded).
"""

import os
import re
import stat

import pytest

from ansible_collections.envelope.kms.plugins.module_utils.envelope import Engine
from tests.harness import tamper

CATEGORY = "bad options"
CONTEXT = {"app": "billing"}
TASK_TIMEOUT = 20  # seconds for a task that reads or writes a FIFO: a hang fails the case
RUN_TIMEOUT = 600
UNKNOWN = r"[Uu]nsupported parameters|unknown option"
NOT_REGULAR = r"not a regular file|is a FIFO|is a device|is a directory|a directory|not a file"
MISSING = r"does not exist|[Nn]o such file|not found|Could not find"
READS = ("DescribeKey", "ListAliases", "ListResourceTags", "GetKeyPolicy", "GetKeyRotationStatus", "ListKeys")

pytestmark = pytest.mark.slow  # about 70 module runs in all: minutes of ansible-playbook

# Cases that do not hold yet, by name (a case names its entry with defect=...): none now. Such cases
# run in a strict xfail test of their own (issue 11 had one), not in their plugin's test.
DEFECTS = {}


class Cases:
    """Failing tasks of one run, each with its access key and what must hold."""

    def __init__(self, playbook, prefix, defects=False):
        self.playbook = playbook
        self.prefix = prefix
        self.defects = defects  # only the cases of a known defect (else all the others)
        self.items = []
        self.fifos = []

    def add(self, name, plugin, args, expect, created=(), reads=None, fifo=False, defect=None):
        """A task of ``plugin`` with ``args`` that must fail with a message matching ``expect``,
        leave the paths ``created`` absent and make no KMS call (``reads``: the read-only calls it
        may make, and why). ``defect``: the DEFECTS entry that keeps it from holding yet."""
        if bool(defect) != self.defects:
            return None
        access_key = f"{self.prefix}{len(self.items):04d}"
        aws = {"access_key": access_key, "secret_key": "testing"}
        if plugin == "lookup":
            terms, options = args
            words = [repr(term) for term in terms] + [f"{key}={value!r}" for key, value in {**options, **aws}.items()]
            task = {"ansible.builtin.set_fact": {"value": "{{ lookup('envelope.kms.decrypt', " + ", ".join(words) + ") }}"}}
        elif plugin == "filter":
            value, options = args
            words = [f"{key}={option!r}" for key, option in {**options, **aws}.items()]
            task = {"ansible.builtin.set_fact": {"value": "{{ " + repr(value) + " | envelope.kms.decrypt("
                                                          + ", ".join(words) + ") }}"}}
        else:
            task = {plugin: {**args, **aws}}
        task = {"name": name, **task, "ignore_errors": True}
        if fifo:
            task["timeout"] = TASK_TIMEOUT
        self.items.append(dict(name=name, task=task, expect=expect, created=list(created), reads=reads,
                               access_key=access_key))
        return task

    def run_and_check(self, kms_server, tally, tree):
        kms_server.start_recording()
        before = tamper.listing_tree(tree)
        run = tamper.run_bounded(self.playbook, [item["task"] for item in self.items], timeout=RUN_TIMEOUT,
                                 fifos=self.fifos)
        calls = tamper.kms_calls_by_access_key(kms_server)
        after = tamper.listing_tree(tree)
        for item in self.items:
            problem = self.problem(run.result(item["name"]), item, calls.get(item["access_key"], {}))
            tally.case(CATEGORY, problem is None, f"{item['name']}: {problem}")
        new = sorted(set(after) - set(before))
        tally.case(CATEGORY, not new, f"{self.prefix}: files appeared: {new}")
        changed = sorted(name for name in before if name in after and before[name] != after[name])
        tally.case(CATEGORY, not changed, f"{self.prefix}: files changed: {changed}")
        return run

    @staticmethod
    def problem(result, item, calls):
        problem = tamper.task_problem(result)
        if problem:
            return problem
        message = result["msg"]
        if "terminated due to timeout" in message:
            return f"hung (task timeout): {message}"
        if not re.search(item["expect"], message):
            return f"message does not say {item['expect']!r}: {message[:300]!r}"
        allowed = item["reads"][0] if item["reads"] else ()
        unexpected = {name: count for name, count in calls.items() if name not in allowed}
        if unexpected:
            return f"KMS calls before failing: {dict(calls)} ({message[:200]!r})"
        existing = [path for path in item["created"] if os.path.lexists(path)]
        if existing:
            return f"created {existing}"
        return None


class Scene:
    """The files the cases point at, in the host folder: an envelope, a plaintext, a directory,
    FIFOs, device nodes of our own (dest devices are never the system's /dev files)."""

    def __init__(self, playbook, kms, key_arn):
        self.dir = os.path.join(playbook.workdir, "hosts", "localhost", "cases")
        os.makedirs(os.path.join(self.dir, "adir"))
        self.adir = os.path.join(self.dir, "adir")
        self.missing = os.path.join(self.dir, "missing.enc")
        self.nodir = os.path.join(self.dir, "no-such-dir", "out.txt")
        self.envelope = os.path.join(self.dir, "good.enc")
        Engine(kms).encrypt_bytes(b"secret=1\n", self.envelope, key_arn, CONTEXT)
        self.plain = os.path.join(self.dir, "plain.txt")
        with open(self.plain, "w", encoding="utf-8") as handle:
            handle.write("old plaintext\n")
        # openssl enc framing (Salted__, a salt, whole AES blocks) and a KMS blob: import_openssl's inputs
        self.legacy = os.path.join(self.dir, "legacy.enc")
        with open(self.legacy, "wb") as handle:
            handle.write(b"Salted__" + os.urandom(8 + 32))
        self.blob = os.path.join(self.dir, "encrypted_data_key")
        with open(self.blob, "wb") as handle:
            handle.write(kms.generate_data_key(KeyId=key_arn, KeySpec="AES_256")["CiphertextBlob"])
        self.key_arn = key_arn
        self.fifo_count = 0
        self.null_node = self._node("null-device", 3)
        self.zero_node = self._node("zero-device", 5)

    def fifo(self, cases):
        self.fifo_count += 1
        path = os.path.join(self.dir, f"fifo-{self.fifo_count}")
        os.mkfifo(path)
        cases.fifos.append(path)
        return path

    def _node(self, name, minor):
        path = os.path.join(self.dir, name)
        try:
            os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, minor))  # like /dev/null, /dev/zero
        except PermissionError:
            pytest.skip("device nodes need root")
        return path

    def new(self, name):
        return os.path.join(self.dir, name)


@pytest.fixture
def scene(playbook, kms, app_key):
    return Scene(playbook, kms, app_key.arn)


def key_management_cases(cases, scene, app_key):
    arn = app_key.arn
    key = "envelope.kms.key"
    cases.add("key: unknown option", key, {"alias": "bad-opts", "colour": "red"}, r"colour")
    cases.add("key: enabled not a bool", key, {"alias": "bad-opts", "enabled": "maybe"}, r"enabled")
    cases.add("key: pending_window_days 3", key, {"key_id": arn, "state": "absent", "pending_window_days": 3},
              r"pending_window_days")
    cases.add("key: pending_window_days 31", key, {"key_id": arn, "state": "absent", "pending_window_days": 31},
              r"pending_window_days")
    cases.add("key: pending_window_days not an int", key, {"alias": "bad-opts", "pending_window_days": "soon"},
              r"pending_window_days")
    cases.add("key: key_usage not a choice", key, {"alias": "bad-opts", "key_usage": "ENCRYPT"}, r"key_usage")
    cases.add("key: policy not JSON", key, {"alias": "bad-opts", "policy": "{not json"}, r"policy")
    cases.add("key: policy not an object", key, {"alias": "bad-opts", "policy": "[1, 2]"}, r"policy")
    cases.add("key: tags not a dict", key, {"alias": "bad-opts", "tags": "not-a-dict"}, r"tags")
    cases.add("key: neither alias nor key_id", key, {"description": "x"}, r"alias|key_id")
    cases.add("key: reserved alias", key, {"alias": "alias/aws/mine"}, r"reserved|aws/")
    # Whether the key exists decides whether key_spec is checked as a new key's or compared with the
    # existing key's: reading the key first is needed.
    lookup_key = (READS, "the alias is looked up: a new key's spec is checked, an existing key's compared")
    cases.add("key: ECC key spec without key_usage", key, {"alias": "bad-opts", "key_spec": "ECC_NIST_P256"},
              r"key_usage", reads=lookup_key)
    cases.add("key: HMAC key spec with ENCRYPT_DECRYPT", key,
              {"alias": "bad-opts", "key_spec": "HMAC_256", "key_usage": "ENCRYPT_DECRYPT"}, r"key_usage|key_spec",
              reads=lookup_key)
    alias = "envelope.kms.alias"
    cases.add("alias: name missing", alias, {"target_key_id": "alias/app"}, r"name")
    cases.add("alias: present without target", alias, {"name": "bad-opts"}, r"target_key_id")
    cases.add("alias: reserved name", alias, {"name": "alias/aws/ebs", "target_key_id": arn}, r"reserved|aws/")
    cases.add("alias: state not a choice", alias, {"name": "bad-opts", "state": "moved"}, r"state")
    cases.add("alias: unknown option", alias, {"name": "bad-opts", "target": arn}, r"target")
    rotation = "envelope.kms.key_rotation"
    cases.add("key_rotation: period 5 days", rotation, {"key_id": arn, "rotation_period_days": 5},
              r"rotation_period_days")
    cases.add("key_rotation: period 3000 days", rotation, {"key_id": arn, "rotation_period_days": 3000},
              r"rotation_period_days")
    cases.add("key_rotation: period not an int", rotation, {"key_id": arn, "rotation_period_days": "ninety"},
              r"rotation_period_days")
    cases.add("key_rotation: period with enabled=false", rotation,
              {"key_id": arn, "enabled": False, "rotation_period_days": 365}, r"enabled")
    cases.add("key_rotation: key_id missing", rotation, {"enabled": True}, r"key_id")
    cases.add("key_rotation: unknown option", rotation, {"key_id": arn, "period": 90}, r"period")
    info = "envelope.kms.key_info"
    cases.add("key_info: tags not a dict", info, {"tags": "x"}, r"tags")
    cases.add("key_info: key_id and alias", info, {"key_id": arn, "alias": "app"}, r"mutually exclusive")
    cases.add("key_info: alias ARN malformed", info, {"alias": "arn:aws:kms:nowhere"}, r"alias|ARN")
    cases.add("key_info: blank key_id", info, {"key_id": "   "}, r"key_id")
    cases.add("key_info: include_policy not a bool", info, {"include_policy": "maybe"}, r"include_policy")
    version = "envelope.kms.key_version"
    cases.add("key_version: rotate without rotation_id", version, {"name": "app", "rotate": True}, r"rotation_id")
    cases.add("key_version: reserved name", version, {"name": "aws/ebs"}, r"reserved|aws/")
    cases.add("key_version: name KMS would refuse", version, {"name": "bad name!"}, r"name|alias")
    cases.add("key_version: unknown option", version, {"name": "app", "version": 2}, r"version")


def decrypt_module_cases(cases, scene, app_key):
    decrypt = "envelope.kms.decrypt"
    good, new = scene.envelope, scene.new
    cases.add("decrypt: src missing", decrypt, {"src": scene.missing, "dest": new("d1.txt")}, MISSING,
              created=[new("d1.txt")])
    cases.add("decrypt: src a directory", decrypt, {"src": scene.adir, "dest": new("d2.txt")}, NOT_REGULAR,
              created=[new("d2.txt")])
    cases.add("decrypt: src a FIFO", decrypt, {"src": scene.fifo(cases), "dest": new("d3.txt")}, NOT_REGULAR,
              created=[new("d3.txt")], fifo=True)
    cases.add("decrypt: src /dev/zero", decrypt, {"src": "/dev/zero", "dest": new("d4.txt")},
              NOT_REGULAR + "|not an AWS Encryption SDK message", created=[new("d4.txt")], fifo=True)
    cases.add("decrypt: src /dev/null", decrypt, {"src": "/dev/null", "dest": new("d5.txt")},
              NOT_REGULAR + "|empty", created=[new("d5.txt")], fifo=True)
    cases.add("decrypt: dest a directory", decrypt, {"src": good, "dest": scene.adir}, NOT_REGULAR)
    cases.add("decrypt: dest a FIFO", decrypt, {"src": good, "dest": scene.fifo(cases)}, NOT_REGULAR, fifo=True)
    cases.add("decrypt: dest a device", decrypt, {"src": good, "dest": scene.null_node}, NOT_REGULAR, fifo=True)
    cases.add("decrypt: dest in a missing directory", decrypt, {"src": good, "dest": scene.nodir},
              r"does not exist|[Nn]o such file|directory", created=[os.path.dirname(scene.nodir)])
    cases.add("decrypt: content_encoding not a choice", decrypt,
              {"src": good, "return_content": True, "content_encoding": "hex"}, r"content_encoding")
    cases.add("decrypt: return_content not a bool", decrypt, {"src": good, "dest": new("d6.txt"),
                                                              "return_content": "maybe"}, r"return_content",
              created=[new("d6.txt")])
    cases.add("decrypt: allowed_key_arns an alias", decrypt,
              {"src": good, "dest": new("d7.txt"), "allowed_key_arns": ["alias/app"]}, r"allowed",
              created=[new("d7.txt")])
    cases.add("decrypt: allowed keys and discovery accounts", decrypt,
              {"src": good, "dest": new("d8.txt"), "allowed_key_arns": [app_key.arn],
               "discovery_account_ids": ["123456789012"]}, r"mutually exclusive", created=[new("d8.txt")])
    cases.add("decrypt: account id of 3 digits", decrypt,
              {"src": good, "dest": new("d9.txt"), "discovery_account_ids": ["123"]}, r"discovery_account_ids",
              created=[new("d9.txt")])
    cases.add("decrypt: partition without accounts", decrypt,
              {"src": good, "dest": new("d10.txt"), "discovery_partition": "aws"}, r"discovery_partition|requires",
              created=[new("d10.txt")])
    cases.add("decrypt: encryption_context not a dict", decrypt,
              {"src": good, "dest": new("d11.txt"), "encryption_context": "x"}, r"encryption_context|dict",
              created=[new("d11.txt")])
    cases.add("decrypt: encryption_context value a list", decrypt,
              {"src": good, "dest": new("d12.txt"), "encryption_context": {"app": ["billing"]}},
              r"context|string", created=[new("d12.txt")])
    cases.add("decrypt: reserved context key", decrypt,
              {"src": good, "dest": new("d13.txt"), "encryption_context": {"aws-crypto-public-key": "x"}},
              r"reserved", created=[new("d13.txt")])
    cases.add("decrypt: mode not a mode", decrypt, {"src": good, "dest": new("d14.txt"), "mode": "rwxbogus"},
              r"mode", created=[new("d14.txt")])
    cases.add("decrypt: unknown option", decrypt, {"src": good, "dest": new("d15.txt"), "destination": "x"},
              r"destination", created=[new("d15.txt")])
    cases.add("decrypt: neither dest nor return_content", decrypt, {"src": good}, r"dest|return_content")
    cases.add("decrypt: return_content without no_log", decrypt, {"src": good, "return_content": True},
              r"no_log")


def rewrap_and_data_key_cases(cases, scene, app_key):
    rewrap, data_key = "envelope.kms.rewrap", "envelope.kms.data_key"
    good, new = scene.envelope, scene.new
    cases.add("rewrap: neither path nor paths", rewrap, {"key_id": ["alias/app"]}, r"path")
    cases.add("rewrap: path and paths", rewrap, {"path": good, "paths": [good], "key_id": ["alias/app"]},
              r"mutually exclusive")
    cases.add("rewrap: empty key_id list", rewrap, {"path": good, "key_id": []}, r"key")
    cases.add("rewrap: key_id an empty string", rewrap, {"path": good, "key_id": [""]}, r"key")
    cases.add("rewrap: context value a list", rewrap, {"path": good, "key_id": ["alias/app"],
                                                       "encryption_context": {"app": ["x"]}}, r"context|string")
    cases.add("rewrap: allowed_key_arns not ARNs", rewrap, {"path": good, "key_id": ["alias/app"],
                                                            "allowed_key_arns": ["not-an-arn"]}, r"allowed")
    cases.add("rewrap: account id of 2 digits", rewrap, {"path": good, "key_id": ["alias/app"],
                                                         "discovery_account_ids": ["12"]}, r"discovery_account_ids")
    cases.add("rewrap: required context not a dict", rewrap, {"path": good, "key_id": ["alias/app"],
                                                              "required_encryption_context": "x"},
              r"required_encryption_context|dict")
    cases.add("rewrap: unknown option", rewrap, {"path": good, "key_id": ["alias/app"], "dest": new("r.enc")},
              r"dest", created=[new("r.enc")])
    # The key is resolved (DescribeKey) before the paths are expanded; a path problem is the file's.
    resolve = (("DescribeKey",), "the key_id is resolved before the paths are expanded")
    cases.add("rewrap: path a directory", rewrap, {"path": scene.adir, "key_id": ["alias/app"]}, NOT_REGULAR,
              reads=resolve)
    cases.add("rewrap: path a FIFO", rewrap, {"path": scene.fifo(cases), "key_id": ["alias/app"]}, NOT_REGULAR,
              reads=resolve, fifo=True)
    cases.add("rewrap: path /dev/null", rewrap, {"path": "/dev/null", "key_id": ["alias/app"]}, NOT_REGULAR,
              reads=resolve, fifo=True)
    cases.add("rewrap: path missing", rewrap, {"path": scene.missing, "key_id": ["alias/app"]}, MISSING,
              reads=resolve)
    dk = {"key_id": "alias/app"}
    cases.add("data_key: key_spec not a choice", data_key, {**dk, "dest": new("k1.key"), "key_spec": "AES_512"},
              r"key_spec", created=[new("k1.key")])
    cases.add("data_key: number_of_bytes 0", data_key, {**dk, "dest": new("k2.key"), "number_of_bytes": 0},
              r"number_of_bytes", created=[new("k2.key")])
    cases.add("data_key: number_of_bytes 2000", data_key, {**dk, "dest": new("k3.key"), "number_of_bytes": 2000},
              r"number_of_bytes", created=[new("k3.key")])
    cases.add("data_key: key_spec and number_of_bytes", data_key,
              {**dk, "dest": new("k4.key"), "key_spec": "AES_256", "number_of_bytes": 32}, r"mutually exclusive",
              created=[new("k4.key")])
    cases.add("data_key: encoding not a choice", data_key, {**dk, "dest": new("k5.key"), "encoding": "hex"},
              r"encoding", created=[new("k5.key")])
    cases.add("data_key: dest a directory", data_key, {**dk, "dest": scene.adir}, NOT_REGULAR)
    cases.add("data_key: dest in a missing directory", data_key, {**dk, "dest": scene.nodir}, r"does not exist",
              created=[os.path.dirname(scene.nodir)])
    cases.add("data_key: mode not a mode", data_key, {**dk, "dest": new("k6.key"), "mode": "rwxbogus"}, r"mode",
              created=[new("k6.key")])
    cases.add("data_key: dest a FIFO", data_key, {**dk, "dest": scene.fifo(cases)}, NOT_REGULAR, fifo=True)
    cases.add("data_key: dest a device", data_key, {**dk, "dest": scene.zero_node}, NOT_REGULAR, fifo=True)
    cases.add("data_key: allowed_key_arns an alias", data_key,
              {**dk, "dest": new("k7.key"), "allowed_key_arns": ["alias/app"]}, r"allowed_key_arns",
              created=[new("k7.key")])
    cases.add("data_key: return_plaintext without no_log", data_key,
              {**dk, "dest": new("k8.key"), "return_plaintext": True}, r"no_log", created=[new("k8.key")])
    cases.add("data_key: unknown option", data_key, {**dk, "dest": new("k9.key"), "bytes": 32}, r"bytes",
              created=[new("k9.key")])


def import_cases(cases, scene, app_key):
    """envelope.kms.import_openssl: every case fails before the blob's KMS Decrypt."""
    module, new = "envelope.kms.import_openssl", scene.new
    base = {"src": scene.legacy, "encrypted_data_key_file": scene.blob, "key_id": ["alias/app"]}

    def add(name, change, expect, dest="i.kms", **kwargs):
        args = {**base, "dest": new(dest), **change}
        cases.add(f"import_openssl: {name}", module, {key: value for key, value in args.items() if value is not None},
                  expect, created=kwargs.pop("created", [new(dest)]), **kwargs)

    add("no blob", {"encrypted_data_key_file": None}, r"one of the following is required", dest="i1.kms")
    add("blob and blob file", {"encrypted_data_key": "AQID"}, r"mutually exclusive", dest="i2.kms")
    add("src and files", {"files": [{"src": scene.legacy, "dest": new("i3b.kms")}]}, r"mutually exclusive",
        dest="i3.kms")
    add("files empty", {"src": None, "dest": None, "files": []}, r"files is empty", created=[])
    add("files entry without dest", {"src": None, "dest": None, "files": [{"src": scene.legacy}]}, r"dest",
        created=[])
    add("src without dest", {"dest": None}, r"required together", created=[])
    add("digest not a choice", {"digest": "sha3"}, r"digest", dest="i4.kms")
    add("cipher not a choice", {"cipher": "aes-256-gcm"}, r"cipher", dest="i5.kms")
    add("iterations 0", {"iterations": 0}, r"iterations must be a whole number", dest="i6.kms")
    add("iterations not a number", {"iterations": "many"}, r"iterations", dest="i7.kms")
    add("checksum without algorithm", {"checksum": "ab" * 32}, r"<algorithm>:<hex digest>", dest="i8.kms")
    add("checksum too short", {"checksum": "sha256:abcd"}, r"64 hex digits", dest="i9.kms")
    add("mode not a mode", {"mode": "rwxbogus"}, r"mode", dest="i10.kms")
    add("owner missing", {"owner": "no-such-user-x"}, r"does not exist", dest="i11.kms")
    add("unknown option", {"md": "md5"}, UNKNOWN, dest="i12.kms")
    add("key_id empty", {"key_id": []}, r"key_id", dest="i13.kms")
    add("src a directory", {"src": scene.adir}, NOT_REGULAR, dest="i14.kms")
    add("src missing", {"src": scene.missing}, MISSING, dest="i15.kms")
    add("src a FIFO", {"src": scene.fifo(cases)}, NOT_REGULAR, dest="i16.kms", fifo=True)
    add("src a device", {"src": scene.zero_node}, NOT_REGULAR, dest="i17.kms", fifo=True)
    add("src not openssl enc output", {"src": scene.envelope}, r"does not start with Salted__", dest="i18.kms")
    add("src the dest", {"dest": scene.legacy}, r"is the src file itself", created=[])
    add("blob file the dest", {"dest": scene.blob}, r"is the encrypted_data_key_file file itself", created=[])
    add("blob file a FIFO", {"encrypted_data_key_file": scene.fifo(cases)}, NOT_REGULAR, dest="i19.kms", fifo=True)
    add("blob file missing", {"encrypted_data_key_file": scene.missing}, MISSING, dest="i20.kms")
    add("blob text not base64", {"encrypted_data_key_file": None, "encrypted_data_key": "not base64!"},
        r"not base64 text", dest="i21.kms")
    add("context too large", {"encryption_context": {"k": "v" * 70000}}, r"larger than the \d+ bytes an envelope header holds", dest="i22.kms")
    add("dest a directory", {"dest": scene.adir}, NOT_REGULAR, created=[])
    add("dest in a missing directory", {"dest": scene.nodir}, r"cannot write in|does not exist",
        created=[os.path.dirname(scene.nodir)])


def controller_cases(cases, scene, app_key):
    copy, encrypt = "envelope.kms.copy", "envelope.kms.encrypt"
    good, new, plain = scene.envelope, scene.new, scene.plain
    base = {"key_id": ["alias/app"]}
    cases.add("copy: src missing", copy, {**base, "src": scene.missing, "dest": new("c1.enc")}, MISSING,
              created=[new("c1.enc")])
    # a directory src is a tree of files to encrypt: one that is not a regular file stops it all
    holding = os.path.join(scene.dir, "tree-with-fifo")
    os.makedirs(holding)
    os.rename(scene.fifo(cases), os.path.join(holding, "pipe"))
    cases.fifos[-1] = os.path.join(holding, "pipe")
    cases.add("copy: src a directory holding a FIFO", copy, {**base, "src": holding + "/", "dest": new("c2.enc")},
              NOT_REGULAR, created=[new("c2.enc")], fifo=True)
    cases.add("copy: content with dest an existing directory", copy, {**base, "content": "x", "dest": scene.adir},
              r"can not use content with a dir as dest", created=[os.path.join(scene.adir, "adir")])
    cases.add("copy: src a FIFO", copy, {**base, "src": scene.fifo(cases), "dest": new("c3.enc")}, NOT_REGULAR,
              created=[new("c3.enc")], fifo=True)
    cases.add("copy: src /dev/zero", copy, {**base, "src": "/dev/zero", "dest": new("c4.enc")}, NOT_REGULAR,
              created=[new("c4.enc")], fifo=True)
    cases.add("copy: src and content", copy, {**base, "src": plain, "content": "x", "dest": new("c5.enc")},
              r"mutually exclusive", created=[new("c5.enc")])
    cases.add("copy: neither src nor content", copy, {**base, "dest": new("c6.enc")}, r"src|content",
              created=[new("c6.enc")])
    cases.add("copy: key_id missing", copy, {"content": "x", "dest": new("c7.enc")}, r"key_id",
              created=[new("c7.enc")])
    cases.add("copy: key_id an empty list", copy, {"key_id": [], "content": "x", "dest": new("c8.enc")}, r"key",
              created=[new("c8.enc")])
    cases.add("copy: algorithm not a choice", copy, {**base, "content": "x", "dest": new("c9.enc"),
                                                     "algorithm": "AES_128"}, r"algorithm", created=[new("c9.enc")])
    for value in (100, 0, -128, 128 * 1024 * 1024, "big"):
        cases.add(f"copy: frame_length {value!r}", copy, {**base, "content": "x", "dest": new(f"c10-{value}.enc"),
                                                          "frame_length": value}, r"frame[ _]length",
                  created=[new(f"c10-{value}.enc")])
    cases.add("copy: encryption_context not a dict", copy, {**base, "content": "x", "dest": new("c11.enc"),
                                                            "encryption_context": "x"}, r"encryption_context|dict",
              created=[new("c11.enc")])
    cases.add("copy: reserved context key", copy, {**base, "content": "x", "dest": new("c12.enc"),
                                                   "encryption_context": {"aws-crypto-x": "y"}}, r"reserved",
              created=[new("c12.enc")])
    cases.add("copy: remote_src", copy, {**base, "src": plain, "dest": new("c13.enc"), "remote_src": True},
              r"remote_src", created=[new("c13.enc")])
    cases.add("copy: unknown option", copy, {**base, "content": "x", "dest": new("c14.enc"), "destination": "y"},
              r"destination", created=[new("c14.enc")])
    cases.add("copy: content with dest ending in /", copy, {**base, "content": "x", "dest": scene.adir + "/"},
              r"dest")
    cases.add("copy: mode not a mode", copy, {**base, "content": "x", "dest": new("c15.enc"), "mode": "rwxbogus"},
              r"mode", created=[new("c15.enc")])
    cases.add("copy: diff_plaintext not a bool", copy, {**base, "content": "x", "dest": new("c16.enc"),
                                                        "diff_plaintext": "maybe"}, r"diff_plaintext",
              created=[new("c16.enc")])
    cases.add("copy: src is dest", copy, {**base, "src": plain, "dest": plain}, r"same")
    cases.add("copy: dest a FIFO", copy, {**base, "content": "x", "dest": scene.fifo(cases)},
              NOT_REGULAR + "|[Ff]IFO|special", fifo=True)
    cases.add("encrypt: dest a directory", encrypt, {**base, "content": "x", "dest": scene.adir}, r"directory")
    cases.add("encrypt: dest in a missing directory", encrypt, {**base, "content": "x", "dest": scene.nodir},
              r"does not exist", created=[os.path.dirname(scene.nodir)])
    cases.add("encrypt: mode not octal", encrypt, {**base, "content": "x", "dest": new("e1.enc"), "mode": "rw-"},
              r"mode", created=[new("e1.enc")])
    cases.add("encrypt: mode out of range", encrypt, {**base, "content": "x", "dest": new("e2.enc"),
                                                      "mode": 99999}, r"mode", created=[new("e2.enc")])
    cases.add("encrypt: src is dest", encrypt, {**base, "src": plain, "dest": plain}, r"same")
    cases.add("encrypt: frame_length 129", encrypt, {**base, "content": "x", "dest": new("e3.enc"),
                                                     "frame_length": 129}, r"frame[ _]length",
              created=[new("e3.enc")])
    cases.add("encrypt: src a FIFO", encrypt, {**base, "src": scene.fifo(cases), "dest": new("e4.enc")},
              NOT_REGULAR, created=[new("e4.enc")], fifo=True)
    cases.add("encrypt: src /dev/zero", encrypt, {**base, "src": "/dev/zero", "dest": new("e5.enc")}, NOT_REGULAR,
              created=[new("e5.enc")], fifo=True)
    cases.add("encrypt: force not a bool", encrypt, {**base, "content": "x", "dest": new("e6.enc"),
                                                     "force": "maybe"}, r"force", created=[new("e6.enc")])
    cases.add("encrypt: dest a FIFO", encrypt, {**base, "content": "x", "dest": scene.fifo(cases)},
              NOT_REGULAR + "|[Ff]IFO|special", fifo=True)
    cases.add("encrypt: dest a device", encrypt, {**base, "content": "x", "dest": scene.zero_node},
              NOT_REGULAR + "|device|special", fifo=True)
    cases.add("encrypt: unknown option", encrypt, {**base, "content": "x", "dest": new("e7.enc"), "owner": "root"},
              r"owner", created=[new("e7.enc")])
    cases.add("encrypt: algorithm not a choice", encrypt, {**base, "content": "x", "dest": new("e8.enc"),
                                                           "algorithm": "ROT13"}, r"algorithm",
              created=[new("e8.enc")])
    lookup = "lookup"
    cases.add("lookup: file missing", lookup, ([scene.missing], {}), MISSING)
    cases.add("lookup: a directory", lookup, ([scene.adir], {}), NOT_REGULAR + "|not found")
    cases.add("lookup: a FIFO", lookup, ([scene.fifo(cases)], {}), NOT_REGULAR, fifo=True)
    cases.add("lookup: /dev/zero", lookup, (["/dev/zero"], {}), NOT_REGULAR, fifo=True)
    cases.add("lookup: /dev/null", lookup, (["/dev/null"], {}), NOT_REGULAR + "|empty", fifo=True)
    cases.add("lookup: encoding not a choice", lookup, ([good], {"encoding": "hex"}), r"encoding")
    cases.add("lookup: unknown option", lookup, ([good], {"encryption_contex": CONTEXT}), r"encryption_contex")
    cases.add("lookup: allowed_key_arns an alias", lookup, ([good], {"allowed_key_arns": ["alias/app"]}),
              r"allowed")
    cases.add("lookup: allowed keys and discovery accounts", lookup,
              ([good], {"allowed_key_arns": [app_key.arn], "discovery_account_ids": ["123456789012"]}),
              r"mutually exclusive")
    cases.add("lookup: rstrip not a bool", lookup, ([good], {"rstrip": "maybe"}), r"rstrip")
    cases.add("lookup: encryption_context not a dict", lookup, ([good], {"encryption_context": "x"}),
              r"encryption_context|dict")
    cases.add("lookup: account id not digits", lookup, ([good], {"discovery_account_ids": ["abcdefghijkl"]}),
              r"discovery_account_ids")
    cases.add("lookup: partition without accounts", lookup, ([good], {"discovery_partition": "aws"}),
              r"discovery_partition|requires")


def variables_cases(cases, scene, app_key):
    """The secrets-as-variables plugins: the vars_file, load_vars and vault_rekey actions, the filter."""
    new = os.path.join(scene.dir, "new.kms.yml")
    vars_file = "envelope.kms.vars_file"
    cases.add("vars_file: unknown option", vars_file, {"path": new, "key_id": "alias/app", "valuez": {}}, UNKNOWN,
              created=[new])
    cases.add("vars_file: values not a mapping", vars_file, {"path": new, "key_id": "alias/app", "values": ["x"]},
              r"values", created=[new])
    cases.add("vars_file: no key for a new file", vars_file, {"path": new, "values": {"a": "x"}}, r"key_id is required",
              created=[new])
    cases.add("vars_file: directory missing", vars_file, {"path": scene.nodir, "key_id": "alias/app",
                                                          "values": {"a": "x"}}, r"directory does not exist")
    cases.add("vars_file: path a directory", vars_file, {"path": scene.adir, "key_id": "alias/app",
                                                         "values": {"a": "x"}}, NOT_REGULAR)
    cases.add("vars_file: path a FIFO", vars_file, {"path": scene.fifo(cases), "key_id": "alias/app",
                                                    "values": {"a": "x"}}, NOT_REGULAR, fifo=True)
    cases.add("vars_file: src a FIFO", vars_file, {"path": new, "key_id": "alias/app", "src": scene.fifo(cases)},
              NOT_REGULAR, created=[new], fifo=True)
    cases.add("vars_file: src /dev/zero", vars_file, {"path": new, "key_id": "alias/app", "src": "/dev/zero"},
              NOT_REGULAR, created=[new], fifo=True)
    cases.add("vars_file: src missing", vars_file, {"path": new, "key_id": "alias/app", "src": scene.missing},
              MISSING, created=[new])
    cases.add("vars_file: mode 0999", vars_file, {"path": new, "key_id": "alias/app", "values": {"a": "x"},
                                                  "mode": "0999"}, r"mode", created=[new])
    cases.add("vars_file: encryption_context a string", vars_file,
              {"path": new, "key_id": "alias/app", "values": {"a": "x"}, "encryption_context": "app=billing"},
              r"encryption_context must be a dictionary", created=[new])
    cases.add("vars_file: a key both clear and secret", vars_file,
              {"path": new, "key_id": "alias/app", "values": {"a": "x"}, "clear_values": {"a": "y"}},
              r"in both values and clear_values", created=[new])
    cases.add("vars_file: remove a number", vars_file, {"path": new, "key_id": "alias/app", "remove": [5]},
              r"key path", created=[new])
    cases.add("vars_file: src_secrets not a choice", vars_file,
              {"path": new, "key_id": "alias/app", "src": scene.plain, "src_secrets": "some"}, r"src_secrets",
              created=[new])
    cases.add("vars_file: a value that is not JSON", vars_file,
              {"path": new, "key_id": "alias/app", "values": {"a": float("inf")}}, r"cannot be stored", created=[new])

    load_vars = "envelope.kms.load_vars"
    cases.add("load_vars: file missing", load_vars, {"file": scene.missing}, MISSING)
    cases.add("load_vars: a directory", load_vars, {"file": scene.adir}, NOT_REGULAR)
    cases.add("load_vars: a FIFO", load_vars, {"file": scene.fifo(cases)}, NOT_REGULAR, fifo=True)
    cases.add("load_vars: /dev/zero", load_vars, {"file": "/dev/zero"}, NOT_REGULAR, fifo=True)
    cases.add("load_vars: unknown option", load_vars, {"file": scene.missing, "nam": "x"}, UNKNOWN)
    cases.add("load_vars: allowed_key_arns an alias", load_vars, {"file": scene.missing, "allowed_key_arns": ["alias/app"]},
              r"ARN")
    cases.add("load_vars: allowed keys and discovery accounts", load_vars,
              {"file": scene.missing, "allowed_key_arns": [app_key.arn], "discovery_account_ids": ["123456789012"]},
              r"mutually exclusive")

    rekey = "envelope.kms.vault_rekey"
    cases.add("vault_rekey: unknown option", rekey, {"paths": [scene.plain], "vault_id": "prod", "vaultid": "x"}, UNKNOWN)
    cases.add("vault_rekey: vault_id with a slash", rekey, {"paths": [scene.plain], "vault_id": "../prod"},
              r"invalid vault id")
    cases.add("vault_rekey: no vault secret in the run", rekey, {"paths": [scene.plain], "vault_id": "prod"},
              r"no vault secret was given to this run")

    sealed = "envelope-kms:v1:AgR4"
    cases.add("filter: unknown option", "filter", (sealed, {"colour": "red"}), r"unknown option.*colour")
    cases.add("filter: a number", "filter", (5, {}), r"expects an envelope value")
    cases.add("filter: encryption_context a string", "filter", (sealed, {"encryption_context": "app=billing"}),
              r"encryption_context must be a dictionary")
    cases.add("filter: an empty key", "filter", (sealed, {"key": ""}), r"invalid key path")
    cases.add("filter: allowed_key_arns a mapping", "filter", (sealed, {"allowed_key_arns": {"a": 1}}),
              r"allowed_key_arns must be a list")
    cases.add("filter: not base64", "filter", ("envelope-kms:v1:***", {}), r"not base64")
    cases.add("filter: validate_certs not a bool", "filter", (sealed, {"validate_certs": "maybe"}), r"validate_certs must be a boolean")


def run_cases(build, prefix, playbook, kms_server, app_key, scene, tally, defects=False):
    cases = Cases(playbook, prefix, defects)
    for builder in build:
        builder(cases, scene, app_key)
    run = cases.run_and_check(kms_server, tally, scene.dir)
    tally.case(CATEGORY, "secret=1" not in run.stdout + run.stderr, f"{prefix}: plaintext in the output")
    tally.check()
    return cases


def test_key_management_modules(playbook, kms_server, app_key, scene, tally):
    assert len(run_cases([key_management_cases], "KEYMGMT", playbook, kms_server, app_key, scene, tally).items) >= 30


def test_decrypt_module(playbook, kms_server, app_key, scene, tally):
    assert len(run_cases([decrypt_module_cases], "DECRYPT", playbook, kms_server, app_key, scene, tally).items) >= 20


def test_rewrap_and_data_key_modules(playbook, kms_server, app_key, scene, tally):
    cases = run_cases([rewrap_and_data_key_cases], "REWRAPDK", playbook, kms_server, app_key, scene, tally)
    assert len(cases.items) >= 25


def test_import_openssl_module(playbook, kms_server, app_key, scene, tally):
    assert len(run_cases([import_cases], "IMPORT", playbook, kms_server, app_key, scene, tally).items) >= 25


def test_controller_plugins(playbook, kms_server, app_key, scene, tally):
    assert len(run_cases([controller_cases], "CONTROL", playbook, kms_server, app_key, scene, tally).items) >= 35


def test_secrets_as_variables_plugins(playbook, kms_server, app_key, scene, tally):
    cases = run_cases([variables_cases], "VARS", playbook, kms_server, app_key, scene, tally)
    assert len(cases.items) >= 30
