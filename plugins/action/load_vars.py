# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""envelope.kms.load_vars: load one envelope vars file as variables in a task (like include_vars).

Runs on the controller with no module. The file is found like include_vars finds its files (the
role's vars/ folder, then the playbook's), decrypted through plugin_utils/vars_loader.py's cache
(one KMS Decrypt per file and worker process) and returned as facts of the host, with no_log.
"""

from __future__ import annotations

from ansible import constants as C
from ansible.errors import AnsibleActionFail

from ansible_collections.envelope.kms.plugins.module_utils.envelope import DecryptPolicy, decrypt_policy_argument_spec
from ansible_collections.envelope.kms.plugins.plugin_utils.action import EnvelopeActionBase
from ansible_collections.envelope.kms.plugins.plugin_utils.errors import plugin_errors
from ansible_collections.envelope.kms.plugins.plugin_utils import vars_loader

_POLICY = decrypt_policy_argument_spec()
MEMORY_CACHES = ("memory", "ansible.builtin.memory")


class ActionModule(EnvelopeActionBase):
    TRANSFERS_FILES = False

    ARGUMENT_SPEC = dict(
        _POLICY["argument_spec"],
        file=dict(type="str", required=True),
        name=dict(type="str"),
        allow_fact_cache=dict(type="bool", default=False),
    )
    MUTUALLY_EXCLUSIVE = tuple(_POLICY["mutually_exclusive"])

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        result["_ansible_no_log"] = True
        with plugin_errors(AnsibleActionFail):
            options = self.load_options()
            policy = DecryptPolicy.from_options(options)
            if C.CACHE_PLUGIN not in MEMORY_CACHES and not options["allow_fact_cache"]:
                raise AnsibleActionFail(
                    f"envelope.kms.load_vars: the fact cache plugin {C.CACHE_PLUGIN!r} would store the decrypted values "
                    "(load_vars returns them as host facts); use the envelope.kms.vars plugin, or set allow_fact_cache"
                )
            path = self._find_file(options["file"])
            engine = self.engine()
            values = vars_loader.load(lambda: engine, path, engine.policy(policy))
        if options["name"]:
            values = {options["name"]: values}
        result.update(ansible_facts=values, ansible_included_var_files=[path], changed=False)
        return result

    def _find_file(self, name):
        try:
            return self._find_needle("vars", name)
        except Exception:  # AnsibleError with the paths searched: one line is enough
            raise AnsibleActionFail(f"envelope vars file {name!r} not found (use -vvvvv to see the paths searched)") from None
