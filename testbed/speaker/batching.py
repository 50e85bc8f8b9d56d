"""Per-message costs of a zygote speaker, paid once per burst instead.

A converging router receives one-route UPDATEs back to back, and stock
ExaBGP pays for each one the whole round of its event loop: a turn of
the reactor (its listener, its peers, its API, its async queue and a
``poll``), two ``poll(0)`` and two ``recv`` calls to read the message's
header and body, and a write and flush of the event to its API process,
which wakes the agent's thread. Measured on one router taking 5,000
such UPDATEs (``python -m testbed.bench.per_update``), that was most of
ExaBGP's ~100 µs per UPDATE; parsing the message is ~12. Three changes,
each on by default and each turned off by leaving it out of
``TESTBED_BATCHING`` (``0``: all off, for an A/B; ``drain,recv``: only
those):

- ``recv``: ``Connection.reader`` (``reader``) reads what the socket
  holds, up to ``RECV_SIZE`` bytes, into a buffer of the connection and
  cuts messages from it: one ``recv`` for a burst of messages, no
  ``poll`` before it (the socket is non-blocking: an empty socket says
  so with EAGAIN). It yields what the original yields for every input:
  ``tests/unit/test_batching.py`` runs both on the same byte streams.
- ``drain``: an Established peer whose turn ended with more to do
  (``ACTION.NOW``: a message was read, or more is to be sent) is given
  up to ``DRAIN_STEPS`` steps in the same turn of the reactor
  (``testbed.speaker.reactor``), so the loop's round is paid once for
  them.
- ``handover``: the agent thread's event pipe (``DeferredPipe``) keeps
  what ExaBGP writes to it until the reactor is about to wait
  (``flush_pending``, called by ``testbed.speaker.reactor``): one write
  and one wake-up of the agent per turn, not per UPDATE. The bytes and
  their order are the same.

``counters`` tells how many of each happened in this speaker (the agent's
summary shows them), so a test can see that each is working.
"""

from __future__ import annotations

import os
import socket
from struct import unpack

from testbed.speaker import compat

FEATURES = ("recv", "drain", "handover")
RECV_SIZE = 1 << 16     # bytes asked of a session's socket per recv
DRAIN_STEPS = 32        # steps of an Established peer per turn of the reactor, at most

COUNTERS = dict.fromkeys(("messages_read", "socket_reads", "peer_steps", "reactor_turns",
                          "handover_writes"), 0)
"""What this speaker did (a forked speaker has its own copy)."""


def enabled(feature: str) -> bool:
    """Whether ``feature`` (one of ``FEATURES``) is on: ``TESTBED_BATCHING``
    unset or ``1`` (all), ``0`` (none), or a comma-separated list of those on."""
    value = os.environ.get("TESTBED_BATCHING", "1").strip()
    if value in ("", "1"):
        return True
    if value == "0":
        return False
    return feature in {part.strip() for part in value.split(",")}


def counters() -> dict:
    return dict(COUNTERS)


# -- recv: one read for a burst of messages ---------------------------------------
def install_reader(connection_class) -> None:
    """Replace ``connection_class.reader`` (ExaBGP's ``Connection``)."""
    compat.verify(["connection-reader", "connection-read-bytes"])
    from exabgp.bgp.message import Message
    from exabgp.reactor.network.connection import MIN_BGP_MESSAGE_LENGTH
    from exabgp.reactor.network.error import (LostConnection, NetworkError, NotConnected, NotifyError,
                                              TooSlowError, error)
    from exabgp.util.errstr import errstr

    header_len, marker = Message.HEADER_LEN, Message.MARKER
    block, fatal = error.block, error.fatal
    counts = COUNTERS

    def default_validator(length):
        return length >= MIN_BGP_MESSAGE_LENGTH

    def fill(self, buffer: bytearray) -> bool:
        """Append what the socket holds now; False if it holds nothing.
        Errors as ``Connection._reader`` raises them."""
        from exabgp.reactor.network.connection import log

        if not self.io:
            self.close()
            raise NotConnected("Trying to read on a closed TCP connection")
        try:
            data = self.io.recv(RECV_SIZE)
        except socket.timeout as exc:
            self.close()
            log.warning(lambda: f"{self.name()} {self.peer} peer is too slow", self.session())
            raise TooSlowError(f"Timeout while reading data from the network ({errstr(exc)})") from None
        except OSError as exc:
            if exc.args[0] in block:
                return False
            if exc.args[0] in fatal:
                self.close()
                raise LostConnection(f"issue reading on the socket: {errstr(exc)}") from None
            log.critical(lambda: f"{self.name()} {self.peer} undefined error reading on socket", self.session())
            raise NetworkError(f"Problem while reading data from the network ({errstr(exc)})") from None
        counts["socket_reads"] += 1
        if not data:
            self.close()
            log.warning(lambda: f"{self.name()} {self.peer} lost TCP session with peer", self.session())
            raise LostConnection("the TCP connection was closed by the remote end")
        buffer += data
        return True

    def reader(self):
        if self.defensive:  # ExaBGP's fault injection (debug.defensive) lives in the original
            yield from original(self)
            return
        buffer = self.__dict__.get("_testbed_buffer")
        if buffer is None:
            buffer = self._testbed_buffer = bytearray()
        while len(buffer) < header_len:
            if not fill(self, buffer):
                yield 0, 0, b"", b"", None
        header = bytes(buffer[:header_len])
        if not header.startswith(marker):
            del buffer[:header_len]
            yield 0, 0, header, b"", NotifyError(1, 1, "The packet received does not contain a BGP marker")
            return
        msg = header[18]
        length = unpack("!H", header[16:18])[0]
        if length < header_len or length > self.msg_size or not Message.Length.get(msg, default_validator)(length):
            del buffer[:header_len]
            report = f"{Message.CODE.name(msg)} has an invalid message length of {length}"
            yield length, 0, header, b"", NotifyError(1, 2, report)
            return
        while len(buffer) < length:
            if not fill(self, buffer):
                yield 0, 0, b"", b"", None
        body = bytes(buffer[header_len:length])
        del buffer[:length]  # a bytearray drops its head without copying the rest
        counts["messages_read"] += 1
        yield length, msg, header, body, None

    original = compat.replace("connection-reader", connection_class, reader)


# -- handover: the agent's event pipe written once per turn -------------------------
_PENDING: list = []  # DeferredPipes holding bytes


class DeferredPipe:
    """The write end of the pipe ExaBGP writes its API events to (the
    ``stdin`` of a ``ThreadAgent``): ``write`` keeps the bytes, ``flush``
    does nothing, ``flush_pending`` (before the reactor waits) writes
    them all; ``close`` writes what is left first. Writes block, as
    ExaBGP's own buffered pipe does: the agent thread reads it."""

    def __init__(self, fd: int):
        self.fd = fd
        self.pending = bytearray()
        self.closed = False

    def fileno(self) -> int:
        return self.fd

    def write(self, data: bytes) -> int:
        if self.closed:
            raise ValueError("write to closed file")
        if not self.pending:
            _PENDING.append(self)
        self.pending += data
        return len(data)

    def flush(self) -> None:
        if self.closed:
            raise ValueError("flush of closed file")

    def write_out(self) -> None:
        data, self.pending = self.pending, bytearray()
        if data:
            COUNTERS["handover_writes"] += 1
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view):]

    def close(self) -> None:
        if self.closed:
            return
        try:
            self.write_out()
        except OSError:
            pass
        finally:
            self.closed = True
            if self in _PENDING:
                _PENDING.remove(self)
            os.close(self.fd)


def flush_pending() -> None:
    """Write what every ``DeferredPipe`` holds (the reactor calls this
    before it waits). A pipe whose reader is gone loses what it held: the
    agent closed its ends as it ended, and ExaBGP learns that from its
    command pipe (``Processes.received``, ``reactor.watch_helpers``)."""
    while _PENDING:
        try:
            _PENDING.pop().write_out()
        except OSError:
            pass
