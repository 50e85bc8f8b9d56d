"""testbed.testing.namespaces on real namespaces: a namespace still held is
found, one no task is in is not, and neither is a live namespace whose
inode number is the one recorded but whose cookie is another's (as when
the number of a freed namespace was given to another lab's new one)."""

from __future__ import annotations

import os
import subprocess

import pytest

from testbed.linux.netns import netns_inode
from testbed.testing import namespaces
from testbed.testing.wait import wait_until

pytestmark = [pytest.mark.emulation,
              pytest.mark.skipif(os.geteuid() != 0, reason="emulation test: needs root (sudo ./run.sh test)")]


def test_a_held_namespace_is_left_and_another_with_its_inode_number_is_not():
    home = netns_inode(os.getpid())
    made: list[subprocess.Popen] = []

    def new_namespace() -> subprocess.Popen:
        made.append(subprocess.Popen(["unshare", "-n", "sleep", "60"]))
        wait_until(lambda: netns_inode(made[-1].pid) != home, 10, "unshare to enter a new network namespace")
        return made[-1]

    try:
        first, second = new_namespace(), new_namespace()
        held = namespaces.namespaces_of([first.pid])
        ((inode, cookie),) = held
        ((other_inode, other_cookie),) = namespaces.namespaces_of([second.pid])
        assert cookie != other_cookie
        assert namespaces.left(held) == held
        # What a lab's namespace whose inode number went to a new namespace
        # looks like (the kernel gives the lowest free number; on a busy
        # host when is not known): a live inode number, another cookie.
        assert not namespaces.left({(other_inode, cookie)})
        first.kill()
        first.wait()
        wait_until(lambda: not namespaces.left(held), 10, f"namespace {inode} to be left by its holder")
        assert namespaces.left({(other_inode, other_cookie)}) == {(other_inode, other_cookie)}
    finally:
        for process in made:
            process.kill()
            process.wait()
