#!/usr/bin/env python
"""Lay out the collections tree the Makefile uses, without Galaxy.

Galaxy is not reachable from our machines, so amazon.aws (and ansible.posix, whose json callback
the tests read results with) come out of the `ansible` PyPI bundle's wheel. Only those two folders
are extracted. envelope.kms itself is a symlink to this checkout, so edits are live.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

WANTED = ("ansible_collections/amazon/aws/", "ansible_collections/ansible/posix/")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bundle", default="12.3.0", help="version of the ansible PyPI bundle")
    parser.add_argument("--dest", required=True, help="folder that will hold ansible_collections/")
    args = parser.parse_args()

    root = os.path.abspath(args.dest)
    collections = os.path.join(root, "ansible_collections")
    with tempfile.TemporaryDirectory() as download:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", f"ansible=={args.bundle}", "-d", download],
            check=True,
        )
        (wheel,) = [os.path.join(download, name) for name in os.listdir(download) if name.endswith(".whl")]
        with zipfile.ZipFile(wheel) as archive:
            members = [name for name in archive.namelist() if name.startswith(WANTED)]
            for prefix in WANTED:
                shutil.rmtree(os.path.join(root, prefix), ignore_errors=True)
            archive.extractall(root, members)

    link = os.path.join(collections, "envelope", "kms")
    os.makedirs(os.path.dirname(link), exist_ok=True)
    if os.path.lexists(link):
        os.remove(link)
    checkout = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    os.symlink(os.path.relpath(checkout, os.path.dirname(link)), link)
    print(f"collections ready under {collections}: amazon.aws, ansible.posix, envelope.kms -> {checkout}")


if __name__ == "__main__":
    main()
