# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""envelope.kms.vars_file: create an envelope vars file, or set, remove and rewrap its values.

Runs on the controller with no module. Every option is checked before the first KMS call; the
existing file is decrypted (one KMS Decrypt for all its values) to keep the text of every value
that did not change; the new text is written through a temp file renamed over the old one.
Plaintext stays in this process's memory.
"""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail

from ansible_collections.envelope.kms.plugins.module_utils import vars_file
from ansible_collections.envelope.kms.plugins.module_utils._envelope.inputs import is_unknown_key_arn, shown_key_arns
from ansible_collections.envelope.kms.plugins.module_utils._envelope.io import file_kind
from ansible_collections.envelope.kms.plugins.module_utils.envelope import write_file_atomic
from ansible_collections.envelope.kms.plugins.module_utils.errors import EnvelopeError, InputError
from ansible_collections.envelope.kms.plugins.module_utils.file_attrs import resolve_mode
from ansible_collections.envelope.kms.plugins.plugin_utils.action import EnvelopeActionBase, checked_context
from ansible_collections.envelope.kms.plugins.plugin_utils.errors import plugin_errors
from ansible_collections.envelope.kms.plugins.plugin_utils.vars_loader import read_file

KINDS = ("added", "updated", "removed", "rewrapped", "unchanged")


class ActionModule(EnvelopeActionBase):
    TRANSFERS_FILES = False
    KEY_ID_OPTIONS = ("key_id",)

    ARGUMENT_SPEC = dict(
        path=dict(type="path", required=True),
        key_id=dict(type="list", elements="str"),
        encryption_context=dict(type="dict"),
        values=dict(type="dict", no_log=True),
        clear_values=dict(type="dict"),
        remove=dict(type="list", elements="raw", default=[]),
        src=dict(type="path"),
        clear_keys=dict(type="list", elements="raw", default=[]),
        src_secrets=dict(type="str", default="all", choices=["all", "vaulted"]),
        allowed_key_arns=dict(type="list", elements="str", no_log=False),
        mode=dict(type="raw"),
    )

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        with plugin_errors(AnsibleActionFail):
            if self._task.args.get("encryption_context") is not None:
                checked_context(self._task.args.get("encryption_context"))
            options = self.load_options()
            key_ids = self.key_ids()  # null: a key an earlier task would create (check mode only)
            path = self._controller_path(options["path"])
            request_args, mode = self._request_args(options, path)  # every check before any KMS call
            tree = self._existing(path)
            engine = self.engine()
            key_arns = self.resolve_key_arns(key_ids) if key_ids else None
            request = vars_file.Request(path, key_arns=key_arns, trusted_key_arns=self._trusted(options),
                                        **request_args)
            before = vars_file.summary(tree) if tree is not None else ""
            update = vars_file.update_tree(engine, tree or {}, request, check_mode=self._task.check_mode)
            changed = update.changed or tree is None
            if changed and not self._task.check_mode:
                self._write(path, update.text, mode)
            elif mode is not None and not changed:
                changed = self._fix_mode(path, mode)
        result.update(
            changed=changed,
            path=path,
            # sorted, as the file's keys are: those not known yet (check mode) last, as None
            key_arns=shown_key_arns(sorted(update.key_arns or (), key=is_unknown_key_arn)),
            encryption_context=update.encryption_context,
            **{kind: update.changes[kind] for kind in KINDS},
        )
        if self._task.diff:
            result["diff"] = dict(before_header=path, after_header=path, before=before,
                                  after=vars_file.summary(update.tree))
        return result

    # -- the request (no KMS call here)

    def _request_args(self, options, path):
        values = dict(options["values"] or {})
        clear_values = dict(options["clear_values"] or {})
        order = []
        if options["src"]:
            values, clear_values, order = self._merge_src(values, clear_values, self._controller_path(options["src"]),
                                                          path, options["src_secrets"])
            clear_keys = [vars_file.key_path(item) for item in options["clear_keys"]]
        elif options["clear_keys"]:
            raise InputError("clear_keys applies to src: give clear values in clear_values")
        else:
            clear_keys = []
        for key in clear_keys:
            value = _pop_leaf(values, key)
            if value is not None:
                _set_nested(clear_values, key, value)
        mode = resolve_mode(options["mode"]) if options["mode"] is not None else None
        args = dict(values=values, clear_values=clear_values, remove=options["remove"],
                    encryption_context=options["encryption_context"], order=order)
        vars_file.Request(path, **args)  # validates values, paths and the context now
        if not os.path.isdir(os.path.dirname(path) or "."):
            raise InputError(f"cannot write {path}: its directory does not exist")
        return args, mode

    def _merge_src(self, values, clear_values, src, path, src_secrets):
        """(values, clear_values, key paths in file order) with the leaves of a plain or ansible-vault vars file, loaded by
        Ansible's own loader (vault payloads decrypted in memory with the run's vault secrets). With
        src_secrets=vaulted only the values that were vault-encrypted (all of a whole-file vault)
        are secrets; the others stay clear."""
        if os.path.realpath(src) == os.path.realpath(path):
            raise InputError(f"src and path are the same file ({src}): write the envelope vars file elsewhere")
        try:
            kind = file_kind(os.stat(src).st_mode)
        except OSError as error:
            raise InputError(f"cannot read src {src}: {error.strerror}") from None
        if kind != "regular file":
            raise InputError(f"src {src} is {kind}, not a regular file")
        whole_file_vault = _is_vault_file(src)
        try:
            data = self._loader.load_from_file(src)
        except Exception as error:  # AnsibleParserError, vault errors: one line
            raise InputError(f"cannot read src {src}: {str(error).splitlines()[0]}") from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise InputError(f"src {src} must hold a mapping of names to values")
        order = []
        for key_path, value in vars_file.leaves(data):
            order.append(list(key_path))
            if vars_file.is_sealed(value):
                raise InputError(f"src {src}: key {vars_file.dotted(key_path)} is already an envelope value")
            if _get_nested(values, key_path) is not None or _get_nested(clear_values, key_path) is not None:
                continue  # the task's own values win
            secret = src_secrets == "all" or whole_file_vault or _is_vaulted(value)
            try:
                plain = _revealed(value)
            except Exception as error:  # a payload no vault secret of the run opens
                raise InputError(f"cannot read src {src}: key {vars_file.dotted(key_path)}: "
                                 f"{str(error).splitlines()[0]}") from None
            _set_nested(values if secret else clear_values, key_path, plain)
        return values, clear_values, order

    @staticmethod
    def _trusted(options):
        """The keys an existing file may be wrapped under for new secrets to join it without key_id:
        this task's allowed_key_arns, else the envelope.kms.vars plugin's (ansible.cfg, environment)."""
        if options["allowed_key_arns"]:
            return options["allowed_key_arns"]
        try:
            from ansible.plugins.loader import vars_loader  # pylint: disable=import-outside-toplevel

            plugin = vars_loader.get("envelope.kms.vars")
            return plugin.get_option("allowed_key_arns") if plugin is not None else None
        except Exception:  # pylint: disable=broad-exception-caught
            return None  # no setting: key_id is then required to add secrets to an existing file

    def _fix_mode(self, path, mode):
        """An existing file that needs nothing else gets the given mode (a change)."""
        current = os.stat(path).st_mode & 0o7777
        if current == mode:
            return False
        if not self._task.check_mode:
            try:
                os.chmod(path, mode)
            except OSError as error:
                raise EnvelopeError(f"cannot set the mode of {path}: {error.strerror}", "io_error", path) from None
        return True

    # -- files

    def _controller_path(self, path):
        if not os.path.isabs(path):
            path = self._loader.path_dwim(path)
        return os.path.normpath(path)

    @staticmethod
    def _existing(path):
        if not os.path.lexists(path):
            return None
        return vars_file.parse(read_file(path), path)

    @staticmethod
    def _write(path, text, mode):
        try:
            write_file_atomic(path, text.encode("utf-8"), mode=mode)
        except OSError as error:
            raise EnvelopeError(f"cannot write {path}: {error.strerror}", "io_error", path) from None


def _get_nested(tree, path):
    return vars_file.get_leaf(tree, path)


def _set_nested(tree, path, value):
    node = tree
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value


def _pop_leaf(tree, path):
    node = tree
    for key in path[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
        if node is None:
            return None
    return node.pop(path[-1], None) if isinstance(node, dict) else None


def _is_vault_file(path):
    try:
        with open(path, "rb") as handle:
            return handle.read(len(b"$ANSIBLE_VAULT;")) == b"$ANSIBLE_VAULT;"
    except OSError:
        return False  # the loader reports it


def _is_vaulted(value):
    """An inline !vault value (ansible-core 2.19's EncryptedString or VaultedValue tag; older cores'
    AnsibleVaultEncryptedUnicode), or a list or mapping holding one."""
    if isinstance(value, list):
        return any(_is_vaulted(item) for item in value)
    if isinstance(value, dict):
        return any(_is_vaulted(item) for item in value.values())
    try:
        from ansible.parsing.vault import VaultHelper  # pylint: disable=import-outside-toplevel
    except ImportError:
        VaultHelper = None
    if VaultHelper is not None and VaultHelper.get_ciphertext(value, with_tags=False):
        return True
    return type(value).__name__ in ("EncryptedString", "AnsibleVaultEncryptedUnicode")


def _revealed(value):
    """The value with vault payloads decrypted (str() of a vaulted value decrypts it)."""
    if isinstance(value, list):
        return [_revealed(item) for item in value]
    if isinstance(value, dict):
        return {key: _revealed(item) for key, item in value.items()}
    if _is_vaulted(value):
        return str(value)
    return value
