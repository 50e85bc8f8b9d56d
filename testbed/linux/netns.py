"""Enter a lab node's network namespace from this process, briefly.

Mininet hosts live in anonymous network namespaces held by a process (the
node's shell). Sockets keep the namespace they were created in, so the
harness opens netlink and raw sockets inside a node's namespace with
``inside(pid)`` and then uses them from anywhere: no helper process per node.
setns(2) acts on the calling thread only, so the switch is invisible to other
threads and is undone on exit.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from pyroute2 import netns as _netns


def netns_path(pid: int) -> str:
    """Path of the network namespace of process ``pid``."""
    return f"/proc/{pid}/ns/net"


def netns_inode(pid: int) -> int:
    """Inode that identifies the network namespace of ``pid``."""
    return os.stat(netns_path(pid)).st_ino


@contextlib.contextmanager
def inside(pid: int) -> Iterator[None]:
    """Run the body with this thread in the network namespace of ``pid``."""
    target = os.open(netns_path(pid), os.O_RDONLY)
    try:
        with inside_fd(target):
            yield
    finally:
        os.close(target)


@contextlib.contextmanager
def inside_fd(target: int) -> Iterator[None]:
    """Like ``inside`` for a namespace held open as a file descriptor."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        _netns.setns(target)
        try:
            yield
        finally:
            _netns.setns(home)
    finally:
        os.close(home)


@contextlib.contextmanager
def iproute(pid: int):
    """A pyroute2 ``IPRoute`` bound to the namespace of ``pid``, closed after."""
    from pyroute2 import IPRoute

    with inside(pid):
        ipr = IPRoute()
    try:
        yield ipr
    finally:
        ipr.close()


def write_sysctl(pid: int, name: str, value: str | int) -> None:
    """Set a per-namespace ``net.*`` sysctl in the namespace of ``pid``."""
    write_sysctls(pid, {name: value})


def write_sysctls(pid: int, values: dict[str, object]) -> None:
    """Set several sysctls in the namespace of ``pid``, entering it once.

    /proc/sys/net resolves to the namespace of the thread that opens it.
    """
    with inside(pid):
        for name, value in values.items():
            with open("/proc/sys/" + name.replace(".", "/"), "w") as handle:
                handle.write(f"{value}\n")
