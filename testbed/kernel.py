"""Kernel routes of one router, through netlink (pyroute2).

The route agent runs inside its router's network namespace and calls
``KernelTable`` to mirror its Loc-RIB into the kernel. Routes carry the
``bgp`` protocol number (186), so ``ip route`` shows ``proto bgp`` and
``routes()`` reads back exactly what the agent installed and nothing else.
"""

from __future__ import annotations

import errno
import os
import socket
import struct

RTPROT_BGP = 186
RTN_BLACKHOLE = 6
BLACKHOLE = "blackhole"
"""The next hop of a route that discards its traffic (RFC 7999 blackholing)."""


class KernelTable:
    """Add, replace and delete this namespace's BGP routes.

    Writes go through a plain netlink socket in batches (``apply``): one
    ``sendmsg`` carries up to ``BATCH`` route messages, so a burst of
    thousands of changes costs a few system calls and no per-route library
    work. The messages ask for no acknowledgement: the kernel handles a
    request to the routing table inside the ``sendmsg`` that carries it and
    queues an error message for each one that fails, so once ``sendmsg``
    has returned, reading what is queued (without waiting) gives every
    failure of the batch, and a batch that fully succeeded costs one
    ``recv`` that finds nothing instead of parsing an acknowledgement per
    route. Reads (``routes``) go through pyroute2."""

    # pyroute2 0.9.7 keeps about 700 bytes per request for the life of an
    # IPRoute (measured: 2,000 replace+delete pairs, +1.3 MB; freed on
    # close). A router that flaps for days would grow without bound, so the
    # socket is replaced every RECYCLE operations.
    RECYCLE = 512
    # Messages per sendmsg: if every one failed, their error messages must
    # still fit in the socket's receive buffer (each costs ~1 KiB of it;
    # the default is 208 KiB).
    BATCH = 128

    def __init__(self):
        # The namespace this table belongs to: the calling thread's now.
        self._netns = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        self._ipr = None
        self._operations = 0
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)  # NETLINK_ROUTE, here
        self._sock.bind((0, 0))
        self._seq = 0

    def _open(self):
        from pyroute2 import IPRoute  # 0.2 s import: only where it is used

        from .netns import inside_fd

        with inside_fd(self._netns):
            return IPRoute()

    def _count(self) -> None:
        if self._ipr is None:
            self._ipr = self._open()
        self._operations += 1
        if self._operations >= self.RECYCLE:
            self._ipr.close()
            self._ipr = self._open()
            self._operations = 0

    def apply(self, operations) -> dict[int, OSError]:
        """Carry out ``(op, prefix, next_hop)`` operations ("replace" or
        "delete") in order; the errors by index (deleting a route that is
        not there is not one)."""
        failed: dict[int, OSError] = {}
        for start in range(0, len(operations), self.BATCH):
            chunk = operations[start:start + self.BATCH]
            first = self._seq + 1
            self._seq += len(chunk)
            data = b"".join(route_message(op, prefix, next_hop, first + i)
                            for i, (op, prefix, next_hop) in enumerate(chunk))
            self._sock.sendall(data)
            for seq, code in read_errors(self._sock):
                index = seq - first
                if not 0 <= index < len(chunk):
                    continue  # not one of ours (nothing else writes on this socket)
                if code and not (code == errno.ESRCH and chunk[index][0] == "delete"):
                    failed[start + index] = OSError(code, os.strerror(code))
        return failed

    def replace(self, prefix: str, next_hop: str) -> None:
        """Install or move the route for ``prefix`` via ``next_hop``
        (``BLACKHOLE``: a route that discards the traffic)."""
        for error in self.apply([("replace", prefix, next_hop)]).values():
            raise error

    def delete(self, prefix: str) -> None:
        """Remove the BGP route for ``prefix`` if there is one."""
        for error in self.apply([("delete", prefix, None)]).values():
            raise error

    def routes(self) -> dict[str, str]:
        """prefix -> next hop of every BGP route in this namespace."""
        self._count()
        return read_bgp_routes(self._ipr)

    def close(self) -> None:
        if self._ipr is not None:
            self._ipr.close()
        self._sock.close()
        os.close(self._netns)


# -- netlink messages (rtnetlink(7)) -----------------------------------------------

RTM_NEWROUTE, RTM_DELROUTE = 24, 25
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK, NLM_F_REPLACE, NLM_F_CREATE = 0x1, 0x4, 0x100, 0x400
RT_TABLE_MAIN = 254
RT_SCOPE_UNIVERSE, RT_SCOPE_NOWHERE = 0, 255
RTN_UNICAST = 1
RTA_DST, RTA_GATEWAY = 1, 5
_NLMSGHDR = struct.Struct("=IHHII")   # length, type, flags, sequence, port
_RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, protocol, scope, type, flags
_RTATTR = struct.Struct("=HH")        # length, type


def _attribute(kind: int, payload: bytes) -> bytes:
    length = _RTATTR.size + len(payload)
    return _RTATTR.pack(length, kind) + payload + b"\0" * (-length % 4)


def route_message(op: str, prefix: str, next_hop: str | None, seq: int) -> bytes:
    """The netlink request that replaces (``ip route replace ... proto
    bgp``; ``next_hop`` ``BLACKHOLE`` for ``ip route replace blackhole
    ...``) or deletes (``ip route del ... proto bgp``) one route."""
    address, _, length = prefix.partition("/")
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    if op == "replace":
        kind, flags = RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_REPLACE | NLM_F_CREATE
        scope, rtype = RT_SCOPE_UNIVERSE, RTN_UNICAST
        if next_hop == BLACKHOLE:
            rtype, next_hop = RTN_BLACKHOLE, None
    elif op == "delete":
        kind, flags = RTM_DELROUTE, NLM_F_REQUEST
        scope, rtype = RT_SCOPE_NOWHERE, 0  # any scope, any type: matched by prefix and protocol
    else:
        raise ValueError(f"unknown route operation {op!r}")
    body = _RTMSG.pack(family, int(length), 0, 0, RT_TABLE_MAIN, RTPROT_BGP, scope, rtype, 0)
    body += _attribute(RTA_DST, socket.inet_pton(family, address))
    if next_hop is not None and op == "replace":
        body += _attribute(RTA_GATEWAY, socket.inet_pton(socket.AF_INET6 if ":" in next_hop else socket.AF_INET,
                                                         next_hop))
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), kind, flags, seq, 0) + body


def parse_acks(data: bytes):
    """``(sequence, errno)`` of each acknowledgement (NLMSG_ERROR) in ``data``."""
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, kind, _flags, seq, _port = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size:
            break
        if kind == NLMSG_ERROR:
            (code,) = struct.unpack_from("=i", data, offset + _NLMSGHDR.size)
            yield seq, -code
        offset += (length + 3) & ~3


def read_acks(sock: socket.socket, first: int, count: int):
    """The acknowledgements of sequences ``first`` .. ``first + count - 1``."""
    waiting = set(range(first, first + count))
    while waiting:
        for seq, code in parse_acks(sock.recv(1 << 17)):
            if seq in waiting:
                waiting.discard(seq)
                yield seq, code


def read_errors(sock: socket.socket):
    """``(sequence, errno)`` of the error messages queued on ``sock``, read
    without waiting (requests sent without ``NLM_F_ACK``)."""
    while True:
        try:
            data = sock.recv(1 << 17, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return
        yield from parse_acks(data)


def read_bgp_routes(ipr) -> dict[str, str]:
    """prefix -> next hop (or ``BLACKHOLE``) of the ``proto bgp`` routes
    visible through ``ipr``."""
    found: dict[str, str] = {}
    for family in (socket.AF_INET, socket.AF_INET6):
        for msg in ipr.get_routes(family=family, proto=RTPROT_BGP):
            dst = msg.get_attr("RTA_DST")
            length = msg["dst_len"]
            if dst is None:
                dst = "0.0.0.0" if family == socket.AF_INET else "::"
            found[f"{dst}/{length}"] = (BLACKHOLE if msg["type"] == RTN_BLACKHOLE
                                        else msg.get_attr("RTA_GATEWAY"))
    return found
