# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Envelope vars files: YAML or JSON vars files whose secret values are KMS envelopes.

The format (docs/vars-files.md has the whole story):

* A plain YAML or JSON mapping. Mapping keys stay readable; any value that is not a mapping (a
  string, number, boolean, null or list) is a *leaf*. A leaf is either clear text or a string
  ``envelope-kms:v1:<base64>`` holding one complete AWS Encryption SDK message.
* The message's plaintext is the UTF-8 JSON ``{"path": [...], "value": ...}``: the leaf's key path
  (the list of mapping keys from the top) and its value with its JSON type. The path is inside the
  authenticated plaintext, so a value moved or swapped to another key fails on load.
* Every message of a file carries the same encrypted data keys (one data key, wrapped under each of
  the file's KMS keys) and the same encryption context: a load costs one KMS Decrypt whatever the
  number of values, and a value copied in from another file (another data key) fails on load.
  A whole file copied under another name is the same file: bind files to where they may be used
  with an encryption context (``env: prod``) that readers require.
* Writers keep the exact text of every value that did not change, so ``git diff`` shows which keys
  changed. They write the file in one canonical layout (comments are not kept).

This module needs PyYAML for YAML files (JSON files need nothing): it is there on every controller
(ansible-core requires it), and imported only when a YAML file is read or written.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import json
from collections.abc import Mapping

from ansible_collections.envelope.kms.plugins.module_utils.errors import EnvelopeError, InputError

MARKER = "envelope-kms:v1:"
DEFAULT_EXTENSIONS = (".kms.yml", ".kms.yaml", ".kms.json")
MAX_FILE_SIZE = 16 * 1024 * 1024  # a vars file of more than 16 MiB is refused before parsing
HEADER_COMMENT = ("# envelope.kms vars file: values starting with envelope-kms:v1: are KMS-encrypted.\n"
                  "# Edit with envelope.kms.vars_file or the envelope.kms.set_secret playbook.\n")


# -- key paths and leaves

def dotted(path):
    """'db.password' for ('db', 'password'): for messages (keys holding dots are quoted)."""
    return ".".join(json.dumps(key) if "." in key or not key else key for key in path)


def key_path(name):
    """A key path from 'db.password' or ['db', 'password'] (the list form for keys holding dots)."""
    if isinstance(name, str):
        parts = name.split(".")
    elif isinstance(name, (list, tuple)):
        parts = list(name)
    else:
        raise InputError(f"a key path must be a string such as db.password or a list of keys, not {name!r}")
    if not parts or not all(isinstance(part, str) and part for part in parts):
        raise InputError(f"invalid key path {name!r}: every key must be a non-empty string")
    return tuple(str(part) for part in parts)


def is_sealed(value):
    return isinstance(value, str) and value.startswith(MARKER)


def leaves(tree, path=()):
    """(path, value) of every leaf, depth first in file order."""
    for key, value in tree.items():
        if isinstance(value, Mapping):
            yield from leaves(value, path + (key,))
        else:
            yield path + (key,), value


def sealed_leaves(tree):
    return [(path, value) for path, value in leaves(tree) if is_sealed(value)]


def get_leaf(tree, path, default=None):
    node = tree
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return default
        node = node[key]
    return node


def set_leaf(tree, path, value, name):
    node = tree
    for depth, key in enumerate(path[:-1]):
        child = node.get(key)
        if child is None:
            child = node[key] = {}
        elif not isinstance(child, Mapping):
            raise InputError(f"{name}: key {dotted(path[:depth + 1])} holds a value, not a mapping: "
                             f"cannot set {dotted(path)} (remove it first)")
        node = child
    if isinstance(node.get(path[-1]), Mapping) and node[path[-1]]:
        raise InputError(f"{name}: key {dotted(path)} is a mapping in the file: set its keys, or remove it first")
    node[path[-1]] = value


def remove_leaf(tree, path):
    """Remove a key (a leaf or a whole mapping) and the mappings it leaves empty. True if it was there."""
    parents = []
    node = tree
    for key in path[:-1]:
        if not isinstance(node.get(key), Mapping):
            return False
        parents.append((node, key))
        node = node[key]
    if path[-1] not in node:
        return False
    del node[path[-1]]
    for parent, key in reversed(parents):
        if parent[key]:
            break
        del parent[key]
    return True


def flatten(values, name, path=()):
    """(path, value) of the leaves of a values mapping given to a writer; values are JSON types."""
    if not isinstance(values, Mapping):
        raise InputError(f"{name}: values must be a mapping of keys to values")
    for key, value in values.items():
        if not isinstance(key, str) or not key:
            raise InputError(f"{name}: every key must be a non-empty string, not {key!r}")
        if isinstance(value, Mapping):
            yield from flatten(value, name, path + (str(key),))
        else:
            yield path + (str(key),), value


# -- one value

def bound_plaintext(path, value, name="value"):
    """The bytes each message holds: the key path and the value, as UTF-8 JSON."""
    try:
        text = json.dumps({"path": list(path), "value": plain_value(value)}, ensure_ascii=False, sort_keys=True,
                          separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as error:
        raise InputError(f"{name}: the value of {dotted(path)} cannot be stored ({error}): use strings, numbers, "
                         "booleans, null and lists of them") from None
    return text.encode("utf-8")


def plain_value(value):
    """The value with Ansible's str/int/list/dict subclasses (tagged, unsafe) as plain JSON types."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, Mapping):
        return {str(key): plain_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_value(item) for item in value]
    raise TypeError(f"{type(value).__name__} is not a JSON type")


def _bound_document(plaintext, where):
    try:
        document = json.loads(plaintext.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        document = None
    if not isinstance(document, dict) or set(document) != {"path", "value"} or not isinstance(document["path"], list):
        raise EnvelopeError(f"{where}: the message is not an envelope vars value (an envelope file pasted in?)",
                            "corrupt", where)
    return document


def bound_path(plaintext, where):
    """The key path a decrypted message is bound to."""
    return tuple(_bound_document(plaintext, where)["path"])


def unbound_value(plaintext, path, where):
    """The value of a decrypted message that must stand at ``path``."""
    document = _bound_document(plaintext, where)
    if document["path"] != list(path):
        found = dotted(document["path"]) if all(isinstance(key, str) for key in document["path"]) else "another key"
        raise EnvelopeError(f"{where}: the value was encrypted for key {found}: values were moved or swapped",
                            "moved", where)
    return document["value"]


def seal(ciphertext):
    return MARKER + base64.b64encode(ciphertext).decode("ascii")


def unseal(text, where):
    try:
        return base64.b64decode(text[len(MARKER):], validate=True)
    except (binascii.Error, ValueError):
        raise EnvelopeError(f"{where}: the value after {MARKER} is not base64", "corrupt", where) from None


def leaf_token(value):
    """What a diff shows for a leaf: never the value, only whether it is encrypted and a short hash
    of the text in the file (of the ciphertext for an encrypted one), so changed lines differ."""
    if is_sealed(value):
        return "encrypted " + hashlib.sha256(value.encode("utf-8")).hexdigest()[:12]
    text = json.dumps(value, sort_keys=True, default=str)
    return "clear " + hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def summary(tree):
    """The diff text of a file: one line per leaf, 'db.password: encrypted 3f2a…'."""
    return "".join(f"{dotted(path)}: {leaf_token(value)}\n" for path, value in leaves(tree))


# -- whole files

def is_json_name(name):
    return str(name).lower().endswith(".json")


def parse(data, name):
    """The mapping of a vars file's bytes (YAML, or JSON for a .json name). An empty file is {}."""
    if len(data) > MAX_FILE_SIZE:
        raise EnvelopeError(f"{name}: larger than {MAX_FILE_SIZE} bytes, not read as a vars file", "too_large", name)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise EnvelopeError(f"{name}: not UTF-8 text (a whole-file envelope? use envelope.kms.decrypt)", "corrupt",
                            name) from None
    if is_json_name(name):
        try:
            tree = json.loads(text) if text.strip() else {}
        except ValueError as error:
            raise EnvelopeError(f"{name}: not valid JSON: {error}", "corrupt", name) from None
    else:
        tree = _load_yaml(text, name)
    if tree is None:
        tree = {}
    if not isinstance(tree, dict):
        raise EnvelopeError(f"{name}: a vars file must hold a mapping of names to values", "corrupt", name)
    _check_keys(tree, name, ())
    return tree


def _yaml(name):
    try:
        import yaml  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise EnvelopeError(f"{name}: the PyYAML Python library is required for YAML vars files", "missing_library",
                            name) from None
    return yaml


def _load_yaml(text, name):
    yaml = _yaml(name)

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader)  # nosec: a safe loader
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise EnvelopeError(f"{name}: not valid YAML{where}", "corrupt", name) from None


def _check_keys(tree, name, path):
    for key, value in tree.items():
        if not isinstance(key, str):
            raise EnvelopeError(f"{name}: key {key!r} under {dotted(path) or 'the top'} is not a string", "corrupt", name)
        if isinstance(value, dict):
            _check_keys(value, name, path + (key,))


def dump(tree, name):
    """The canonical text of a vars file: YAML (block style, file order, one value per line) or
    JSON for a .json name."""
    if is_json_name(name):
        return json.dumps(tree, indent=2, ensure_ascii=False) + "\n"
    yaml = _yaml(name)

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    body = yaml.dump(tree, Dumper=dumper, default_flow_style=False, sort_keys=False, allow_unicode=True,
                     width=1 << 30) if tree else "{}\n"
    return HEADER_COMMENT + "---\n" + body


# -- reading with KMS

class Decrypted:
    """A decrypted vars file: ``tree`` (clear values as they were, secrets decrypted), and what
    the messages share: ``facts`` (key ARNs, context) of the first, ``data_key`` (fingerprint)."""

    def __init__(self, tree, facts, data_key, values, header, manager):
        self.tree = tree
        self.facts = facts
        self.data_key = data_key
        self.values = values  # {path: value} of the encrypted leaves
        self.header = header  # of the first message (for writers joining the file's data key)
        self.manager = manager


def decrypt_tree(engine, tree, name, policy, manager=None):
    """Decrypt every sealed leaf of a parsed file (one KMS Decrypt for the file's data key, or none
    when the engine's cache has it). Raises EnvelopeError naming the file and the key."""
    from ansible_collections.envelope.kms.plugins.module_utils._envelope.shared_key import (  # pylint: disable=import-outside-toplevel
        edk_fingerprint,
    )

    manager = manager or engine.shared_key_manager(policy)
    out = copy.deepcopy(tree)
    shared, facts, first, values = None, None, None, {}
    for path, text in sealed_leaves(tree):
        where = f"{name}: key {dotted(path)}"
        plaintext, message_facts, header = engine.decrypt_message(unseal(text, where), manager, policy,
                                                                  f"cannot decrypt {where}")
        data_key = (edk_fingerprint(header.encrypted_data_keys), tuple(sorted(header.encryption_context.items())))
        if shared is None:
            shared, facts, first = data_key, message_facts, header
        elif data_key != shared:
            raise EnvelopeError(f"cannot decrypt {where}: it is not under this file's data key and context "
                                "(a value moved in from another file?)", "moved", name)
        value = unbound_value(plaintext, path, f"cannot decrypt {where}")
        values[path] = value
        set_leaf(out, path, value, name)
    return Decrypted(out, facts, shared, values, first, manager)


def header_facts(tree, name):
    """EnvelopeFacts (key ARNs, context) of a file's first encrypted value, from its header (no KMS);
    None when the file has none."""
    from ansible_collections.envelope.kms.plugins.module_utils.envelope import inspect_header  # pylint: disable=import-outside-toplevel

    sealed = sealed_leaves(tree)
    if not sealed:
        return None
    path, text = sealed[0]
    return inspect_header(unseal(text, f"{name}: key {dotted(path)}"))


# -- writing with KMS

class Update:
    """What a writer did to a file: the new ``tree`` and its ``text``, and the key paths (dotted)
    ``added``, ``updated``, ``removed``, ``rewrapped`` (re-encrypted under other keys or context)
    and ``unchanged``."""

    def __init__(self, tree, text, changes, key_arns, encryption_context):
        self.tree = tree
        self.text = text
        self.changes = changes
        self.key_arns = key_arns
        self.encryption_context = encryption_context

    @property
    def changed(self):
        return any(self.changes[kind] for kind in ("added", "updated", "removed", "rewrapped"))


class Request:
    """A writer's request, validated with no KMS call: ``values`` to encrypt, ``clear_values`` to
    keep in clear text, ``remove`` key paths; ``key_arns`` (resolved) and ``encryption_context``
    (None: the file's own); ``trusted_key_arns``: without ``key_arns``, the keys a file may be
    wrapped under for new secrets to join it (a file replaced in the repository could carry a key
    someone else controls); ``order``: the key paths in the order new keys go into the file."""

    def __init__(self, name, values=None, clear_values=None, remove=(), key_arns=None, encryption_context=None,
                 order=None, trusted_key_arns=None):
        from ansible_collections.envelope.kms.plugins.module_utils._envelope.inputs import normalize_context  # pylint: disable=import-outside-toplevel

        self.name = name
        self.secrets = {path: (value, bound_plaintext(path, value, name))
                        for path, value in flatten(values or {}, name)}
        self.clear = dict(flatten(clear_values or {}, name))
        self.remove = [key_path(item) for item in remove or ()]
        self._check_conflicts()
        self.key_arns = tuple(sorted(set(key_arns))) if key_arns else None
        # without key_arns, new secrets join the file's data key only if the file's keys are all in these
        self.trusted_key_arns = tuple(sorted(set(trusted_key_arns))) if trusted_key_arns else None
        self.encryption_context = None if encryption_context is None else normalize_context(encryption_context)
        # the order new keys go into the file: ``order`` (key paths) first, then the clear values, then the secrets
        given = [key_path(item) for item in order or ()]
        self.order = [path for path in dict.fromkeys(given + list(self.clear) + list(self.secrets))
                      if path in self.clear or path in self.secrets]

    def _check_conflicts(self):
        for path in self.clear:
            if path in self.secrets:
                raise InputError(f"{self.name}: key {dotted(path)} is in both values and clear_values")
        for path in self.remove:
            if path in self.secrets or path in self.clear:
                raise InputError(f"{self.name}: key {dotted(path)} is both set and removed")
        for path, value in self.clear.items():
            if is_sealed(value):
                raise InputError(f"{self.name}: the clear value of {dotted(path)} starts with {MARKER}")


def update_tree(engine, tree, request, check_mode=False):
    """Apply a Request to a parsed file. Existing values are decrypted first (one KMS Decrypt for
    the file, which also proves the file intact); a value whose plaintext is unchanged keeps its
    text. New values join the file's data key, unless the keys or the context change (the file is
    then rewrapped: every value re-encrypted under a new data key). In check mode nothing is
    encrypted: new values show as 'encrypted (new)' in the summary."""
    _check_structure(tree, request)  # before any KMS call
    plan = _Plan(engine, tree, request)
    plan.remove()
    for path in request.order:
        if path in request.clear:
            plan.set_clear(path, request.clear[path])
        else:
            plan.set_secret(path, request.secrets[path][1])
    plan.rewrap_rest()
    if plan.to_encrypt and not plan.key_arns:
        raise InputError(f"{request.name}: key_id is required to encrypt values into a file that has no encrypted "
                         "value yet")
    if check_mode:
        for path in plan.to_encrypt:
            set_leaf(plan.new, path, MARKER + "(new)", request.name)
    elif plan.to_encrypt:
        _encrypt_values(engine, plan.new, plan.to_encrypt, plan.key_arns, plan.context,
                        None if plan.rewrap else plan.decrypted, request.name)
    return Update(plan.new, dump(plan.new, request.name), plan.changes, plan.key_arns, plan.context)


def _check_structure(tree, request):
    """Every set and removal fits the file (a key under a value, a value over a mapping), and new
    secrets may join the file's keys: checked on the parsed file alone, with no KMS call."""
    scratch = copy.deepcopy(tree)
    for path in request.remove:
        remove_leaf(scratch, path)
    for path in request.order:
        set_leaf(scratch, path, None, request.name)
    existing = header_facts(tree, request.name)
    if request.secrets and existing and request.key_arns is None:
        file_keys = set(existing.key_arns)
        if request.trusted_key_arns is None:
            raise InputError(f"{request.name}: give key_id (or allowed_key_arns) to add or change encrypted values: the "
                             f"file's own keys ({', '.join(sorted(file_keys))}) are not trusted by themselves, since a "
                             "file replaced in the repository could carry a key someone else controls")
        if not file_keys <= set(request.trusted_key_arns):
            raise InputError(f"{request.name}: the file is wrapped under {', '.join(sorted(file_keys - set(request.trusted_key_arns)))}, "
                             "not in allowed_key_arns: give key_id to rewrap it under your key")


class _Plan:
    """The new tree of update_tree, before encryption: what changes, what must be encrypted."""

    def __init__(self, engine, tree, request):
        self.tree, self.request, self.name = tree, request, request.name
        existing = header_facts(tree, self.name)
        old_arns = tuple(sorted(set(existing.key_arns))) if existing else None
        self.key_arns = request.key_arns or old_arns
        self.context = request.encryption_context
        if self.context is None:
            self.context = dict(existing.encryption_context) if existing else {}
        self.decrypted = None
        if existing:
            from ansible_collections.envelope.kms.plugins.module_utils._envelope.policy import DecryptPolicy  # pylint: disable=import-outside-toplevel

            self.decrypted = decrypt_tree(engine, tree, self.name, DecryptPolicy.strict(old_arns))
        self.rewrap = bool(existing) and (self.key_arns != old_arns
                                          or self.context != dict(existing.encryption_context))
        self.new = copy.deepcopy(tree)
        self.changes = {kind: [] for kind in ("added", "updated", "removed", "rewrapped", "unchanged")}
        self.to_encrypt = {}

    def _record(self, path):
        self.changes["updated" if _present(self.tree, path) else "added"].append(dotted(path))

    def remove(self):
        for path in self.request.remove:
            if remove_leaf(self.new, path):
                self.changes["removed"].append(dotted(path))

    def set_clear(self, path, value):
        try:
            value = plain_value(value)
        except TypeError as error:
            raise InputError(f"{self.name}: the value of {dotted(path)} cannot be stored ({error}): use strings, "
                             "numbers, booleans, null and lists of them") from None
        old = get_leaf(self.tree, path)
        if _present(self.tree, path) and not is_sealed(old) and _same(old, value):
            self.changes["unchanged"].append(dotted(path))
            return
        set_leaf(self.new, path, value, self.name)
        self._record(path)

    def set_secret(self, path, plaintext):
        old = get_leaf(self.tree, path)
        if is_sealed(old) and bound_plaintext(path, self.decrypted.values[path], self.name) == plaintext:
            if not self.rewrap:
                self.changes["unchanged"].append(dotted(path))
            return  # a rewrap re-encrypts it (rewrap_rest), and reports it as rewrapped
        set_leaf(self.new, path, MARKER, self.name)  # a placeholder (and a check that the path fits)
        self.to_encrypt[path] = plaintext
        self._record(path)

    def rewrap_rest(self):
        if not self.rewrap:
            return
        for path, _text in sealed_leaves(self.new):
            if path not in self.to_encrypt:
                self.to_encrypt[path] = bound_plaintext(path, self.decrypted.values[path], self.name)
                self.changes["rewrapped"].append(dotted(path))


_ABSENT = object()


def _present(tree, path):
    return get_leaf(tree, path, _ABSENT) is not _ABSENT


def _same(old, new):
    """Equal with the same JSON types (1, True and 1.0 differ; so do [1] and [true])."""
    def canonical(value):
        return json.dumps(value, sort_keys=True, default=str)
    return canonical(old) == canonical(new)


def _encrypt_values(engine, tree, to_encrypt, key_arns, context, joined, name):
    if joined is not None and joined.header is not None:
        manager = joined.manager
        manager.join(joined.header)
        algorithm = joined.facts.algorithm_id
    else:
        manager = engine.shared_key_manager(key_ids=list(key_arns))
        algorithm = None
    for path, plaintext in to_encrypt.items():
        where = f"cannot encrypt {name}: key {dotted(path)}"
        set_leaf(tree, path, seal(engine.encrypt_message(plaintext, manager, context, algorithm, what=where)), name)


def rewrap_file(engine, path, key_arns, encryption_context=None, policy=None, check_mode=False, before_write=None):
    """Rewrap an envelope vars file in place under ``key_arns`` (and ``encryption_context``, default
    the file's own): (old facts or None, new facts or None, Update or None when nothing to do).
    ``policy`` (a DecryptPolicy) is checked on the file's header first, with no KMS call;
    ``before_write()`` is called once everything is encrypted, just before the file is replaced."""
    from ansible_collections.envelope.kms.plugins.module_utils._envelope.inputs import normalize_context  # pylint: disable=import-outside-toplevel
    from ansible_collections.envelope.kms.plugins.module_utils._envelope.io import open_regular, write_file_atomic  # pylint: disable=import-outside-toplevel

    with open_regular(path) as handle:
        data = handle.read(MAX_FILE_SIZE + 1)
    tree = parse(data, path)
    old = header_facts(tree, path)
    if old is None:
        return None, None, None
    context = dict(old.encryption_context) if encryption_context is None else normalize_context(encryption_context)
    if not old.wrapped_as(key_arns, context):
        return old, old, None
    if policy is not None:
        policy.check(old, f"cannot rewrap {path}")
    update = update_tree(engine, tree, Request(path, key_arns=key_arns, encryption_context=context),
                         check_mode=check_mode)
    if check_mode:
        return old, None, update
    if before_write is not None:
        before_write()
    write_file_atomic(path, update.text.encode("utf-8"))
    return old, header_facts(update.tree, path), update
