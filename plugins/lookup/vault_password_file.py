# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: vault_password_file
short_description: Where the envelope-kms-client vault password client looks for a vault id's envelope
version_added: 0.2.0
description:
  - Returns the path of the KMS envelope that holds the ansible-vault password of each vault id given,
    by the rules of the C(envelope-kms-client) script run from the directory C(ansible-playbook) was
    started in. E(ENVELOPE_KMS_VAULT_PASSWORD_FILE) (C({label}) is replaced) comes first, then
    C(password_file) in the C([envelope_kms_vault]) section of the ansible.cfg in use (relative to that
    file), else C(vault-passwords/<label>.enc) beside the inventory that ansible.cfg names (or beside
    ansible.cfg, or in the current directory).
  - Makes no AWS call and reads no envelope; the C(envelope.kms.vault_password) playbook uses it.
author:
  - envelope.kms developers (!UNKNOWN)
options:
  _terms:
    description: Vault ids (labels), such as V(prod).
    type: list
    elements: str
    required: true
seealso:
  - module: envelope.kms.vault_rekey
"""

EXAMPLES = r"""
- name: Show where the prod vault password's envelope is (or would be created)
  ansible.builtin.debug:
    msg: "{{ lookup('envelope.kms.vault_password_file', 'prod') }}"
"""

RETURN = r"""
_raw:
  description: One absolute path per vault id.
  type: list
  elements: path
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.envelope.kms.plugins.plugin_utils import vault_client


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        try:
            return [vault_client.password_file(str(term)) for term in terms]
        except vault_client.ClientError as error:
            raise AnsibleLookupError(f"envelope.kms.vault_password_file lookup: {error.message}") from None
