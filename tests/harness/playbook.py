"""Run the real ansible-playbook and read its results as data (ansible.posix.json callback)."""

import json
import os
import signal
import subprocess
import sys
import time
import textwrap

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS_PATH = os.path.join(ROOT, ".build", "collections")
ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")


class PlaybookRun:
    """Results of one ansible-playbook run, keyed by task name then host."""

    def __init__(self, completed):
        self.returncode = completed.returncode
        self.stderr = completed.stderr
        self.stdout = completed.stdout
        try:
            # With -v, display lines come before the callback's JSON document, which starts a line.
            start = completed.stdout.rfind("\n{\n") + 1
            self.data = json.loads(completed.stdout[start:])
        except ValueError as exc:
            raise AssertionError(f"ansible-playbook printed no JSON:\n{completed.stdout}\n{completed.stderr}") from exc

    @property
    def stats(self):
        return self.data["stats"]

    def tasks(self):
        for play in self.data["plays"]:
            for task in play["tasks"]:
                yield task["task"]["name"], task["hosts"]

    def result(self, name, host="localhost"):
        """The result of the task called `name` on `host` (the last one, when looped or repeated)."""
        found = [hosts[host] for task_name, hosts in self.tasks() if task_name == name and host in hosts]
        if not found:
            raise AssertionError(f"no result for task {name!r} on {host}; tasks: {[task_name for task_name, _hosts in self.tasks()]}")
        return found[-1]

    def changed(self, host="localhost"):
        return self.stats[host]["changed"]

    def failed(self, host="localhost"):
        return self.stats[host]["failures"] + self.stats[host]["unreachable"]

    def assert_ok(self):
        bad = {host: s for host, s in self.stats.items() if s["failures"] or s["unreachable"]}
        if bad or self.returncode != 0:
            failures = {
                name: {h: r.get("msg", r) for h, r in hosts.items() if r.get("failed") or r.get("unreachable")}
                for name, hosts in self.tasks()
            }
            raise AssertionError(
                f"playbook failed (rc={self.returncode}): "
                f"{json.dumps({k: v for k, v in failures.items() if v}, indent=1, default=str)}\n{self.stderr}"
            )
        return self

    def assert_failed_with(self, messages):
        """Each task named in ``messages`` failed with a message holding the text given for it, and
        no traceback."""
        for name, message in messages.items():
            result = self.result(name)
            assert result.get("failed") is True, (name, result)
            assert message in result["msg"], (name, result["msg"])
            assert "Traceback" not in result["msg"] + result.get("module_stderr", ""), name
        return self


class PlaybookRunner:
    """Writes playbooks into a per-test folder and runs them against the local KMS endpoint."""

    def __init__(self, workdir, environment):
        self.workdir = str(workdir)
        self.environment = environment
        self.inventory = os.path.join(self.workdir, "inventory.ini")
        self.set_hosts(["localhost"])
        self._count = 0

    def set_hosts(self, hosts):
        """Each host is a local-connection 'host' with a folder of its own ({{ host_dir }})."""
        lines = ["[targets]"]
        for host in hosts:
            host_dir = os.path.join(self.workdir, "hosts", host)
            os.makedirs(host_dir, exist_ok=True)
            lines.append(
                f"{host} ansible_connection=local ansible_python_interpreter={sys.executable} host_dir={host_dir}"
            )
        with open(self.inventory, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")

    def env(self):
        env = dict(os.environ)
        env.update(self.environment)
        env.update(
            {
                "ANSIBLE_COLLECTIONS_PATH": COLLECTIONS_PATH,
                "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
                "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_RETRY_FILES_ENABLED": "0",
                "ANSIBLE_LOCAL_TEMP": os.path.join(self.workdir, "controller-tmp"),
                "ANSIBLE_REMOTE_TEMP": os.path.join(self.workdir, "remote-tmp"),
                "ANSIBLE_HOME": os.path.join(self.workdir, "ansible-home"),
            }
        )
        return env

    def write(self, text, name=None):
        self._count += 1
        path = os.path.join(self.workdir, name or f"playbook{self._count}.yml")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(textwrap.dedent(text))
        return path

    def run(self, playbook, *args, extra_vars=None):
        """Run a playbook (a path, or YAML text, or a list of tasks for one local play)."""
        if isinstance(playbook, list):
            playbook = yaml.safe_dump(
                [{"name": "Test", "hosts": "targets", "gather_facts": False, "tasks": playbook}], sort_keys=False
            )
        if "\n" in playbook:
            playbook = self.write(playbook)
        command = [ANSIBLE_PLAYBOOK, "-i", self.inventory, playbook, *args]
        if extra_vars:
            command += ["-e", json.dumps(extra_vars)]
        completed = subprocess.run(command, env=self.env(), capture_output=True, text=True, cwd=self.workdir,
                                   check=False)
        return PlaybookRun(completed)

    def run_idempotent(self, playbook, *args, extra_vars=None):
        """Run twice: the first must succeed, the second must succeed with changed=0 on every host."""
        first = self.run(playbook, *args, extra_vars=extra_vars).assert_ok()
        second = self.run(playbook, *args, extra_vars=extra_vars).assert_ok()
        changed = {host: stats["changed"] for host, stats in second.stats.items() if stats["changed"]}
        assert not changed, f"second run changed something: {changed}; tasks: " + json.dumps(
            {n: {h: r.get("changed") for h, r in hosts.items()} for n, hosts in second.tasks()}
        )
        return first, second


def release_fifo(path):
    """Open a FIFO's writing end once so that a reader blocked on opening it gets end of file."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return False  # ENXIO: nobody is reading it
    os.close(fd)
    return True


class PlaybookTimeout(AssertionError):
    pass


def run_bounded(runner, tasks, timeout=120, fifos=(), extra_args=()):
    """``runner.run(tasks)`` (a PlaybookRunner) with a time limit. On expiry the FIFOs are released
    (a plugin blocked opening one gets end of file), then the run's own process group is killed,
    and PlaybookTimeout is raised; the FIFOs are released at the end in every case."""
    if isinstance(tasks, list):
        tasks = yaml.safe_dump([{"name": "Test", "hosts": "targets", "gather_facts": False, "tasks": tasks}],
                               sort_keys=False)
    path = runner.write(tasks) if "\n" in tasks else tasks
    process = subprocess.Popen([ANSIBLE_PLAYBOOK, "-i", runner.inventory, path, *extra_args], env=runner.env(),
                               cwd=runner.workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    started = time.monotonic()
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        for fifo in fifos:
            release_fifo(fifo)
        try:
            stdout, stderr = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the group of the ansible-playbook started here
            stdout, stderr = process.communicate()
        raise PlaybookTimeout(f"ansible-playbook did not finish within {timeout} s "
                              f"(ran {time.monotonic() - started:.0f} s): {stdout[-2000:]}\n{stderr[-2000:]}") from None
    finally:
        for fifo in fifos:
            release_fifo(fifo)
    return PlaybookRun(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr))
