"""testbed.testing.namespaces on real namespaces: a namespace still held is
found, and a new namespace that was given the inode number of a freed one
(another lab's, made meanwhile) is not taken for it."""

from __future__ import annotations

import os

import pytest

from testbed.testing import namespaces
from testbed.testing.wait import wait_until

pytestmark = [pytest.mark.emulation,
              pytest.mark.skipif(os.geteuid() != 0, reason="emulation test: needs root (sudo ./run.sh test)")]


def test_a_held_namespace_is_left_and_a_new_one_with_its_inode_number_is_not(bare_namespaces):
    first = bare_namespaces()
    held = namespaces.namespaces_of([first])
    ((inode, cookie),) = held
    assert namespaces.left(held) == held
    os.kill(first, 9)
    wait_until(lambda: not os.path.exists(f"/proc/{first}/ns/net") or not namespaces.left(held), 10,
               f"the holder {first} of namespace {inode} to be gone")
    wait_until(lambda: not namespaces.left(held), 10, f"namespace {inode} to be freed")

    # The kernel gives a new namespace the lowest free inode number: make
    # namespaces until one has the freed one's (freeing is asynchronous).
    def reused() -> int | None:
        pid = bare_namespaces()
        return pid if os.stat(f"/proc/{pid}/ns/net").st_ino == inode else None
    again = wait_until(reused, 10, f"a new namespace with inode number {inode}", interval=0.05)
    assert namespaces.namespaces_of([again]) != held  # same inode, another cookie
    assert not namespaces.left(held)
