# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ansible-vault password client: prints the vault password of --vault-id LABEL from a KMS envelope.

    ansible-playbook --vault-id prod@<collections>/ansible_collections/envelope/kms/scripts/envelope-kms-client site.yml
    envelope-kms-client --vault-id prod --create --key-id alias/ansible-vault   # a new random password, once

The envelope-kms-client shell script beside this file runs it with a Python 3 (ENVELOPE_KMS_PYTHON,
else python3, else python). Everything else is in plugins/plugin_utils/vault_client.py; this file
only finds the collection and, if this Python lacks boto3 or aws-encryption-sdk, re-runs itself
with the Python of the ansible command that called it.
"""

import os
import sys

REEXEC_GUARD = "ENVELOPE_KMS_CLIENT_REEXEC"


def _collections_root():
    """The folder holding ansible_collections/envelope/kms/scripts/<this file> (the script itself may
    be a link to it, e.g. from a bin folder)."""
    for path in (os.path.abspath(__file__), os.path.realpath(__file__)):
        kms = os.path.dirname(os.path.dirname(path))  # .../ansible_collections/envelope/kms/scripts/this.py
        namespace = os.path.dirname(kms)
        collections = os.path.dirname(namespace)
        if (os.path.basename(kms), os.path.basename(namespace), os.path.basename(collections)) == (
                "kms", "envelope", "ansible_collections"):
            return os.path.dirname(collections)
    return None


def _other_python():
    """The Python to retry with when this one lacks the libraries: ENVELOPE_KMS_PYTHON, else the
    Python running the ansible command that called us (Linux: /proc/<parent>/exe)."""
    wanted = os.environ.get("ENVELOPE_KMS_PYTHON")
    if not wanted:
        # argv[0] of the parent, not its /proc exe: a virtualenv's python is a link to the base
        # interpreter, and only the path it was started by gives the virtualenv's libraries.
        try:
            with open(f"/proc/{os.getppid()}/cmdline", "rb") as handle:
                wanted = handle.read().split(b"\0")[0].decode()
        except (OSError, UnicodeDecodeError):
            return None
        if not os.path.basename(wanted).startswith("python") or not os.path.isabs(wanted):
            return None
    if wanted == sys.executable:
        return None
    return wanted


def main():
    root = _collections_root()
    if root is None:
        sys.stderr.write(f"envelope-kms-client: {__file__} is not inside ansible_collections/envelope/kms/scripts/\n")
        return 1
    sys.path.insert(0, root)
    try:
        import boto3  # noqa: F401  pylint: disable=unused-import
        import aws_encryption_sdk  # noqa: F401  pylint: disable=unused-import
    except ImportError:
        other = _other_python()
        if other and not os.environ.get(REEXEC_GUARD):
            os.environ[REEXEC_GUARD] = "1"
            try:
                os.execv(other, [other, os.path.abspath(__file__)] + sys.argv[1:])
            except OSError as error:
                sys.stderr.write(f"envelope-kms-client: cannot run {other}: {error.strerror}\n")
                return 1
    sys.argv[0] = "envelope-kms-client"
    from ansible_collections.envelope.kms.plugins.plugin_utils.vault_client import main as client_main  # noqa: E402

    return client_main()


if __name__ == "__main__":
    sys.exit(main())
