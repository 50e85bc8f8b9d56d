"""Real packets between lab hosts, sent and counted by the harness process.

``Traffic`` answers "can this host reach that address, along which path, and
what was lost while the topology changed" with ICMP echo requests. Nothing
runs in the hosts: for a source host (named by the pid of a process in its
network namespace) it opens raw sockets inside that namespace with
``inside(pid)`` and keeps them, so the kernel there routes the probes and
resolves neighbours as it would for the host's own traffic. The probes carry
an ICMP identifier unique in this process, the sequence number and a payload
of a per-process magic, the full sequence number and the send time, so that
a reply, or an error quoting the probe, is matched to the operation that sent
it. One background thread reads the receiving sockets of every namespace and
hands each answer to the operation that owns its identifier; a stream sends
from a thread of its own at a controlled rate.

scapy builds one echo request per address family, once per process
(``_template``); copies are patched in bytes: the destination and identifier
per operation, the sequence number, timestamp, TTL and checksum per packet
(``_Echo``). Answers are read with ``struct`` rather than dissected by scapy:
a scapy dissection costs about 0.3 ms for an echo reply and 0.5 ms for an
error here, which would cap a stream's measurement at a few thousand packets
per second and take the harness's CPU to do it.

Routers must have net.ipv4.icmp_ratelimit and net.ipv6.icmp.ratelimit at 0
for traceroutes to see every hop. Even then an IPv4 router answers packets
it has no route for with at most one "net unreachable" per second per source
(burst 5): that is net.ipv4.route.error_cost, a machine-wide setting no
namespace can change, so expect silence rather than errors there.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import queue
import random
import selectors
import socket
import struct
import threading
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from testbed.errors import MissingDependency, TestbedError
from testbed.linux.netns import inside, netns_inode


class TrafficError(TestbedError):
    """Probes could not be sent or an operation was misused (bad address,
    source process gone, stream started twice)."""


# --- results -----------------------------------------------------------------


@dataclass(frozen=True)
class PingResult:
    """Echo requests sent from one host to ``destination`` and what came back.

    ``rtts`` are the round-trip times of the replies, in seconds; ``errors``
    the ICMP errors received instead (``"10.0.1.1: net unreachable"``) and
    probes the source could not send at all.
    """

    destination: str
    sent: int
    received: int
    rtts: tuple[float, ...]
    errors: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """At least one reply came back."""
        return self.received > 0

    @property
    def loss(self) -> float:
        """Fraction of probes without a reply, 0.0 to 1.0."""
        return 1.0 - self.received / self.sent if self.sent else 1.0


@dataclass(frozen=True)
class Hop:
    """One TTL of a traceroute.

    ``address`` is who answered (``None``: nobody within the timeout),
    ``rtt`` the smallest round-trip time of the probes at this TTL,
    ``reached`` whether the destination itself answered, ``error`` an
    unreachable error reported at this hop (such a hop ends the path).
    """

    ttl: int
    address: str | None
    rtt: float | None
    reached: bool
    rtts: tuple[float, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class StreamResult:
    """A stream of echo requests at a fixed rate and what was lost.

    ``lost`` holds the sequence numbers (0 for the first probe) without a
    reply. Times are in seconds; ``first_lost_at`` and ``recovered_at`` count
    from the start of the stream: when the first lost probe was sent, and
    when the first answered probe after the last loss was sent (``None`` if
    nothing was lost, or for ``recovered_at`` if the loss lasted to the end).
    ``longest_outage`` is the longest run of consecutive lost probes,
    measured from the send time of its first probe to that of the next
    answered probe (or the end of the stream).
    """

    destination: str
    sent: int
    received: int
    lost: tuple[int, ...]
    duration: float
    rate: float
    longest_outage: float
    first_lost_at: float | None
    recovered_at: float | None
    icmp_errors: int = 0
    send_errors: int = 0
    max_rtt: float | None = None

    @property
    def loss(self) -> float:
        """Fraction of probes without a reply, 0.0 to 1.0."""
        return len(self.lost) / self.sent if self.sent else 0.0


# --- packets -----------------------------------------------------------------

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


class _Batch:
    """Echo requests of one stream sent ``SIZE`` at a time with one
    ``sendmmsg(2)`` system call (Linux; Python's socket module has no
    binding, so ctypes calls libc). The frames, their I/O vectors and
    message headers are allocated once; each batch only patches the frames
    (``_Echo.render_into``)."""

    SIZE = 64

    def __init__(self, sock: socket.socket, echo: _Echo):
        import ctypes

        self._ctypes = ctypes
        self._libc = _libc()
        self._fd = sock.fileno()
        self._echo = echo
        frame = echo._frame
        self.length = len(frame)
        self.frames = ctypes.create_string_buffer(frame * self.SIZE, self.length * self.SIZE)
        family, destination = echo.family, echo.address[0]
        if family == socket.AF_INET:
            address = struct.pack("=H2s4s8x", socket.AF_INET, b"\0\0", socket.inet_aton(destination))
        else:
            address = struct.pack("=H2sI16sI", socket.AF_INET6, b"\0\0", 0,
                                  socket.inet_pton(socket.AF_INET6, destination), 0)
        self._address = ctypes.create_string_buffer(address, len(address))
        self._vectors = (_IOVec * self.SIZE)()
        self._messages = (_MMsgHdr * self.SIZE)()
        base = ctypes.addressof(self.frames)
        for i in range(self.SIZE):
            self._vectors[i].base = base + i * self.length
            self._vectors[i].length = self.length
            header = self._messages[i].header
            header.name = ctypes.addressof(self._address)
            header.namelen = len(address)
            header.iov = ctypes.addressof(self._vectors[i])
            header.iovlen = 1
        self._view = memoryview(self.frames).cast("B")

    def send(self, first: int, count: int, now_ns: int) -> int:
        """Send probes ``first`` .. ``first + count - 1`` (count at most
        SIZE) stamped ``now_ns``; the number the kernel took (it stops at
        the first that fails), or raise ``OSError`` if none."""
        view, length, render = self._view, self.length, self._echo.render_into
        for i in range(count):
            render(view, i * length, first + i, now_ns)
        sent = self._libc.sendmmsg(self._fd, self._messages, count, 0)
        if sent < 0:
            code = self._ctypes.get_errno()
            raise OSError(code, os.strerror(code))
        return sent


@functools.lru_cache(maxsize=None)
def _libc():
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.sendmmsg.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int)
    libc.sendmmsg.restype = ctypes.c_int
    libc.recvmmsg.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p)
    libc.recvmmsg.restype = ctypes.c_int
    return libc


def _mmsg_types():
    import ctypes

    class IOVec(ctypes.Structure):
        _fields_ = [("base", ctypes.c_void_p), ("length", ctypes.c_size_t)]

    class MsgHdr(ctypes.Structure):
        _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32),
                    ("iov", ctypes.c_void_p), ("iovlen", ctypes.c_size_t),
                    ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                    ("flags", ctypes.c_int)]

    class MMsgHdr(ctypes.Structure):
        _fields_ = [("header", MsgHdr), ("length", ctypes.c_uint)]

    return IOVec, MsgHdr, MMsgHdr


_IOVec, _MsgHdr, _MMsgHdr = _mmsg_types()
# Offsets in an array of struct mmsghdr, read and written in place (ctypes
# attribute access costs more than the datagram's own handling).
_MMSG_STRIDE = __import__("ctypes").sizeof(_MMsgHdr)
_NAMELEN_AT = _MMsgHdr.header.offset + _MsgHdr.namelen.offset
_CONTROLLEN_AT = _MMsgHdr.header.offset + _MsgHdr.controllen.offset
_MSGLEN_AT = _MMsgHdr.length.offset
_NAMELEN, _CONTROLLEN, _MSGLEN = struct.Struct("@I"), struct.Struct("@N"), struct.Struct("@I")
_TIMESTAMP = struct.Struct("@Niiqq")  # struct cmsghdr, then struct timespec


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


# --- sockets -----------------------------------------------------------------

_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux values
_SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
_SOL_RAW = 255
_ICMP_FILTER = 1  # SOL_RAW option: bit n set = drop ICMP type n
_ICMP6_FILTER = 1  # IPPROTO_ICMPV6 option: 256-bit mask, bit set = drop
_RECEIVE_BUFFER = 4 << 20  # a few seconds of a fast stream
_ANCILLARY = socket.CMSG_SPACE(16)


def _receive_filter(family: int) -> bytes:
    wanted = (_ECHO_REPLY[family], _TIME_EXCEEDED[family], _UNREACHABLE[family])
    if family == socket.AF_INET:
        return struct.pack("I", ~sum(1 << t for t in wanted) & 0xFFFFFFFF)
    words = [0xFFFFFFFF] * 8
    for kind in wanted:
        words[kind >> 5] &= ~(1 << (kind & 31))
    return struct.pack("8I", *words)


class _Endpoint:
    """The sockets of one namespace and family: ``send`` (blocking) and
    ``receive`` (non-blocking, read by the receiver thread only)."""

    def __init__(self, pid: int, family: int, inode: int):
        self.pid, self.family, self.inode = pid, family, inode
        if family == socket.AF_INET:  # IPPROTO_RAW: we write the IP header
            sending, receiving = socket.IPPROTO_RAW, socket.IPPROTO_ICMP
        else:
            sending = receiving = socket.IPPROTO_ICMPV6
        with inside(pid):
            self.send = socket.socket(family, socket.SOCK_RAW, sending)
            try:
                self.receive = socket.socket(family, socket.SOCK_RAW, receiving)
            except BaseException:
                self.send.close()
                raise
        try:
            level = _SOL_RAW if family == socket.AF_INET else socket.IPPROTO_ICMPV6
            option = _ICMP_FILTER if family == socket.AF_INET else _ICMP6_FILTER
            self.receive.setsockopt(level, option, _receive_filter(family))
            if family == socket.AF_INET6:
                # The sending socket would queue every ICMPv6 message too.
                self.send.setsockopt(level, option, b"\xff" * 32)
            self.receive.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
            try:
                self.receive.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE,
                                        _RECEIVE_BUFFER)
            except OSError:
                self.receive.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF,
                                        _RECEIVE_BUFFER)
            self.receive.setblocking(False)
            try:
                self.batch: _ReceiveBatch | None = _ReceiveBatch(self.receive)
            except (OSError, AttributeError):  # no recvmmsg: one recvmsg per datagram
                self.batch = None
        except BaseException:
            self.close()
            raise

    def transmit(self, echo: _Echo, frame: bytearray, ttl: int | None = None) -> None:
        if ttl is not None and self.family == socket.AF_INET6:
            hops = struct.pack("i", ttl)
            self.send.sendmsg([frame], [(socket.IPPROTO_IPV6, socket.IPV6_HOPLIMIT,
                                         hops)], 0, echo.address)
        else:
            self.send.sendto(frame, echo.address)

    def close(self) -> None:
        self.send.close()
        self.receive.close()


Sink = Callable[[_Answer], None]


class _Receiver:
    """One thread reading the receiving sockets of every endpoint and handing
    each answer to the sink registered for its (endpoint, identifier).

    Sockets are added, and the thread stopped, through a command queue and a
    wake-up pipe, so that only this thread ever touches a receiving socket.
    """

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        self._selector.register(self._wake_read, selectors.EVENT_READ, None)
        self._commands: queue.SimpleQueue = queue.SimpleQueue()
        self._sinks: dict[tuple[_Endpoint, int], Sink] = {}
        # Echo replies read without building an _Answer: (number, sent_ns, received_ns).
        self._replies: dict[tuple[_Endpoint, int], Callable[[int, int, int], None]] = {}
        self.failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name="traffic-receiver")
        self._thread.start()

    def add(self, endpoint: _Endpoint) -> None:
        self._command(("add", endpoint))

    def listen(self, endpoint: _Endpoint, ident: int, sink: Sink,
               replies: Callable[[int, int, int], None] | None = None) -> None:
        """Answers with identifier ``ident`` go to ``sink``; echo replies
        carrying our payload to ``replies`` instead, if given."""
        if replies is not None:
            self._replies[endpoint, ident] = replies
        self._sinks[endpoint, ident] = sink

    def forget(self, endpoint: _Endpoint, ident: int) -> None:
        self._sinks.pop((endpoint, ident), None)
        self._replies.pop((endpoint, ident), None)

    def stop(self) -> None:
        """Stop the thread and close the pipe; the endpoints stay open."""
        if self._thread.is_alive():
            self._command(("stop", None))
            self._thread.join()
        self._selector.close()
        os.close(self._wake_read)
        os.close(self._wake_write)

    def check(self) -> None:
        if self.failure is not None:
            raise TrafficError(f"the traffic receiver thread failed: {self.failure!r}; "
                               "close() this Traffic and use a new one")

    def _command(self, command: tuple) -> None:
        self._commands.put(command)
        os.write(self._wake_write, b"\0")

    def _run(self) -> None:
        try:
            while True:
                for key, _ in self._selector.select():
                    if key.data is not None:
                        self._drain(key.data)
                    elif not self._obey():
                        return
        except BaseException as failure:  # noqa: BLE001 - reported by check()
            self.failure = failure

    def _obey(self) -> bool:
        try:
            os.read(self._wake_read, 4096)
        except BlockingIOError:
            pass
        while True:
            try:
                verb, endpoint = self._commands.get_nowait()
            except queue.Empty:
                return True
            if verb == "stop":
                return False
            self._selector.register(endpoint.receive, selectors.EVENT_READ, endpoint)

    def _drain(self, endpoint: _Endpoint) -> None:
        batch = endpoint.batch
        if batch is None:
            self._drain_each(endpoint)
            return
        family, sinks, replies = endpoint.family, self._sinks, self._replies
        reply_type = _ECHO_REPLY[family]
        ipv4 = family == socket.AF_INET
        unpack_reply = _REPLY.unpack_from
        while True:
            try:
                received = batch.receive()
            except OSError:  # mostly EAGAIN: read all there was
                return
            view, message, timestamp = batch.view, batch.message, batch.timestamp
            for i in range(received):
                offset, length = message(i)
                start = offset + ((view[offset] & 0x0F) * 4 if ipv4 else 0)
                if length >= start - offset + 8 + _PAYLOAD.size and view[start] == reply_type:
                    ident, magic, number, sent_ns = unpack_reply(view, start + 4)
                    fast = replies.get((endpoint, ident))
                    if fast is not None and magic == _MAGIC:
                        fast(number, sent_ns, timestamp(i))
                        continue
                answer = _parse(family, bytes(view[offset:offset + length]), batch.source(i),
                                batch.timestamp(i))
                if answer is not None:
                    sink = sinks.get((endpoint, answer.ident))
                    if sink is not None:
                        sink(answer)
            if received < batch.SIZE:
                return

    def _drain_each(self, endpoint: _Endpoint) -> None:
        receive, family, sinks = endpoint.receive, endpoint.family, self._sinks
        while True:
            try:
                data, ancillary, _, address = receive.recvmsg(2048, _ANCILLARY)
            except OSError:  # mostly EAGAIN: read all there was
                return
            received_ns = 0
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS:
                    seconds, nanoseconds = struct.unpack("qq", value[:16])
                    received_ns = seconds * 1_000_000_000 + nanoseconds
            answer = _parse(family, data, address[0], received_ns or time.time_ns())
            if answer is not None:
                sink = sinks.get((endpoint, answer.ident))
                if sink is not None:
                    sink(answer)


class _ReceiveBatch:
    """Up to ``SIZE`` datagrams of a receiving socket per ``recvmmsg(2)``
    (ctypes: Python has no binding), into buffers allocated once, with each
    datagram's source address and kernel receive time (SO_TIMESTAMPNS)."""

    SIZE = 64
    BUFFER = 2048
    NAME = 28      # sizeof(struct sockaddr_in6)
    CONTROL = 64   # room for the SO_TIMESTAMPNS message

    def __init__(self, sock: socket.socket):
        import ctypes

        self._ctypes = ctypes
        self._libc = _libc()
        self._fd = sock.fileno()
        self.family = sock.family
        size = self.SIZE
        self._data = ctypes.create_string_buffer(self.BUFFER * size)
        self._names = ctypes.create_string_buffer(self.NAME * size)
        self._controls = ctypes.create_string_buffer(self.CONTROL * size)
        self._vectors = (_IOVec * size)()
        self._messages = (_MMsgHdr * size)()
        data, names, controls = (ctypes.addressof(b) for b in (self._data, self._names, self._controls))
        for i in range(size):
            self._vectors[i].base = data + i * self.BUFFER
            self._vectors[i].length = self.BUFFER
            header = self._messages[i].header
            header.name = names + i * self.NAME
            header.iov = ctypes.addressof(self._vectors[i])
            header.iovlen = 1
            header.control = controls + i * self.CONTROL
            header.namelen = self.NAME
            header.controllen = self.CONTROL
        self._headers = memoryview(self._messages).cast("B")
        self._used = 0
        self.view = memoryview(self._data).cast("B")
        self._name_view = memoryview(self._names).cast("B")
        self._control_view = memoryview(self._controls).cast("B")

    def receive(self) -> int:
        """How many datagrams were read (raises ``OSError``, EAGAIN when none)."""
        headers, stride = self._headers, _MMSG_STRIDE
        for i in range(self._used):  # the kernel rewrote these lengths
            _NAMELEN.pack_into(headers, i * stride + _NAMELEN_AT, self.NAME)
            _CONTROLLEN.pack_into(headers, i * stride + _CONTROLLEN_AT, self.CONTROL)
        count = self._libc.recvmmsg(self._fd, self._messages, self.SIZE, socket.MSG_DONTWAIT, None)
        if count < 0:
            code = self._ctypes.get_errno()
            raise OSError(code, os.strerror(code))
        self._used = count
        return count

    def message(self, i: int) -> tuple[int, int]:
        """(offset in ``view``, length) of datagram ``i``."""
        return i * self.BUFFER, _MSGLEN.unpack_from(self._headers, i * _MMSG_STRIDE + _MSGLEN_AT)[0]

    def timestamp(self, i: int) -> int:
        """Kernel receive time of datagram ``i`` (ns), from its SO_TIMESTAMPNS
        message, the only control message the socket asks for."""
        length, level, kind, seconds, nanoseconds = _TIMESTAMP.unpack_from(self._control_view, i * self.CONTROL)
        if length >= _TIMESTAMP.size and level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS:
            return seconds * 1_000_000_000 + nanoseconds
        return time.time_ns()

    def source(self, i: int) -> str:
        base = i * self.NAME
        if self.family == socket.AF_INET:
            return socket.inet_ntop(socket.AF_INET, bytes(self._name_view[base + 4:base + 8]))
        return socket.inet_ntop(socket.AF_INET6, bytes(self._name_view[base + 8:base + 24]))


# --- one probing operation ---------------------------------------------------


class _Probe:
    """The state of one ping or traceroute: an identifier, its answers in a
    queue, the send time of each sequence number."""

    def __init__(self, traffic: Traffic, pid: int, destination: str):
        family = _family(destination)
        self.endpoint, self.receiver = traffic._endpoint(pid, family)
        self.destination = destination
        self.ident = _IDENTS.acquire()
        self.answers: queue.SimpleQueue[_Answer] = queue.SimpleQueue()
        self.sent_ns: dict[int, int] = {}
        try:
            self.echo = _Echo(family, destination, self.ident)
            self.receiver.listen(self.endpoint, self.ident, self.answers.put)
        except BaseException:
            _IDENTS.release(self.ident)
            raise

    def __enter__(self) -> _Probe:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.receiver.forget(self.endpoint, self.ident)
        _IDENTS.release(self.ident)

    def send(self, seq: int, ttl: int | None = None) -> str | None:
        """Send probe ``seq``; the reason if the source could not send it."""
        now_ns = time.time_ns()
        self.sent_ns[seq] = now_ns
        try:
            self.endpoint.transmit(self.echo, self.echo.render(seq, now_ns, ttl), ttl)
        except OSError as error:
            return f"cannot send from pid {self.endpoint.pid}: {error.strerror}"
        return None

    def next(self, deadline: float) -> _Answer | None:
        """The next answer to a probe we sent, or None at ``deadline``
        (time.monotonic)."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                answer = self.answers.get(timeout=min(remaining, 0.1))
            except queue.Empty:
                self.receiver.check()
                continue
            if answer.seq in self.sent_ns:
                return answer

    def rtt(self, answer: _Answer) -> float:
        return max(0, answer.received_ns - self.sent_ns[answer.seq]) / 1e9


# --- streams -----------------------------------------------------------------


class Stream:
    """Echo requests at a steady rate from a background thread, counting the
    replies; ``start()``, then ``stop()`` gives the ``StreamResult``. As a
    context manager it starts on entry and leaves the result in ``.result``.
    """

    # If the sender falls this far behind its schedule (a stalled thread),
    # it skips ahead instead of bursting to catch up, which would flood the
    # path right when it is being measured.
    _MAX_LAG = 0.05

    def __init__(self, traffic: Traffic, pid: int, destination: str, rate: float):
        if not rate > 0:
            raise TrafficError(f"stream rate must be positive, got {rate!r} packets/s")
        self.destination, self.rate = destination, float(rate)
        self.result: StreamResult | None = None
        self._traffic, self._pid = traffic, pid
        self._family = _family(destination)
        self._sent_at = array("d")  # seconds since start, per sequence number
        self._replied = bytearray()  # 1 per sequence number answered
        self._icmp_errors = 0
        self._send_errors = 0
        self._max_rtt_ns = -1
        self._final = -1  # the last probe sent, once sending stopped
        self._drained = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = self._ended = 0.0

    def __enter__(self) -> Stream:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.result = self.stop()

    def start(self) -> Stream:
        """Start sending; returns the stream."""
        if self._thread is not None:
            raise TrafficError(f"stream to {self.destination} was already started")
        self._endpoint, self._receiver = self._traffic._endpoint(self._pid, self._family)
        self._ident = _IDENTS.acquire()
        try:
            self._echo = _Echo(self._family, self.destination, self._ident)
            self._receiver.listen(self._endpoint, self._ident, self._on_answer, self._on_reply)
            self._thread = threading.Thread(
                target=self._send, daemon=True,
                name=f"traffic-stream-{self._pid}-{self.destination}")
            self._traffic._streams.add(self)
            self._started = time.monotonic()
            self._thread.start()
        except BaseException:
            self._receiver.forget(self._endpoint, self._ident)
            _IDENTS.release(self._ident)
            self._traffic._streams.discard(self)
            raise
        return self

    def stop(self, drain: float = 0.5) -> StreamResult:
        """Stop sending, wait up to ``drain`` seconds for the reply to the
        last probe, and return the result (the same one if called again)."""
        if self.result is not None:
            return self.result
        if self._thread is None:
            raise TrafficError(f"stream to {self.destination} was never started")
        self._stopping.set()
        self._thread.join()
        self._final = len(self._sent_at) - 1
        if self._final < 0 or self._answered(self._final):
            self._drained.set()
        self._drained.wait(drain)
        self._receiver.forget(self._endpoint, self._ident)
        _IDENTS.release(self._ident)
        self._traffic._streams.discard(self)
        self.result = self._summarise()
        return self.result

    def _answered(self, number: int) -> bool:
        replied = self._replied
        return number < len(replied) and replied[number] == 1

    def _send(self) -> None:
        try:
            batch = _Batch(self._endpoint.send, self._echo)
        except (OSError, AttributeError):  # no sendmmsg here: one sendto per probe
            batch = None
        try:
            if batch is None:
                self._send_each()
            else:
                self._send_batches(batch)
        finally:
            self._ended = time.monotonic()

    def _send_batches(self, batch: _Batch) -> None:
        """Every probe due by now in one system call (up to ``_Batch.SIZE``),
        then sleep until the next is due: the same schedule as
        ``_send_each`` at low rates, a few hundred thousand probes per second
        at high ones."""
        sent_at, stopping, rate = self._sent_at, self._stopping, self.rate
        start = origin = self._started
        number = first_due = 0  # probes sent; the number due at ``origin``
        lag = max(1, int(rate * self._MAX_LAG))
        size = _Batch.SIZE
        while not stopping.is_set():
            now = time.monotonic()
            due = first_due + int((now - origin) * rate) + 1 - number
            if due <= 0:
                wait = origin + (number - first_due) / rate - now
                if wait > 0.001:
                    stopping.wait(wait)
                elif wait > 0:
                    time.sleep(wait)
                continue
            if due > lag + size:  # a stalled thread: skip ahead instead of bursting
                origin, first_due, due = now, number, 1
            count = min(due, size)
            # Recorded first: the reply may be read before sendmmsg returns.
            offset = now - start
            sent_at.extend([offset] * count)
            try:
                done = batch.send(number, count, time.time_ns())
            except OSError:
                done = 0
            self._send_errors += count - done
            number += count

    def _send_each(self) -> None:
        endpoint, echo, sent_at = self._endpoint, self._echo, self._sent_at
        transmit, render = endpoint.send.sendto, echo.render
        stopping, interval = self._stopping, 1.0 / self.rate
        start = self._started
        due = start
        number = 0
        while not stopping.is_set():
            now = time.monotonic()
            if now < due:
                wait = due - now
                if wait > 0.001:
                    stopping.wait(wait)
                else:
                    time.sleep(wait)
                continue
            # Recorded first: the reply may be read before sendto returns.
            sent_at.append(now - start)
            try:
                transmit(render(number, time.time_ns()), echo.address)
            except OSError:
                self._send_errors += 1
            number += 1
            due += interval
            if now - due > self._MAX_LAG:
                due = now

    def _on_reply(self, number: int, sent_ns: int, received_ns: int) -> None:
        """An echo reply (runs in the receiver thread): ``_on_answer`` without the _Answer."""
        if number >= len(self._sent_at):
            return
        replied = self._replied
        if number >= len(replied):
            replied.extend(bytes(max(number + 1 - len(replied), 4096)))
        if replied[number]:
            return  # duplicate
        replied[number] = 1
        rtt = received_ns - sent_ns
        if rtt > self._max_rtt_ns:
            self._max_rtt_ns = rtt
        if number == self._final:
            self._drained.set()

    def _on_answer(self, answer: _Answer) -> None:
        """Runs in the receiver thread."""
        if answer.kind != "reply":
            self._icmp_errors += 1
            return
        if answer.number is not None:
            self._on_reply(answer.number, answer.sent_ns, answer.received_ns)

    def _summarise(self) -> StreamResult:
        sent_at, replied = self._sent_at, self._replied
        sent = len(sent_at)
        answered = replied[:sent].ljust(sent, b"\0")
        lost = tuple(n for n in range(sent) if not answered[n])
        duration = self._ended - self._started
        longest = 0.0
        run_start = None
        for index, number in enumerate(lost):
            if run_start is None:
                run_start = number
            if index + 1 == len(lost) or lost[index + 1] != number + 1:
                until = sent_at[number + 1] if number + 1 < sent else duration
                longest = max(longest, until - sent_at[run_start])
                run_start = None
        recovered_at = None
        if lost and lost[-1] + 1 < sent:
            recovered_at = sent_at[lost[-1] + 1]
        return StreamResult(
            destination=self.destination, sent=sent, received=sent - len(lost),
            lost=lost, duration=duration,
            rate=sent / duration if duration > 0 else 0.0,
            longest_outage=longest,
            first_lost_at=sent_at[lost[0]] if lost else None,
            recovered_at=recovered_at,
            icmp_errors=self._icmp_errors, send_errors=self._send_errors,
            max_rtt=self._max_rtt_ns / 1e9 if self._max_rtt_ns >= 0 else None)


# --- the public face ---------------------------------------------------------


class Traffic:
    """Pings, traceroutes and streams from lab hosts, each named by the pid of
    a process in its network namespace. Thread-safe. ``close()`` it before
    the lab stops: its sockets keep the namespaces alive. It can be used
    again after ``close()``, reopening what it needs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._endpoints: dict[tuple[int, int], _Endpoint] = {}
        self._retired: list[_Endpoint] = []
        self._receiver: _Receiver | None = None
        self._streams: set[Stream] = set()

    def __enter__(self) -> Traffic:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def ping(self, src_pid: int, destination: str, count: int = 3,
             timeout: float = 1.0, interval: float = 0.02) -> PingResult:
        """Send ``count`` echo requests ``interval`` seconds apart and wait up
        to ``timeout`` after the last for the replies; returns early once
        every probe is answered, by a reply or an error."""
        if not 1 <= count <= 0x10000:
            raise TrafficError(f"ping count must be 1 to 65536, got {count}")
        rtts: list[float] = []
        errors: list[str] = []
        settled: set[int] = set()
        with _Probe(self, src_pid, destination) as probe:

            def take(answer: _Answer) -> None:
                if answer.seq in settled:
                    return
                settled.add(answer.seq)
                if answer.kind == "reply":
                    rtts.append(probe.rtt(answer))
                else:
                    errors.append(f"{answer.source}: {answer.detail}")

            for seq in range(count):
                if seq:
                    pause = time.monotonic() + interval
                    while (answer := probe.next(pause)) is not None:
                        take(answer)
                failure = probe.send(seq)
                if failure is not None:
                    settled.add(seq)
                    errors.append(failure)
            deadline = time.monotonic() + timeout
            while len(settled) < count and (answer := probe.next(deadline)) is not None:
                take(answer)
        return PingResult(destination, count, len(rtts), tuple(rtts), tuple(errors))

    def reachable(self, src_pid: int, destination: str, timeout: float = 1.0) -> bool:
        """Whether ``destination`` answers a ping from ``src_pid``: up to
        three probes within ``timeout``, stopping at the first reply."""
        tries = 3
        with _Probe(self, src_pid, destination) as probe:
            # After the setup: opening sockets and importing scapy the first
            # time can take seconds on a loaded machine.
            started = time.monotonic()
            for seq in range(tries):
                if probe.send(seq) is not None:
                    return False
                deadline = started + timeout * (seq + 1) / tries
                while (answer := probe.next(deadline)) is not None:
                    if answer.kind == "reply":
                        return True
                    if answer.seq == seq:
                        break  # an error for this probe: try the next one now
        return False

    def traceroute(self, src_pid: int, destination: str, max_hops: int = 16,
                   timeout: float = 1.0, probes: int = 1) -> list[Hop]:
        """The hops from ``src_pid`` to ``destination``, one per TTL, ending
        at the destination or at a hop reporting it unreachable; all
        ``max_hops`` if neither answers within ``timeout``. Every TTL is
        probed at once, so this takes one round trip, not one per hop."""
        if not 1 <= max_hops <= 255:
            raise TrafficError(f"max_hops must be 1 to 255, got {max_hops}")
        if not 1 <= probes <= 16:
            raise TrafficError(f"probes must be 1 to 16, got {probes}")
        answers: dict[int, _Answer] = {}  # by seq = (ttl - 1) * probes + n

        def end() -> int | None:
            ends = [seq // probes + 1 for seq, a in answers.items() if a.kind != "time-exceeded"]
            return min(ends) if ends else None

        with _Probe(self, src_pid, destination) as probe:
            for seq in range(max_hops * probes):
                failure = probe.send(seq, ttl=seq // probes + 1)
                if failure is not None:  # no route at the source itself
                    return [Hop(ttl=1, address=None, rtt=None, reached=False,
                                error=failure)]
            deadline = time.monotonic() + timeout
            while True:
                last = end()
                if last is not None and all(s in answers for s in range(last * probes)):
                    break
                answer = probe.next(deadline)
                if answer is None:
                    break
                answers.setdefault(answer.seq, answer)
            hops = []
            for ttl in range(1, (end() or max_hops) + 1):
                got = [answers[s] for s in range((ttl - 1) * probes, ttl * probes)
                       if s in answers]
                rtts = tuple(probe.rtt(a) for a in got)
                errors = [a.detail for a in got if a.kind == "unreachable"]
                hops.append(Hop(
                    ttl=ttl, address=got[0].source if got else None,
                    rtt=min(rtts) if rtts else None,
                    reached=any(a.kind == "reply" for a in got),
                    rtts=rtts, error=errors[0] if errors else None))
        return hops

    def stream(self, src_pid: int, destination: str, rate: float = 200.0) -> Stream:
        """A stream of echo requests at ``rate`` per second, not yet started."""
        return Stream(self, src_pid, destination, rate)

    def close(self) -> None:
        """Stop running streams and the receiver, close every socket."""
        for stream in list(self._streams):
            stream.stop(drain=0)
        with self._lock:
            receiver, self._receiver = self._receiver, None
            endpoints = [*self._endpoints.values(), *self._retired]
            self._endpoints.clear()
            self._retired.clear()
        if receiver is not None:
            receiver.stop()
        for endpoint in endpoints:
            endpoint.close()

    def _endpoint(self, pid: int, family: int) -> tuple[_Endpoint, _Receiver]:
        """The sockets of ``pid``'s namespace for ``family``, opened on first
        use, and the receiver reading them."""
        try:
            inode = netns_inode(pid)
        except FileNotFoundError:
            raise TrafficError(f"no process {pid}: its network namespace is gone, "
                               "or the node was never started") from None
        with self._lock:
            if self._receiver is None:
                self._receiver = _Receiver()
            self._receiver.check()
            endpoint = self._endpoints.get((pid, family))
            if endpoint is not None and endpoint.inode != inode:
                # The pid was reused by another namespace's process. The
                # receiver may be reading the old sockets: close them in close().
                self._retired.append(self._endpoints.pop((pid, family)))
                endpoint = None
            if endpoint is None:
                try:
                    endpoint = _Endpoint(pid, family, inode)
                except PermissionError:
                    raise MissingDependency(
                        "raw sockets need root or CAP_NET_RAW: run the lab as root"
                    ) from None
                except FileNotFoundError:
                    raise TrafficError(f"no process {pid}: its network namespace is "
                                       "gone") from None
                self._endpoints[pid, family] = endpoint
                self._receiver.add(endpoint)
            return endpoint, self._receiver
