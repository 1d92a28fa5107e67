"""envelope.kms.copy's read command (what is at each dest, in one shell command) and its attribute
check, run with /bin/sh on this machine."""

import hashlib
import os
import subprocess

import pytest

from ansible_collections.envelope.kms.plugins.action.copy import (
    READ_BATCH_BYTES,
    DestRead,
    _attributes_hold,
    mode_bits,
    parse_read,
    read_batches,
    read_command,
)

NO_OPTIONS = dict(mode=None, owner=None, group=None, attributes=None, seuser=None, serole=None, setype=None, selevel=None)


def run(entries, cwd=None, **kwargs):
    command = read_command(entries, 1024 * 1024, 64, **kwargs)
    completed = subprocess.run(["/bin/sh", "-c", command], capture_output=True, timeout=60, check=False, cwd=cwd)
    return parse_read(completed.stdout.decode(), len(entries))


def test_many_paths_are_cut_into_commands_the_kernel_takes_and_every_path_is_answered(tmp_path):
    folder = tmp_path / ("d" * 200)
    folder.mkdir()
    entries = []
    for index in range(300):
        path = folder / f"file-{index:04d}-{'x' * 40}"
        path.write_bytes(b"%d" % index)
        entries.append((str(path), 0, 10))
    batches = list(read_batches(entries))
    assert len(batches) > 1 and [entry for batch in batches for entry in batch] == entries
    reads = []
    for batch in batches:
        assert len(read_command(batch, 1024 * 1024, 64)) < READ_BATCH_BYTES + 4096  # sh -c takes 128 KiB at most
        reads.extend(run(batch))
    assert [read.content for read in reads] == [b"%d" % index for index in range(300)]


@pytest.mark.skipif(not os.path.exists("/proc/sys/vm/drop_caches"), reason="needs a write-only /proc file")
def test_a_path_that_cannot_be_read_says_so_and_the_others_are_still_read(tmp_path):
    good = tmp_path / "good"
    good.write_bytes(b"abc")
    os.mkfifo(tmp_path / "fifo")
    os.symlink("/proc/sys/vm/drop_caches", tmp_path / "unreadable")  # a regular file no one may read
    reads = run([(str(tmp_path / "unreadable"), 0, 10), (str(tmp_path / "fifo"), 0, 10), (str(good), 0, 10)])
    assert [read.kind for read in reads] == ["unreadable", "fifo", "file"]
    assert reads[2].content == b"abc"


def test_a_relative_path_that_looks_like_an_option_is_a_path(tmp_path):
    for name in ("-v", "--help", "-n"):
        (tmp_path / name).write_bytes(b"data of " + name.encode())
        os.chmod(tmp_path / name, 0o640)
        (read,) = run([(name, 0, 100)], cwd=tmp_path)
        assert (read.kind, read.content, read.attrs[0]) == ("file", b"data of " + name.encode(), "-rw-r-----"), name


def test_only_a_regular_file_mode_string_has_mode_bits():
    assert mode_bits("-rw-r-----") == 0o640 and mode_bits("-rwsr-x--T") == 0o5750
    assert mode_bits("drwx------") is None and mode_bits("lrwxrwxrwx") is None and mode_bits("-rw") is None


def test_attributes_hold_reads_owner_and_group_as_the_file_module_does():
    read = DestRead(kind="file", attrs=("-rw-------", "1001", "staff", "1002", "50"))
    holds = [_attributes_hold(read, dict(NO_OPTIONS, **options)) for options in (
        {}, {"mode": "0600"}, {"mode": 384}, {"mode": "600"}, {"owner": "1002"}, {"group": "50"}, {"group": "staff"})]
    assert holds == [True] * 7
    # digits are a uid: a user named 1001 with uid 1002 is not uid 1001; a name is not its number
    misses = [_attributes_hold(read, dict(NO_OPTIONS, **options)) for options in (
        {"owner": "1001"}, {"owner": "root"}, {"group": "51"}, {"mode": "0640"}, {"mode": 600}, {"mode": "u=rw"},
        {"setype": "etc_t"}, {"attributes": "+i"})]
    assert misses == [False] * 8
    assert not _attributes_hold(DestRead(kind="file", attrs=("drwx------", "a", "b", "1", "2")), dict(NO_OPTIONS))
    assert not _attributes_hold(DestRead(kind="file"), dict(NO_OPTIONS))


def tools_path(tmp_path, *tools):
    """A PATH holding only the tools the read command needs, plus ``tools`` (openssl, sha1sum)."""
    folder = tmp_path / ("bin-" + "-".join(tools))
    folder.mkdir()
    for tool in ("wc", "ls", "awk", "od") + tools:
        found = next(os.path.join(d, tool) for d in os.environ["PATH"].split(os.pathsep) + ["/usr/bin", "/bin"]
                     if os.access(os.path.join(d, tool), os.X_OK))
        os.symlink(found, folder / tool)
    return str(folder)


@pytest.mark.parametrize("tools", [("openssl", "sha1sum"), ("openssl",), ("sha1sum",), ()])
def test_the_sha1_of_a_big_file_is_openssls_else_sha1sums_else_none(tmp_path, tools):
    data = os.urandom(300 * 1024)
    (tmp_path / "big").write_bytes(data)
    command = read_command([(str(tmp_path / "big"), 0, 1024 * 1024)], 1024, 64)  # above the inline limit: a prefix
    completed = subprocess.run(["/bin/sh", "-c", command], capture_output=True, timeout=60, check=False,
                               env={"PATH": tools_path(tmp_path, *tools)})
    (read,) = parse_read(completed.stdout.decode(), 1)
    assert read.kind == "file" and read.size == len(data) and read.prefix == data[:64]
    assert read.sha1 == (hashlib.sha1(data).hexdigest() if tools else None)


def test_a_sha1_line_that_is_no_sha1_is_ignored():
    marker = "envelope.kms.copy: 0"
    (read,) = parse_read(f"{marker} size 3\n{marker} sha1 *stdin\n", 1)
    assert read.sha1 is None
    (read,) = parse_read(f"{marker} size 3\n{marker} sha1 {'A' * 40}\n", 1)
    assert read.sha1 == "a" * 40


def test_an_openssl_that_prints_no_coreutils_line_leaves_it_to_sha1sum(tmp_path):
    data = os.urandom(300 * 1024)
    (tmp_path / "big").write_bytes(data)
    tools = tools_path(tmp_path, "sha1sum", "cat")
    fake = os.path.join(tools, "openssl")
    with open(fake, "w", encoding="utf-8") as handle:
        handle.write('#!/bin/sh\ncat > /dev/null; echo "SHA1(stdin)= 0123"\n')  # the format without -r
    os.chmod(fake, 0o755)
    command = read_command([(str(tmp_path / "big"), 0, 1024 * 1024)], 1024, 64)
    completed = subprocess.run(["/bin/sh", "-c", command], capture_output=True, timeout=60, check=False,
                               env={"PATH": tools})
    (read,) = parse_read(completed.stdout.decode(), 1)
    assert read.sha1 == hashlib.sha1(data).hexdigest()
