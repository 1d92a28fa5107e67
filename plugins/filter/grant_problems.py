# -*- coding: utf-8 -*-
# Copyright: envelope.kms developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja filter: what envelope.kms.grant would refuse in a list of grants, checked without KMS."""

from ansible.errors import AnsibleFilterError

from ansible_collections.envelope.kms.plugins.module_utils.errors import InputError


def grant_problems(grants):
    """A list of one-line problems (empty when the grants are fine): the checks of envelope.kms.grant,
    which it makes before its first KMS call, so that a role can make them before its own."""
    if not isinstance(grants, list) or not all(isinstance(entry, dict) for entry in grants):
        raise AnsibleFilterError("grant_problems takes a list of grants (dictionaries)")
    # Imported here: grants.py pulls in amazon.aws's module_utils, which a playbook without this filter
    # does not need.
    from ansible_collections.envelope.kms.plugins.module_utils.grants import desired_grants  # pylint: disable=import-outside-toplevel

    try:
        desired_grants(grants)
    except InputError as error:
        return [error.message]
    return []


class FilterModule:
    """envelope.kms filters."""

    def filters(self):
        return {"grant_problems": grant_problems}
