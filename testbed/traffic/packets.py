"""The probes on the wire: ICMP echo requests made once and patched in
bytes, and the answers read back with ``struct``.

scapy builds one echo request per address family, once per process
(``_template``); copies are patched in bytes: the destination and identifier
per operation, the sequence number, timestamp, TTL and checksum per packet
(``_Echo``). Answers are read with ``struct`` rather than dissected by scapy
(``_parse`` gives an ``_Answer`` or None): a scapy dissection costs about
0.3 ms for an echo reply and 0.5 ms for an error here, which would cap a
stream's measurement at a few thousand packets per second and take the
harness's CPU to do it. Every probe carries an identifier unique in this
process (``_IDENTS``) and a payload of a per-process magic, its full
sequence number and its send time, so that a reply, or an error quoting
the probe, is matched to the operation that sent it.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import random
import socket
import struct
import threading
from typing import NamedTuple

from testbed.traffic.results import TrafficError

# Identifies this process's probes next to anybody else's in a namespace.
_MAGIC = os.urandom(8)
_PAYLOAD = struct.Struct("!8sQQ")  # magic, full sequence number, send time (ns)
_REPLY = struct.Struct("!H2x8sQQ")  # from the ICMP identifier: identifier, sequence, payload

_ECHO_REQUEST = {socket.AF_INET: 8, socket.AF_INET6: 128}
_ECHO_REPLY = {socket.AF_INET: 0, socket.AF_INET6: 129}
_TIME_EXCEEDED = {socket.AF_INET: 11, socket.AF_INET6: 3}
_UNREACHABLE = {socket.AF_INET: 3, socket.AF_INET6: 1}
_UNREACHABLE_CODES = {
    socket.AF_INET: {0: "net unreachable", 1: "host unreachable",
                     2: "protocol unreachable", 3: "port unreachable",
                     4: "fragmentation needed", 9: "net prohibited",
                     10: "host prohibited", 13: "administratively prohibited"},
    socket.AF_INET6: {0: "no route", 1: "administratively prohibited",
                      3: "address unreachable", 4: "port unreachable",
                      5: "source address failed policy", 6: "reject route"},
}


@functools.lru_cache(maxsize=None)
def _scapy() -> tuple[type, type, type]:
    """The scapy layers used, imported on first use only: scapy.all would
    cost about 2 s and pull in what is never used here."""
    from scapy.layers.inet import ICMP, IP
    from scapy.layers.inet6 import ICMPv6EchoRequest

    return IP, ICMP, ICMPv6EchoRequest


def _family(destination: str) -> int:
    try:
        version = ipaddress.ip_address(destination).version
    except ValueError:
        raise TrafficError(
            f"{destination!r} is not an IPv4 or IPv6 address: give the "
            "destination as an address, not a name") from None
    return socket.AF_INET if version == 4 else socket.AF_INET6


def _checksum(data: bytes | bytearray) -> int:
    """The Internet checksum (RFC 1071) of an even-length buffer."""
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total & 0xFFFF) + (total >> 16)
    total += total >> 16
    return ~total & 0xFFFF


@functools.lru_cache(maxsize=None)
def _template(family: int) -> bytes:
    """An echo request with identifier 0, sequence 0, a zeroed payload and
    (IPv4) destination 0.0.0.0, built by scapy once per family: scapy takes
    about 1 ms to build an IPv4 one, far more than patching a copy."""
    IP, ICMP, ICMPv6EchoRequest = _scapy()
    payload = bytes(_PAYLOAD.size)
    if family == socket.AF_INET:
        # Source, IP id and header checksum zero: the kernel fills them in.
        return bytes(IP(src="0.0.0.0", dst="0.0.0.0", id=0, ttl=64)
                     / ICMP(type="echo-request", id=0, seq=0) / payload)
    # The kernel adds the IPv6 header and computes the checksum.
    return bytes(ICMPv6EchoRequest(id=0, seq=0, cksum=0, data=payload))


class _Echo:
    """Echo requests from one source to one destination with one identifier:
    copies of the scapy-built template, patched per packet.

    IPv4 frames carry their IP header (the socket has IP_HDRINCL) and an
    ICMP checksum computed here; IPv6 frames are the ICMPv6 message only.
    """

    def __init__(self, family: int, destination: str, ident: int):
        frame = bytearray(_template(family))
        self.family = family
        if family == socket.AF_INET:
            self._icmp = (frame[0] & 0x0F) * 4
            frame[16:20] = socket.inet_aton(destination)
            self.address: tuple = (destination, 0)
        else:
            self._icmp = 0
            self.address = (destination, 0, 0, 0)
        struct.pack_into("!H", frame, self._icmp + 4, ident)
        _PAYLOAD.pack_into(frame, self._icmp + 8, _MAGIC, 0, 0)
        self._frame = bytes(frame)
        # Sum of the 16-bit words of the ICMP message with sequence number,
        # full number and time zero (checksum field zero): render_into adds
        # the words that change.
        message = bytearray(frame[self._icmp:])
        message[2:4] = b"\0\0"
        self._base = sum(struct.unpack(f"!{len(message) // 2}H", message))

    def render_into(self, buffer, offset: int, number: int, now_ns: int) -> None:
        """``render(number, now_ns)`` written into ``buffer`` at ``offset``,
        which holds a copy of this echo's frame (``self._frame``) already:
        only the sequence number, payload and checksum change, and the
        checksum is updated from the template's by adding the new words
        (RFC 1624) instead of summing the whole message again."""
        icmp = offset + self._icmp
        seq = number & 0xFFFF
        struct.pack_into("!H", buffer, icmp + 6, seq)
        struct.pack_into("!QQ", buffer, icmp + 16, number, now_ns)
        if self.family == socket.AF_INET:
            total = (self._base + seq + (number >> 48) + ((number >> 32) & 0xFFFF)
                     + ((number >> 16) & 0xFFFF) + (number & 0xFFFF) + (now_ns >> 48)
                     + ((now_ns >> 32) & 0xFFFF) + ((now_ns >> 16) & 0xFFFF) + (now_ns & 0xFFFF))
            total = (total & 0xFFFF) + (total >> 16)
            total = (total & 0xFFFF) + (total >> 16)
            struct.pack_into("!H", buffer, icmp + 2, ~total & 0xFFFF)

    def render(self, number: int, now_ns: int, ttl: int | None = None) -> bytearray:
        """Probe ``number`` (any size; the ICMP seq is its low 16 bits)
        stamped ``now_ns``; ``ttl`` is applied here for IPv4 only."""
        frame = bytearray(self._frame)
        icmp = self._icmp
        struct.pack_into("!H", frame, icmp + 6, number & 0xFFFF)
        _PAYLOAD.pack_into(frame, icmp + 8, _MAGIC, number, now_ns)
        if self.family == socket.AF_INET:
            if ttl is not None:
                frame[8] = ttl
            frame[icmp + 2:icmp + 4] = b"\0\0"
            struct.pack_into("!H", frame, icmp + 2, _checksum(frame[icmp:]))
        return frame


class _Answer(NamedTuple):
    """An echo reply to one of our probes, or an ICMP error quoting one."""

    kind: str  # "reply", "time-exceeded" or "unreachable"
    source: str
    ident: int
    seq: int  # the 16-bit ICMP sequence number
    number: int | None  # full sequence number, if the payload came back
    sent_ns: int | None  # send time from the payload, if it came back
    received_ns: int  # kernel receive time, CLOCK_REALTIME
    detail: str  # what an error says, "" for a reply


def _parse(family: int, data: bytes, source: str, received_ns: int) -> _Answer | None:
    """Read an answer to one of our probes from what a receiving socket
    gave; ``None`` for anything else. IPv4 data starts with the IP header,
    IPv6 data with the ICMPv6 message."""
    try:
        if family == socket.AF_INET:
            icmp = (data[0] & 0x0F) * 4
            source = socket.inet_ntoa(data[12:16])
        else:
            icmp = 0
        kind, code = data[icmp], data[icmp + 1]
        if kind == _ECHO_REPLY[family]:
            probe = icmp
            what, detail = "reply", ""
        elif kind in (_TIME_EXCEEDED[family], _UNREACHABLE[family]):
            quoted = icmp + 8
            if family == socket.AF_INET:
                if data[quoted + 9] != socket.IPPROTO_ICMP:
                    return None
                probe = quoted + (data[quoted] & 0x0F) * 4
            else:
                if data[quoted + 6] != socket.IPPROTO_ICMPV6:
                    return None
                probe = quoted + 40
            if data[probe] != _ECHO_REQUEST[family]:
                return None
            if kind == _TIME_EXCEEDED[family]:
                what, detail = "time-exceeded", "time exceeded"
            else:
                what = "unreachable"
                detail = _UNREACHABLE_CODES[family].get(
                    code, f"unreachable (code {code})")
        else:
            return None
        ident, seq = struct.unpack_from("!HH", data, probe + 4)
    except (IndexError, struct.error):
        return None
    number = sent_ns = None
    if len(data) >= probe + 8 + _PAYLOAD.size:
        magic, number, sent_ns = _PAYLOAD.unpack_from(data, probe + 8)
        if magic != _MAGIC:
            return None
    elif what == "reply":
        return None  # a reply always carries the whole payload back
    return _Answer(what, source, ident, seq, number, sent_ns, received_ns, detail)


class _Idents:
    """ICMP identifiers in use by this process. Module-wide, not per
    ``Traffic``: two ``Traffic`` objects probing from one namespace must not
    take each other's answers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._used: set[int] = set()
        # Random start: another process probing from the same namespace is
        # unlikely to use the same ids (the payload's magic tells us apart).
        self._next = random.randrange(1, 0x10000)

    def acquire(self) -> int:
        with self._lock:
            for _ in range(0x10000):
                ident, self._next = self._next, (self._next + 1) & 0xFFFF
                if ident not in self._used:
                    self._used.add(ident)
                    return ident
        raise TrafficError("all 65536 ICMP identifiers are in use by running "
                           "probes and streams: stop some streams")

    def release(self, ident: int) -> None:
        with self._lock:
            self._used.discard(ident)


_IDENTS = _Idents()
