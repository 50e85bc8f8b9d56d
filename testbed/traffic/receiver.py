"""The sockets of each namespace a lab's traffic leaves from, and the one
thread that reads their answers.

For a source host (named by the pid of a process in its network
namespace) ``_Endpoint`` opens raw sockets inside that namespace with
``inside(pid)`` and keeps them, so the kernel there routes the probes and
resolves neighbours as it would for the host's own traffic. One
``_Receiver`` thread reads the receiving sockets of every endpoint (a
batch at a time, ``testbed.traffic.mmsg``) and hands each answer to the
operation that registered its identifier: an ``_Answer`` to a sink, or,
for a stream's echo replies, just the numbers.
"""

from __future__ import annotations

import os
import queue
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable

from testbed.linux.netns import inside
from testbed.traffic.mmsg import _SO_TIMESTAMPNS, _ReceiveBatch
from testbed.traffic.packets import (_ECHO_REPLY, _MAGIC, _PAYLOAD, _REPLY, _TIME_EXCEEDED, _UNREACHABLE, _Answer,
                                     _Echo, _parse)
from testbed.traffic.results import TrafficError

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
