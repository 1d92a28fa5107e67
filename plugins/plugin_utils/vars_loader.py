# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""For internal collection use only: envelope vars files read on the controller, cached per process.

The vars plugin, the load_vars action and the decrypt filter read through here. Caches live in
this process's memory only (never on disk) and are keyed by the file's real path, the SHA-256 of
its bytes and the decrypt policy, so a file changed on disk is read again and a stricter policy
is checked again. The vars plugin runs in the controller's main process, before Ansible forks a
worker per host and task: a file it loaded costs one KMS Decrypt for the whole run, and every
worker inherits the decrypted values. Actions and filters run in those workers: their caches (and
the engine's data keys) serve one worker, i.e. one host's task with all its loop items.
"""

from __future__ import annotations

import hashlib
import os

from ansible.errors import AnsibleError

from ansible_collections.envelope.kms.plugins.module_utils import vars_file
from ansible_collections.envelope.kms.plugins.module_utils._envelope.io import open_regular
from ansible_collections.envelope.kms.plugins.module_utils.envelope import Engine
from ansible_collections.envelope.kms.plugins.module_utils.errors import EnvelopeError, InputError
from ansible_collections.envelope.kms.plugins.plugin_utils import requirements

try:
    from ansible_collections.amazon.aws.plugins.plugin_utils.base import AWSPluginBase
except ImportError as error:  # the decrypt filter still loads, and fails with one line when used (engine_for)
    AMAZON_AWS_ERROR = error
    AWSPluginBase = requirements.StandIn
else:
    AMAZON_AWS_ERROR = None

try:
    # ansible-core 2.19+ templates only strings trusted as templates, which decrypted values never are
    from ansible.template import trust_as_template  # noqa: F401  pylint: disable=unused-import
except ImportError:  # ansible-core 2.17 and 2.18: mark them unsafe
    from ansible.utils.unsafe_proxy import wrap_var
else:
    def wrap_var(value):
        return value

_ENGINES = {}  # AWS settings -> Engine (clients, providers, the data keys of shared-key messages)
_FILES = {}  # (real path, sha256, policy) -> decrypted tree
_STATS = {}  # (path, policy) -> (stat signature, decrypted tree): a file unchanged on disk is not even read


class AwsOptions(AWSPluginBase):
    """amazon.aws's plugin base on a dict of AWS options (for plugins that are not AWS plugins)."""

    def __init__(self, options, name, error_class=AnsibleError):
        self._options = options
        self.name = name
        self.error_class = error_class

    def get_options(self):
        return self._options

    def _do_fail(self, message):
        raise self.error_class(f"{self.name}: {message}")


def engine_for(plugin, settings):
    """One Engine per process and AWS settings (a hashable of the AwsOptions plugin's AWS options)."""
    requirements.require(plugin.name, plugin.error_class, AMAZON_AWS_ERROR)
    engine = _ENGINES.get(settings)
    if engine is None:
        engine = _ENGINES[settings] = Engine.for_aws(plugin)
    return engine


def read_file(path):
    """The bytes of a vars file (a regular file, at most vars_file.MAX_FILE_SIZE + 1 read)."""
    try:
        with open_regular(path) as handle:
            return handle.read(vars_file.MAX_FILE_SIZE + 1)
    except InputError as error:
        raise EnvelopeError(f"cannot read envelope vars file {error.message}", "io_error", path) from None
    except OSError as error:
        raise EnvelopeError(f"cannot read envelope vars file {path}: {error.strerror}", "io_error", path) from None


def load(engine_factory, path, policy, cache=True):
    """The decrypted tree of the envelope vars file at ``path`` (values marked unsafe: never
    templated). ``engine_factory()`` is only called when something needs decrypting.

    With ``cache``, a file whose stat signature (device, inode, size, mtime, ctime) is the one of
    its last read is not read again; else it is read and known content (SHA-256) is not decrypted
    again. The caches hold the decrypted values in this process's memory only."""
    stat_key = (path, repr(policy))
    signature = _signature(path) if cache else None
    if signature is not None:
        known = _STATS.get(stat_key)
        if known is not None and known[0] == signature:
            return known[1]
    data = read_file(path)
    key = (os.path.realpath(path), hashlib.sha256(data).digest(), repr(policy))
    tree = _FILES.get(key) if cache else None
    if tree is None:
        tree = vars_file.parse(data, path)
        if vars_file.sealed_leaves(tree):
            engine = engine_factory()
            tree = vars_file.decrypt_tree(engine, tree, path, engine.policy(policy)).tree
        tree = wrap_var(tree)
        if cache:
            _FILES[key] = tree
    if signature is not None:
        _STATS[stat_key] = (signature, tree)
    return tree


def _signature(path):
    try:
        info = os.stat(path)
    except OSError:
        return None  # read_file says why
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def is_vars_file_name(name, extensions):
    return any(str(name).endswith(extension) for extension in extensions)
