"""The agent's half of the in-process transport of a zygote speaker.

In the zygote model the route agent is a thread of its router's ExaBGP
process. Through ExaBGP's API they would still talk as two processes do:
ExaBGP encoding every received UPDATE as JSON for the agent to decode, the
agent writing one text command per route and neighbor for ExaBGP's parser
to read back. ``InProcessTransport`` implements the agent's ``Transport``
(``testbed.agent.transport``) with objects instead, through the same two
pipes and in the same order:

- outbound: an action the plain command grammar covers becomes a
  ``RouteChange`` (``testbed.agent.codec.route_change``), queued on the
  ``Channel`` in batches, one marker line (``MARK_OUT``) per batch down the
  command pipe; ExaBGP's side (``testbed.speaker.handover``) injects the
  batch when its API reads the marker. Raw command lines are read with
  ``codec.parse_line`` the same way.
- inbound: a marker line (``MARK_IN``) in the event pipe stands for the
  routes of one UPDATE that ExaBGP's side queued on the channel; ``read``
  gives them to the agent as a ``Received``.

Anything else (a command with other attributes, an UPDATE with
communities, session events) goes the text/JSON way unchanged: this is a
shortcut for what it fully understands, never a second meaning.
``TESTBED_TRANSPORT=text`` turns it off.
"""

from __future__ import annotations

import os
from collections import deque

from testbed.agent.codec import command_for, parse_line, route_change
from testbed.agent.transport import BurstReader
from testbed.jsonlines import Lines

MARK_OUT = "testbed-inject"   # agent -> ExaBGP: take the next queued batch of changes
MARK_IN = "testbed-update"    # ExaBGP -> agent: take the next queued UPDATE
_MARK_IN = MARK_IN.encode()


def enabled() -> bool:
    return os.environ.get("TESTBED_TRANSPORT", "inprocess") != "text"


class Channel:
    """The two queues beside one speaker's pipes."""

    def __init__(self):
        self.outbound: deque = deque()   # batches of RouteChange
        self.inbound: deque = deque()    # Received (peer address, announced, withdrawn)


class InProcessTransport:
    """The agent's ``Transport`` in a zygote speaker: events from
    ``input_fd`` (markers taken from the channel), commands to
    ``output_fd`` (route changes queued behind one marker per batch)."""

    def __init__(self, channel: Channel, input_fd: int | None, output_fd: int, stats=dict):
        self.channel = channel
        self.stats = stats  # counters of ExaBGP's side (handover.queue_stats), for the summary
        self.input_fd = input_fd
        self.output_fd = output_fd
        self._reader = BurstReader(input_fd) if input_fd is not None else None
        self._lines = Lines()

    def read(self) -> list | None:
        chunk = self._reader.read()
        if not chunk:
            return None
        return self.items(self._lines.feed(chunk))

    def items(self, lines: list[bytes]) -> list:
        """The lines of ExaBGP's API, markers replaced by what they stand for."""
        popleft = self.channel.inbound.popleft
        return [popleft() if line == _MARK_IN or line.strip() == _MARK_IN else line for line in lines]

    @staticmethod
    def change(item):
        """What goes to ExaBGP for one item of ``send``: a ``RouteChange``,
        a list of them (a raw ``announce attributes`` line), or a line."""
        if type(item) is str:
            parsed = parse_line(item) if item.startswith("neighbor ") else None
            return item if parsed is None else parsed
        return route_change(item[0], item[1]) or command_for(item[0], item[1])

    def send(self, items: list) -> None:
        """Route changes and command lines, in order: each run of changes
        becomes one queued batch behind one marker line."""
        out: list[str] = []
        batch: list = []
        change_of = self.change
        for item in items:
            change = change_of(item)
            if type(change) is str:
                if not change:
                    continue
                if batch:
                    self.channel.outbound.append(batch)
                    out.append(MARK_OUT)
                    batch = []
                out.append(change)
            elif type(change) is list:
                batch.extend(change)
            else:
                batch.append(change)
        if batch:
            self.channel.outbound.append(batch)
            out.append(MARK_OUT)
        if out:
            data = ("\n".join(out) + "\n").encode()
            while data:
                data = data[os.write(self.output_fd, data):]

    def backlog(self) -> None:
        return None  # blocking writes: ExaBGP's side reads its pipe in the same process

    def flush(self) -> None:
        pass
