# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """The decrypt policy options (envelope.decrypt_policy_argument_spec): what a file must be before
    any plaintext is released. The decrypt module and lookup take both parts; rewrap takes KEYS."""

    DOCUMENTATION = r"""
options:
  encryption_context:
    description:
      - Key/value pairs each file's encryption context must contain, with these values. Pairs a file
        has beyond these are accepted.
      - The AWS Encryption SDK does not check the context on decrypt; this collection does, before any
        plaintext is written, returned or re-encrypted.
    type: dict
"""

    # The key options; a plugin whose encryption_context means something else (rewrap) takes only these.
    KEYS = r"""
options:
  allowed_key_arns:
    description:
      - Only these KMS keys (key ARNs) may decrypt the files (the AWS Encryption SDK's strict mode).
        Aliases are not accepted here, because the key an alias points at changes on rotation while
        older files stay wrapped under the previous key.
      - Mutually exclusive with O(discovery_account_ids). Without either, any KMS key the
        credentials may use is accepted (discovery mode); restrict it where you can.
      - A multi-Region key ARN (key id starting with C(mrk-)) also allows its related keys (the primary
        and replicas, same account and key id) in other regions, as the AWS Encryption SDK's
        multi-Region-key-aware providers do. Other key ARNs must match exactly.
      - In every mode, a file wrapped under a multi-Region key is decrypted through the related key in
        the task's region first (no call to the region the file names, which may be out), and through
        the key the file names when that fails, for example when there is no replica in the task's region.
    type: list
    elements: str
  discovery_account_ids:
    description:
      - Accept any KMS key of these AWS accounts (discovery mode with a filter), given as 12-digit account ids.
    type: list
    elements: str
  discovery_partition:
    description:
      - The AWS partition of O(discovery_account_ids). Defaults to the partition of the region
        (V(aws), V(aws-cn) or V(aws-us-gov)). Requires O(discovery_account_ids).
    type: str
"""
