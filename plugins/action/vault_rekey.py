# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""envelope.kms.vault_rekey: every vault file and inline !vault value under a tree, from the run's
vault secrets to the password a KMS envelope holds, in one task.

Two phases, so that a failure leaves every file as it was or wholly rekeyed: first every file is
read, decrypted and re-encrypted in memory (any failure fails the task before anything is
written), then each changed file is replaced atomically (temp file beside it, renamed over it).
"""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail
from ansible.parsing.vault import VaultSecret

from ansible_collections.envelope.kms.plugins.module_utils.envelope import write_file_atomic
from ansible_collections.envelope.kms.plugins.module_utils.errors import EnvelopeError, InputError
from ansible_collections.envelope.kms.plugins.plugin_utils import vault_client
from ansible_collections.envelope.kms.plugins.plugin_utils.action import AWS_OPTIONS, EnvelopeActionBase
from ansible_collections.envelope.kms.plugins.plugin_utils.errors import plugin_errors
from ansible_collections.envelope.kms.plugins.plugin_utils.vars_loader import read_file
from ansible_collections.envelope.kms.plugins.plugin_utils.vault_files import Rekeyer, VaultFileError


class ActionModule(EnvelopeActionBase):
    TRANSFERS_FILES = False

    ARGUMENT_SPEC = dict(
        paths=dict(type="list", elements="str", required=True),
        vault_id=dict(type="str", required=True),
        envelope=dict(type="path"),
        allowed_key_arns=dict(type="list", elements="str", no_log=False),
    )

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        with plugin_errors(AnsibleActionFail):
            options = self.load_options()
            try:
                label = vault_client.check_label(options["vault_id"])
            except vault_client.ClientError as error:
                raise InputError(error.message) from None
            old_secrets = list(getattr(getattr(self._loader, "_vault", None), "secrets", None) or [])
            if not old_secrets:
                raise InputError("no vault secret was given to this run: add --vault-id <old label>@prompt (or the "
                                 "old password file) so the files can be decrypted")
            patterns = [self._controller_path(pattern) for pattern in options["paths"]]
            # imported here: rewrap pulls in module_utils/kms.py, hence amazon.aws, which must not keep
            # this plugin from loading (run() says in one line that it is missing)
            from ansible_collections.envelope.kms.plugins.module_utils import rewrap as walk  # pylint: disable=import-outside-toplevel

            entries, unmatched = walk.expand_paths(patterns, verb="rekey")
            for pattern in unmatched:
                self._display.warning(f"envelope.kms.vault_rekey: {pattern} matched no files")
            problems = [problem for _path, _real, problem in entries if problem]
            if problems:  # before the KMS call that reads the new password
                raise InputError(f"{len(problems)} of {len(entries)} paths cannot be rekeyed, none was changed: "
                                 + "; ".join(problems))
            password_path = (self._controller_path(options["envelope"]) if options["envelope"]
                             else vault_client.password_file(label))
            secret = self._new_secret(label, password_path, options["allowed_key_arns"])
            rekeyer = Rekeyer(old_secrets, label, VaultSecret(secret))
            planned = self._plan(entries, rekeyer)
            if not self._task.check_mode:
                _write_all(planned, lambda real: path_of(entries, real))
        files = [dict(path=path_of(entries, real), kind=outcome.kind, values=outcome.values, rekeyed=outcome.rekeyed,
                      changed=outcome.changed) for real, outcome in planned]
        result.update(
            changed=any(item["changed"] for item in files),
            vault_id=label,
            envelope=password_path,
            files=[item for item in files if item["kind"]],
            rekeyed=sorted(item["path"] for item in files if item["changed"]),
            values_rekeyed=sum(item["rekeyed"] for item in files),
        )
        return result

    def _new_secret(self, label, path, allowed_key_arns):
        """The new password, read as envelope-kms-client reads it: its allowed keys and AWS settings
        ([envelope_kms_vault], ENVELOPE_KMS_VAULT_*) unless the task gives its own."""
        try:
            client_options = vault_client.settings()[0]
            if allowed_key_arns is None:
                allowed_key_arns = vault_client.allowed_key_arns(client_options)
            task_aws = any(self._task.args.get(name) is not None for name in AWS_OPTIONS)
            engine = self.engine() if task_aws else vault_client.engine(client_options)
            return vault_client.read_password(label, path, engine, allowed_key_arns)
        except vault_client.ClientError as error:
            raise InputError(error.message) from None

    @staticmethod
    def _plan(entries, rekeyer):
        planned, failures = [], []
        for path, real, problem in entries:
            if problem:
                failures.append(problem)
                continue
            try:
                planned.append((real, rekeyer.rekey_text(read_file(real), path)))
            except VaultFileError as error:
                failures.append(error.message)
        if failures:
            raise InputError(f"{len(failures)} of {len(entries)} files cannot be rekeyed, none was changed: "
                             + "; ".join(failures))
        return planned

    def _controller_path(self, path):
        if not os.path.isabs(path):
            path = self._loader.path_dwim(path)
        return os.path.normpath(path)


def _write_all(planned, name):
    """Write each changed file atomically; on a failure, say which files are rekeyed and which not."""
    changed = [(real, outcome) for real, outcome in planned if outcome.changed]
    for index, (real, outcome) in enumerate(changed):
        try:
            write_file_atomic(real, outcome.text.encode("utf-8"))
        except OSError as error:
            done = [name(item) for item, _outcome in changed[:index]]
            left = [name(item) for item, _outcome in changed[index:]]
            raise EnvelopeError(
                f"cannot write {name(real)}: {error.strerror}; each file is either as it was or wholly rekeyed: "
                f"rekeyed {', '.join(done) or 'none'}; left as they were {', '.join(left)} (run again once fixed)",
                "io_error", real) from None


def path_of(entries, real):
    for path, entry_real, _problem in entries:
        if entry_real == real:
            return path
    return real
