"""The tree_files filter: a controller directory laid out as ansible.builtin.copy lays it out below dest."""

import os

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.envelope.kms.plugins.filter.tree_files import FilterModule, tree_files


def make(root):
    for relative in ("conf/a.env", "conf/sub/b.env", "other/x.env"):
        path = os.path.join(root, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(relative)
    os.symlink(os.path.join(root, "other"), os.path.join(root, "conf", "linked"))
    return os.path.join(root, "conf")


def test_the_trailing_slash_rule_and_links_followed(tmp_path):
    conf = make(str(tmp_path))
    assert tree_files(conf) == ["conf/a.env", "conf/linked/x.env", "conf/sub/b.env"]
    assert tree_files(conf + "/") == ["a.env", "linked/x.env", "sub/b.env"]
    assert FilterModule().filters()["tree_files"] is tree_files


def test_a_loop_a_file_and_a_missing_path_are_errors(tmp_path):
    conf = make(str(tmp_path))
    os.symlink(conf, os.path.join(conf, "sub", "loop"))
    with pytest.raises(AnsibleFilterError, match="makes a loop"):
        tree_files(conf)
    for bad in (os.path.join(conf, "a.env"), str(tmp_path / "missing"), None):
        with pytest.raises(AnsibleFilterError, match="path of a directory"):
            tree_files(bad)


def test_folders_are_those_copy_makes_empty_ones_too(tmp_path):
    conf = make(str(tmp_path))
    os.makedirs(os.path.join(conf, "sub", "void", "deeper"))
    assert tree_files(conf, folders=True) == ["", "conf", "conf/linked", "conf/sub", "conf/sub/void", "conf/sub/void/deeper"]
    assert tree_files(conf + "/", folders=True) == ["", "linked", "sub", "sub/void", "sub/void/deeper"]
    flat = tmp_path / "flat"
    flat.mkdir()
    assert tree_files(str(flat), folders=True) == []  # copy makes nothing for an empty directory
    (flat / "only.env").write_text("x")
    assert tree_files(str(flat) + "/", folders=True) == [""]
    assert tree_files(str(flat), folders=True) == ["", "flat"]
