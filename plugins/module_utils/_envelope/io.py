# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""For internal collection use only: sources, atomic output files and plaintext matching.

Light on purpose (no AWS Encryption SDK import): data_key writes its files with it too.

Every file the collection writes goes through ``AtomicFile`` (a 0600 temp file beside the
destination, renamed over it only when complete); every "does this plaintext equal that one"
goes through ``PlaintextMatcher`` (constant memory, stops at the first difference).
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import re
import secrets
import socket
import stat

from ansible_collections.envelope.kms.plugins.module_utils._envelope.constants import CHUNK_SIZE
from ansible_collections.envelope.kms.plugins.module_utils.errors import EnvelopeError, InputError


class Source:
    """Opens a path, wraps bytes, or borrows a binary file object (left open, position kept).

    A path must name a regular file: it is opened non-blocking and checked on the open descriptor,
    so a FIFO, a device or a directory is refused at once instead of hanging or reading forever."""

    def __init__(self, source):
        self.label = "content"
        self._owned = None
        if isinstance(source, (bytes, bytearray, memoryview)):
            self.stream = self._owned = io.BytesIO(bytes(source))
        elif isinstance(source, (str, os.PathLike)):
            self.label = os.fspath(source)
            self.stream = self._owned = open_regular(source)
        elif hasattr(source, "read"):
            self.stream = source
            self.label = getattr(source, "name", "stream")
        else:
            raise InputError(f"cannot read from a {type(source).__name__}")

    def size(self):
        position = self.stream.tell()
        end = self.stream.seek(0, io.SEEK_END)
        self.stream.seek(position)
        return end - position

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._owned is not None:
            self._owned.close()


def open_regular(path, follow=True):
    """A binary file object of the regular file at path; InputError for anything else (checked on
    the descriptor: no race with a swap). ``follow=False`` refuses a symbolic link too."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    if not follow:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as error:
        if not follow and error.errno == errno.ELOOP:
            raise InputError(f"{os.fspath(path)} is a symbolic link", os.fspath(path)) from None
        raise
    try:
        kind = file_kind(os.fstat(fd).st_mode)
        if kind != "regular file":
            raise InputError(f"{os.fspath(path)} is {kind}, not a regular file", os.fspath(path))
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def file_kind(st_mode):
    """'regular file', 'a directory', 'a symbolic link', 'a FIFO', 'a device' or 'a socket'."""
    if stat.S_ISREG(st_mode):
        return "regular file"
    for test, kind in ((stat.S_ISDIR, "a directory"), (stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket")):
        if test(st_mode):
            return kind
    return "not a regular file"


def open_source(source, what):
    """A Source, or an io_error EnvelopeError naming the path."""
    try:
        return Source(source)
    except OSError as error:
        raise EnvelopeError(f"{what}: cannot read {source}: {error.strerror}", "io_error", label(source)) from error


def open_plaintext(plaintext):
    if isinstance(plaintext, str) and not os.path.exists(plaintext):
        raise EnvelopeError(f"cannot compare: plaintext file {plaintext} does not exist", "io_error", plaintext)
    return open_source(plaintext, "cannot compare")


def require_path(path, caller):
    """Bytes would be taken as content by Source: a method that wants a path says so."""
    if not isinstance(path, (str, os.PathLike)):
        raise InputError(f"{caller} needs a file path, not {type(path).__name__}")


def label(source):
    return os.fspath(source) if isinstance(source, (str, os.PathLike)) else "content"


def refuse_same_file(stream, dest, what):
    """InputError when ``dest`` (followed if a link) is the very file ``stream`` reads (same device and
    inode, whatever the spelling: a link, a hard link, '..'): writing it would destroy the input."""
    try:
        target = os.stat(dest)
        source = os.fstat(stream.fileno())
    except (OSError, AttributeError, io.UnsupportedOperation):
        return
    if (target.st_dev, target.st_ino) == (source.st_dev, source.st_ino):
        raise InputError(f"{what}: dest {dest} is the source file itself; write to another path", os.fspath(dest))


# Temp files are named .NAME.envelope-kms-HOST-PID-RANDOM.tmp: HOST (a hash of the host name) and
# PID say which process wrote one, so that a later run can prove a left-over one is stale.
TEMP_MARK = "envelope-kms"
_TEMP_NAME = re.compile(r"^\..+\.envelope-kms-([0-9a-f]{8})-([0-9]+)-[0-9a-f]{16}\.tmp$")


def _host_token():
    return hashlib.sha1(socket.gethostname().encode("utf-8", "surrogateescape")).hexdigest()[:8]


def temp_name(name):
    return f".{name}.{TEMP_MARK}-{_host_token()}-{os.getpid()}-{secrets.token_hex(8)}.tmp"


def _process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, someone else's
    return True


_CLEANED = set()  # directories this process already cleaned: once each (a rewrap of many files in one folder)


def remove_stale_temp_files(dest):
    """Remove the temp files that killed runs (SIGKILL and power loss skip every clean-up) left in
    ``dest``'s directory. Only files that are provably ours and dead are removed: named by temp_name,
    written on this host by a process that no longer exists, a regular file with one link owned by
    the effective user. Each directory is read once per process. Returns the paths removed."""
    directory = os.path.dirname(os.path.abspath(os.fspath(dest)))
    removed = []
    if directory in _CLEANED:
        return removed
    _CLEANED.add(directory)
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    host, uid = _host_token(), os.geteuid()
    for entry in entries:
        match = _TEMP_NAME.search(entry.name) if entry.name.startswith(".") else None
        if not match or match.group(1) != host or _process_alive(int(match.group(2))):
            continue
        try:
            found = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(found.st_mode) and found.st_nlink == 1 and found.st_uid == uid:
                os.unlink(entry.path)
                removed.append(entry.path)
        except OSError:
            pass
    return removed


def inheritable(existing):
    """The stat of a file being replaced whose mode and owner the new file may keep: only a file of
    the effective user (as root: any). A file someone else owns (perhaps planted in a shared
    directory) passes nothing on: the new file gets the mode asked for, or 0600, and our owner."""
    if existing is None or not stat.S_ISREG(existing.st_mode):
        return None
    euid = os.geteuid()
    return existing if euid in (0, existing.st_uid) else None


class AtomicFile:
    """Writes to a temp file beside dest (see temp_name), created 0600 with O_EXCL|O_NOFOLLOW;
    ``commit`` fsyncs (unless not ``durable``), sets owner and mode on the open descriptor, checks
    the temp name still holds that file, and renames it over dest. Leaving the block without commit
    removes it. Entering removes the stale temp files of killed runs (remove_stale_temp_files).

    ``mode``: the new file's mode (None: 0600, or ``like``'s). ``like``: the os.stat_result of a
    file whose mode and owner to keep (an in-place rewrite; see ``inheritable``). ``uid``/``gid``:
    owner to set (-1: keep)."""

    def __init__(self, dest, mode=None, like=None, durable=True, uid=-1, gid=-1):
        self.dest = os.fspath(dest)
        self.mode = mode
        self.durable = durable
        self.like = like
        self.uid = uid
        self.gid = gid
        self.sha1 = hashlib.sha1()
        self.sha256 = hashlib.sha256()
        self.size = 0
        self._file = None
        self.path = None

    def __enter__(self):
        if os.path.isdir(self.dest) and not os.path.islink(self.dest):
            raise InputError(f"destination {self.dest} is a directory", self.dest)
        directory, name = os.path.split(os.path.abspath(self.dest))
        remove_stale_temp_files(self.dest)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            path = os.path.join(directory, temp_name(name))
            fd = os.open(path, flags, 0o600)
        except OSError as error:
            raise EnvelopeError(f"cannot write in {directory}: {error.strerror}", "io_error", self.dest) from error
        self.path = path
        self._file = os.fdopen(fd, "wb")
        return self

    def write(self, data):
        self._file.write(data)
        self.size += len(data)

    def write_hashed(self, data):
        self.write(data)
        self.sha1.update(data)
        self.sha256.update(data)

    def checksums(self):
        """(sha1, sha256) hex digests of what write_hashed wrote."""
        return self.sha1.hexdigest(), self.sha256.hexdigest()

    def commit(self):
        self._file.flush()
        if self.durable:
            os.fsync(self._file.fileno())
        self._apply_attributes(self._file.fileno())
        self._check_still_ours(self._file.fileno())
        self._file.close()
        os.replace(self.path, self.dest)
        self.path = None

    def _apply_attributes(self, fd):
        """On the descriptor, never by path: a name swapped for a link cannot redirect a chmod/chown."""
        mode = self.mode
        if self.like is not None:
            mode = stat.S_IMODE(self.like.st_mode) if mode is None else mode
            try:
                os.fchown(fd, self.like.st_uid, self.like.st_gid)
            except OSError:
                pass  # not root: the rewritten file keeps our owner, like any rewritten file would
        if (self.uid, self.gid) != (-1, -1):
            try:
                os.fchown(fd, self.uid, self.gid)
            except OSError as error:
                raise EnvelopeError(f"cannot set the owner of {self.dest}: {error.strerror}", "io_error",
                                    self.dest) from error
        if mode is not None:
            os.fchmod(fd, mode)  # after chown, which may clear setuid/setgid bits

    def _check_still_ours(self, fd):
        try:
            named = os.lstat(self.path)
        except OSError:
            named = None
        ours = os.fstat(fd)
        if named is None or (named.st_dev, named.st_ino) != (ours.st_dev, ours.st_ino):
            self.path = None  # not ours any more: never unlink or rename what sits there now
            raise EnvelopeError(f"cannot write {self.dest}: its temporary file was replaced while it was written "
                                "(is someone else writing in that directory?)", "io_error", self.dest)

    def __exit__(self, *exc):
        if self._file is not None and not self._file.closed:
            self._file.close()
        if self.path is not None:
            try:
                os.unlink(self.path)
            except OSError:
                pass


def write_file_atomic(dest, data, mode=None, uid=-1, gid=-1):
    """Write ``data`` to ``dest`` through an AtomicFile (durable): all of it or nothing. A new file
    is 0600 unless ``mode``; a replaced one of ours keeps its mode and (as root) its owner (see
    ``inheritable``); a symbolic link at dest is replaced, never written through. OSError propagates."""
    try:
        existing = os.lstat(dest)
    except FileNotFoundError:
        existing = None
    with AtomicFile(dest, mode, like=inheritable(existing), uid=uid, gid=gid) as out:
        out.write(data)
        out.commit()


class Mismatch(Exception):
    """Raised from PlaintextMatcher.feed to stop decrypting at the first difference."""


class PlaintextMatcher:
    """Sink for decrypted chunks that compares them with an expected binary stream as they come
    (constant memory).

    ``stop_on_mismatch``: raise Mismatch at the first difference (saves decrypting the rest);
    otherwise keep consuming so the whole envelope is still verified. ``keep``: also hold the first
    ``keep`` + 1 bytes of plaintext (for an opt-in diff, or content in check mode)."""

    def __init__(self, expected=None, stop_on_mismatch=True, keep=0):
        self._expected = expected
        self._stop = stop_on_mismatch
        self._keep = keep
        self.kept = bytearray()
        self.size = 0
        self.same = expected is not None

    def feed(self, chunk):
        self.size += len(chunk)
        if self._keep and len(self.kept) <= self._keep:
            self.kept.extend(chunk[: self._keep + 1 - len(self.kept)])
        if self.same and read_exactly(self._expected, len(chunk)) != chunk:
            self.same = False
            if self._stop:
                raise Mismatch()

    def finish(self):
        """True when everything matched and the expected stream has nothing more."""
        if self.same and self._expected.read(1):
            self.same = False
        return self.same


def read_exactly(stream, size):
    parts = []
    while size > 0:
        part = stream.read(size)
        if not part:
            break
        parts.append(part)
        size -= len(part)
    return b"".join(parts)


class DecryptedReader:
    """A read(n) source over a decrypting stream, in whole frames (rewrap feeds it to an encryptor;
    asking the decryptor for many frames at once would be quadratic)."""

    def __init__(self, decryptor, frame_length):
        self._decryptor = decryptor
        self._frame_length = frame_length or CHUNK_SIZE
        self._buffer = bytearray()
        self.finished = False

    def read(self, size=-1):
        while not self.finished and (size < 0 or len(self._buffer) < size):
            chunk = self._decryptor.read(self._frame_length)
            if not chunk:
                self.finished = True
            self._buffer += chunk
        size = len(self._buffer) if size < 0 else size
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data
