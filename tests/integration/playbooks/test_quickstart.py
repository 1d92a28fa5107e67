"""The README's quick start, followed word for word as a new user would, from a fresh HOME.

The commands and the playbook are read out of README.md (section "Quick start"), so the test fails
when the README drifts from what works. The built tarball is installed by the README's own
`ansible-galaxy collection install` line into the default collections path of a scratch HOME that
already holds amazon.aws (as the `ansible` PyPI package or Galaxy would provide it). The one line
not run as written is the `export AWS_PROFILE=... AWS_REGION=...` line: the test's AWS settings
point at the local KMS endpoint instead.
"""

import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.harness import esdk

pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BIN = os.path.dirname(sys.executable)
AMAZON_AWS = os.path.join(ROOT, ".build", "collections", "ansible_collections", "amazon", "aws")
SECRET = "DB_PASSWORD=quick start 7f3a\n"


def quick_start():
    """(shell command lines, the playbook, the clean-up command) from the README's quick start."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
        readme = handle.read()
    # Steps 1 to 3 (the demo paragraph after them has its own test, test_demo.py).
    section = readme.split("\n## Quick start\n", 1)[1].split("**The whole workflow", 1)[0]
    shell = [line for block in re.findall(r"```bash\n(.*?)```", section, re.S) for line in block.splitlines()]
    (playbook,) = re.findall(r"```yaml\n(.*?)```", section, re.S)
    (cleanup,) = re.findall(r"`(ansible localhost -m envelope\.kms\.key [^`]*)`", section)
    return [line for line in shell if line.strip() and not line.startswith("#")], playbook, cleanup


@pytest.fixture
def user(tmp_path, kms_server):
    """A scratch HOME with amazon.aws installed, the tarball in the working directory, and an env."""
    home = tmp_path / "home"
    shutil.copytree(AMAZON_AWS, home / ".ansible" / "collections" / "ansible_collections" / "amazon" / "aws",
                    symlinks=True)
    work = tmp_path / "work"
    work.mkdir()
    subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--output-path", str(work), ROOT],
                   check=True, capture_output=True)
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("ANSIBLE_", "AWS_", "PYTHON"))}
    env.update(kms_server.environment())
    env.pop("AWS_DEFAULT_REGION", None)  # the README gives AWS_REGION only
    # The README's pip line must find everything installed already: never the network, never a change.
    env.update({"PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    env.update({"HOME": str(home), "PATH": BIN + os.pathsep + env.get("PATH", "/usr/bin:/bin"), "ANSIBLE_NOCOLOR": "1"})
    return work, env


def sh(line, work, env):
    return subprocess.run(["bash", "-c", line], cwd=work, env=env, capture_output=True, text=True, check=False)


def test_the_readme_quick_start_works_as_written(user, kms, kms_server):
    work, env = user
    commands, playbook, cleanup = quick_start()
    assert any(line.startswith("ansible-galaxy collection install envelope-kms-") for line in commands), commands
    for line in commands:
        if line.startswith("export AWS_"):
            continue  # the test's AWS settings (the local endpoint) stand in for the user's profile
        done = sh(line, work, env)
        assert done.returncode == 0, (line, done.stdout, done.stderr)
    installed = os.path.join(env["HOME"], ".ansible", "collections", "ansible_collections", "envelope", "kms")
    assert os.path.isfile(os.path.join(installed, "MANIFEST.json"))

    (work / "quickstart.yml").write_text(playbook)
    (work / "app.env").write_text(SECRET)
    first = sh("ansible-playbook quickstart.yml", work, env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert re.search(r"localhost\s+: ok=4\s+changed=3 ", first.stdout), first.stdout
    # ansible-core's own warnings about the implicit localhost aside, nothing warns.
    warnings = [line for line in (first.stdout + first.stderr).splitlines() if "WARNING" in line
                and "only localhost is available" not in line and "implicit localhost" not in line]
    assert not warnings, warnings
    assert SECRET.strip() not in first.stdout

    assert (work / "app.env.decrypted").read_text() == SECRET
    assert oct((work / "app.env.decrypted").stat().st_mode & 0o777) == "0o600"
    plaintext, header = esdk.decrypt(kms_server, str(work / "app.env.enc"))
    assert plaintext.decode() == SECRET
    assert header.encryption_context["app"] == "quickstart"

    again = sh("ansible-playbook quickstart.yml", work, env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert re.search(r"localhost\s+: ok=4\s+changed=0 ", again.stdout), again.stdout

    removed = sh(cleanup, work, env)
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert kms.describe_key(KeyId="alias/quickstart")["KeyMetadata"]["KeyState"] == "PendingDeletion"
