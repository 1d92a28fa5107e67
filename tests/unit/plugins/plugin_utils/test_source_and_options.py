"""Unit tests for plugin_utils/source.py (what may be a src) and plugin_utils/action.py (the
encryption_context option): refusals that must come before anything is opened, encrypted or sent."""

import contextlib
import os
import signal
from collections import OrderedDict
from types import MappingProxyType

import pytest

from ansible.errors import AnsibleActionFail

from ansible_collections.envelope.kms.plugins.plugin_utils.action import checked_context
from ansible_collections.envelope.kms.plugins.plugin_utils.source import read_source


@contextlib.contextmanager
def time_limit(seconds):
    """Turn a hang (a blocking open of a FIFO) into a test failure."""
    def expired(_signum, _frame):
        raise AssertionError(f"blocked for more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


class NoLoader:
    def _get_file_contents(self, path):
        raise AssertionError(f"{path} is not a vault file: the loader must not read it")


def test_a_regular_file_is_streamed_from_its_path(tmp_path):
    path = tmp_path / "app.env"
    path.write_bytes(b"secret\n")
    assert read_source(NoLoader(), str(path)) == str(path)


@pytest.mark.parametrize(
    "make, kind",
    [
        (lambda tmp: os.mkfifo(tmp / "fifo") or tmp / "fifo", "a FIFO"),
        (lambda tmp: "/dev/zero", "a device"),  # would be encrypted forever
        (lambda tmp: "/dev/null", "a device"),
        (lambda tmp: tmp, "a directory"),
    ],
    ids=["fifo", "dev-zero", "dev-null", "directory"],
)
def test_anything_but_a_regular_file_is_refused_at_once(tmp_path, make, kind):
    path = str(make(tmp_path))
    with time_limit(10), pytest.raises(AnsibleActionFail) as raised:
        read_source(NoLoader(), path)
    assert raised.value.message == f"src {path} is {kind}, not a regular file"


def test_a_symlink_to_a_fifo_is_refused_too(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    os.symlink(tmp_path / "fifo", tmp_path / "link")
    with time_limit(10), pytest.raises(AnsibleActionFail, match="is a FIFO, not a regular file"):
        read_source(NoLoader(), str(tmp_path / "link"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_src_is_one_line(tmp_path):
    path = tmp_path / "secret"
    path.write_bytes(b"x")
    path.chmod(0)
    with pytest.raises(AnsibleActionFail, match=r"^cannot read src .*: Permission denied$"):
        read_source(NoLoader(), str(path))


@pytest.mark.parametrize(
    "value, kind",
    [("app=billing", "str"), ('{"app": "billing"}', "str"), (["app", "billing"], "list"), ([], "list"), (5, "int"),
     (True, "bool"), (1.5, "float"), (b"app=billing", "bytes")],
)
def test_an_encryption_context_must_be_a_mapping(value, kind):
    with pytest.raises(AnsibleActionFail) as raised:
        checked_context(value)
    assert raised.value.message == f"encryption_context must be a dictionary of key/value pairs, not {kind}"


def test_mappings_are_contexts():
    assert checked_context(None) == {}
    assert checked_context({}) == {}
    assert checked_context({"app": "billing", "n": 5}) == {"app": "billing", "n": 5}  # normalize_context makes "5"
    assert checked_context(OrderedDict(a="b")) == {"a": "b"}
    assert checked_context(MappingProxyType({"a": "b"})) == {"a": "b"}
    assert isinstance(checked_context(MappingProxyType({"a": "b"})), dict)  # a proxy is not one
