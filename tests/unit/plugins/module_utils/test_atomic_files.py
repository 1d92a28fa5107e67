"""AtomicFile, Source and file_attrs: the file-system defences every written file relies on."""

import os
import signal
import stat
import subprocess
import sys
import time

import pytest

from ansible_collections.envelope.kms.plugins.module_utils._envelope import io as envelope_io
from ansible_collections.envelope.kms.plugins.module_utils._envelope.io import (
    AtomicFile,
    Source,
    refuse_same_file,
    remove_stale_temp_files,
    temp_name,
    write_file_atomic,
)
from ansible_collections.envelope.kms.plugins.module_utils.errors import EnvelopeError, InputError
from ansible_collections.envelope.kms.plugins.module_utils.file_attrs import (
    dest_stat,
    planned_attributes,
    resolve_group,
    resolve_mode,
    resolve_owner,
)


def leftovers(directory):
    return sorted(name for name in os.listdir(directory) if name.endswith(".tmp"))


# -- modes, owners, groups: all checked before anything is written


@pytest.mark.parametrize("mode, expected", [
    (None, 0o600), ("0640", 0o640), ("640", 0o640), (0o440, 0o440), ("u=rw,g=r", 0o640), ("u+x", 0o700), ("01777", 0o1777),
])
def test_resolve_mode(mode, expected):
    assert resolve_mode(mode) == expected


@pytest.mark.parametrize("mode", ["u+rwz", "0999", "8", "017777", True, "", "rw", 0o17777, -1, [1]])
def test_resolve_mode_refuses(mode):
    with pytest.raises(InputError, match="mode"):
        resolve_mode(mode)


def test_owner_and_group_are_resolved_or_refused():
    assert resolve_owner(None) == -1 and resolve_group(None) == -1
    assert resolve_owner("root") == 0 and resolve_owner("0") == 0 and resolve_group("root") == 0
    with pytest.raises(InputError, match="owner 'no-such-user-envelope' does not exist"):
        resolve_owner("no-such-user-envelope")
    with pytest.raises(InputError, match="group 'no-such-group-envelope' does not exist"):
        resolve_group("no-such-group-envelope")


class Stat:
    def __init__(self, mode, uid, gid=0):
        self.st_mode = stat.S_IFREG | mode
        self.st_uid = uid
        self.st_gid = gid


def test_a_file_of_ours_passes_on_mode_and_owner_a_foreign_one_nothing():
    ours = Stat(0o644, os.geteuid(), 5)
    assert planned_attributes({}, ours) == (0o644, os.geteuid(), 5)
    assert planned_attributes({"mode": "0640"}, ours) == (0o640, os.geteuid(), 5)
    foreign = Stat(0o666, os.geteuid() + 4242, 4242)
    assert planned_attributes({}, foreign) == (0o600, -1, -1), "a planted file must pass on nothing"
    assert planned_attributes({}, None) == (0o600, -1, -1)
    with pytest.raises(InputError):
        planned_attributes({"owner": "no-such-user-envelope"}, None)


def test_dest_stat_links_follow_or_not(tmp_path):
    target = tmp_path / "target"
    target.write_bytes(b"x")
    link = tmp_path / "link"
    link.symlink_to(target)
    assert dest_stat(str(link), follow=False)[1:] == (None, True)
    path, found, is_link = dest_stat(str(link), follow=True)
    assert path == str(target) and found.st_size == 1 and not is_link
    assert dest_stat(str(tmp_path / "missing"), follow=False) == (str(tmp_path / "missing"), None, False)
    os.mkfifo(tmp_path / "fifo")
    for bad in ("fifo", "."):
        with pytest.raises(InputError, match="is (a directory|not a regular file)"):
            dest_stat(str(tmp_path / bad), follow=False)


# -- Source: non-regular files refused at once (a FIFO would block, /dev/zero never end)


@pytest.mark.parametrize("kind", ["fifo", "directory", "device", "symlink-to-fifo"])
def test_source_refuses_non_regular_files_without_blocking(tmp_path, kind):
    path = tmp_path / "src"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    elif kind == "device":
        path = "/dev/zero"
    else:
        os.mkfifo(tmp_path / "fifo")
        path.symlink_to(tmp_path / "fifo")
    started = time.monotonic()
    with pytest.raises(InputError, match="not a regular file"):
        Source(str(path))
    assert time.monotonic() - started < 2


def test_refuse_same_file_by_inode_not_by_spelling(tmp_path):
    src = tmp_path / "a"
    src.write_bytes(b"x")
    os.link(src, tmp_path / "hard")
    (tmp_path / "soft").symlink_to(src)
    with Source(str(src)) as source:
        for spelling in (str(src), str(tmp_path / "hard"), str(tmp_path / "soft"), str(tmp_path / "sub" / ".." / "a")):
            (tmp_path / "sub").mkdir(exist_ok=True)
            with pytest.raises(InputError, match="is the source file itself"):
                refuse_same_file(source.stream, spelling, "cannot decrypt")
        refuse_same_file(source.stream, str(tmp_path / "other"), "cannot decrypt")


# -- AtomicFile


def test_attributes_are_set_on_the_descriptor_before_the_rename(tmp_path, monkeypatch):
    dest = tmp_path / "dest"
    seen = {}
    real_replace = os.replace

    def replace(source, target):
        seen["mode"] = stat.S_IMODE(os.lstat(source).st_mode)
        real_replace(source, target)

    monkeypatch.setattr(envelope_io.os, "replace", replace)
    with AtomicFile(str(dest), 0o640) as out:
        out.write(b"data")
        out.commit()
    assert seen["mode"] == 0o640, "dest must never be visible with other permissions"
    assert dest.read_bytes() == b"data"


def test_a_temp_file_swapped_for_a_link_is_detected_and_nothing_is_chmodded_through_it(tmp_path):
    """The directory's owner replaces our temp file with a link to a private file while we write:
    chmod by path would open that file up; by descriptor it cannot, and the swap is refused."""
    private = tmp_path / "private"
    private.write_bytes(b"root only")
    private.chmod(0o600)
    dest = tmp_path / "dest"
    dest.write_bytes(b"old")
    with pytest.raises(EnvelopeError, match="temporary file was replaced"):
        with AtomicFile(str(dest), 0o644) as out:
            out.write(b"plaintext")
            os.unlink(out.path)
            os.symlink(private, out.path)
            out.commit()
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert dest.read_bytes() == b"old"
    assert private.read_bytes() == b"root only"


def test_a_planted_temp_name_is_never_opened(tmp_path, monkeypatch):
    """O_EXCL|O_NOFOLLOW: a name planted in advance (a link to elsewhere) makes the open fail, it is never followed."""
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    monkeypatch.setattr(envelope_io, "temp_name", lambda name: ".planted.tmp")
    os.symlink(victim, tmp_path / ".planted.tmp")
    with pytest.raises(EnvelopeError, match="cannot write in"):
        with AtomicFile(str(tmp_path / "dest"), 0o600) as out:
            out.write(b"secret")
            out.commit()
    assert victim.read_bytes() == b"keep"


def test_write_file_atomic_replaces_a_link_never_writes_through_it(tmp_path):
    target = tmp_path / "target"
    target.write_bytes(b"target")
    target.chmod(0o644)
    link = tmp_path / "link"
    link.symlink_to(target)
    write_file_atomic(str(link), b"new")
    assert not link.is_symlink() and link.read_bytes() == b"new"
    assert stat.S_IMODE(link.stat().st_mode) == 0o600, "the link target's mode is not passed on"
    assert target.read_bytes() == b"target"


KILLED_WRITER = r"""
import sys, time
sys.path[:0] = sys.argv[3:]
from ansible_collections.envelope.kms.plugins.module_utils._envelope.io import AtomicFile
with AtomicFile(sys.argv[1], 0o600) as out:
    out.write(b"partial plaintext" * 1000)
    out._file.flush()
    open(sys.argv[2], "w").close()
    time.sleep(60)
"""


def test_a_killed_writer_leaves_a_temp_file_that_the_next_run_removes(tmp_path):
    dest = tmp_path / "dest"
    dest.write_bytes(b"old")
    ready = tmp_path / "ready"
    child = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(dest), str(ready), *sys.path[:3]])
    try:
        for _attempt in range(200):
            if ready.exists():
                break
            time.sleep(0.05)
        assert ready.exists(), "the writer did not start"
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait()
    stale = leftovers(tmp_path)
    assert len(stale) == 1 and ".envelope-kms-" in stale[0]
    # a live writer's temp file and files not provably ours are left alone
    alive = tmp_path / temp_name("dest")
    alive.write_bytes(b"a live run's")
    foreign = tmp_path / ".dest.envelope-kms-00000000-1-0123456789abcdef.tmp"  # another host
    foreign.write_bytes(b"not ours")
    other_dest = tmp_path / ".other.envelope-kms-00000000-1-0123456789abcdef.tmp"
    other_dest.write_bytes(b"another file's")
    assert remove_stale_temp_files(str(dest)) == [str(tmp_path / stale[0])]
    assert alive.exists() and foreign.exists() and other_dest.exists()
    assert dest.read_bytes() == b"old"


def test_entering_an_atomic_file_cleans_stale_temp_files(tmp_path, monkeypatch):
    dest = tmp_path / "dest"
    monkeypatch.setattr(envelope_io, "_process_alive", lambda pid: False)
    stale = tmp_path / temp_name("dest")
    stale.write_bytes(b"stale plaintext")
    with AtomicFile(str(dest), 0o600) as out:
        out.write(b"new")
        out.commit()
    assert leftovers(tmp_path) == [] and dest.read_bytes() == b"new"
