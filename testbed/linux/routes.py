"""Kernel routes and link events of one router, through netlink.

The route agent runs inside its router's network namespace and calls
``KernelTable`` to mirror its Loc-RIB into the kernel. Routes carry the
``bgp`` protocol number (186), so ``ip route`` shows ``proto bgp`` and
``routes()`` reads back exactly what the agent installed and nothing else.

A route via a gateway points at a nexthop object (``ip nexthop``, Linux
5.3) that the table makes once per gateway: the kernel then resolves the
gateway once instead of for every route, which makes a route's insertion
~30 % cheaper (0.26 against 0.38 s of kernel time per 100,000 IPv4
routes, measured). ``ip route`` shows such a route as ``nhid N via G dev
D proto bgp``.
"""

from __future__ import annotations

import errno
import os
import socket
import struct

from testbed.linux.netlink import (
    BATCH, IFF_LOWER_UP, IFF_UP, IFINFOMSG, NHA_GATEWAY, NHA_ID, NHA_OIF, NHMSG, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP,
    NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, RT_SCOPE_NOWHERE, RT_SCOPE_UNIVERSE,
    RT_TABLE_MAIN, RTA_DST, RTA_GATEWAY, RTA_NH_ID, RTA_OIF, RTA_TABLE, RTM_DELLINK, RTM_DELROUTE, RTM_GETLINK,
    RTM_GETNEXTHOP, RTM_GETROUTE, RTM_NEWLINK, RTM_NEWNEXTHOP, RTM_NEWROUTE, RTMGRP_LINK, RTMSG, RTN_BLACKHOLE,
    RTN_UNICAST, RTPROT_BGP, Channel, attribute, messages, parse_acks, request)
from testbed.linux.netlink import attributes as route_attributes

__all__ = ["BLACKHOLE", "RTPROT_BGP", "KernelTable", "LinkWatch", "link_changes", "nexthop_message", "parse_acks",
           "parse_route", "read_bgp_routes", "read_route_dump", "route_message"]

BLACKHOLE = "blackhole"
"""The next hop of a route that discards its traffic (RFC 7999 blackholing)."""


class KernelTable:
    """Add, replace, delete and list this namespace's BGP routes.

    Writes go through a plain netlink socket in batches (``apply``): one
    ``sendmsg`` carries up to ``BATCH`` route messages, so a burst of
    thousands of changes costs a few system calls and no per-route library
    work. The messages ask for no acknowledgement: the kernel handles a
    request to the routing table inside the ``sendmsg`` that carries it and
    queues an error message for each one that fails, so once ``sendmsg``
    has returned, reading what is queued (without waiting) gives every
    failure of the batch, and a batch that fully succeeded costs one
    ``recv`` that finds nothing instead of parsing an acknowledgement per
    route. Reads (``routes``) are a dump the kernel filters by table and
    protocol, parsed here (~3 us a route; pyroute2 took ~15)."""

    BATCH = BATCH  # messages per sendmsg (see testbed.linux.netlink.BATCH)

    # Nexthop object ids are the namespace's; the table numbers its own from
    # here, past what someone typing ``ip nexthop add id N`` would pick.
    NEXTHOP_ID_BASE = 0x40000000

    def __init__(self, nexthops: bool = True):
        # The namespace this table belongs to: the calling thread's now.
        self._netlink = Channel(strict=True)  # dumps filtered by the kernel (else by read_route_dump)
        self._sock = self._netlink.sock
        self.nexthops = nexthops  # False: plain ``via`` routes (also once the kernel refused them)
        self._nexthop_ids: dict[str, int] = {}   # gateway -> id of the nexthop object made for it
        self._gateways: dict[int, str] = {}      # and back
        self._next_id = self.NEXTHOP_ID_BASE

    def apply(self, operations) -> dict[int, OSError]:
        """Carry out ``(op, prefix, next_hop)`` operations ("replace" or
        "delete") in order; the errors by index (deleting a route that is
        not there is not one)."""
        failed = self._apply(operations)
        if failed and self._gateways:
            # The kernel deletes a nexthop object when its link goes down
            # (and every route through it), so a route may have named one
            # that is gone: forget those gateways' objects and try their
            # routes once more, through new ones (or plain routes).
            gone = {hop for op, _, hop in (operations[index] for index in failed)
                    if op == "replace" and hop in self._nexthop_ids
                    and not self._nexthop_exists(self._nexthop_ids[hop])}
            for hop in gone:
                self._forget(hop)
            stale = {index for index in failed if operations[index][2] in gone}
            if stale:
                order = sorted(stale)
                again = self._apply([operations[index] for index in order])
                for position, index in enumerate(order):
                    if position in again:
                        failed[index] = again[position]
                    else:
                        del failed[index]
        return failed

    def _apply(self, operations) -> dict[int, OSError]:
        failed: dict[int, OSError] = {}
        ids = self._nexthop_ids
        unusable: set[str] = set()  # gateways no nexthop object could be made for, in this call
        for start in range(0, len(operations), self.BATCH):
            chunk = operations[start:start + self.BATCH]
            if self.nexthops:  # make the objects this chunk needs first (a request each, acknowledged)
                for op, _prefix, next_hop in chunk:
                    if op == "replace" and next_hop not in ids and next_hop not in unusable:
                        if self._make_nexthop(next_hop) is None:
                            unusable.add(next_hop)
            first = self._netlink.sequence(len(chunk))
            data = b"".join(route_message(op, prefix, next_hop, first + i,
                                          ids.get(next_hop) if op == "replace" else None)
                            for i, (op, prefix, next_hop) in enumerate(chunk))
            for index, code in self._netlink.send(data, first, len(chunk), acked=False).items():
                if not (code == errno.ESRCH and chunk[index][0] == "delete"):
                    failed[start + index] = OSError(code, os.strerror(code))
        return failed

    def _make_nexthop(self, gateway: str) -> int | None:
        """The id of a new nexthop object via ``gateway`` on the link the
        kernel reaches it through directly; None where there is none (the
        gateway is not on a link that is up, or the kernel has no nexthop
        objects): the route is then written with the gateway itself, and
        fails or not as it always did (``BLACKHOLE`` has none either)."""
        if gateway is None or gateway == BLACKHOLE:
            return None
        family = socket.AF_INET6 if ":" in gateway else socket.AF_INET
        try:
            packed = socket.inet_pton(family, gateway)
        except OSError:
            return None
        oif = self._directly_via(family, packed)
        if oif is None:
            return None
        for _ in range(64):  # ids someone else took in this namespace are skipped
            nhid, self._next_id = self._next_id, self._next_id + 1
            seq = self._netlink.sequence()
            code = self._netlink.send(nexthop_message(nhid, family, packed, oif, seq), seq, 1, acked=True).get(0, 0)
            if code == 0:
                self._nexthop_ids[gateway], self._gateways[nhid] = nhid, gateway
                return nhid
            if code != errno.EEXIST:
                if code == errno.EOPNOTSUPP:  # no nexthop objects in this kernel
                    self.nexthops = False
                return None
        return None

    def _nexthop_exists(self, nhid: int) -> bool:
        """Whether nexthop object ``nhid`` is still there (``ip nexthop show id N``)."""
        body = NHMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + attribute(NHA_ID, struct.pack("=I", nhid))
        kind, _data, _start, _end = self._netlink.ask(RTM_GETNEXTHOP, body)
        return kind == RTM_NEWNEXTHOP

    def _forget(self, gateway: str) -> None:
        nhid = self._nexthop_ids.pop(gateway, None)
        if nhid is not None:
            self._gateways.pop(nhid, None)

    def _directly_via(self, family: int, packed: bytes) -> int | None:
        """The index of the link through which ``packed`` is reached
        without another gateway (``ip route get``), or None."""
        body = RTMSG.pack(family, len(packed) * 8, 0, 0, 0, 0, 0, 0, 0) + attribute(RTA_DST, packed)
        kind, data, start, end = self._netlink.ask(RTM_GETROUTE, body)
        if kind != RTM_NEWROUTE:
            return None  # an error: no route to it
        attributes = dict(route_attributes(data, start + RTMSG.size, end))
        if data[start + 7] != RTN_UNICAST or RTA_GATEWAY in attributes or RTA_OIF not in attributes:
            return None  # rtmsg's type: local, unreachable...; or through another gateway
        return struct.unpack("=i", attributes[RTA_OIF])[0]

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
        found: dict[str, str] = {}
        for family in (socket.AF_INET, socket.AF_INET6):
            seq = self._netlink.sequence()
            body = RTMSG.pack(family, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BGP, 0, 0, 0)
            self._sock.sendall(request(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, seq, body))
            found.update(read_route_dump(self._sock, seq, self._gateways))
        return found

    def close(self) -> None:
        self._netlink.close()


# -- route messages -----------------------------------------------------------------

# The most common message, an IPv4 route replaced via an IPv4 gateway, in
# one piece: header, rtmsg, RTA_DST and RTA_GATEWAY (4-byte payloads, so
# no padding). Packing it at once costs a third of assembling it.
_IPV4_REPLACE = struct.Struct("=IHHIIBBBBBBBBIHH4sHH4s")
_IPV4_REPLACE_NHID = struct.Struct("=IHHIIBBBBBBBBIHH4sHHI")  # the same with RTA_NH_ID
_REPLACE_FLAGS = NLM_F_REQUEST | NLM_F_REPLACE | NLM_F_CREATE


def route_message(op: str, prefix: str, next_hop: str | None, seq: int, nhid: int | None = None) -> bytes:
    """The netlink request that replaces (``ip route replace ... proto
    bgp``; ``next_hop`` ``BLACKHOLE`` for ``ip route replace blackhole
    ...``; with ``nhid``, ``ip route replace ... nhid N proto bgp``, the
    nexthop object made for ``next_hop``) or deletes (``ip route del ...
    proto bgp``) one route."""
    address, _, length = prefix.partition("/")
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    if nhid is not None and op == "replace":
        if family == socket.AF_INET:
            return _IPV4_REPLACE_NHID.pack(_IPV4_REPLACE_NHID.size, RTM_NEWROUTE, _REPLACE_FLAGS, seq, 0,
                                           socket.AF_INET, int(length), 0, 0, RT_TABLE_MAIN, RTPROT_BGP,
                                           RT_SCOPE_UNIVERSE, RTN_UNICAST, 0,
                                           8, RTA_DST, socket.inet_pton(socket.AF_INET, address),
                                           8, RTA_NH_ID, nhid)
        body = (RTMSG.pack(family, int(length), 0, 0, RT_TABLE_MAIN, RTPROT_BGP, RT_SCOPE_UNIVERSE,
                            RTN_UNICAST, 0)
                + attribute(RTA_DST, socket.inet_pton(family, address))
                + attribute(RTA_NH_ID, struct.pack("=I", nhid)))
        return request(RTM_NEWROUTE, _REPLACE_FLAGS, seq, body)
    if (op == "replace" and family == socket.AF_INET and next_hop is not None
            and next_hop != BLACKHOLE and ":" not in next_hop):
        return _IPV4_REPLACE.pack(_IPV4_REPLACE.size, RTM_NEWROUTE, _REPLACE_FLAGS, seq, 0,
                                  socket.AF_INET, int(length), 0, 0, RT_TABLE_MAIN, RTPROT_BGP,
                                  RT_SCOPE_UNIVERSE, RTN_UNICAST, 0,
                                  8, RTA_DST, socket.inet_pton(socket.AF_INET, address),
                                  8, RTA_GATEWAY, socket.inet_pton(socket.AF_INET, next_hop))
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
    body = RTMSG.pack(family, int(length), 0, 0, RT_TABLE_MAIN, RTPROT_BGP, scope, rtype, 0)
    body += attribute(RTA_DST, socket.inet_pton(family, address))
    if next_hop is not None and op == "replace":
        body += attribute(RTA_GATEWAY, socket.inet_pton(socket.AF_INET6 if ":" in next_hop else socket.AF_INET,
                                                         next_hop))
    return request(kind, flags, seq, body)


def nexthop_message(nhid: int, family: int, gateway: bytes, oif: int, seq: int) -> bytes:
    """The request (acknowledged) that makes nexthop object ``nhid`` via
    ``gateway`` (packed) on link ``oif``: ``ip nexthop add id N via G dev D
    proto bgp``, failing if the id is taken."""
    body = (NHMSG.pack(family, 0, RTPROT_BGP, 0, 0)
            + attribute(NHA_ID, struct.pack("=I", nhid))
            + attribute(NHA_OIF, struct.pack("=i", oif))
            + attribute(NHA_GATEWAY, gateway))
    return request(RTM_NEWNEXTHOP, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq, body)


def read_route_dump(sock: socket.socket, seq: int, nexthops: dict[int, str] | None = None) -> dict[str, str]:
    """prefix -> next hop (or ``BLACKHOLE``) of the ``proto bgp`` routes of
    the main table in the answer to dump request ``seq`` on ``sock``
    (``nexthops``: gateway by nexthop object id, see ``parse_route``)."""
    found: dict[str, str] = {}
    while True:
        data = sock.recv(1 << 20)
        for kind, msg_seq, start, end in messages(data):
            if msg_seq != seq:
                continue
            if kind == NLMSG_DONE:
                return found
            if kind == NLMSG_ERROR:
                (code,) = struct.unpack_from("=i", data, start)
                if code:
                    raise OSError(-code, f"route dump: {os.strerror(-code)}")
            elif kind == RTM_NEWROUTE:
                route = parse_route(data, start, end, nexthops)
                if route is not None:
                    found[route[0]] = route[1]


def parse_route(data: bytes, start: int, end: int,
                nexthops: dict[int, str] | None = None) -> tuple[str, str] | None:
    """``(prefix, next hop)`` of the RTM_NEWROUTE body in ``data[start:end]``
    if it is a ``proto bgp`` route of the main table, else None. A route
    through a nexthop object carries its gateway too (the kernel's default,
    ``net.ipv4.nexthop_compat_mode`` 1); where it does not, ``nexthops``
    gives the gateway of the object's id."""
    family, dst_len, _src, _tos, table, protocol, _scope, rtype, _flags = RTMSG.unpack_from(data, start)
    if protocol != RTPROT_BGP:
        return None
    dst = gateway = nhid = None
    for kind, payload in route_attributes(data, start + RTMSG.size, end):
        if kind == RTA_DST:
            dst = socket.inet_ntop(family, payload)
        elif kind == RTA_GATEWAY:
            gateway = socket.inet_ntop(family, payload)
        elif kind == RTA_TABLE:
            (table,) = struct.unpack("=I", payload)
        elif kind == RTA_NH_ID:
            (nhid,) = struct.unpack("=I", payload)
    if gateway is None and nhid is not None and nexthops:
        gateway = nexthops.get(nhid)
    if table != RT_TABLE_MAIN:
        return None
    if dst is None:
        dst = "0.0.0.0" if family == socket.AF_INET else "::"
    return f"{dst}/{dst_len}", BLACKHOLE if rtype == RTN_BLACKHOLE else gateway


def read_bgp_routes(ipr, proto: int = RTPROT_BGP) -> dict[str, str]:
    """prefix -> next hop (or ``BLACKHOLE``) of the ``proto bgp`` routes
    (or those of routing protocol number ``proto``: BIRD writes its own)
    visible through ``ipr`` (a pyroute2 IPRoute: the harness's own reader,
    independent of the agent's)."""
    found: dict[str, str] = {}
    for family in (socket.AF_INET, socket.AF_INET6):
        for msg in ipr.get_routes(family=family, proto=proto, table=RT_TABLE_MAIN):
            dst = msg.get_attr("RTA_DST")
            length = msg["dst_len"]
            if dst is None:
                dst = "0.0.0.0" if family == socket.AF_INET else "::"
            found[f"{dst}/{length}"] = (BLACKHOLE if msg["type"] == RTN_BLACKHOLE
                                        else msg.get_attr("RTA_GATEWAY"))
    return found


# -- link events --------------------------------------------------------------------

class LinkWatch:
    """Tells when a link of this namespace comes up.

    When a link goes down the kernel deletes the routes through it; when it
    comes back, a routing daemon puts them back. What matters is that
    moment, a link going from not (administratively up and with a carrier)
    to both: a bridge's operational state settling, a feature or address
    change, the other events of RTMGRP_LINK, change no route, and a
    reconciliation on each would read the whole table for nothing (with
    100,000 routes, a second of CPU). The state of every link is read once
    (a dump on the same socket, so no event falls between the two) and
    then followed from the events."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK, 0)
        try:
            self.sock.bind((0, RTMGRP_LINK))
            self._up: dict[int, bool] = {}
            body = IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
            self.sock.send(request(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 1, body))
        except BaseException:
            self.sock.close()
            raise

    def fileno(self) -> int:
        return self.sock.fileno()

    def came_up(self) -> bool:
        """Read every queued message; whether a link came up since the last
        call (also when the kernel dropped messages: one may have)."""
        came_up = False
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except BlockingIOError:
                return came_up
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise
                came_up = True  # messages were lost
                continue
            if not data:
                return came_up
            came_up |= link_changes(data, self._up)

    def close(self) -> None:
        self.sock.close()


def link_changes(data: bytes, up: dict[int, bool]) -> bool:
    """Follow the RTM_NEWLINK and RTM_DELLINK messages in ``data`` in
    ``up`` (interface index -> up with a carrier); whether one of them
    brought a known link up. A link seen for the first time did not."""
    came_up = False
    for kind, _seq, start, end in messages(data):
        if kind not in (RTM_NEWLINK, RTM_DELLINK) or end - start < IFINFOMSG.size:
            continue
        _family, _type, index, flags, _change = IFINFOMSG.unpack_from(data, start)
        if kind == RTM_DELLINK:
            up.pop(index, None)
            continue
        now = flags & (IFF_UP | IFF_LOWER_UP) == IFF_UP | IFF_LOWER_UP
        if now and up.get(index) is False:
            came_up = True
        up[index] = now
    return came_up
