"""Section 5 of make bench: envelope vars files against the same vars as plain and ansible-vault files.

One project folder per variant and file count, laid out once (not timed): an inventory of local-connection
hosts in one group, and N files of VALUES_PER_FILE values each under group_vars/all/. The values are the
same in every variant: variable ``fNNN_vMMM`` (unique across files) holds a random 32-character string.

Variants (VARIANTS): the files as plain YAML; each file encrypted whole with ansible-vault; plain YAML
with every value an inline ``!vault`` string; envelope vars files (``fNNN.kms.yml``, written with
vars_file.update_tree, the envelope.kms.vars plugin enabled); and, for information, the plain files with
the envelope.kms.vars plugin enabled and no envelope file (its fixed cost: imports, file walks).

The playbook is one ``assert`` per host that joins every variable of every file and compares the SHA-1
of the result with the expected one, so every value is evaluated (and decrypted: inline vault values are
decrypted lazily, when used) and checked. Every variant runs the same ansible-playbook command (same
vault password file, forks, callback); only the files and, for ours, the vars plugin setting differ.
"""

import hashlib
import json
import os
import random
import shutil
import statistics
import string
import subprocess
import sys
import time

import yaml

from tests.harness.playbook import ANSIBLE_PLAYBOOK, COLLECTIONS_PATH, PlaybookRun, PlaybookRunner

VALUES_PER_FILE = 20
VALUE_LENGTH = 32
HOSTS = 20
FORKS = 10
INLINE_ONE_ROUND_FROM = 100  # files: see VarsBench.variants
VAULT_PASSWORD = "make-bench-vault-password"  # bench scaffolding, in the bench's scratch folder
ENCRYPTION_CONTEXT = {"purpose": "make-bench"}

# id -> label, in the order of the table
VARIANTS = {
    "plain": "plain YAML files",
    "plain_plugin": "plain YAML files, envelope.kms.vars enabled (no .kms.yml)",
    "vault_file": "ansible-vault, whole file",
    "vault_inline": "ansible-vault, inline !vault values",
    "envelope": "envelope vars files (.kms.yml)",
}
OURS = ("envelope", "plain_plugin")  # the variants that run with the envelope.kms.vars plugin enabled


def collection_on_path():
    """ansible_collections.envelope.kms importable in this process (the tree the Makefile lays out)."""
    if COLLECTIONS_PATH not in sys.path:
        sys.path.insert(0, COLLECTIONS_PATH)


def var_name(file_index, value_index):
    return f"f{file_index:03d}_v{value_index:03d}"


def file_values(file_index):
    """The VALUES_PER_FILE values of file ``file_index``: the same in every variant and every run."""
    rng = random.Random(f"make-bench-vars-{file_index}")
    alphabet = string.ascii_letters + string.digits
    return {var_name(file_index, index): "".join(rng.choice(alphabet) for _position in range(VALUE_LENGTH))
            for index in range(VALUES_PER_FILE)}


def _vault_lib():
    from ansible.parsing.vault import VaultLib, VaultSecret  # pylint: disable=import-outside-toplevel

    return VaultLib(secrets=[("default", VaultSecret(VAULT_PASSWORD.encode()))])


def _inline_vault_yaml(vault, values):
    """What ``ansible-vault encrypt_string`` prints for each value, one after the other."""
    lines = []
    for name, value in values.items():
        ciphertext = vault.encrypt(value).decode()  # a fresh salt each: one PBKDF2 per value to read it
        lines.append(f"{name}: !vault |")
        lines.extend("  " + line for line in ciphertext.splitlines())
    return "\n".join(lines) + "\n"


class VarsProjects:
    """The project folders, made once per run (one per variant and file count)."""

    def __init__(self, folder, server, kms, key_arn, hosts=HOSTS):
        self.folder = folder
        self.server = server
        self.kms = kms
        self.key_arn = key_arn
        self.hosts = [f"host{index:02d}" for index in range(hosts)]
        self.password_file = os.path.join(folder, "vault-password")
        os.makedirs(folder, exist_ok=True)
        with open(self.password_file, "w", encoding="utf-8") as handle:
            handle.write(VAULT_PASSWORD + "\n")
        os.chmod(self.password_file, 0o600)
        self._vault = None
        self._engine = None
        self.make_seconds = {}  # (variant, files) -> seconds to lay out (information)

    # -- the files of each variant

    def vault(self):
        if self._vault is None:
            self._vault = _vault_lib()
        return self._vault

    def engine(self):
        if self._engine is None:
            collection_on_path()
            from ansible_collections.envelope.kms.plugins.module_utils.envelope import (  # pylint: disable=import-outside-toplevel
                Engine,
            )

            self._engine = Engine(self.kms)
        return self._engine

    def envelope_text(self, file_index, values):
        collection_on_path()
        from ansible_collections.envelope.kms.plugins.module_utils import (  # pylint: disable=import-outside-toplevel
            vars_file,
        )

        name = f"f{file_index:03d}.kms.yml"
        request = vars_file.Request(name, values=values, key_arns=[self.key_arn], encryption_context=ENCRYPTION_CONTEXT)
        return vars_file.update_tree(self.engine(), {}, request).text

    def write_file(self, variant, folder, file_index):
        values = file_values(file_index)
        plain = yaml.safe_dump(values, sort_keys=False)
        if variant in ("plain", "plain_plugin"):
            name, text = f"f{file_index:03d}.yml", plain
        elif variant == "vault_file":
            name, text = f"f{file_index:03d}.yml", self.vault().encrypt(plain).decode()
        elif variant == "vault_inline":
            name, text = f"f{file_index:03d}.yml", _inline_vault_yaml(self.vault(), values)
        elif variant == "envelope":
            name, text = f"f{file_index:03d}.kms.yml", self.envelope_text(file_index, values)
        else:
            raise ValueError(variant)
        with open(os.path.join(folder, name), "w", encoding="utf-8") as handle:
            handle.write(text)

    # -- one project

    def environment(self, variant):
        environment = dict(self.server.environment(), ANSIBLE_VAULT_PASSWORD_FILE=self.password_file,
                           ANSIBLE_VARS_ENABLED="host_group_vars")
        if variant in OURS:
            environment.update(ANSIBLE_VARS_ENABLED="host_group_vars,envelope.kms.vars",
                               ENVELOPE_KMS_VARS_ENCRYPTION_CONTEXT=json.dumps(ENCRYPTION_CONTEXT),
                               ENVELOPE_KMS_VARS_ALLOWED_KEY_ARNS=self.key_arn)
        return environment

    def make(self, variant, files):
        """A PlaybookRunner on a fresh project folder for ``variant`` with ``files`` vars files, and
        the path of its playbook."""
        started = time.perf_counter()
        folder = os.path.join(self.folder, f"{variant}-{files}")
        if os.path.isdir(folder):
            shutil.rmtree(folder)
        os.makedirs(folder)
        runner = PlaybookRunner(folder, self.environment(variant))
        runner.set_hosts(self.hosts)
        group_vars = os.path.join(folder, "group_vars", "all")
        os.makedirs(group_vars)
        for file_index in range(files):
            self.write_file(variant, group_vars, file_index)
        playbook = runner.write(playbook_text(files), name="vars.yml")
        self.make_seconds[(variant, files)] = time.perf_counter() - started
        return runner, playbook


def expected_digest(files):
    joined = ",".join(value for index in range(files) for value in file_values(index).values())
    return hashlib.sha1(joined.encode()).hexdigest()


def playbook_text(files):
    """One assert per host over every variable of every file: the SHA-1 of all values joined."""
    names = [var_name(file_index, index) for file_index in range(files) for index in range(VALUES_PER_FILE)]
    condition = f"[{', '.join(names)}] | join(',') | hash('sha1') == '{expected_digest(files)}'"
    play = [{
        "name": "Use every variable",
        "hosts": "targets",
        "gather_facts": False,
        "tasks": [{"name": "Every value, checked", "ansible.builtin.assert": {"that": [condition], "quiet": True}}],
    }]
    return yaml.safe_dump(play, sort_keys=False, width=1 << 20)


def check_run(run, hosts):
    """The assert held on every host (ok=1, nothing failed or unreachable)."""
    run.assert_ok()
    missing = [host for host in hosts if run.stats.get(host, {}).get("ok") != 1]
    if missing:
        raise RuntimeError(f"the assert did not run on {missing}")


class VarsBench:
    """Wall time of ansible-playbook per variant and file count; KMS requests of our runs."""

    def __init__(self, folder, server, kms, key_arn, rounds, hosts=HOSTS, big=False):
        self.server = server
        self.rounds = rounds or 3
        self.big = big
        self.projects = VarsProjects(folder, server, kms, key_arn, hosts)
        self.setup_kms = {}  # files -> KMS requests made writing the envelope files (information)
        self.made = {}  # (variant, files) -> (runner, playbook)

    def variants(self, files, round_index):
        """The variants of one round. ansible-vault inline decrypts every value in every host's worker
        (one PBKDF2 each): ~3 minutes per run at 100 files here, so one round from 100 files up
        (all rounds with --big)."""
        variants = list(VARIANTS)
        if files >= INLINE_ONE_ROUND_FROM and round_index > 0 and not self.big:
            variants.remove("vault_inline")
        return variants if round_index % 2 == 0 else variants[::-1]

    def timed(self, runner, playbook, record_kms):
        if record_kms:
            self.server.start_recording()
        os.sync()  # as in run.py's EngineBench.worker
        started = time.perf_counter()
        run = runner.run(playbook, "-f", str(FORKS))
        elapsed = time.perf_counter() - started
        check_run(run, self.projects.hosts)
        return elapsed, (dict(self.server.kms_calls()) if record_kms else None)

    def run(self, sizes, log):
        projects = self.made
        for files in sizes:
            for variant in VARIANTS:
                if variant == "envelope":
                    self.server.start_recording()
                projects[(variant, files)] = self.projects.make(variant, files)
                if variant == "envelope":
                    self.setup_kms[files] = dict(self.server.kms_calls())
            log(f"   laid out {files} file(s) x {len(VARIANTS)} variants ("
                + ", ".join(f"{variant} {self.projects.make_seconds[(variant, files)]:.1f} s" for variant in VARIANTS)
                + "; not timed)")
        # Untimed warm-up: each variant once on the smallest size (page cache, bytecode), which also
        # checks every variant before the long part.
        for variant in VARIANTS:
            self.timed(*projects[(variant, sizes[0])], record_kms=False)
        report = dict(hosts=len(self.projects.hosts), values_per_file=VALUES_PER_FILE, forks=FORKS,
                      value_length=VALUE_LENGTH, setup_kms_calls={str(k): v for k, v in self.setup_kms.items()},
                      make_seconds={f"{variant}-{files}": seconds
                                    for (variant, files), seconds in self.projects.make_seconds.items()},
                      sizes=[])
        for files in sizes:
            loadavg = os.getloadavg()
            samples = {variant: [] for variant in VARIANTS}
            kms = {variant: [] for variant in OURS}
            for round_index in range(self.rounds):
                for variant in self.variants(files, round_index):
                    seconds, calls = self.timed(*projects[(variant, files)], record_kms=variant in OURS)
                    samples[variant].append(seconds)
                    if calls is not None:
                        kms[variant].append(calls)
                log(f"   {files} file(s): round {round_index + 1}/{self.rounds} done "
                    f"(load average {os.getloadavg()[0]:.1f})")
            results = []
            for variant, label in VARIANTS.items():
                results.append(dict(variant=variant, label=label, rounds=len(samples[variant]),
                                    median_seconds=statistics.median(samples[variant]), samples=samples[variant],
                                    kms_calls=kms.get(variant)))
            report["sizes"].append(dict(files=files, values=files * VALUES_PER_FILE, loadavg_at_start=loadavg,
                                        results=results))
        return report

    def profile(self, files, variants=("envelope", "vault_file")):
        """One ansible-playbook run per variant under cProfile (its main process: inventory, vars
        plugins, templating for the workers; the forked workers are not profiled). Paths of the profiles."""
        paths = {}
        for variant in variants:
            runner, playbook = self.made.get((variant, files)) or self.projects.make(variant, files)
            path = os.path.join(runner.workdir, "ansible-playbook.prof")
            command = [sys.executable, "-m", "cProfile", "-o", path, ANSIBLE_PLAYBOOK, "-i", runner.inventory,
                       playbook, "-f", str(FORKS)]
            completed = subprocess.run(command, env=runner.env(), cwd=runner.workdir, capture_output=True, text=True,
                                       check=False)
            check_run(PlaybookRun(completed), self.projects.hosts)
            paths[variant] = path
        return paths
