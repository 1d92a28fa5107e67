"""Filesystem: links at dest, a world-writable (sticky, /tmp-like) dest directory with planted temp
names and links, and a destination that cannot be written. The engine runs in-process against the
local KMS endpoint, as the host modules run it."""

import errno
import os
import stat

import pytest

from ansible_collections.envelope.kms.plugins.module_utils._envelope import io as envelope_io
from ansible_collections.envelope.kms.plugins.module_utils.envelope import Engine, EnvelopeError

SECRET = b"db_password=correct horse battery staple\n"
CONTEXT = {"app": "billing"}


@pytest.fixture
def sealed(kms, app_key, tmp_path):
    source = tmp_path / "plain"
    source.write_bytes(SECRET)
    envelope = tmp_path / "secret.enc"
    Engine(kms).encrypt_file(str(source), str(envelope), [app_key.arn], CONTEXT)
    return Engine(kms), str(envelope)


def test_shared_directory_with_planted_names_and_links(sealed, tally, tmp_path):
    engine, envelope = sealed
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    victim = tmp_path / "victim"
    victim.write_bytes(b"root only\n")
    victim.chmod(0o600)
    dest = shared / "app.env"
    host = envelope_io._host_token()  # pylint: disable=protected-access
    # names an attacker could guess for our temp files (dead pid), as links and as foreign files
    planted_link = shared / f".app.env.envelope-kms-{host}-999999-0123456789abcdef.tmp"
    planted_link.symlink_to(victim)
    planted_file = shared / f".app.env.envelope-kms-{host}-999998-0123456789abcdef.tmp"
    planted_file.write_bytes(b"someone else's")
    os.chown(planted_file, 4242, 4242)
    dest.symlink_to(victim)  # a link at dest: the engine replaces the link, never writes through it
    engine.decrypt_file(envelope, str(dest), CONTEXT)
    tally.case("filesystem", not dest.is_symlink() and dest.read_bytes() == SECRET, "dest link written through")
    tally.case("filesystem", stat.S_IMODE(dest.stat().st_mode) == 0o600, "plaintext not private")
    tally.case("filesystem", victim.read_bytes() == b"root only\n" and stat.S_IMODE(victim.stat().st_mode) == 0o600,
               "the link target was changed")
    tally.case("filesystem", planted_link.is_symlink() and planted_file.exists(),
               "clean-up removed a file it cannot prove is ours")
    # the same with the real temp-name guessed exactly: O_EXCL|O_NOFOLLOW refuses it, nothing followed
    original = envelope_io.temp_name
    envelope_io.temp_name = lambda name: planted_link.name
    try:
        with pytest.raises(EnvelopeError) as raised:
            engine.decrypt_file(envelope, str(shared / "app.env"), CONTEXT)
    finally:
        envelope_io.temp_name = original
    tally.case("filesystem", "cannot write in" in raised.value.message and "\n" not in raised.value.message,
               raised.value.message)
    tally.case("filesystem", victim.read_bytes() == b"root only\n", "a planted temp link was written through")


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES, errno.ENOSPC])
def test_unwritable_destination_fails_with_one_line_and_keeps_the_old_file(sealed, tally, tmp_path, monkeypatch, code):
    """A read-only file system, a directory we may not write (root is never refused, so the error is
    injected at the open) or a full disk at write time."""
    engine, envelope = sealed
    dest = tmp_path / "out.env"
    dest.write_bytes(b"old\n")
    real_open = os.open

    def refusing_open(path, flags, *args, **kwargs):
        if str(path).endswith(".tmp") and code != errno.ENOSPC:
            raise OSError(code, os.strerror(code), path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(envelope_io.os, "open", refusing_open)
    if code == errno.ENOSPC:
        def full(self, data):
            raise OSError(code, os.strerror(code))
        monkeypatch.setattr(envelope_io.AtomicFile, "write", full)
    with pytest.raises(EnvelopeError) as raised:
        engine.decrypt_file(envelope, str(dest), CONTEXT)
    message = raised.value.message
    tally.case("filesystem", os.strerror(code) in message and "\n" not in message, message)
    tally.case("filesystem", dest.read_bytes() == b"old\n", "the old file was touched")
    tally.case("filesystem", [n for n in os.listdir(tmp_path) if n.endswith(".tmp")] == [], "a temp file was left")
