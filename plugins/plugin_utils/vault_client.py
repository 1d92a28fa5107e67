# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""For internal collection use only: ansible-vault passwords kept in KMS envelopes.

``scripts/envelope-kms-client`` (a vault password client script: ansible-core calls a script whose
name ends in ``-client`` with ``--vault-id <label>`` and reads the password on its stdout) runs
``main()``. The vault_rekey action uses ``password_file`` and ``read_password`` too.

Each vault id (label) has one envelope file holding its password, encrypted under a KMS key with
the encryption context ``{"ansible-vault-id": "<label>"}``, which is checked on every read. Which
file: ``ENVELOPE_KMS_VAULT_PASSWORD_FILE`` (``{label}`` is replaced), else ``password_file`` in
the ``[envelope_kms_vault]`` section of the ansible.cfg in use (relative to that file), else
``vault-passwords/<label>.enc`` beside the inventory that ansible.cfg names (or beside ansible.cfg,
or in the current directory). The password is only ever held in memory and written to stdout.
"""

from __future__ import annotations

import argparse
import configparser
import os
import re
import secrets
import stat
import sys

CONTEXT_KEY = "ansible-vault-id"
SECTION = "envelope_kms_vault"
DEFAULT_FILE = os.path.join("vault-passwords", "{label}.enc")
LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
MAX_PASSWORD = 4096
VAULT_ID_UNKNOWN_RC = 2  # ansible-core's ClientScriptVaultSecret: "did not find a secret for vault-id"
PROG = "envelope-kms-client"


class ClientError(Exception):
    """One line for stderr, and the exit status."""

    def __init__(self, message, status=1):
        super().__init__(message)
        self.message = message
        self.status = status


def check_label(label):
    if not isinstance(label, str) or not LABEL.match(label):
        raise ClientError(f"invalid vault id {label!r}: use letters, digits, '.', '_' and '-' (at most 128)")
    return label


def context(label):
    return {CONTEXT_KEY: check_label(label)}


# -- which file

def _config_file():
    """The ansible.cfg ansible-core uses: ANSIBLE_CONFIG, ./ansible.cfg (not in a world-writable
    directory, which ansible-core ignores too), ~/.ansible.cfg, /etc/ansible/ansible.cfg."""
    path = os.environ.get("ANSIBLE_CONFIG")
    if path:
        path = os.path.expanduser(path)
        if os.path.isdir(path):
            path = os.path.join(path, "ansible.cfg")
        return path if os.path.isfile(path) else None
    candidates = [os.path.expanduser("~/.ansible.cfg"), "/etc/ansible/ansible.cfg"]
    try:
        if not os.stat(os.getcwd()).st_mode & stat.S_IWOTH:
            candidates.insert(0, os.path.join(os.getcwd(), "ansible.cfg"))
    except OSError:
        pass
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    return None


def settings():
    """(the [envelope_kms_vault] options, the ansible.cfg path or None, its inventory setting or None)."""
    path = _config_file()
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";",))  # as ansible-core
    if path:
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as handle:
                parser.read_file(handle, path)
        except (configparser.Error, OSError) as error:
            raise ClientError(f"cannot read {path}: {str(error).splitlines()[0]}") from None
    options = dict(parser.items(SECTION)) if parser.has_section(SECTION) else {}
    inventory = parser.get("defaults", "inventory", fallback=None) if path else None
    return options, path, inventory


def password_file(label, options=None, config_path=None, inventory=None):
    """The envelope file of a vault id, by the rules in this module's docstring."""
    check_label(label)
    if options is None:
        options, config_path, inventory = settings()
    template = os.environ.get("ENVELOPE_KMS_VAULT_PASSWORD_FILE")
    base = os.getcwd()
    if not template and options.get("password_file"):
        template = options["password_file"]
        base = os.path.dirname(os.path.abspath(config_path))
    if not template:
        template = DEFAULT_FILE
        base = _default_base(config_path, inventory)
    path = os.path.expanduser(template.replace("{label}", label))
    return os.path.normpath(os.path.join(base, path))


def _default_base(config_path, inventory):
    env_inventory = os.environ.get("ANSIBLE_INVENTORY")
    if env_inventory:
        first = env_inventory.split(",")[0].strip()
        return _inventory_dir(os.path.abspath(os.path.expanduser(first)))
    if config_path:
        config_dir = os.path.dirname(os.path.abspath(config_path))
        if inventory:
            first = inventory.split(",")[0].strip()
            return _inventory_dir(os.path.join(config_dir, os.path.expanduser(first)))
        return config_dir
    return os.getcwd()


def _inventory_dir(path):
    return path if os.path.isdir(path) else os.path.dirname(path)


# -- KMS

def _engine(options):
    from ansible_collections.envelope.kms.plugins.plugin_utils import requirements  # pylint: disable=import-outside-toplevel

    missing = requirements.missing_libraries()  # boto3, botocore, aws-encryption-sdk (amazon.aws is not used)
    if missing:
        raise ClientError(requirements.missing_libraries_message("the vault password client", missing))
    import boto3  # pylint: disable=import-outside-toplevel
    import botocore.config  # pylint: disable=import-outside-toplevel
    import botocore.exceptions  # pylint: disable=import-outside-toplevel
    from ansible_collections.envelope.kms.plugins.module_utils.envelope import Engine  # pylint: disable=import-outside-toplevel
    from ansible_collections.envelope.kms.plugins.module_utils._envelope.constants import KMS_RETRIES  # pylint: disable=import-outside-toplevel

    try:
        session = boto3.session.Session(profile_name=options.get("profile") or None,
                                        region_name=options.get("region") or os.environ.get("AWS_REGION") or None)
    except botocore.exceptions.ProfileNotFound as error:
        raise ClientError(str(error)) from None
    if not session.region_name:
        raise ClientError("no AWS region: set AWS_REGION (or a region in the AWS profile, or region in "
                          f"[{SECTION}] of ansible.cfg)")
    config = botocore.config.Config(retries=dict(KMS_RETRIES))  # the collection's one retry policy
    client = session.client("kms", endpoint_url=options.get("endpoint_url") or None, config=config)
    return Engine(client)


def engine(options=None):
    """An Engine on the client's AWS settings (the environment, then [envelope_kms_vault])."""
    return _engine(settings()[0] if options is None else options)


def allowed_key_arns(options=None):
    """ENVELOPE_KMS_VAULT_ALLOWED_KEY_ARNS, else allowed_key_arns in [envelope_kms_vault], else None."""
    return _allowed_key_arns(settings()[0] if options is None else options)


def _allowed_key_arns(options):
    text = os.environ.get("ENVELOPE_KMS_VAULT_ALLOWED_KEY_ARNS") or options.get("allowed_key_arns") or ""
    return [item.strip() for item in text.split(",") if item.strip()] or None


def read_password(label, path, engine, allowed_key_arns=None):
    """The vault password of ``label`` from the envelope at ``path`` (bytes, without a final newline)."""
    from ansible_collections.envelope.kms.plugins.module_utils.errors import EnvelopeError  # pylint: disable=import-outside-toplevel

    if not os.path.lexists(path):
        raise ClientError(f"no envelope for vault id {label} at {path} (create it with --create --key-id KEY)",
                          VAULT_ID_UNKNOWN_RC)
    try:
        plaintext, _facts = engine.decrypt_bytes(path, context(label), allowed_key_arns=allowed_key_arns,
                                                 max_size=MAX_PASSWORD)
    except EnvelopeError as error:
        raise ClientError(error.message) from None
    password = plaintext.rstrip(b"\r\n")
    if not password or b"\n" in password or b"\r" in password:
        raise ClientError(f"{path}: the envelope does not hold a one-line vault password")
    return password


def create_password_file(label, path, engine, key_ids):
    """Write a new envelope holding a strong random password, unless ``path`` exists (kept as it
    is). True when one was written."""
    from ansible_collections.envelope.kms.plugins.module_utils.errors import EnvelopeError  # pylint: disable=import-outside-toplevel

    if os.path.lexists(path):
        return False
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=0o700, exist_ok=True)
    password = secrets.token_urlsafe(48).encode("ascii")  # 384 random bits
    scratch = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(8)}.new")
    try:
        engine.encrypt_bytes(password, scratch, key_ids, context(label), mode=0o600)  # ciphertext only
        os.link(scratch, path)  # never replaces an envelope another run created meanwhile
    except FileExistsError:
        return False
    except EnvelopeError as error:
        raise ClientError(error.message) from None
    except OSError as error:
        raise ClientError(f"cannot write {path}: {error.strerror}") from None
    finally:
        if os.path.lexists(scratch):
            os.unlink(scratch)
    return True


# -- the script

def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog=PROG, description="Print the ansible-vault password of a vault id, read from a KMS envelope.")
    parser.add_argument("--vault-id", default="default", help="the vault id (label) whose password to print")
    parser.add_argument("--create", action="store_true",
                        help="create the envelope with a new random password unless it exists (prints nothing secret)")
    parser.add_argument("--key-id", action="append", default=[],
                        help="with --create: the KMS key(s) to wrap the password's data key under (repeat for more)")
    parser.add_argument("--print-path", action="store_true", help="print the envelope file of the vault id and exit")

    def error(message):
        raise ClientError(f"{message} (see {PROG} --help)")

    parser.error = error
    return parser.parse_args(argv)


def run(argv):
    args = parse_args(argv)
    label = check_label(args.vault_id)
    options, config_path, inventory = settings()
    path = password_file(label, options, config_path, inventory)
    if args.print_path:
        return (path + "\n").encode("utf-8")
    if args.create:
        if not args.key_id:
            raise ClientError("--create needs --key-id (a KMS key id, ARN or alias)")
        written = create_password_file(label, path, _engine(options), args.key_id)
        sys.stderr.write(f"{PROG}: {'created' if written else 'kept the existing'} envelope for vault id {label}: "
                         f"{path}\n")
        return b""
    if not os.path.lexists(path):
        read_password(label, path, None)  # the "unknown vault id" error, before any AWS set-up
    return read_password(label, path, _engine(options), _allowed_key_arns(options)) + b"\n"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        out = run(argv)
    except ClientError as error:
        sys.stderr.write(f"{PROG}: {error.message}\n")
        return error.status
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # pylint: disable=broad-exception-caught
        first = str(error).splitlines()[0] if str(error) else ""
        sys.stderr.write(f"{PROG}: unexpected {type(error).__name__}: {first}\n")
        return 1
    sys.stdout.buffer.write(out)
    sys.stdout.flush()
    return 0
