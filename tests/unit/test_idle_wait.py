"""When an idle speaker may sleep to the next second
(``testbed.speaker.reactor.can_sleep``), and that an incoming connection
still wakes it at once (``watch_listeners``), over a real listening socket
and ExaBGP's own wait."""

from __future__ import annotations

import select
import signal
import socket
import threading
import time
from types import SimpleNamespace

import pytest
from exabgp.bgp.fsm import FSM
from exabgp.reactor.loop import Reactor

from testbed.speaker import reactor


def peer(state=FSM.ESTABLISHED, passive=False, proto=None, stopping=False) -> SimpleNamespace:
    return SimpleNamespace(fsm=SimpleNamespace(state=state), neighbor={"passive": passive}, proto=proto,
                           stopping=lambda: stopping)


@pytest.mark.parametrize("why, p, sleeps", [
    ("Established", peer(), True),
    ("passive, waiting for its neighbor to connect", peer(FSM.IDLE, passive=True), True),
    ("passive, but a connection is being set up", peer(FSM.OPENSENT, passive=True, proto=object()), False),
    ("passive, but shutting down", peer(FSM.IDLE, passive=True, stopping=True), False),
    ("active: its connection attempts run on turns", peer(FSM.ACTIVE), False),
    ("active, exchanging OPENs", peer(FSM.OPENCONFIRM, proto=object()), False),
])
def test_which_peers_let_a_speaker_sleep(why, p, sleeps):
    assert reactor.can_sleep(p, FSM.ESTABLISHED) is sleeps, why


class StandIn:
    """What ``Reactor._wait_for_io`` and the wrapper read of a reactor."""

    _wait_for_io = Reactor._wait_for_io
    _prevent_spin = Reactor._prevent_spin

    def __init__(self, listening: socket.socket, peers: dict):
        self._poller = select.poll()
        self.listener = SimpleNamespace(serving=True, _sockets={listening: None})
        self._peers = peers
        self.asynchronous = SimpleNamespace(_async=[])
        self.signal = SimpleNamespace(received=None)


@pytest.fixture
def waiting_speaker():
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen()
    listening.setblocking(False)
    reactor.install(StandIn, None, no_wait_when_queued=True, turns=False)
    speaker = StandIn(listening, {"n": peer(FSM.IDLE, passive=True)})
    try:
        yield speaker, listening.getsockname()
    finally:
        signal.set_wakeup_fd(-1)
        listening.close()


def wait(speaker, ms: int = 50) -> float:
    started = time.monotonic()
    assert list(speaker._wait_for_io(ms)) == []  # the listener's wake-up is not a session's socket
    return time.monotonic() - started


def test_a_speaker_whose_sessions_wait_for_connections_sleeps_to_the_next_second(waiting_speaker):
    speaker, _ = waiting_speaker
    wait(speaker)  # to just after a second boundary
    assert wait(speaker) > 0.5  # not 50 ms
    speaker._peers["m"] = peer(FSM.ACTIVE)  # a session of its own to bring up: short turns again
    assert wait(speaker) < 0.2


def test_an_incoming_connection_wakes_a_sleeping_speaker_at_once(waiting_speaker):
    speaker, address = waiting_speaker
    wait(speaker)
    client = socket.socket()
    timer = threading.Timer(0.1, client.connect, (address,))
    timer.start()
    try:
        assert wait(speaker) < 0.4
    finally:
        timer.join()
        client.close()
