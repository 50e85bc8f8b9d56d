"""testbed.testing.namespaces on real namespaces: a namespace still held is
found, and a new namespace that was given the inode number of a freed one
(another lab's, made meanwhile) is not taken for it."""

from __future__ import annotations

import os
import subprocess

import pytest

from testbed.linux.netns import netns_inode
from testbed.testing import namespaces
from testbed.testing.wait import wait_until

pytestmark = [pytest.mark.emulation,
              pytest.mark.skipif(os.geteuid() != 0, reason="emulation test: needs root (sudo ./run.sh test)")]


def holder_of(inode: int) -> int | None:
    """A process in the network namespace of that inode number, if any."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}/ns/net").st_ino == inode:
                    return int(entry)
            except OSError:
                pass
    return None


def test_a_held_namespace_is_left_and_a_new_one_with_its_inode_number_is_not():
    home = netns_inode(os.getpid())
    made: list[subprocess.Popen] = []

    def new_namespace() -> subprocess.Popen:
        made.append(subprocess.Popen(["unshare", "-n", "sleep", "60"]))
        wait_until(lambda: netns_inode(made[-1].pid) != home, 10, "unshare to enter a new network namespace")
        return made[-1]

    try:
        first = new_namespace()
        held = namespaces.namespaces_of([first.pid])
        ((inode, cookie),) = held
        assert namespaces.left(held) == held
        first.kill()
        first.wait()
        assert not namespaces.left(held)

        # The kernel gives a new namespace the lowest free inode number once
        # the old one is freed (asynchronously): make namespaces until one
        # has it (another program's new namespace may be given it first:
        # as good), dropping the others at once.
        def reused() -> int | None:
            found = holder_of(inode)
            if found is None:
                other = new_namespace()
                found = holder_of(inode)
                if found != other.pid:
                    other.kill()
            return found
        again = wait_until(reused, 30, f"a new namespace with inode number {inode}", interval=0.1)
        assert namespaces.namespaces_of([again]) != held  # the same inode number, another cookie
        assert not namespaces.left(held)
    finally:
        for process in made:
            process.kill()
            process.wait()
