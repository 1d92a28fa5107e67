# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""For internal collection use only: what the controller plugins need, and the one line that says
what is missing and how to get it.

The amazon.aws collection (a galaxy.yml dependency, which ``ansible-galaxy collection install
--no-deps`` or a copied tree leaves out) and the boto3, botocore and aws-encryption-sdk libraries
of the controller's Python. Plugins import amazon.aws under ``try``/``except ImportError`` and hand
the error to ``require``, so each fails with one line instead of a traceback. Cheap to import:
nothing of amazon.aws nor of the libraries is imported here until a check runs.

Modules are not covered: ansible-core refuses to build a module whose module_utils import a missing
collection, with one line of its own naming it ("unable to locate collection amazon.aws"), before
anything of the module runs; on the host, AnsibleAWSModule names missing libraries.
"""

from __future__ import annotations

import importlib
import shlex
import sys

COLLECTION = "amazon.aws"
COLLECTION_VERSION = ">=9.0.0"  # galaxy.yml's dependencies (a unit test keeps them the same)
# (module imported, pip requirement) of the controller libraries
LIBRARIES = (("boto3", "boto3"), ("botocore", "botocore"), ("aws_encryption_sdk", "aws-encryption-sdk>=3.3.0"))
_ABSENT = ("ansible_collections.amazon", "ansible_collections.amazon.aws")


class StandIn:
    """Base class in place of amazon.aws's plugin bases when they cannot be imported: the plugin
    loads, and ``require`` fails its first call with one line."""


def collection_error():
    """The ImportError of ``import ansible_collections.amazon.aws`` (the collection's package only,
    none of its plugins), or None when the collection is installed."""
    try:
        importlib.import_module("ansible_collections.amazon.aws")
    except ImportError as error:
        return error
    return None


def missing_collection(who, error):
    """The line for amazon.aws failing to import with ``error``: not installed, or too old."""
    wanted = f"the {COLLECTION} collection ({COLLECTION_VERSION.replace('>=', '>= ')})"
    if isinstance(error, ModuleNotFoundError) and error.name in _ABSENT:
        return (f"{who} needs {wanted}, which is not installed: ansible-galaxy collection install {COLLECTION} "
                "(or pip install ansible)")
    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    return (f"{who} needs {wanted}, and the one installed cannot be used ({reason}): "
            f"ansible-galaxy collection install --upgrade {COLLECTION}")


def missing_libraries():
    """The pip requirements of the controller libraries this Python cannot import."""
    missing = []
    modules = [module for module, _requirement in LIBRARIES]
    for module, requirement in LIBRARIES:
        try:
            importlib.import_module(module)
        except ImportError as error:
            cause = (getattr(error, "name", None) or "").partition(".")[0]
            if cause == module or cause not in modules:  # not when only another one of them is missing
                missing.append(requirement)
    return missing


def missing_libraries_message(who, missing):
    """The line for the libraries ``missing`` (pip requirements) on the controller."""
    names = [_label(requirement) for requirement in missing]
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    plural = len(names) > 1
    python = sys.executable or "python3"
    return (f"{who} needs the Python {'libraries' if plural else 'library'} {listed} on the controller, which "
            f"{'are' if plural else 'is'} not installed for {python}: "
            f"{shlex.quote(python)} -m pip install {' '.join(shlex.quote(item) for item in missing)}")


def require(who, error_class, import_error=None):
    """Raise ``error_class`` with one line when amazon.aws is missing (``import_error``: the
    ImportError of the plugin's own amazon.aws imports, if any) or a controller library is."""
    if import_error is not None:
        raise error_class(missing_collection(who, import_error))
    missing = missing_libraries()
    if missing:
        raise error_class(missing_libraries_message(who, missing))


def _label(requirement):
    """'aws-encryption-sdk>=3.3.0' -> 'aws-encryption-sdk (>= 3.3.0)'"""
    name, found, version = requirement.partition(">=")
    return f"{name} (>= {version})" if found else requirement
