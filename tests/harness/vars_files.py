"""Envelope vars files and the projects around them, for the "secrets as variables" tests.

``write_vars_file`` writes an envelope vars file with the collection's own writer
(``vars_file.update_tree``), so a test states its values and lets the format be the format.
``Project`` lays out an inventory (nested groups, N local-connection hosts) with ``group_vars/`` and
``host_vars/`` beside it, and runs ``ansible-playbook`` and ``ansible-inventory`` with the
``envelope.kms.vars`` plugin enabled, against the local KMS endpoint.
"""

import base64
import os
import subprocess
import sys

import yaml

from ansible_collections.envelope.kms.plugins.module_utils import vars_file
from ansible_collections.envelope.kms.plugins.module_utils.envelope import Engine, inspect_header
from tests.harness.playbook import ANSIBLE_PLAYBOOK, PlaybookRun

ANSIBLE_INVENTORY = os.path.join(os.path.dirname(sys.executable), "ansible-inventory")
VARS_ENABLED = "host_group_vars,envelope.kms.vars"


def write_text(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


def read_text(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def write_vars_file(kms, path, values=None, clear_values=None, key_arns=None, encryption_context=None):
    """Create (or update) the envelope vars file at ``path`` with the collection's writer: ``values``
    encrypted under ``key_arns`` (ARNs), ``clear_values`` in clear text. Returns its text."""
    engine = Engine(kms)
    tree = vars_file.parse(read_text(path).encode(), path) if os.path.exists(path) else {}
    request = vars_file.Request(path, values=values, clear_values=clear_values,
                                key_arns=list(key_arns) if key_arns else None, encryption_context=encryption_context)
    update = vars_file.update_tree(engine, tree, request)
    write_text(path, update.text)
    return update.text


def load_tree(path):
    """The parsed (still encrypted) mapping of a vars file."""
    return vars_file.parse(read_text(path).encode(), path)


def sealed_value(path, dotted_key):
    """The envelope-kms:v1: text of one key (``db.password``) of a vars file."""
    value = vars_file.get_leaf(load_tree(path), vars_file.key_path(dotted_key))
    assert vars_file.is_sealed(value), (path, dotted_key, value)
    return value


def message_of(sealed):
    """The ESDK message bytes of an envelope-kms:v1: value."""
    assert sealed.startswith(vars_file.MARKER), sealed
    return base64.b64decode(sealed[len(vars_file.MARKER):], validate=True)


def header_key_arns(path):
    """The key ARNs of every encrypted value of a file, read from the headers (no KMS call)."""
    return {vars_file.dotted(key): inspect_header(message_of(value)).key_arns
            for key, value in vars_file.sealed_leaves(load_tree(path))}


class Project:
    """An inventory with nested groups and local hosts, group_vars/ and host_vars/ beside it.

    ``groups``: {group: [child groups]} (children sections); ``hosts``: {group: [hosts]}. Every host
    is a local-connection host running this Python. Playbooks run with the envelope.kms.vars plugin
    enabled, through the ``runner`` (a PlaybookRunner) so that they share its environment.
    """

    def __init__(self, runner, hosts, groups=None):
        self.runner = runner
        self.root = runner.workdir
        self.inventory = os.path.join(self.root, "inventory.ini")
        lines = []
        for group, names in hosts.items():
            lines.append(f"[{group}]")
            lines += [f"{name} ansible_connection=local ansible_python_interpreter={sys.executable}" for name in names]
            lines.append("")
        for group, children in (groups or {}).items():
            lines.append(f"[{group}:children]")
            lines += list(children)
            lines.append("")
        write_text(self.inventory, "\n".join(lines))
        runner.inventory = self.inventory

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def group_file(self, name):
        return self.path("group_vars", name)

    def host_file(self, name):
        return self.path("host_vars", name)

    def env(self, **extra):
        return dict(self.runner.env(), ANSIBLE_VARS_ENABLED=VARS_ENABLED, **extra)

    def _playbook_command(self, playbook, args):
        if isinstance(playbook, list):
            playbook = yaml.safe_dump(playbook, sort_keys=False)
        if "\n" in playbook:
            playbook = self.runner.write(playbook)
        return [ANSIBLE_PLAYBOOK, "-i", self.inventory, playbook, *args]

    def _call(self, command, env):
        return subprocess.run(command, env=env, capture_output=True, text=True, cwd=self.root, check=False)

    def run(self, playbook, *args, env=None):
        """ansible-playbook on this inventory (the JSON callback): a PlaybookRun. ``playbook`` is
        YAML text, a path, or a list of plays; ``env``: more environment variables."""
        return PlaybookRun(self._call(self._playbook_command(playbook, args), self.env(**(env or {}))))

    def run_raw(self, playbook, *args, env=None):
        """Like run(), with the default stdout callback (what users see): the CompletedProcess."""
        environment = self.env(**(env or {}))
        del environment["ANSIBLE_STDOUT_CALLBACK"]
        return self._call(self._playbook_command(playbook, args), environment)

    def inventory_list(self, *args, env=None):
        """ansible-inventory --list on this inventory: the CompletedProcess."""
        return self._call([ANSIBLE_INVENTORY, "-i", self.inventory, "--list", *args], self.env(**(env or {})))


def vars_play(expressions, hosts="all", name="Vars"):
    """A play with one set_fact task (``name``) whose fact ``seen`` holds, for each label, the value
    of a Jinja expression (given without braces) on every host: read it back with ``seen()``."""
    return [{"name": name, "hosts": hosts, "gather_facts": False, "tasks": [
        {"name": name, "ansible.builtin.set_fact": {"seen": {label: "{{ " + expression + " }}"
                                                             for label, expression in expressions.items()}}},
    ]}]


def values_of(names):
    """vars_play expressions for variables by name, 'UNSET' for a variable the host does not have."""
    return {name: f"{name} | default('UNSET')" for name in names}


def seen(run, host, name="Vars"):
    """The values a vars_play run saw on ``host``."""
    return run.result(name, host)["ansible_facts"]["seen"]
