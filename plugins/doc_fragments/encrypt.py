# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """What to encrypt and how, for the actions that write envelopes (copy, encrypt): the options of
    plugin_utils/action.py's ENCRYPT_OPTIONS. Defaults are checked against the code by the unit tests."""

    DOCUMENTATION = r"""
options:
  src:
    description:
      - Controller path of the file to encrypt, looked up like M(ansible.builtin.copy) does (role
        C(files/) folders, playbook folder).
      - Ansible Vault encrypted sources are decrypted in memory first.
      - Must be a regular file (or a link to one); FIFOs and devices are refused. M(envelope.kms.copy)
        also takes a directory, whose files are all encrypted in one task (see its description);
        M(envelope.kms.encrypt) refuses one.
      - A O(src) that is the same file as O(dest) (by device and inode, so also through a link or a
        C(..) path) is refused before anything is written. M(envelope.kms.copy) can only tell when
        the connection is C(local), where the host is the controller.
    type: path
  content:
    description:
      - The plaintext to encrypt, instead of O(src). A dict or list is written as JSON.
    type: raw
  key_id:
    description:
      - The KMS key(s) to wrap the data key under, as key ids, key ARNs, alias names or alias ARNs.
      - The first key generates the data key; each further key (another region, a disaster
        recovery account) can decrypt the file on its own.
      - Re-pointing an alias given here to a new key makes the next run re-encrypt.
    type: list
    elements: str
    required: true
  encryption_context:
    description:
      - Non-secret key/value pairs bound to the ciphertext as additional authenticated data, logged
        by CloudTrail. A decrypt that requires them fails if they differ.
      - Must be a dictionary. A string (even one such as V(app=billing) or a JSON object), a list or
        a number is refused. Numbers as values are written as strings.
      - Never put secrets here.
    type: dict
    default: {}
  algorithm:
    description:
      - The AWS Encryption SDK algorithm suite. Both are key committing.
      - V(AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384) adds an ECDSA signature, for readers that must
        be unable to forge messages. It is slower.
    type: str
    choices: [AES_256_GCM_HKDF_SHA512_COMMIT_KEY, AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384]
    default: AES_256_GCM_HKDF_SHA512_COMMIT_KEY
  frame_length:
    description:
      - Plaintext bytes per frame. The default was chosen by measurement; see the collection README.
      - Must be a multiple of 128 (the AWS Encryption SDK requires it), at most 64 MiB.
    type: int
    default: 262144
"""
