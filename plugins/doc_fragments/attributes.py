# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Attributes shared by the KMS management modules (they talk to AWS, not to the host)."""

    DOCUMENTATION = r"""
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
  platform:
    description: Target OS/families that can be operated against.
    support: N/A
    platforms: all
  action_group:
    description: Use C(group/envelope.kms.kms) in C(module_defaults) to set AWS options once for every module of this collection.
    support: full
    membership:
      - envelope.kms.kms
"""

    # For read-only modules: check mode runs them as usual and they never report changes.
    INFO_MODULE = r"""
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: This module never changes anything.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
  platform:
    description: Target OS/families that can be operated against.
    support: N/A
    platforms: all
  action_group:
    description: Use C(group/envelope.kms.kms) in C(module_defaults) to set AWS options once for every module of this collection.
    support: full
    membership:
      - envelope.kms.kms
"""

    # For actions that do all their work on the controller (encrypt, vars_file, load_vars,
    # vault_rekey): each module adds its own check_mode and diff_mode.
    CONTROLLER_ACTION = r"""
attributes:
  action:
    description: The work is done by an action plugin on the controller; no module runs.
    support: full
  async:
    description: Not supported.
    support: none
  bypass_host_loop:
    description: Runs once per host; use C(run_once) or C(delegate_to=localhost) in a play of several hosts.
    support: none
  platform:
    description: Works on the controller only; the host is not contacted.
    support: full
    platforms: controller
  action_group:
    description: Use C(group/envelope.kms.kms) in C(module_defaults) to set AWS options once.
    support: full
    membership:
      - envelope.kms.kms
"""
