"""Whether a lab's network namespaces are gone, told apart from new ones.

A test that checks a lab left nothing looks for tasks still in the lab's
namespaces. The inode number that names a namespace in /proc is given to
the next namespace made once the old one is freed (the lowest free number
first), so with other labs starting on the host (another test worker's,
another user's) a namespace of the lab seemed to be left when a new one
had its number. The namespace's cookie (SO_NETNS_COOKIE of a socket made
in it, 64 bits, never reused while the host runs) tells them apart.

``namespaces_of(pids)`` gives the ``(inode, cookie)`` of the namespaces
of those processes, taken while the lab runs; ``left(namespaces)`` those
of them some task on the host is still in (each thread is looked at: a
thread of the harness left inside one keeps it too).
"""

from __future__ import annotations

import contextlib
import glob
import os
import socket
import sys
from collections.abc import Iterable

from testbed.linux.netns import inside_fd

SO_NETNS_COOKIE = 71  # socket(7), Linux 5.14


def cookie(path: str) -> int | None:
    """The cookie of the network namespace at ``path`` (``/proc/<pid>/ns/net``
    or a task's); None when the process is gone."""
    try:
        target = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        with inside_fd(target), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as probe:
            return int.from_bytes(probe.getsockopt(socket.SOL_SOCKET, SO_NETNS_COOKIE, 8), sys.byteorder)
    finally:
        os.close(target)


def namespaces_of(pids: Iterable[int]) -> set[tuple[int, int]]:
    """``{(inode, cookie)}`` of the network namespaces of ``pids`` (processes
    already gone are left out)."""
    found = set()
    for pid in pids:
        path = f"/proc/{pid}/ns/net"
        with contextlib.suppress(OSError):
            inode = os.stat(path).st_ino
            value = cookie(path)
            if value is not None:
                found.add((inode, value))
    return found


def left(namespaces: set[tuple[int, int]]) -> set[tuple[int, int]]:
    """Those of ``namespaces`` that a task on the host is still in."""
    inodes = {inode for inode, _ in namespaces}
    seen: dict[int, int | None] = {}  # at one moment one inode is one namespace
    for path in glob.glob("/proc/[0-9]*/task/[0-9]*/ns/net"):
        with contextlib.suppress(OSError):
            inode = os.stat(path).st_ino
            if inode in inodes and seen.get(inode) is None:
                seen[inode] = cookie(path)
    return {(inode, value) for inode, value in seen.items()} & namespaces
