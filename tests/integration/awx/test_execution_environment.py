"""The execution environment files (AWX, Automation Platform) through ansible-builder itself, with no
container runtime and no network: the example EE definition (docs/execution-environment.yml) gives
a build context, and the collection's meta/execution-environment.yml is read by builder's own
introspection script (the one the Containerfile runs) over the collection installed from its
tarball, so the Python libraries the image gets are the ones meta/ee-requirements.txt lists."""

import os
import shlex
import shutil
import subprocess
import sys

import pytest
import yaml
from packaging.requirements import Requirement

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BIN = os.path.dirname(sys.executable)
DEFINITION = os.path.join(ROOT, "docs", "execution-environment.yml")
EE_REQUIREMENTS = os.path.join(ROOT, "meta", "ee-requirements.txt")
DEPENDENCIES = os.path.join(ROOT, ".build", "collections", "ansible_collections")
# Operators that cap a version: partner certification rejects them in a collection's requirements.
UPPER_BOUNDS = ("<", "<=", "==", "===", "~=")


def requirement_lines(path):
    """The requirement lines of a pip requirements file, comments and blank lines left out."""
    with open(path, encoding="utf-8") as handle:
        return [line.split(" #", 1)[0].strip() for line in handle if line.strip() and not line.startswith("#")]


def run(command, **kwargs):
    result = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)
    assert result.returncode == 0, f"{shlex.join(command)}\n{result.stdout}{result.stderr}"
    return result


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    """`ansible-builder create` on the example definition: the build context's folder."""
    work = tmp_path_factory.mktemp("builder")
    # From a copy: relative paths in a definition resolve next to it, and nothing may land in docs/.
    definition = work / "execution-environment.yml"
    shutil.copy(DEFINITION, definition)
    folder = work / "context"
    result = run([os.path.join(BIN, "ansible-builder"), "create", "-f", str(definition), "-c", str(folder),
                  "--output-filename", "Containerfile"], cwd=work)
    assert "Complete!" in result.stdout
    return folder


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """envelope.kms built and installed offline from its tarball, next to the amazon.aws of
    .build/collections, as the EE's galaxy stage lays them out: the collections folder."""
    work = tmp_path_factory.mktemp("installed")
    deps = work / "deps" / "ansible_collections"
    deps.mkdir(parents=True)
    (deps / "amazon").symlink_to(os.path.join(DEPENDENCIES, "amazon"))
    env = dict(os.environ, ANSIBLE_HOME=str(work / "ansible-home"),
               ANSIBLE_COLLECTIONS_PATH=os.pathsep.join([str(work / "collections"), str(work / "deps")]))
    run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--force", "--output-path", str(work / "dist"),
         ROOT], env=env)
    (tarball,) = (work / "dist").glob("envelope-kms-*.tar.gz")
    run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", "--offline", "-p", str(work / "collections"),
         str(tarball)], env=env)
    collections = work / "collections"
    # amazon.aws where the EE has it: in the same collections folder (introspection reads one).
    (collections / "ansible_collections" / "amazon").symlink_to(os.path.join(DEPENDENCIES, "amazon"))
    return collections


def test_builder_creates_a_context_for_envelope_kms_and_amazon_aws(context):
    containerfile = (context / "Containerfile").read_text(encoding="utf-8")
    assert "ansible-galaxy collection install" in containerfile
    assert "introspect.py introspect" in containerfile
    galaxy = yaml.safe_load((context / "_build" / "requirements.yml").read_text(encoding="utf-8"))
    versions = {entry["name"]: entry.get("version") for entry in galaxy["collections"]}
    assert sorted(versions) == ["amazon.aws", "envelope.kms"]
    with open(os.path.join(ROOT, "galaxy.yml"), encoding="utf-8") as handle:
        assert versions["amazon.aws"] == yaml.safe_load(handle)["dependencies"]["amazon.aws"]


def test_builder_introspection_reads_the_collection_meta_file(context, installed, tmp_path):
    """The introspect command of the generated Containerfile, run with this Python over the
    installed collections instead of the image's /usr/share/ansible/collections."""
    collection = installed / "ansible_collections" / "envelope" / "kms"
    for name in ("meta/execution-environment.yml", "meta/ee-requirements.txt", "docs/execution-environment.yml"):
        assert (collection / name).is_file(), f"{name} is not in the built collection"
    # Without a meta/execution-environment.yml builder falls back to requirements.txt at the root:
    # with that one gone, the lines below can only have come through the meta file.
    (collection / "requirements.txt").unlink()

    containerfile = (context / "Containerfile").read_text(encoding="utf-8")
    (line,) = [line for line in containerfile.splitlines() if "introspect.py introspect" in line]
    command = shlex.split(line.removeprefix("RUN "))
    assert command[:2] == ["$PYCMD", "/output/scripts/introspect.py"]
    command[:2] = [sys.executable, str(context / "_build" / "scripts" / "introspect.py")]
    command = [part.replace("/tmp/src/", f"{tmp_path}/") for part in command] + [str(installed)]
    result = run(command)

    data = yaml.safe_load(result.stdout)
    ours = [entry for entry in data["python"] if entry.endswith("  # from collection envelope.kms")]
    assert [entry.split("  #")[0] for entry in ours] == requirement_lines(EE_REQUIREMENTS)
    assert any(entry.endswith("# from collection amazon.aws") for entry in data["python"])
    assert not [entry for entry in data["system"] if "envelope.kms" in entry]  # no OS packages needed
    written = (tmp_path / "requirements.txt").read_text(encoding="utf-8").splitlines()
    assert set(ours) <= set(written)  # what assemble then pip-installs


def test_ee_requirements_have_no_upper_bounds_and_match_requirements_txt():
    lines = requirement_lines(EE_REQUIREMENTS)
    assert lines
    for line in lines:
        requirement = Requirement(line)  # PEP 508, or builder passes the line through unchecked
        capped = [spec for spec in requirement.specifier if spec.operator in UPPER_BOUNDS]
        assert not capped, f"{line}: an upper bound, which partner certification rejects"
    assert sorted(map(str, map(Requirement, lines))) == sorted(
        map(str, map(Requirement, requirement_lines(os.path.join(ROOT, "requirements.txt")))))
