"""Hostile input, secret hygiene: plaintext and data keys never touch disk and never appear in output.

Full playbooks exercise every plugin that handles a secret (copy from a file and from content, with
--diff; the decrypt module to a file and as returned content; the lookup feeding a no_log template;
data_key, its plaintext returned under no_log; rewrap) under -vvv, with the JSON callback and with the
default one under ANSIBLE_DEBUG=1, and with ANSIBLE_KEEP_REMOTE_FILES=1 so that every module payload
and transferred file stays in the temp dirs to be read. Then nothing on disk (but the plaintext
sources the test wrote and the plaintext files the playbook was meant to write) and no line of any
output holds the marker secret or any data key behind any envelope or data key file (recovered with
KMS Decrypt from what was written), raw, base64 or hex.

One run shows plaintext on purpose (copy's diff_plaintext=true on a change): its stdout is the
proof that the scan finds the marker when it is there, and only its stderr is held to the rule.
"""

import os
import re
import subprocess
import uuid

import pytest
import yaml

from ansible_collections.envelope.kms.plugins.plugin_utils.action import AWS_OPTIONS
from tests.harness import esdk, leaks
from tests.harness.openssl_recipe import Recipe
from tests.harness.playbook import ANSIBLE_PLAYBOOK, PlaybookRun

CATEGORY = "secret hygiene"
CONTEXT = {"app": "billing", "suite": "hostile-secret-hygiene"}
# 39 characters, a multiple of 3: the base64 of any plaintext starting with it starts with its own base64
MARKER = f"MARKER-{uuid.uuid4().hex}"


def read(path):
    with open(path, "rb") as handle:
        return handle.read()


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def mode_of(path):
    return f"{os.stat(path).st_mode & 0o777:04o}"


class Layout:
    """The paths of one test: sources (plaintext the test wrote), the host's files, and the plays."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.sources = os.path.join(workdir, "sources")
        self.host = os.path.join(workdir, "hosts", "localhost")
        self.app_src = os.path.join(self.sources, "app.env")
        self.content_src = os.path.join(self.sources, "content.txt")
        self.template_src = os.path.join(self.sources, "app.conf.j2")
        self.app_enc = os.path.join(self.host, "app.env.enc")
        self.content_enc = os.path.join(self.host, "content.enc")
        self.plain_app = os.path.join(self.host, "plain", "app.env")
        self.plain_conf = os.path.join(self.host, "plain", "app.conf")
        self.keys = os.path.join(self.host, "keys")
        self.logs = os.path.join(workdir, "logs")
        self.imported = os.path.join(self.host, "imported.kms")
        self.recipe = None  # the openssl recipe's folder (make_legacy)

    def make_legacy(self, kms):
        """A file of the openssl recipe holding the marker, and its data key blob (import_openssl)."""
        self.recipe = Recipe(kms, os.path.join(self.workdir, "legacy"), "alias/app")
        self.recipe.encrypt("legacy.env", f"{MARKER} legacy secret\n".encode())

    def write_sources(self, version):
        write(self.app_src, f"{MARKER} app secret {version}\n")
        write(self.content_src, f"{MARKER} content secret {version}")
        write(self.template_src, "[database]\npassword = {{ db_secret }}\n")

    def copy_tasks(self, diff_plaintext):
        common = {"key_id": "alias/app", "encryption_context": CONTEXT, "backup": True,
                  "diff_plaintext": diff_plaintext}
        return [
            {"name": "Copy a file", "envelope.kms.copy": dict(common, src=self.app_src, dest=self.app_enc, mode="0640")},
            # content carries the secret itself, with no no_log on the task: the option is no_log
            {"name": "Copy content", "envelope.kms.copy": dict(
                common, content=f"{{{{ lookup('ansible.builtin.file', {self.content_src!r}) }}}}",
                dest=self.content_enc, mode="0600")},
        ]

    def all_tasks(self, key_arns, returns=True):
        """Every plugin at work; ``returns``: with the tasks that return a secret (under no_log)."""
        policy = {"encryption_context": CONTEXT, "allowed_key_arns": key_arns}
        lookup = (f"{{{{ lookup('envelope.kms.decrypt', {self.app_enc!r}, encryption_context={CONTEXT!r}, "
                  f"allowed_key_arns={key_arns!r}) }}}}")
        data_key = {"key_id": "alias/app", "encryption_context": CONTEXT}
        tasks = self.copy_tasks(diff_plaintext=False) + [
            {"name": "Decrypt to a file", "envelope.kms.decrypt": dict(policy, src=self.app_enc, dest=self.plain_app)},
            {"name": "Decrypt to a variable",
             "envelope.kms.decrypt": dict(policy, src=self.content_enc, return_content=True),
             "register": "decrypted", "no_log": True},
            {"name": "Use the variable", "ansible.builtin.assert": {"that": [
                f"decrypted.content == lookup('ansible.builtin.file', {self.content_src!r})"]}, "no_log": True},
            {"name": "Template with the lookup", "ansible.builtin.template": {
                "src": self.template_src, "dest": self.plain_conf, "mode": "0600"},
             "vars": {"db_secret": lookup}, "no_log": True},
            {"name": "Data key", "envelope.kms.data_key": dict(data_key, dest=os.path.join(self.keys, "data.key"))},
            {"name": "Data key as base64", "envelope.kms.data_key": dict(
                data_key, dest=os.path.join(self.keys, "data.b64"), encoding="base64", mode="0640")},
            {"name": "Data key with its plaintext", "envelope.kms.data_key": dict(
                data_key, dest=os.path.join(self.keys, "used.key"), return_plaintext=True),
             "register": "plain_key", "no_log": True},
            {"name": "Use the plaintext data key", "ansible.builtin.assert": {"that": [
                "plain_key.plaintext | length == 44"]}, "no_log": True},
            {"name": "Data key replaced", "envelope.kms.data_key": dict(
                data_key, dest=os.path.join(self.keys, "forced.key"), force=True, backup=True)},
            {"name": "Import a legacy file", "envelope.kms.import_openssl": {
                "src": os.path.join(self.recipe.folder, "legacy.env.enc"), "dest": self.imported,
                "encrypted_data_key_file": self.recipe.blob_file, "key_id": "alias/app", "encryption_context": CONTEXT}},
            {"name": "Rewrap", "envelope.kms.rewrap": {
                "path": os.path.join(self.host, "*.enc"), "key_id": "alias/second", "backup": True,
                "required_encryption_context": CONTEXT, "allowed_key_arns": key_arns}},
        ]
        returning = {"Decrypt to a variable", "Use the variable", "Data key with its plaintext", "Use the plaintext data key"}
        return [task for task in tasks if returns or task["name"] not in returning]


def run_playbook(playbook, layout, tasks, *args, callback="ansible.posix.json", log=None, debug=False):
    """One ansible-playbook run with remote files kept and temp dirs under the test's folder:
    (completed process, PlaybookRun or None for the default callback)."""
    plays = [{"name": "Secret hygiene", "hosts": "targets", "gather_facts": False, "tasks": tasks}]
    path = playbook.write(yaml.safe_dump(plays, sort_keys=False))
    env = playbook.env()  # ANSIBLE_LOCAL_TEMP, ANSIBLE_REMOTE_TEMP and ANSIBLE_HOME under the test's folder
    env.update(ANSIBLE_KEEP_REMOTE_FILES="1", ANSIBLE_STDOUT_CALLBACK=callback,
               ANSIBLE_REMOTE_TMP=env["ANSIBLE_REMOTE_TEMP"], ANSIBLE_LOCAL_TMP=env["ANSIBLE_LOCAL_TEMP"])
    env.pop("ANSIBLE_LOG_PATH", None)
    env.pop("ANSIBLE_DEBUG", None)
    if log:
        env["ANSIBLE_LOG_PATH"] = os.path.join(layout.logs, log)
    if debug:
        env["ANSIBLE_DEBUG"] = "1"
    completed = subprocess.run([ANSIBLE_PLAYBOOK, "-i", playbook.inventory, path, *args], env=env, cwd=playbook.workdir,
                               capture_output=True, text=True, check=False)
    if callback == "ansible.posix.json":
        return completed, PlaybookRun(completed).assert_ok()
    assert completed.returncode == 0, f"rc={completed.returncode}\n{completed.stdout[-3000:]}\n{completed.stderr[-2000:]}"
    return completed, None


def recover_data_keys(root, kms):
    """{data key: where it came from} for every envelope and every data key file under root."""
    found = {}
    for path in leaks.files_under(root):
        header = leaks.envelope_header(path)
        if header is not None:
            for key in leaks.envelope_data_keys(header, kms):
                found.setdefault(key, path)
            continue
        if os.path.basename(path).split(".")[0] in ("data", "used", "forced") and "keys" in path.split(os.sep):
            key = leaks.wrapped_data_key(path, kms, CONTEXT)
            assert key is not None, f"{path}: KMS cannot decrypt this data key file"
            found.setdefault(key, path)
    return found


def library_data_keys(kms_server, path):
    """The data keys the reference library itself unwraps to decrypt the envelope at ``path``."""
    provider = esdk.provider(kms_server)
    unwrap = provider.decrypt_data_key
    used = []

    def recording(*args, **kwargs):
        data_key = unwrap(*args, **kwargs)
        used.append(bytes(data_key.data_key))
        return data_key

    provider.decrypt_data_key = recording  # the library calls it through the instance
    esdk.client().decrypt(source=read(path), key_provider=provider)
    return used


def test_no_plaintext_or_data_key_on_disk_or_in_output(playbook, kms, kms_server, app_key, tally):
    second = kms.create_key(Description="second")["KeyMetadata"]
    kms.create_alias(AliasName="alias/second", TargetKeyId=second["KeyId"])
    key_arns = [app_key.arn, second["Arn"]]
    layout = Layout(playbook.workdir)
    os.makedirs(layout.keys)
    os.makedirs(os.path.dirname(layout.plain_app))
    os.makedirs(layout.logs)

    layout.write_sources("v1")
    layout.make_legacy(kms)
    first, first_run = run_playbook(playbook, layout, layout.all_tasks(key_arns), "-vvv", "--diff", log="first.log")
    assert first_run.result("Copy a file")["changed"] is True
    assert first_run.result("Rewrap")["changed"] is True
    assert first_run.result("Import a legacy file")["changed"] is True

    # A change with diff_plaintext=true shows the plaintext in the diff, on purpose.
    layout.write_sources("v2")
    shown, shown_run = run_playbook(playbook, layout, layout.copy_tasks(diff_plaintext=True), "--diff")
    assert shown_run.result("Copy a file")["changed"] is True

    # ANSIBLE_DEBUG prints every module's raw output, no_log or not (ansible-core documents that debug
    # output "can also include secret information despite no_log"): the tasks that return a secret
    # on request (decrypt's return_content, data_key's return_plaintext) are left out of this run.
    layout.write_sources("v3")
    debug, _debug_log = run_playbook(playbook, layout, layout.all_tasks(key_arns, returns=False), "-vvv", "--diff",
                                     callback="default", log="debug.log", debug=True)

    # The plays did their work, and the temp dirs were kept to be read.
    assert read(layout.plain_app).decode() == f"{MARKER} app secret v3\n"
    assert read(layout.plain_conf).decode() == f"[database]\npassword = {MARKER} app secret v3\n"
    remote_tmp = playbook.env()["ANSIBLE_REMOTE_TEMP"]
    kept = [path for path in leaks.files_under(remote_tmp) if os.path.basename(path).startswith("AnsiballZ_")]
    assert len(kept) >= 10, f"ANSIBLE_KEEP_REMOTE_FILES kept no module payloads in {remote_tmp}: {kept}"
    assert all(os.path.getsize(os.path.join(layout.logs, log)) > 0 for log in ("first.log", "debug.log"))
    debug_lines = re.compile(r"^ *\d+ \d+\.\d+: ", re.MULTILINE)  # " PID TIME: message", ANSIBLE_DEBUG's lines
    assert not debug_lines.search(first.stdout) and len(debug_lines.findall(debug.stdout)) > 100

    data_keys = recover_data_keys(playbook.workdir, kms)
    envelopes = {path for path in data_keys.values() if leaks.envelope_header(path) is not None}
    assert len(envelopes) >= 6, f"too few envelopes to recover data keys from: {sorted(envelopes)}"
    assert all(len(key) in (16, 24, 32) for key in data_keys), "a recovered data key has an odd length"
    # The keys recovered are those the library decrypts with (the file now at app.env.enc, for one).
    unwrapped = set(library_data_keys(kms_server, layout.app_enc))
    assert unwrapped == set(leaks.envelope_data_keys(leaks.envelope_header(layout.app_enc), kms)) != set()
    assert unwrapped <= set(data_keys)
    needles = leaks.Needles().add("the marker", MARKER)
    # the recipe's plaintext data key, whose base64 text is the openssl passphrase
    needles.add("the legacy data key", kms.decrypt(CiphertextBlob=read(layout.recipe.blob_file))["Plaintext"])
    key_needles = leaks.Needles()
    for number, key in enumerate(data_keys):
        needles.add(f"data key {number} (of {os.path.basename(data_keys[key])})", key)
        key_needles.add(f"data key {number} (of {os.path.basename(data_keys[key])})", key)

    # The scan finds what is there: the run that shows plaintext on purpose holds the marker.
    assert needles.search(shown.stdout) == ["the marker (raw)"], needles.search(shown.stdout)

    streams = {"first run stdout": first.stdout, "first run stderr": first.stderr,
               "diff_plaintext run stderr": shown.stderr,
               "ANSIBLE_DEBUG run stdout": debug.stdout, "ANSIBLE_DEBUG run stderr": debug.stderr}
    for name, text in streams.items():
        found = sorted({f"line {number}: {item}" for number, line in enumerate(text.splitlines(), 1)
                        for item in needles.search(line)})
        tally.case(CATEGORY, not found, f"{name}: {found[:5]}")
    found = key_needles.search(shown.stdout)
    tally.case(CATEGORY, not found, f"diff_plaintext run stdout holds {found}")

    intended = {layout.app_src, layout.content_src, layout.plain_app, layout.plain_conf}
    scanned = 0
    for path in leaks.files_under(playbook.workdir, skip=intended):
        found = leaks.scan_file(path, needles)
        tally.case(CATEGORY, not found, f"{os.path.relpath(path, playbook.workdir)}: {found[:3]}")
        scanned += 1
    assert scanned >= 30, f"only {scanned} files to scan"

    # Every file written has its documented mode: copy's as given, decrypt's and data_key's 0600 by default.
    modes = {
        layout.app_enc: "0640",  # copy, as given (kept by rewrap)
        layout.content_enc: "0600",  # copy, as given (kept by rewrap)
        layout.plain_app: "0600",  # decrypt: 0600 by default, kept when replaced
        layout.plain_conf: "0600",  # template, as given
        os.path.join(layout.keys, "data.key"): "0600",  # data_key: 0600 by default
        os.path.join(layout.keys, "data.b64"): "0640",  # data_key, as given
        os.path.join(layout.keys, "used.key"): "0600",
        os.path.join(layout.keys, "forced.key"): "0600",  # replaced: keeps the mode
        layout.imported: "0600",  # import_openssl: 0600 by default
    }
    for path, expected in modes.items():
        actual = mode_of(path)
        tally.case(CATEGORY, actual == expected, f"{os.path.relpath(path, playbook.workdir)}: mode {actual}, "
                                                 f"documented {expected}")


# -- options that carry secrets are no_log

SECRET_NAME = re.compile(r"content|plaintext|secret|password|passwd|token|passphrase|private_key")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
MODULES = sorted(name[:-3] for name in os.listdir(os.path.join(ROOT, "plugins", "modules"))
                 if name.endswith(".py") and not name.startswith("_"))


class SpecCaptured(Exception):
    """Raised by the stand-in module class once it holds the argument spec."""


def module_argument_spec(name, monkeypatch):
    """The argument spec a module's main() builds (AWS options included), or None for a module
    that is only documentation for an action plugin."""
    module = __import__(f"ansible_collections.envelope.kms.plugins.modules.{name}", fromlist=["main"])
    if not hasattr(module, "main"):
        return None
    captured = {}

    def capture(*args, argument_spec=None, **kwargs):
        captured.update(argument_spec or (args[0] if args else {}))
        raise SpecCaptured()

    monkeypatch.setattr(module, "AnsibleAWSModule", capture)
    with pytest.raises(SpecCaptured):
        module.main()
    return dict(AWS_OPTIONS, **captured)  # AnsibleAWSModule adds the AWS options


def action_argument_spec(name):
    try:
        action = __import__(f"ansible_collections.envelope.kms.plugins.action.{name}", fromlist=["ActionModule"])
    except ImportError:
        return None
    return dict(AWS_OPTIONS, **action.ActionModule.ARGUMENT_SPEC)  # as EnvelopeActionBase.load_options builds it


def secret_options(spec, prefix=""):
    """(name, option) of every option, suboptions included, whose name says it carries a secret
    value (flags and choices, such as return_content or content_encoding, do not)."""
    for option_name, option in spec.items():
        names = [option_name, *option.get("aliases", ())]
        if (any(SECRET_NAME.search(item) for item in names) and option.get("type", "str") not in ("bool", "int")
                and not option.get("choices")):
            yield prefix + option_name, option
        if option.get("options"):
            yield from secret_options(option["options"], f"{prefix}{option_name}.")


def test_options_that_carry_secrets_are_no_log(monkeypatch, tally):
    specs = {}
    for name in MODULES:
        specs[f"module {name}"] = module_argument_spec(name, monkeypatch)
        specs[f"action {name}"] = action_argument_spec(name)
    specs = {label: spec for label, spec in specs.items() if spec is not None}
    assert {"action copy", "action encrypt", "module decrypt", "module data_key", "module rewrap"} <= set(specs)
    seen = set()
    for label, spec in sorted(specs.items()):
        for option_name, option in secret_options(spec):
            seen.add(option_name)
            tally.case(CATEGORY, option.get("no_log") is True,
                       f"{label}: option {option_name} carries a secret but is not no_log ({option})")
    # the options the rule is about were found: the content to encrypt and the AWS secrets
    assert {"content", "secret_key", "session_token"} <= seen, seen
