"""How the route agent and its ExaBGP talk: the transport interface, and
its text/JSON implementation over two pipes.

The agent (``testbed.agent.agent``) reads what ExaBGP says with
``read()``: whole lines of ExaBGP's API (bytes; JSON events, which the
agent decodes with ``testbed.agent.codec``) and ``Received`` objects (the
routes of an UPDATE handed over without JSON). It tells ExaBGP what to do
with ``send(items)``: ``(action, announced)`` pairs (an engine Announce,
Withdraw or Teardown, and the route last announced for that neighbor and
prefix, if any) and raw command lines (``str``), in order.

``TextTransport`` is the plain way: JSON events in on a pipe, text
commands out (``codec.command_for``), used by the exec process model and
by a zygote speaker with ``TESTBED_TRANSPORT=text``. The zygote's
in-process transport (``testbed.speaker.inprocess.InProcessTransport``)
implements the same interface with objects.
"""

from __future__ import annotations

import os
import time
from collections import deque
from typing import NamedTuple, Protocol

from testbed.agent.codec import command_for
from testbed.jsonlines import Lines


class Received(NamedTuple):
    """The routes of one UPDATE from ``peer``, as objects (what
    ``codec.parse_update`` makes of its JSON)."""

    peer: str
    announced: list
    withdrawn: list


class Transport(Protocol):
    """The agent's link to its ExaBGP."""

    input_fd: int | None
    """The descriptor the agent's event loop waits on for ``read``."""

    def read(self) -> list | None:
        """What ExaBGP said (lines of its API as bytes, ``Received``
        objects), in order; None once ExaBGP closed the pipe."""

    def send(self, items: list) -> None:
        """``(action, announced)`` pairs and raw command lines, in order."""

    def backlog(self) -> int | None:
        """Output not yet written (the loop then waits for ``output_fd``
        to take it, and calls ``flush``); None: writes never wait."""

    def flush(self) -> None:
        """Write what the output can take now."""

    def stats(self) -> dict:
        """Counters of the transport, for the agent's summary."""


class TextTransport:
    """ExaBGP's own API: JSON events read from ``input_fd``, text commands
    written to ``output`` (a text stream; a ``NonBlockingOutput`` for the
    exec model)."""

    def __init__(self, output, input_fd: int | None = None):
        self.output = output
        self.input_fd = input_fd
        self.output_fd = getattr(output, "fd", None)
        self._reader = BurstReader(input_fd) if input_fd is not None else None
        self._lines = Lines()

    def read(self) -> list | None:
        chunk = self._reader.read()
        if not chunk:
            return None
        return self._lines.feed(chunk)

    def send(self, items: list) -> None:
        if items:
            self.output.write("".join(f"{item if type(item) is str else command_for(*item)}\n"
                                      for item in items))
            self.output.flush()

    def backlog(self) -> int | None:
        pending = getattr(self.output, "pending", None)
        return None if pending is None else len(pending)

    def flush(self) -> None:
        self.output.flush()

    def stats(self) -> dict:
        return {}


class NonBlockingOutput:
    """The agent's command pipe to ExaBGP in the exec model, written
    without ever blocking. ExaBGP blocks writing events to the agent when
    that pipe is full; an agent blocked writing commands to ExaBGP's full
    pipe at the same time is a deadlock (seen on Tier-1s of a 300-AS lab).
    What the pipe cannot take now stays in ``pending``, which the event loop
    sends when the pipe has room, reading events meanwhile."""

    def __init__(self, fd: int):
        self.fd = fd
        os.set_blocking(fd, False)
        self.pending = bytearray()

    def write(self, text: str) -> int:
        self.pending += text.encode()
        self.flush()
        return len(text)

    def flush(self) -> None:
        while self.pending:
            try:
                sent = os.write(self.fd, self.pending)
            except BlockingIOError:
                return
            del self.pending[:sent]


class BurstReader:
    """Reads the agent's events from ExaBGP, letting a burst gather first.

    ExaBGP hands over every UPDATE on its own, and a converging router
    receives them in bursts, one every few hundred microseconds. Woken for
    each, the agent pays its fixed costs (a wake-up, a read, deciding, a
    kernel batch, and in a zygote speaker taking the interpreter lock from
    ExaBGP's thread and giving it back) once per UPDATE: measured on one
    router taking 10,000 one-route UPDATEs, 116 us of the agent's CPU per
    UPDATE and 183 us of its ExaBGP's. Once the last ``reads`` reads all
    fell within ``burst`` seconds, the next one waits ``gather`` seconds
    for more of the burst to arrive: 35 and 140 us. A short run of events
    (the few UPDATEs of a withdrawal passing through) is read as it comes,
    so it is not delayed hop after hop. ``TESTBED_AGENT_GATHER`` sets
    ``gather`` in seconds (0: read each event as it comes, for an A/B)."""

    GATHER = float(os.environ.get("TESTBED_AGENT_GATHER", "0.002"))
    BURST = 0.02
    READS = 4

    def __init__(self, fd: int, gather: float = GATHER, burst: float = BURST, reads: int = READS,
                 clock=time.monotonic, sleep=time.sleep):
        self.fd = fd
        self.gather, self.burst = gather, burst
        self._clock, self._sleep = clock, sleep
        self._recent: deque = deque(maxlen=reads)  # when the last reads were made

    def read(self) -> bytes:
        recent = self._recent
        if self.gather and len(recent) == recent.maxlen and self._clock() - recent[0] < self.burst:
            self._sleep(self.gather)
        chunk = os.read(self.fd, 1 << 20)
        recent.append(self._clock())
        return chunk
