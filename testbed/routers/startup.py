"""Starting a lab's BGP daemons in an order that costs no back-off.

Of each session the higher ASN is passive (it listens) and the lower one
connects. A connection refused because the peer is not listening yet costs
a daemon a growing back-off (ExaBGP: 1 s, 2 s, 3 s...), so ``start_in_order``
starts routers in descending ASN order, only a few at a time, each counted
as started once it listens on the BGP port: every active side then finds its
passive peers listening on its first try. Any backend can use it: it takes a
function that starts one router and asks the kernel, over netlink, whether
that router's namespace listens.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Mapping

from testbed.errors import LabError
from testbed.linux import netns
from testbed.model.addressing import Plan

TCP_LISTEN = 10  # the kernel's TCP state number of a listening socket


def start_in_order(plan: Plan, start_one: Callable[[str], None], pids: Mapping[str, int], port: int,
                   window: int, deadline: float, check: Callable[[], None]) -> None:
    """``start_one(router)`` for every router of ``plan``, highest ASN first,
    with at most ``window`` routers started but not yet listening on
    ``port`` (their namespaces' processes in ``pids``). ``check()`` runs
    between polls (a liveness check); past ``deadline`` (monotonic clock)
    a ``LabError`` says the daemons did not listen."""
    starting: list[str] = []
    order = sorted(plan.routers.values(), key=lambda r: r.asn, reverse=True)
    with Listeners(port) as listeners:
        def still_starting() -> list[str]:
            return [n for n in starting if not listeners.listening(n, pids[n])]

        def step() -> None:
            check()
            if time.monotonic() > deadline:
                raise LabError("timed out waiting for speakers to listen")
            time.sleep(0.01)  # no event tells us a socket started listening in another process

        for router in order:
            while len(starting) >= window:
                starting = still_starting()
                if len(starting) >= window:
                    step()
            start_one(router.name)
            if router.neighbors:
                starting.append(router.name)
        while starting:
            starting = still_starting()
            if starting:
                step()


class Listeners:
    """Whether a namespace has an IPv4 TCP listener on a port, asked over a
    socket-diagnostics netlink socket made in it (kept until it says yes,
    all closed on exit).

    It asks the kernel for listening sockets only (0.3 ms). Reading
    ``/proc/<pid>/net/tcp`` instead walks the host's whole TCP connection
    hash, one for every namespace, whatever the namespace holds: ~5 ms of
    system time per read on this machine kind, and polled for 16 starting
    routers every 10 ms that took a quarter of a core from them."""

    def __init__(self, port: int):
        self.port = port
        self._sockets: dict[str, object] = {}

    def __enter__(self) -> "Listeners":
        return self

    def __exit__(self, *exc) -> None:
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()

    def listening(self, name: str, pid: int) -> bool:
        from pyroute2 import DiagSocket

        sock = self._sockets.get(name)
        if sock is None:
            with netns.inside(pid):
                sock = DiagSocket()
                sock.bind()
            self._sockets[name] = sock
        found = sock.get_sock_stats(family=socket.AF_INET, states=1 << TCP_LISTEN)
        if not any(entry["idiag_sport"] == self.port for entry in found):
            return False
        self._sockets.pop(name).close()
        return True
