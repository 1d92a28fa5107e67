"""Run `ansible-test sanity` on this collection, offline, from a fresh copy of the checkout.

Why a copy: ansible-test only accepts a collection that sits at
`<root>/ansible_collections/<namespace>/<name>` (it ignores a symlinked working directory), and
the checkout is the collection root itself. So the files git knows about (tracked plus untracked,
not ignored: `git ls-files -co --exclude-standard`) are copied to
`.build/sanity/ansible_collections/<namespace>/<name>`, and the collections named in galaxy.yml
`dependencies` (amazon.aws) are symlinked next to it from the tree `make setup` lays out.
The copy gets its own empty git repository: ansible-test lists the files to test with git when the
content root (or any parent of it) is a git work tree, and without one it would find the outer
checkout, where `.build/` is ignored, and test nothing. .venv, .build and tests/output are never
copied, so they are never tested.

Why a get-pip stand-in: ansible-test bootstraps pip into each per-test virtual environment with a
get-pip script downloaded from ci-files.testing.ansible.com, which is unreachable here. It caches
that script as ~/.ansible/test/cache/get_pip_<version with _ for .>.py; this tool writes a
stand-in there that runs the pip wheel bundled with the standard library's ensurepip to install
the requested pip version from the package index (PyPI), falling back to a full `ensurepip`
bootstrap. A real get-pip script found there is kept; an older stand-in is replaced.

Speed: ansible-test keeps one virtual environment per test under ~/.ansible/test/venv (reused
across runs and checkouts). On a full run they are first built ("primed") by two parallel
ansible-test processes, then the tests run; warm runs skip straight to the tests. The controller
is this venv (no --venv: every test runs in its own environment anyway, and a delegation venv
would only add a pip install per run). Concurrent runs wait for each other (flock).

Usage: tools/sanity.py [extra ansible-test sanity arguments, e.g. --test pep8]
Exit status: ansible-test's. A summary of failed tests and issues per file is printed at the end.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, ".build", "sanity")
PYTHON_VERSION = "%d.%d" % sys.version_info[:2]

STAND_IN_MARKER = "# envelope.kms get-pip stand-in"
STAND_IN_VERSION = 2
GET_PIP_STAND_IN = f'''\
{STAND_IN_MARKER} v{STAND_IN_VERSION}, written by tools/sanity.py.
\"\"\"Offline stand-in for get-pip.py (ci-files.testing.ansible.com is unreachable).

Called like get-pip.py: its arguments are `pip install` arguments (ansible-test passes e.g.
`--disable-pip-version-check pip==24.2`), plus get-pip's own --no-setuptools / --no-wheel.
Runs the pip wheel bundled with the standard library's ensurepip straight from the wheel to
install what was asked for from the package index, so no other pip (nor setuptools) is ever
installed; falls back to a full `ensurepip` bootstrap if no bundled wheel can be found.
\"\"\"

import glob
import os
import subprocess
import sys


def bundled_pip_wheel():
    import ensurepip

    folders = [os.path.join(os.path.dirname(ensurepip.__file__), "_bundled"), "/usr/share/python-wheels"]
    for folder in folders:
        wheels = sorted(glob.glob(os.path.join(folder, "pip-*-py3-none-any.whl")))
        if wheels:
            return wheels[-1]
    return None


def main():
    args = sys.argv[1:]
    no_setuptools = "--no-setuptools" in args
    no_wheel = "--no-wheel" in args
    args = [arg for arg in args if arg not in ("--no-setuptools", "--no-wheel", "--no-pip")]
    install = ["install", "--disable-pip-version-check", "--no-compile"] + args
    wheel = bundled_pip_wheel()
    if wheel and subprocess.run([sys.executable, os.path.join(wheel, "pip")] + install, check=False).returncode == 0:
        return
    run = [sys.executable, "-m"]
    subprocess.run(run + ["ensurepip", "--default-pip"], check=True, stdout=subprocess.DEVNULL)
    if args:
        subprocess.run(run + ["pip"] + install, check=True)
    unwanted = [name for name, drop in (("setuptools", no_setuptools), ("wheel", no_wheel)) if drop]
    if unwanted:
        subprocess.run(run + ["pip", "uninstall", "-y", "-q", "--disable-pip-version-check"] + unwanted, check=True)


if __name__ == "__main__":
    main()
'''


def log(message):
    print(f"sanity.py: {message}", flush=True)


def read_galaxy():
    """Return (namespace, name, dependency names) from galaxy.yml."""
    import yaml  # ansible-core's dependency, present in the venv

    with open(os.path.join(ROOT, "galaxy.yml"), encoding="utf-8") as handle:
        galaxy = yaml.safe_load(handle)
    return galaxy["namespace"], galaxy["name"], sorted(galaxy.get("dependencies") or {})


def list_files():
    """The checkout's files as git sees them: tracked plus untracked-but-not-ignored."""
    try:
        output = subprocess.run(
            ["git", "ls-files", "-z", "-co", "--exclude-standard"],
            cwd=ROOT, check=True, capture_output=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        # Not a git checkout (e.g. an unpacked tarball): walk the tree without the usual suspects.
        log(f"git ls-files failed ({error}); walking the tree instead")
        skip = {".git", ".venv", ".build", ".ansible", "__pycache__", ".pytest_cache"}
        files = []
        for top, dirs, names in os.walk(ROOT):
            rel = os.path.relpath(top, ROOT)
            dirs[:] = [d for d in dirs if d not in skip and os.path.join(rel, d) != os.path.join("tests", "output")]
            files.extend(os.path.normpath(os.path.join(rel, n)) for n in names if not n.endswith((".pyc", ".pyo")))
        return sorted(files)
    names = sorted({name for name in output.decode("utf-8", "surrogateescape").split("\0") if name})
    # Skip tracked files deleted from the work tree, and untracked nested repositories ("dir/").
    return [name for name in names if os.path.islink(os.path.join(ROOT, name)) or os.path.isfile(os.path.join(ROOT, name))]


def sync_collection(dest, files):
    """Make dest hold exactly `files` from the checkout (modes and symlinks kept).

    tests/output (ansible-test's results and scratch) is emptied except its .tmp folder, which
    holds nothing but reusable state; dest's own .git is kept."""
    os.makedirs(dest, exist_ok=True)
    wanted = set(files)
    for top, dirs, names in os.walk(dest, topdown=True):
        rel = os.path.relpath(top, dest)
        rel = "" if rel == "." else rel
        if rel == "":
            dirs[:] = [d for d in dirs if d != ".git"]
        if rel == "tests":
            dirs[:] = [d for d in dirs if d != "output"]
        for name in names + [d for d in dirs if os.path.islink(os.path.join(top, d))]:
            path = os.path.join(rel, name)
            if path not in wanted:
                os.remove(os.path.join(dest, path))
    output = os.path.join(dest, "tests", "output")
    if os.path.isdir(output):
        for entry in os.listdir(output):
            if entry != ".tmp":
                target = os.path.join(output, entry)
                shutil.rmtree(target) if os.path.isdir(target) and not os.path.islink(target) else os.remove(target)
    for name in files:
        src = os.path.join(ROOT, name)
        dst = os.path.join(dest, name)
        if os.path.islink(src):
            if os.path.lexists(dst):
                os.remove(dst)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            os.symlink(os.readlink(src), dst)
            continue
        if os.path.isdir(dst) and not os.path.islink(dst):
            shutil.rmtree(dst)
        elif os.path.islink(dst):
            os.remove(dst)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(src, dst)
    # Prune directories left empty by removed files (but not dest itself, .git or tests/output).
    for top, dirs, names in os.walk(dest, topdown=False):
        rel = os.path.relpath(top, dest)
        if rel == "." or rel.split(os.sep)[0] == ".git" or rel.startswith(os.path.join("tests", "output")):
            continue
        if not os.listdir(top):
            os.rmdir(top)
    if not os.path.isdir(os.path.join(dest, ".git")):
        # An empty repository: `git ls-files -co --exclude-standard` then lists every copied file.
        subprocess.run(["git", "init", "-q", dest], check=True)
    # ansible-test's own output must never be listed as content, whatever the copied .gitignore says.
    with open(os.path.join(dest, ".git", "info", "exclude"), "w", encoding="utf-8") as handle:
        handle.write("/tests/output/\n__pycache__/\n*.py[co]\n")


def collection_search_path():
    paths = [p for p in os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep) if p]
    paths.append(os.path.join(ROOT, ".build", "collections"))
    return paths


def link_dependencies(dependencies):
    for dependency in dependencies:
        namespace, name = dependency.split(".", 1)
        link = os.path.join(BUILD, "ansible_collections", namespace, name)
        for base in collection_search_path():
            source = os.path.join(base, "ansible_collections", namespace, name)
            if os.path.isdir(source) and os.path.realpath(source) != os.path.realpath(ROOT):
                break
        else:
            sys.exit(f"sanity.py: collection {dependency} not found under {collection_search_path()}; run `make setup`")
        os.makedirs(os.path.dirname(link), exist_ok=True)
        if os.path.islink(link) and os.readlink(link) == os.path.abspath(source):
            continue
        if os.path.islink(link) or os.path.isfile(link):
            os.remove(link)
        elif os.path.isdir(link):
            shutil.rmtree(link)
        os.symlink(os.path.abspath(source), link)


def pip_versions():
    """The pip versions ansible-test bootstraps into its virtual environments."""
    try:
        from types import SimpleNamespace

        from ansible_test._internal.python_requirements import get_venv_packages

        return {get_venv_packages(SimpleNamespace(version=PYTHON_VERSION))["pip"]}
    except Exception as error:  # internal API: fall back to reading the source
        import ansible_test

        source = os.path.join(os.path.dirname(ansible_test.__file__), "_internal", "python_requirements.py")
        with open(source, encoding="utf-8") as handle:
            versions = set(re.findall(r"\bpip='([0-9][0-9.]*)'", handle.read()))
        if not versions:
            sys.exit(f"sanity.py: cannot tell which pip version ansible-test wants ({error})")
        return versions


def install_get_pip_stand_in():
    cache = os.path.expanduser(os.path.join("~", ".ansible", "test", "cache"))
    os.makedirs(cache, exist_ok=True)
    for version in sorted(pip_versions()):
        path = os.path.join(cache, "get_pip_%s.py" % version.replace(".", "_"))
        if os.path.exists(path):
            with open(path, encoding="utf-8", errors="replace") as handle:
                current = handle.read()
            if not current.startswith(STAND_IN_MARKER) or current == GET_PIP_STAND_IN:
                continue  # a real get-pip script, or our current stand-in
        with open(path + ".tmp", "w", encoding="utf-8") as handle:
            handle.write(GET_PIP_STAND_IN)
        os.replace(path + ".tmp", path)
        log(f"wrote get-pip stand-in for pip {version}: {path}")


@contextlib.contextmanager
def locked(path, what):
    """Hold an exclusive lock on `path` (waiting for it): concurrent runs would delete each other's
    files (the copy) or half-built virtual environments (ansible-test recreates any without its marker)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for another sanity run to release {what} ({path})")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


# Rough cost of building each test's virtual environment, to split them across two processes.
VENV_WEIGHTS = {"pylint": 4, "changelog": 3, "import": 3, "validate-modules": 3, "ansible-doc": 2, "runtime-metadata": 2, "yamllint": 2, "pep8": 1}


def prime_venvs(ansible_test, dest, env):
    """Build the per-test virtual environments in two parallel processes before the (serial) run.

    ansible-test builds them one after the other on first use, mostly waiting on pip and the
    package index. Each test's environment is built by exactly one process (the requirement-free
    tests, which share one, all go to the first), so the processes never race on a directory.
    Failures are only reported: the real run rebuilds what is missing and reports real errors."""
    base = [ansible_test, "sanity", "--python", PYTHON_VERSION]
    listed = subprocess.run(base + ["--list-tests"], cwd=dest, env=env, capture_output=True, text=True, check=False)
    tests = listed.stdout.split()
    if listed.returncode or not tests:
        log("could not list sanity tests; not priming virtual environments")
        return
    import ansible_test as package

    requirements = os.path.join(os.path.dirname(package.__file__), "_data", "requirements")
    needing = {name.split(".")[1] for name in os.listdir(requirements) if name.startswith("sanity.") and name.endswith(".txt")}
    groups = [[test for test in tests if test not in needing], []]
    loads = [0, 0]
    for test in sorted(set(tests) & needing, key=lambda name: (-VENV_WEIGHTS.get(name, 2), name)):
        lighter = loads.index(min(loads))
        groups[lighter].append(test)
        loads[lighter] += VENV_WEIGHTS.get(test, 2)
    started = time.monotonic()
    running = []
    for number, group in enumerate(group for group in groups if group):
        path = os.path.join(BUILD, f"prime-{number}.log")
        with open(path, "w", encoding="utf-8") as output:
            command = base + ["--prime-venvs"] + [arg for test in group for arg in ("--test", test)]
            running.append((path, subprocess.Popen(command, cwd=dest, env=env, stdout=output, stderr=subprocess.STDOUT)))
    for path, process in running:
        if process.wait():
            with open(path, encoding="utf-8", errors="replace") as handle:
                tail = handle.readlines()[-15:]
            log(f"priming virtual environments failed (exit {process.returncode}), see {path}:\n" + "".join(tail))
    log(f"virtual environments ready after {time.monotonic() - started:.0f}s")


def summarize(dest):
    """Print the failed tests and the issues grouped by file, from ansible-test's bot results."""
    results = sorted(glob.glob(os.path.join(dest, "tests", "output", "bot", "ansible-test-sanity-*.json")))
    if not results:
        return
    by_file = {}
    print("\n==== sanity summary: failed tests ====")
    for result in results:
        with open(result, encoding="utf-8") as handle:
            data = json.load(handle)
        test = os.path.basename(result)[len("ansible-test-sanity-"):-len(".json")]
        for item in data.get("results", []):
            count = re.search(r"failed with (.*):$", item.get("message", ""))
            print(f"  {test}: {count.group(1) if count else 'failed'}")
            for line in item.get("output", "").splitlines():
                match = re.match(r"([^\s:]+):(\d+):(\d+): (.*)$", line)
                if match:
                    by_file.setdefault(match.group(1), []).append(f"{match.group(2)}:{match.group(3)}: [{test}] {match.group(4)}")
                else:
                    by_file.setdefault("(no file)", []).append(f"[{test}] {line}")
    print("==== sanity summary: issues per file ====")
    for path in sorted(by_file):
        print(f"  {path}")
        for issue in by_file[path]:
            print(f"      {issue}")
    print(f"(full results: {os.path.join(dest, 'tests', 'output', 'bot')})")


def main():
    started = time.monotonic()
    home_lock = os.path.expanduser(os.path.join("~", ".ansible", "test", "envelope-sanity.lock"))
    with locked(os.path.join(BUILD, ".lock"), "the copy"), locked(home_lock, "~/.ansible/test"):
        return run(started)


def run(started):
    namespace, name, dependencies = read_galaxy()
    dest = os.path.join(BUILD, "ansible_collections", namespace, name)
    files = list_files()
    sync_collection(dest, files)
    link_dependencies(dependencies)
    install_get_pip_stand_in()
    log(f"copied {len(files)} files to {dest}; dependencies: {', '.join(dependencies) or 'none'}")

    env = dict(os.environ)
    # ansible-test points Ansible at its own collection root; a collections path that holds the
    # live checkout (envelope.kms symlink) must not shadow the copy under test.
    for variable in ("ANSIBLE_COLLECTIONS_PATH", "ANSIBLE_COLLECTIONS_PATHS"):
        env.pop(variable, None)
    env.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    ansible_test = os.path.join(os.path.dirname(sys.executable), "ansible-test")
    if not sys.argv[1:]:  # a full run (make sanity); with a selection, ansible-test builds what it needs
        prime_venvs(ansible_test, dest, env)
    command = [ansible_test, "sanity", "--python", PYTHON_VERSION, "--truncate", "0", "--color", "no"]
    command += sys.argv[1:]
    log("running: " + " ".join(command))
    status = subprocess.run(command, cwd=dest, env=env, check=False).returncode
    summarize(dest)
    log(f"ansible-test sanity exited {status} after {time.monotonic() - started:.0f}s")
    return status


if __name__ == "__main__":
    sys.exit(main())
