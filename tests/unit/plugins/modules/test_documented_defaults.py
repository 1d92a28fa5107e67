"""Every module's DOCUMENTATION agrees with the argument spec the code really uses.

For each option documented in the module's own DOCUMENTATION (and in this collection's doc
fragments it extends), ``type``, ``default``, ``required``, ``choices``, ``aliases`` and ``elements``
must equal the argument spec's; every option of the spec must be documented somewhere (its own
DOCUMENTATION or any fragment it extends: the AWS and file options live in fragments and are added
by AnsibleAWSModule or ``add_file_common_args``, so they are not compared here).

The spec is captured by running ``main()`` with ``AnsibleAWSModule`` replaced, in the module's
namespace, by a stub that records ``argument_spec`` (plus the file options when
``add_file_common_args``, as AnsibleModule adds them) and stops. A documentation-only module (no
``main()``, e.g. ``copy``) is checked against its action plugin's ``ActionModule.ARGUMENT_SPEC``,
so a default written as a literal in the docs (copy's ``frame_length``) fails here as soon as the
constant behind the code's default changes. Modules are found by globbing ``plugins/modules``.
"""

import copy
import glob
import importlib
import os

import pytest
import yaml

from ansible.module_utils import _internal
from ansible.module_utils.basic import FILE_COMMON_ARGUMENTS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
COLLECTION = "ansible_collections.envelope.kms"
MODULE_NAMES = sorted(
    os.path.splitext(os.path.basename(path))[0]
    for path in glob.glob(os.path.join(ROOT, "plugins", "modules", "*.py"))
    if not os.path.basename(path).startswith("_")
)
COMPARED = ("type", "default", "required", "choices", "aliases", "elements")


class SpecCaptured(Exception):
    def __init__(self, argument_spec):
        super().__init__("argument spec captured")
        self.argument_spec = argument_spec


class CapturingModule:
    """Stands in for AnsibleAWSModule / AnsibleModule: records the spec, runs nothing else."""

    def __init__(self, argument_spec=None, add_file_common_args=False, **_kwargs):
        spec = dict(argument_spec or {})
        if add_file_common_args:  # as AnsibleModule does: the module's own entries win
            spec = dict(FILE_COMMON_ARGUMENTS, **spec)
        raise SpecCaptured(spec)


def real_argument_spec(name, monkeypatch):
    """The module's own argument spec, as main() builds it (or its action plugin's)."""
    module = importlib.import_module(f"{COLLECTION}.plugins.modules.{name}")
    if not hasattr(module, "main"):
        # Importing controller code marks the process as the controller, which sends later module
        # warnings to the controller's display instead of the result: undone after the test.
        monkeypatch.setattr(_internal, "is_controller", _internal.is_controller)
        action = importlib.import_module(f"{COLLECTION}.plugins.action.{name}")
        return action.ActionModule.ARGUMENT_SPEC
    patched = [cls for cls in ("AnsibleAWSModule", "AnsibleModule") if hasattr(module, cls)]
    assert patched, f"{name}: main() builds no AnsibleAWSModule or AnsibleModule this test can capture"
    for cls in patched:
        monkeypatch.setattr(module, cls, CapturingModule)
    with pytest.raises(SpecCaptured) as captured:
        module.main()
    return captured.value.argument_spec


def fragment_options(reference):
    """Options of a doc fragment reference: ns.coll.name[.VARIABLE] or ansible.builtin.name."""
    namespace, collection, name, *variable = reference.split(".")
    if (namespace, collection) == ("ansible", "builtin"):
        package = f"ansible.plugins.doc_fragments.{name}"
    else:
        package = f"ansible_collections.{namespace}.{collection}.plugins.doc_fragments.{name}"
    fragment = importlib.import_module(package).ModuleDocFragment()  # as ansible-doc loads it
    text = getattr(fragment, variable[0].upper() if variable else "DOCUMENTATION")
    return (yaml.safe_load(text) or {}).get("options") or {}


def documented_options(name):
    """(options this collection documents for the module, options documented by any fragment)."""
    module = importlib.import_module(f"{COLLECTION}.plugins.modules.{name}")
    doc = yaml.safe_load(module.DOCUMENTATION)
    own = dict(doc.get("options") or {})
    from_fragments = {}
    for reference in doc.get("extends_documentation_fragment") or []:
        options = fragment_options(reference)
        from_fragments.update(options)
        if reference.startswith("envelope.kms."):
            own.update(options)
    return own, from_fragments


def _value(field, value):
    if field == "type":
        return value or "str"
    if field == "required":
        return bool(value)
    if field == "aliases":
        return sorted(value or [])
    if field == "choices":
        return None if value is None else sorted(value, key=repr)  # order is presentation
    if isinstance(value, tuple):
        return list(value)
    return value


def mismatches(documented, spec, undocumented_ok=(), path=""):
    """Differences between documented options and an argument spec, one line each."""
    found = []
    for option, doc in sorted(documented.items()):
        where = f"{path}{option}"
        if option not in spec:
            found.append(f"{where}: documented, but not in the argument spec")
            continue
        for field in COMPARED:
            documented_value, real_value = _value(field, doc.get(field)), _value(field, spec[option].get(field))
            if documented_value != real_value:
                found.append(f"{where}: documented {field} {documented_value!r}, argument spec {real_value!r}")
        if doc.get("suboptions") or spec[option].get("options"):
            found += mismatches(doc.get("suboptions") or {}, spec[option].get("options") or {}, path=f"{where}.")
    for option in sorted(set(spec) - set(documented) - set(undocumented_ok)):
        found.append(f"{path}{option}: in the argument spec, documented nowhere")
    return found


@pytest.mark.parametrize("name", MODULE_NAMES)
def test_documentation_matches_the_argument_spec(name, monkeypatch):
    own, from_fragments = documented_options(name)
    found = mismatches(own, real_argument_spec(name, monkeypatch), undocumented_ok=from_fragments)
    assert not found, f"plugins/modules/{name}.py DOCUMENTATION vs its argument spec:\n" + "\n".join(found)


def test_modules_are_found():
    assert {"copy", "data_key", "decrypt", "key", "rewrap"} <= set(MODULE_NAMES)


def test_a_literal_default_that_no_longer_matches_is_reported(monkeypatch):
    """copy documents frame_length's default as a literal: a changed DEFAULT_FRAME_LENGTH must show."""
    own, from_fragments = documented_options("copy")
    spec = copy.deepcopy(real_argument_spec("copy", monkeypatch))
    assert own["frame_length"]["default"] == spec["frame_length"]["default"]
    spec["frame_length"]["default"] *= 2
    spec["frame_length"]["choices"] = [1, 2]
    del spec["remote_src"]
    spec["extra"] = {"type": "str"}
    assert mismatches(own, spec, undocumented_ok=from_fragments) == [
        f"frame_length: documented default {own['frame_length']['default']}, "
        f"argument spec {own['frame_length']['default'] * 2}",
        "frame_length: documented choices None, argument spec [1, 2]",
        "remote_src: documented, but not in the argument spec",
        "extra: in the argument spec, documented nowhere",
    ]


def test_suboptions_are_compared():
    documented = {"files": {"type": "list", "elements": "dict", "suboptions": {"dest": {"type": "path"}}}}
    spec = {"files": {"type": "list", "elements": "dict", "options": {"dest": {"type": "str"}, "mode": {}}}}
    assert mismatches(documented, spec) == [
        "files.dest: documented type 'path', argument spec 'str'",
        "files.mode: in the argument spec, documented nowhere",
    ]
