"""A zygote speaker's per-message batching (``testbed.speaker.batching``):
its session reader gives what ExaBGP's gives, from fewer reads; the agent's
event pipe is written once per turn with the same bytes in the same
order; a busy peer gets several steps per turn of the reactor."""

from __future__ import annotations

import os
import random
import socket
import struct

import pytest
from exabgp.reactor.network.connection import Connection

from testbed.speaker import batching

MARKER = b"\xff" * 16


def message(kind: int, body: bytes = b"", length: int | None = None, marker: bytes = MARKER) -> bytes:
    return marker + struct.pack("!HB", 19 + len(body) if length is None else length, kind) + body


KEEPALIVE = message(4)
UPDATES = [message(2, bytes([0, 0, 0, 4]) + bytes(range(i, i + 3 * i))) for i in range(1, 6)]
STREAMS = {
    "messages": KEEPALIVE + b"".join(UPDATES) + KEEPALIVE,
    "bad marker": KEEPALIVE + message(4, marker=b"\xfe" * 16),
    "length below a header": UPDATES[0] + message(2, length=18),
    "length above the maximum": UPDATES[1] + message(2, length=4097),
    "keepalive with a body": message(4, b"\x00"),
    "cut in a body": UPDATES[2] + UPDATES[3][:25],
    "cut in a header": UPDATES[4] + KEEPALIVE[:10],
}


def chunkings(data: bytes) -> dict[str, list[bytes]]:
    rng = random.Random(len(data))
    cuts, at = [], 0
    while at < len(data):
        step = rng.randint(1, 40)
        cuts.append(data[at:at + step])
        at += step
    return {"at once": [data], "byte by byte": [data[i:i + 1] for i in range(len(data))], "random": cuts}


@pytest.fixture(autouse=True)
def exabgp_log(monkeypatch):
    """ExaBGP's logger as a speaker sets it up, into a list."""
    from exabgp.logger.option import option

    lines: list[str] = []
    sink = staticmethod(lines.append)
    monkeypatch.setattr(option, "logger", type("Sink", (), {level: sink for level in (
        "debug", "info", "warning", "error", "critical", "fatal")})(), raising=False)
    monkeypatch.setattr(option, "formater", lambda line, source, level, timestamp: f"{level} {line}",
                        raising=False)
    monkeypatch.setattr(option, "enabled", {}, raising=False)
    return lines


@pytest.fixture(scope="module")
def ours():
    class Ours(Connection):
        pass

    batching.install_reader(Ours)
    return Ours


def drive(cls, chunks: list[bytes]) -> list:
    """What ``read_message`` would see: messages (and errors) as ``cls``'s
    reader yields them while ``chunks`` arrive one by one, then the end of
    the stream."""
    near, far = socket.socketpair()
    near.setblocking(False)
    connection = cls(1, "192.0.2.1", "192.0.2.2")
    connection.io = near
    seen, reader = [], None
    try:
        for chunk in chunks + [None]:
            if chunk is None:
                far.close()
            else:
                far.sendall(chunk)
            while True:
                if reader is None:
                    reader = connection.reader()
                try:
                    length, kind, header, body, notify = next(reader)
                except StopIteration:
                    reader = None
                    continue
                except Exception as exc:  # noqa: BLE001 - what the reader raises is what we compare
                    seen.append(("raised", type(exc).__name__, str(exc)))
                    return seen
                if not length and not header and notify is None:
                    break  # nothing more for now
                seen.append((length, kind, header.hex(), body.hex(), None if notify is None else str(notify)))
                if notify is not None:
                    return seen
        return seen
    finally:
        far.close()
        near.close()


@pytest.mark.parametrize("stream", sorted(STREAMS))
def test_the_reader_yields_what_exabgps_yields(ours, stream):
    for how, chunks in chunkings(STREAMS[stream]).items():
        stock = drive(Connection, chunks)
        assert stock, (stream, how)
        assert drive(ours, chunks) == stock, (stream, how)


def test_a_burst_is_read_in_one_recv(ours):
    before = dict(batching.COUNTERS)
    seen = drive(ours, [STREAMS["messages"]])
    assert [kind for _, kind, *_ in seen[:-1]] == [4, 2, 2, 2, 2, 2, 4]
    assert seen[-1][:2] == ("raised", "LostConnection")
    assert batching.COUNTERS["messages_read"] - before["messages_read"] == 7
    assert batching.COUNTERS["socket_reads"] - before["socket_reads"] == 2  # the burst, then the end of file


def test_defensive_mode_takes_exabgps_reader(ours):
    """ExaBGP's fault injection (``debug.defensive``) lives in its own
    reader: with it on, ours hands over to it (which counts nothing)."""
    near, far = socket.socketpair()
    near.setblocking(False)
    connection = ours(1, "192.0.2.1", "192.0.2.2")
    connection.io, connection.defensive = near, True
    far.sendall(KEEPALIVE)
    before = dict(batching.COUNTERS)
    try:
        for _ in range(1000):  # its injected EAGAINs yield nothing, a third of the time each
            reader = connection.reader()
            found = [item for item in reader if item[0]]
            if found:
                break
        assert found == [(19, 4, KEEPALIVE, b"", None)]
        assert batching.COUNTERS == before
    finally:
        near.close()
        far.close()


def test_the_event_pipe_is_written_once_per_turn():
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    pipe = batching.DeferredPipe(write_end)
    writes = batching.COUNTERS["handover_writes"]
    try:
        for i in range(5):
            pipe.write(f"line {i}\n".encode())
            pipe.flush()
        with pytest.raises(BlockingIOError):
            os.read(read_end, 100)  # nothing written yet
        batching.flush_pending()
        assert os.read(read_end, 100) == b"".join(f"line {i}\n".encode() for i in range(5))
        assert batching.COUNTERS["handover_writes"] == writes + 1
        batching.flush_pending()  # nothing left: no write
        assert batching.COUNTERS["handover_writes"] == writes + 1
        pipe.write(b"last\n")
        pipe.close()  # what is left goes out first
        assert os.read(read_end, 100) == b"last\n"
        assert os.read(read_end, 100) == b""  # and the pipe is closed
        with pytest.raises(ValueError):
            pipe.write(b"late\n")
    finally:
        os.close(read_end)


def test_a_pipe_whose_reader_is_gone_loses_its_bytes_quietly():
    read_end, write_end = os.pipe()
    pipe = batching.DeferredPipe(write_end)
    pipe.write(b"event\n")
    os.close(read_end)
    batching.flush_pending()  # EPIPE: ExaBGP hears of the agent's end from its command pipe
    assert not batching._PENDING
    pipe.close()


@pytest.mark.parametrize("value, on", [
    (None, {"recv", "drain", "handover"}), ("1", {"recv", "drain", "handover"}), ("0", set()),
    ("drain,recv", {"drain", "recv"}), ("handover", {"handover"}),
])
def test_each_can_be_turned_off(monkeypatch, value, on):
    if value is None:
        monkeypatch.delenv("TESTBED_BATCHING", raising=False)
    else:
        monkeypatch.setenv("TESTBED_BATCHING", value)
    assert {feature for feature in batching.FEATURES if batching.enabled(feature)} == on


@pytest.fixture(scope="module")
def draining_peer():
    """A stand-in of ExaBGP's ``Peer`` whose ``run`` the reactor's patch
    wraps with a drain of 4 steps (``testbed.speaker.reactor.install``)."""
    from types import SimpleNamespace

    from exabgp.bgp.fsm import FSM

    from testbed.speaker import reactor

    class Reactor:
        def _wait_for_io(self, sleeptime):
            yield from ()

    class Peer:
        def __init__(self, actions, state=FSM.ESTABLISHED):
            self.actions = iter(actions)
            self.fsm = SimpleNamespace(state=state)
            self.steps = 0

        def run(self):
            self.steps += 1
            return next(self.actions)

    reactor.install(Reactor, Peer, no_wait_when_queued=False, turns=False, drain=4)
    return Peer


@pytest.mark.parametrize("why, actions, state, steps, action", [
    ("a busy peer gets 4 steps", ["NOW"] * 10, "ESTABLISHED", 4, "NOW"),
    ("until it has nothing to do", ["NOW", "NOW", "LATER", "NOW"], "ESTABLISHED", 3, "LATER"),
    ("or closes", ["NOW", "CLOSE", "NOW"], "ESTABLISHED", 2, "CLOSE"),
    ("an idle one one step", ["LATER", "NOW"], "ESTABLISHED", 1, "LATER"),
    ("a peer not yet Established one step", ["NOW"] * 3, "OPENCONFIRM", 1, "NOW"),
])
def test_a_busy_established_peer_gets_several_steps_per_turn(draining_peer, why, actions, state, steps, action):
    from exabgp.bgp.fsm import FSM
    from exabgp.reactor.peer import ACTION

    peer = draining_peer([getattr(ACTION, a) for a in actions], getattr(FSM, state))
    before = batching.COUNTERS["peer_steps"]
    assert peer.run() == getattr(ACTION, action), why
    assert peer.steps == steps, why
    assert peer._testbed_action == getattr(ACTION, action)
    assert batching.COUNTERS["peer_steps"] - before == steps
