"""What the test files share (the floor under tests/unit and tests/emulation).

``wait_until`` itself lives in ``testbed.testing.wait`` (scenarios and
users' scripts wait the same way); import it from there. Here:
``bare_namespaces``, a factory of empty network namespaces with their
loopback up, each held by an ``unshare -n sleep`` process that is killed
after the test, for the emulation tests that try kernel mechanisms outside
a lab (netlink routes, listeners).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator

import pytest

from testbed.testing.wait import wait_until


def _netns_inode(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except FileNotFoundError:
        return None


@pytest.fixture
def bare_namespaces() -> Iterator[Callable[[], int]]:
    """``make()`` returns the pid of a process holding a new, empty network
    namespace whose ``lo`` is up; every one is killed at the test's end."""
    holders: list[subprocess.Popen] = []
    home = _netns_inode(os.getpid())

    def make() -> int:
        holder = subprocess.Popen(["unshare", "-n", "sleep", "60"])
        holders.append(holder)
        wait_until(lambda: _netns_inode(holder.pid) not in (None, home), 5,
                   f"unshare (pid {holder.pid}) to enter a new network namespace")
        subprocess.run(["nsenter", "-t", str(holder.pid), "-n", "ip", "link", "set", "lo", "up"], check=True)
        return holder.pid

    try:
        yield make
    finally:
        for holder in holders:
            holder.kill()
            holder.wait()
