# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""For internal collection use only: sources, atomic output files and plaintext matching.

Light on purpose (no AWS Encryption SDK import): data_key writes its files with it too.

Every file the collection writes goes through ``AtomicFile`` (a 0600 temp file beside the
destination, renamed over it only when complete); every "does this plaintext equal that one"
goes through ``PlaintextMatcher`` (constant memory, stops at the first difference).
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile

from ansible_collections.envelope.kms.plugins.module_utils._envelope.constants import CHUNK_SIZE
from ansible_collections.envelope.kms.plugins.module_utils.errors import EnvelopeError, InputError


class Source:
    """Opens a path, wraps bytes, or borrows a binary file object (left open, position kept)."""

    def __init__(self, source):
        self.label = "content"
        self._owned = None
        if isinstance(source, (bytes, bytearray, memoryview)):
            self.stream = self._owned = io.BytesIO(bytes(source))
        elif isinstance(source, (str, os.PathLike)):
            self.label = os.fspath(source)
            self.stream = self._owned = open(source, "rb")
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


class AtomicFile:
    """Writes to ``.NAME.XXXX.tmp`` (0600 from creation) in dest's directory; ``commit`` fsyncs
    (unless not ``durable``), applies the mode and renames it over dest. Leaving the block without
    commit removes it."""

    def __init__(self, dest, mode=None, like=None, durable=True):
        self.dest = os.fspath(dest)
        self.mode = mode
        self.durable = durable
        self.like = like  # a path whose mode and owner to keep (in-place rewrap)
        self.sha1 = hashlib.sha1()
        self.sha256 = hashlib.sha256()
        self.size = 0
        self._file = None
        self.path = None

    def __enter__(self):
        if os.path.isdir(self.dest):
            raise InputError(f"destination {self.dest} is a directory", self.dest)
        directory, name = os.path.split(os.path.abspath(self.dest))
        try:
            fd, self.path = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
        except OSError as error:
            raise EnvelopeError(f"cannot write in {directory}: {error.strerror}", "io_error", self.dest) from error
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
        self._file.close()
        self._apply_attributes()
        os.replace(self.path, self.dest)
        self.path = None

    def _apply_attributes(self):
        mode = self.mode
        if self.like is not None:
            stat = os.stat(self.like)
            mode = stat.st_mode & 0o7777 if mode is None else mode
            try:
                os.chown(self.path, stat.st_uid, stat.st_gid)
            except OSError:
                pass  # not root: the file keeps our owner, like any rewritten file would
        if mode is not None:
            os.chmod(self.path, mode)

    def __exit__(self, *exc):
        if self._file is not None and not self._file.closed:
            self._file.close()
        if self.path is not None:
            try:
                os.unlink(self.path)
            except OSError:
                pass


def write_file_atomic(dest, data):
    """Write ``data`` to ``dest`` through an AtomicFile (durable): all of it or nothing. A new file
    is 0600; a replaced one keeps its mode and (as root) its owner. OSError propagates."""
    like = dest if os.path.exists(dest) else None
    with AtomicFile(dest, like=like) as out:
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
