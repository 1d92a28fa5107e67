"""The envelope.kms.readable Jinja test (the lifecycle role checks its sources with it)."""

import os

from ansible_collections.envelope.kms.plugins.test import readable as plugin

readable = plugin.readable


def test_a_regular_file_is_readable_and_nothing_else(tmp_path):
    path = tmp_path / "app.env"
    path.write_text("x")
    os.symlink(path, tmp_path / "link")
    os.mkfifo(tmp_path / "fifo")
    assert readable(str(path)) is True
    assert readable(str(tmp_path / "link")) is True  # links are followed, as copy follows them
    assert readable(str(tmp_path)) is False
    assert readable(str(tmp_path / "fifo")) is False
    assert readable(str(tmp_path / "missing")) is False
    assert readable("") is False
    assert readable(None) is False


def test_a_file_without_read_permission_is_not_readable(tmp_path, monkeypatch):
    path = tmp_path / "app.env"
    path.write_text("x")
    # The tests run as root, which may read any file: ask os.access as an unprivileged user would answer.
    monkeypatch.setattr(os, "access", lambda name, mode: False)
    assert readable(str(path)) is False


def test_home_is_expanded(tmp_path, monkeypatch):
    (tmp_path / "app.env").write_text("x")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert readable("~/app.env") is True


def test_the_plugin_registers_the_test():
    assert plugin.TestModule().tests() == {"readable": readable}
