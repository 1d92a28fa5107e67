"""ansible-vault content for the "ansible-vault on KMS" tests (issue #13).

``make_tree`` lays out a tree of whole-file vaults and YAML files with inline ``!vault |`` values
(clear keys and comments between them) with ansible-core's own VaultLib, in process: no
``ansible-vault`` run per file. It returns what each file must decrypt to, so a test can compare
after a rekey or a migration. The other helpers read vault payloads back (``payloads``,
``decrypt_vars``), compare the non-vault bytes of a file (``non_vault_lines``), snapshot a tree
(``digests``), and run the envelope-kms-client script and ansible-vault.
"""

import hashlib
import os
import shutil
import subprocess

import yaml
from ansible.parsing.vault import VaultLib, VaultSecret, is_encrypted, parse_vaulttext_envelope

from tests.harness.playbook import ANSIBLE_PLAYBOOK, COLLECTIONS_PATH, ROOT
from tests.harness.vars_files import write_text

BIN = os.path.dirname(ANSIBLE_PLAYBOOK)
ANSIBLE_VAULT = os.path.join(BIN, "ansible-vault")
CLIENT = os.path.join(ROOT, ".build", "collections", "ansible_collections", "envelope", "kms", "scripts",
                      "envelope-kms-client")
PROG = "envelope-kms-client: "
INLINE_PAYLOADS_PER_FILE = 4


# -- vault payloads

def vault_lib(*passwords, labels=None):
    """A VaultLib holding these passwords (str), under ``labels`` (default 'default' each)."""
    labels = labels or ["default"] * len(passwords)
    return VaultLib([(label, VaultSecret(password.encode())) for label, password in zip(labels, passwords)])


def encrypt(plaintext, password, vault_id=None):
    """The vault text (str) of ``plaintext`` (str) under ``password``, with header 1.2 when ``vault_id``."""
    secret = VaultSecret(password.encode())
    return VaultLib([(vault_id or "default", secret)]).encrypt(plaintext, secret=secret, vault_id=vault_id).decode()


def inline(key, plaintext, password, indent="", vault_id=None):
    """The YAML lines of ``key: !vault |`` with its payload, at ``indent``."""
    lines = [f"{indent}{key}: !vault |\n"]
    lines += [f"{indent}          {line}\n" for line in encrypt(plaintext, password, vault_id).splitlines()]
    return "".join(lines)


def payloads(data):
    """The vault payloads (str, one line per payload line) of a file's bytes: the whole file, or
    each inline ``!vault |`` block."""
    if isinstance(data, str):
        data = data.encode()
    if is_encrypted(data):
        return [data.decode().strip()]
    found = []
    for line, block in _blocks(data.decode()):
        if block is not None:
            found.append("\n".join(item.strip() for item in block))
    return found


def payload_label(payload):
    """The vault id written in a payload's header (None for a 1.1 header)."""
    return parse_vaulttext_envelope(payload.encode())[3]


def non_vault_lines(text):
    """Every line of a file except the payload lines of its inline ``!vault |`` blocks."""
    return [line for line, _block in _blocks(text)]


def _blocks(text):
    """(line, payload lines below it or None) for each line outside a vault block."""
    lines = text.splitlines(keepends=True)
    out, index = [], 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if "!vault" not in line or not line.rstrip().endswith("|"):
            out.append((line, None))
            continue
        indent = _indent(line)
        block = []
        while index < len(lines) and lines[index].strip() and _indent(lines[index]) > indent:
            block.append(lines[index])
            index += 1
        out.append((line, block))
    return out


def _indent(line):
    return len(line) - len(line.lstrip(" "))


def decrypt_vars(data, lib):
    """The mapping a vars file holds (a whole-file vault or YAML with inline !vault values),
    decrypted with ``lib`` (a VaultLib): what Ansible would load. Raises AnsibleError when ``lib``
    cannot open a payload."""
    if isinstance(data, str):
        data = data.encode()
    if is_encrypted(data):
        data = lib.decrypt(data)

    class Loader(yaml.SafeLoader):  # pylint: disable=too-many-ancestors
        pass

    def vault(loader, node):
        return lib.decrypt(loader.construct_scalar(node).encode()).decode()

    Loader.add_constructor("!vault", vault)
    return yaml.load(data.decode(), Loader=Loader)  # noqa: S506 (SafeLoader plus one tag)


# -- a tree of vault files

class VaultTree:
    """``root``; ``whole`` and ``inline``: {relative path: the mapping it holds}; ``secret_keys``:
    {relative path: the top-level keys whose value (or a leaf below) was vault-encrypted}."""

    def __init__(self, root):
        self.root = root
        self.whole = {}
        self.inline = {}
        self.secret_keys = {}

    @property
    def files(self):
        return sorted(list(self.whole) + list(self.inline))

    def path(self, relative):
        return os.path.join(self.root, relative)

    def expected(self, relative):
        return self.whole.get(relative) or self.inline[relative]

    @property
    def payload_count(self):
        """Vault payloads in the tree: one per whole-file vault, four per inline file."""
        return len(self.whole) + INLINE_PAYLOADS_PER_FILE * len(self.inline)


def make_tree(root, password, whole=20, inline_files=3, vault_id=None):
    """Write ``whole`` whole-file vaults (group_vars/gNN.yml then host_vars/hNN/vault.yml) and
    ``inline_files`` YAML files with four inline values each (group_vars/inline_N.yml: clear keys,
    comments, a blank line, a nested mapping and a list around them) under ``root``, all under
    ``password``. Returns a VaultTree."""
    tree = VaultTree(root)
    for number in range(whole):
        relative = f"group_vars/g{number:02d}.yml" if number < whole // 2 else f"host_vars/h{number:02d}/vault.yml"
        values = {
            f"whole_{number}_password": f"whole-pw-{number}-{hashlib.sha256(str(number).encode()).hexdigest()[:12]}",
            f"whole_{number}_port": 5000 + number,
            f"whole_{number}_db": {"user": f"user{number}", "password": f"db pass {number} with spaces"},
        }
        plaintext = f"# whole-file vault {number}\n" + yaml.safe_dump(values, sort_keys=False)
        write_text(os.path.join(root, relative), encrypt(plaintext, password, vault_id) + "\n")
        tree.whole[relative] = values
        tree.secret_keys[relative] = list(values)
    for number in range(inline_files):
        relative = f"group_vars/inline_{number}.yml"
        prefix = f"app{number}"
        values = {
            f"{prefix}_name": f"application {number}",
            f"{prefix}_password": f"inline-pw-{number}-5e1c0d",
            f"{prefix}_port": 8000 + number,
            f"{prefix}_db": {"host": f"db{number}.example.com", "password": f"nested secret {number}"},
            f"{prefix}_token": f"tok-{number}-a8b7c6",
            f"{prefix}_hosts": ["alpha", "beta"],
            f"{prefix}_key": f"last-{number}",
        }
        text = (
            f"# inline vault values, file {number}: this comment stays\n"
            "---\n"
            f"{prefix}_name: \"application {number}\"   # a clear value with a comment\n"
            + inline(f"{prefix}_password", values[f"{prefix}_password"], password, vault_id=vault_id)
            + f"{prefix}_port: {8000 + number}\n"
            "\n"
            "# a nested mapping with a vault value inside\n"
            f"{prefix}_db:\n"
            f"  host: db{number}.example.com\n"
            + inline("password", values[f"{prefix}_db"]["password"], password, indent="  ", vault_id=vault_id)
            + inline(f"{prefix}_token", values[f"{prefix}_token"], password, vault_id=vault_id)
            + f"{prefix}_hosts:\n"
            "  - alpha\n"
            "  - beta\n"
            + inline(f"{prefix}_key", values[f"{prefix}_key"], password, vault_id=vault_id)
            + "# trailing comment\n"
        )
        write_text(os.path.join(root, relative), text)
        tree.inline[relative] = values
        tree.secret_keys[relative] = [f"{prefix}_password", f"{prefix}_db", f"{prefix}_token", f"{prefix}_key"]
    return tree


def digests(root):
    """{relative path: sha256} of every file under ``root``."""
    found = {}
    for directory, _dirs, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            with open(path, "rb") as handle:
                found[os.path.relpath(path, root)] = hashlib.sha256(handle.read()).hexdigest()
    return found


def read_bytes(path):
    with open(path, "rb") as handle:
        return handle.read()


# -- the client script and ansible-vault

def vault_env(runner, **changes):
    """The environment of ``runner`` (a PlaybookRunner: the local KMS endpoint) with this Python's
    bin folder first on PATH, plus ``changes`` (a value None removes the variable)."""
    env = runner.env()
    env["PATH"] = BIN + os.pathsep + env.get("PATH", "")
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def no_credentials(env):
    """``env`` without any AWS credentials source."""
    env = dict(env)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        env.pop(name, None)
    env.update(AWS_SHARED_CREDENTIALS_FILE="/nonexistent", AWS_CONFIG_FILE="/nonexistent",
               AWS_EC2_METADATA_DISABLED="true")
    return env


def run_client(env, cwd, *args):
    """The envelope-kms-client script itself (as ansible-core runs it: an executable)."""
    return subprocess.run([CLIENT, *args], env=env, cwd=cwd, capture_output=True, text=True, check=False)


def ansible_vault(env, cwd, *args):
    return subprocess.run([ANSIBLE_VAULT, *args], env=env, cwd=cwd, capture_output=True, text=True, check=False)


def client_password(env, cwd, label):
    """The password the client prints for ``label`` (asserting it succeeds quietly)."""
    done = run_client(env, cwd, "--vault-id", label)
    assert done.returncode == 0 and done.stderr == "", (done.returncode, done.stderr)
    assert done.stdout.endswith("\n") and done.stdout.count("\n") == 1, "one line"
    return done.stdout[:-1]


def client_error_line(done):
    """The one stderr line of a failed client run (asserting there is exactly one, and no output)."""
    assert done.returncode != 0, done.stdout
    assert done.stdout == "", "a failed client printed something on stdout"
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(PROG) and "Traceback" not in done.stderr, done.stderr
    return lines[0]


def in_ansible_error(line, stderr):
    """Whether the client's stderr line is quoted in ansible's error (ansible-core shows the
    script's stderr as a bytes repr)."""
    quoted = repr(line.encode())[2:-1]
    return line in stderr or quoted in stderr


def isolated_collection(directory):
    """A copy of this collection under ``directory`` (links to this tree, but a folder of its own
    for playbooks/, with copies of the playbooks), so that a playbook writing beside itself writes
    there and not into the repository. Returns the ANSIBLE_COLLECTIONS_PATH to use (the copy
    first, then the built collections for the dependencies)."""
    kms = os.path.join(directory, "ansible_collections", "envelope", "kms")
    os.makedirs(os.path.join(kms, "playbooks"))
    for name in os.listdir(ROOT):
        if name not in ("playbooks", ".git", ".venv", ".build", "tests", "bench"):
            os.symlink(os.path.join(ROOT, name), os.path.join(kms, name))
    for name in os.listdir(os.path.join(ROOT, "playbooks")):
        if os.path.isfile(os.path.join(ROOT, "playbooks", name)):
            shutil.copy(os.path.join(ROOT, "playbooks", name), os.path.join(kms, "playbooks", name))
    return directory + os.pathsep + COLLECTIONS_PATH
