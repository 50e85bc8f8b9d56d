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

import os
import socket
import struct
import time
from collections.abc import Callable, Mapping

from testbed.errors import LabError
from testbed.linux import netns
from testbed.linux.netlink import NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, messages, request
from testbed.model.addressing import Plan

TCP_LISTEN = 10  # the kernel's TCP state number of a listening socket
NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY = 4, 20
# struct inet_diag_req_v2: family, protocol, extensions, pad, states, then
# the socket id (ports, addresses, interface, cookie: 48 bytes, zero for a dump)
INET_DIAG_REQ_V2 = struct.Struct("=BBBxI48x")


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
    all closed on exit; ``listening_ports``).

    It asks the kernel for listening sockets only. Reading
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
        sock = self._sockets.get(name)
        if sock is None:
            with netns.inside(pid):
                sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG)
            sock.bind((0, 0))
            self._sockets[name] = sock
        if self.port not in listening_ports(sock):
            return False
        self._sockets.pop(name).close()
        return True


def listening_ports(sock: socket.socket) -> set[int]:
    """The local ports of the IPv4 TCP listeners of the namespace
    ``sock`` (a sock_diag netlink socket) was made in: one dump request,
    packed here: ~15 us of the harness's CPU per ask, where pyroute2's
    ``DiagSocket`` took ~0.3 ms through its asyncio core (polled for every
    starting router every 10 ms, while those routers need the CPU)."""
    body = INET_DIAG_REQ_V2.pack(socket.AF_INET, socket.IPPROTO_TCP, 0, 1 << TCP_LISTEN)
    sock.send(request(SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, 1, body))
    ports: set[int] = set()
    while True:
        data = sock.recv(1 << 16)
        for kind, _seq, start, _end in messages(data):
            if kind == NLMSG_DONE:
                return ports
            if kind == NLMSG_ERROR:
                (code,) = struct.unpack_from("=i", data, start)
                if code:
                    raise OSError(-code, f"sock_diag: {os.strerror(-code)}")
                return ports
            if kind == SOCK_DIAG_BY_FAMILY:  # struct inet_diag_msg: family, state, timer, retrans, id
                ports.add(struct.unpack_from("!H", data, start + 4)[0])
