"""Route netlink (rtnetlink(7)): the one set of constants, the message
layouts, and batched sending with its acknowledgements and errors.

Two users build on it: ``NamespaceConfig`` (``testbed.linux.namespaces``)
sets up a node's interfaces, addresses and static routes, and
``KernelTable`` (``testbed.linux.routes``) mirrors a route agent's Loc-RIB.
Both pack their requests with ``struct`` here, so a request costs a few
microseconds and no library call (pyroute2's ``IPRoute`` takes ~1 ms per
request through its asyncio core, its message classes ~50 us to encode
one), and both send them over one ``Channel`` per namespace, up to
``BATCH`` per ``sendmsg``. Bytes leave as requests (``request``,
``attribute``, ``nested``), come back as ``(type, sequence, start, end)``
of each message (``messages``) and ``(type, payload)`` of each attribute
(``attributes``); ``Channel.send`` gives the errno of each refused request
of a batch, by its position. The harness's own reader of kernel tables
(``testbed.linux.routes.read_bgp_routes``) stays on pyroute2 on purpose:
an independent parser checks this one.
"""

from __future__ import annotations

import errno
import socket
import struct

# -- message types and flags (linux/netlink.h, linux/rtnetlink.h) --------------------
NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR = 20
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26
RTM_NEWNEXTHOP, RTM_GETNEXTHOP = 104, 106
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE = 0x100, 0x200, 0x400
NLM_F_DUMP = 0x300
SOL_NETLINK, NETLINK_GET_STRICT_CHK = 270, 12
RTMGRP_LINK = 0x1

# -- links (ifinfomsg) ----------------------------------------------------------------
IFF_UP, IFF_LOWER_UP = 0x1, 0x10000
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MASTER, IFLA_LINKINFO, IFLA_NET_NS_PID = 1, 3, 10, 18, 19
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
VETH_INFO_PEER = 1
IFLA_BR_FORWARD_DELAY, IFLA_BR_STP_STATE, IFLA_BR_MCAST_SNOOPING = 1, 5, 23

# -- addresses (ifaddrmsg) ------------------------------------------------------------
IFA_ADDRESS, IFA_LOCAL = 1, 2
IFA_F_NODAD = 0x02

# -- routes (rtmsg) and nexthop objects (nhmsg) ----------------------------------------
RT_TABLE_MAIN = 254
RTPROT_STATIC, RTPROT_BGP = 4, 186
RT_SCOPE_UNIVERSE, RT_SCOPE_NOWHERE = 0, 255
RTN_UNICAST, RTN_BLACKHOLE = 1, 6
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_TABLE, RTA_NH_ID = 1, 4, 5, 15, 30
NHA_ID, NHA_OIF, NHA_GATEWAY = 1, 5, 6

# -- layouts --------------------------------------------------------------------------
NLMSGHDR = struct.Struct("=IHHII")     # length, type, flags, sequence, port
RTMSG = struct.Struct("=BBBBBBBBI")    # family, dst_len, src_len, tos, table, protocol, scope, type, flags
RTATTR = struct.Struct("=HH")          # length, type
IFINFOMSG = struct.Struct("=BxHiII")   # family, type, index, flags, change
IFADDRMSG = struct.Struct("=BBBBI")    # family, prefixlen, flags, scope, index
NHMSG = struct.Struct("=BBBBI")        # family, scope, protocol, reserved, flags

BATCH = 128
"""Requests per ``sendmsg``: if every one failed, their error messages
(each ~1 KiB of the receive buffer, whose default is 208 KiB) must still
fit in the socket's receive buffer."""


def request(kind: int, flags: int, seq: int, body: bytes) -> bytes:
    """A netlink message: its header, then ``body``."""
    return NLMSGHDR.pack(NLMSGHDR.size + len(body), kind, flags, seq, 0) + body


def attribute(kind: int, payload: bytes) -> bytes:
    """One attribute (``struct rtattr``), padded to four bytes."""
    length = RTATTR.size + len(payload)
    return RTATTR.pack(length, kind) + payload + b"\0" * (-length % 4)


def nested(kind: int, *attributes: bytes) -> bytes:
    """An attribute holding others (``IFLA_LINKINFO`` and the like)."""
    return attribute(kind, b"".join(attributes))


def u32(value: int) -> bytes:
    return struct.pack("=I", value)


def text(value: str) -> bytes:
    """A NUL-terminated string payload (interface names, link kinds)."""
    return value.encode() + b"\0"


def mac(address: str) -> bytes:
    """A link-layer address payload from ``aa:bb:cc:dd:ee:ff``."""
    return bytes.fromhex(address.replace(":", ""))


def family_of(address: str) -> int:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def ip(address: str) -> bytes:
    """An address payload (IPv4 or IPv6, by its text)."""
    return socket.inet_pton(family_of(address), address)


def attributes(data: bytes, offset: int, end: int):
    """``(type, payload)`` of each attribute in ``data[offset:end]``."""
    while offset + RTATTR.size <= end:
        length, kind = RTATTR.unpack_from(data, offset)
        if length < RTATTR.size:
            return
        yield kind, data[offset + RTATTR.size:offset + length]
        offset += (length + 3) & ~3


def messages(data: bytes):
    """``(type, sequence, start, end)`` of each netlink message in
    ``data``: its body is ``data[start:end]``."""
    offset = 0
    while offset + NLMSGHDR.size <= len(data):
        length, kind, _flags, seq, _port = NLMSGHDR.unpack_from(data, offset)
        if length < NLMSGHDR.size:
            raise OSError(errno.EPROTO, f"malformed netlink message (length {length})")
        yield kind, seq, offset + NLMSGHDR.size, offset + length
        offset += (length + 3) & ~3


def parse_acks(data: bytes):
    """``(sequence, errno)`` of each acknowledgement (NLMSG_ERROR) in ``data``."""
    for kind, seq, start, _end in messages(data):
        if kind == NLMSG_ERROR:
            (code,) = struct.unpack_from("=i", data, start)
            yield seq, -code


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


class Channel:
    """A route netlink socket of the calling thread's namespace (it stays
    there wherever it is used from) and the sequence numbers of its requests.

    ``send`` carries one batch: requests numbered ``first`` .. ``first +
    count - 1`` in one ``sendmsg``. The kernel handles a routing request
    inside the ``sendmsg`` that carries it, so for requests without
    ``NLM_F_ACK`` what is queued once it returns is every failure of the
    batch, read without waiting (a batch that fully succeeded costs one
    empty ``recv``); requests with it are each acknowledged, and every
    acknowledgement is read."""

    def __init__(self, strict: bool = False):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)  # NETLINK_ROUTE, here
        self.sock.bind((0, 0))
        if strict:
            try:  # let the kernel filter dumps by table and protocol
                self.sock.setsockopt(SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1)
            except OSError:
                pass  # an older kernel: the reader filters them itself
        self.seq = 0

    def sequence(self, count: int = 1) -> int:
        """Take ``count`` sequence numbers; the first of them."""
        first = self.seq + 1
        self.seq += count
        return first

    def send(self, data: bytes, first: int, count: int, acked: bool) -> dict[int, int]:
        """Send the batch ``data`` (sequences ``first`` .. ``first + count -
        1``); position in the batch -> errno of each request refused."""
        self.sock.sendall(data)
        replies = read_acks(self.sock, first, count) if acked else read_errors(self.sock)
        refused = {}
        for seq, code in replies:
            index = seq - first
            if code and 0 <= index < count:  # else not one of ours (nothing else writes here)
                refused[index] = code
        return refused

    def ask(self, kind: int, body: bytes) -> tuple[int, bytes, int, int]:
        """Send one request; the type, data, start and end of the answer's body."""
        seq = self.sequence()
        self.sock.sendall(request(kind, NLM_F_REQUEST, seq, body))
        while True:
            data = self.sock.recv(1 << 16)
            for answer, answer_seq, start, end in messages(data):
                if answer_seq == seq:
                    return answer, data, start, end

    def close(self) -> None:
        self.sock.close()
