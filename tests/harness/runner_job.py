"""A job run the way AWX runs one: ansible-runner over a private data dir.

AWX lays out a private data dir per job (``project/`` with the playbook, ``inventory/``, ``env/``
with the environment and settings), runs ansible-runner on it and reads the results from
``artifacts/<ident>/`` (status, rc, stdout, job_events/*.json), then removes the folder. ``Job``
does the same with ``ansible-runner run <dir> -p <playbook>`` as a subprocess (AWX runs
``ansible-runner worker`` inside its execution environment: the same engine on the same layout).
"""

import glob
import json
import os
import subprocess
import sys

import yaml

ANSIBLE_RUNNER = os.path.join(os.path.dirname(sys.executable), "ansible-runner")


def aws_credential(access_key, secret_key, security_token=""):
    """The environment AWX's "Amazon Web Services" credential type injects (inputs username,
    password, security_token; awx/main/models/credential/injectors.py sets AWS_SECURITY_TOKEN for
    the token), plus AWS_SESSION_TOKEN, which amazon.aws 10 reads instead and which the README's
    custom credential type adds where AWX does not set it."""
    env = {"AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key}
    if security_token:
        env["AWS_SECURITY_TOKEN"] = security_token
        env["AWS_SESSION_TOKEN"] = security_token
    return env


def _write(path, text, mode=0o600):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "w", encoding="utf-8") as handle:
        handle.write(text)


class Job:
    """One job over the private data dir ``folder``, identified as ``ident`` (AWX uses the job id)."""

    def __init__(self, folder, ident="1"):
        self.folder = str(folder)
        self.ident = str(ident)
        self.artifacts = os.path.join(self.folder, "artifacts", self.ident)
        self.process = None

    def lay_out(self, *, project, inventory, envvars, settings=None, extravars=None):
        """project: {file name: text} in project/; inventory: the text of inventory/hosts; envvars,
        settings, extravars: env/envvars, env/settings, env/extravars (AWX writes them 0600)."""
        for name, text in project.items():
            _write(os.path.join(self.folder, "project", name), text, 0o644)
        _write(os.path.join(self.folder, "inventory", "hosts"), inventory, 0o644)
        for name, data in (("envvars", envvars), ("settings", settings or {}), ("extravars", extravars or {})):
            _write(os.path.join(self.folder, "env", name), yaml.safe_dump({key: data[key] for key in sorted(data)}))
        return self

    def run(self, playbook, env, timeout):
        """``ansible-runner run`` on the folder, with ``env`` as the whole environment of the runner
        process (the job's own variables come from env/envvars): the CompletedProcess."""
        self.process = subprocess.run([ANSIBLE_RUNNER, "run", self.folder, "-p", playbook, "--ident", self.ident],
                                      env=env, capture_output=True, text=True, check=False, timeout=timeout)
        return self.process

    def read(self, name):
        with open(os.path.join(self.artifacts, name), encoding="utf-8") as handle:
            return handle.read()

    @property
    def status(self):
        return self.read("status").strip()

    @property
    def rc(self):
        return int(self.read("rc").strip())

    @property
    def stdout(self):
        """The job's output as AWX shows it (artifacts/<ident>/stdout: ansible's stdout and stderr on
        one terminal, so with \\r\\n line ends, given back as \\n)."""
        return self.read("stdout").replace("\r\n", "\n")

    def events(self):
        """The job events runner kept (artifacts/<ident>/job_events/<counter>-<uuid>.json), in order."""
        events = []
        for path in glob.glob(os.path.join(self.artifacts, "job_events", "*.json")):
            if not path.endswith("-partial.json"):
                with open(path, encoding="utf-8") as handle:
                    events.append(json.load(handle))
        return sorted(events, key=lambda event: event["counter"])

    def report(self):
        """What to show when the job did not succeed: runner's own output and the job's stdout."""
        parts = []
        if self.process is not None:
            parts += [f"ansible-runner exited {self.process.returncode}", self.process.stdout, self.process.stderr]
        if os.path.exists(os.path.join(self.artifacts, "stdout")):
            parts.append(self.stdout)
        return "\n".join(part for part in parts if part)
