"""How a zygote speaker's ExaBGP reactor waits, whom it gives turns, and
what it does when it loses its agent.

ExaBGP's loop (``Reactor.run``) waits for I/O in ``Reactor._wait_for_io``,
then gives every peer a turn (``Reactor.active_peers``, ``Peer.run``).
``install`` wraps ``_wait_for_io`` once, with what each part of the
speaker needs of it:

- idle sleep (always): an idle speaker (every session Established or
  passively waiting for its neighbor, ``can_sleep``) sleeps until the
  next second instead of waking every ``exabgp_reactor_speed / 100``
  seconds; signals wake it through a wake-up pipe, incoming connections
  through an epoll of its listening sockets (``watch_listeners``);
- ``no_wait_when_queued`` (the in-process transport,
  ``testbed.speaker.handover``): no wait while ExaBGP's async queue holds
  work (its API runs 50 steps per turn, then waited for its idle timeout:
  ~1,000 commands a second at most);
- ``turns`` (with the speed-ups): the descriptors each wait returned, so
  that within a second only the peers with something to do get a turn
  (``needs_turn``).

``watch_helpers`` wraps ``Processes._handle_problem``: a speaker that loses
its API process while not shutting down shuts down and reports it. Every
patch goes through ``testbed.speaker.compat``.
"""

from __future__ import annotations

import os
import signal
import sys
import time

from testbed.speaker import compat

IDLE_MARGIN = 0.005  # seconds after a second boundary an idle speaker wakes up


def install(reactor_class, peer_class, no_wait_when_queued: bool, turns: bool, drain: int = 0,
            handover: bool = False) -> None:
    """Wrap the reactor's wait (and, with ``turns``, its choice of peers;
    with ``drain``, up to that many steps of a busy Established peer per
    turn; with ``handover``, the agent's events written once per turn:
    ``testbed.speaker.batching``)."""
    import select

    from exabgp.bgp.fsm import FSM
    from exabgp.reactor.peer import ACTION

    from testbed.speaker.batching import COUNTERS, flush_pending

    established, later, again = FSM.ESTABLISHED, ACTION.LATER, ACTION.NOW
    state = {}

    def _wait_for_io(self, sleeptime):
        COUNTERS["reactor_turns"] += 1
        if handover:
            flush_pending()  # what this turn told the agent, in one write
        # Idle sleep: ExaBGP's loop waits in poll() on its sessions and API
        # pipe, and between events wakes every 50 ms (at the lab's speed 5)
        # to give every peer a turn, which is what an idle speaker spends
        # its CPU on. Its keepalive and hold timers count whole seconds
        # (int(time.time()), exabgp.bgp.timer), so once every session is
        # Established (or passively waits for a connection, ``can_sleep``)
        # and no API work is queued, a turn just after each second boundary
        # sees every timer when the 50 ms turns would. Messages, API
        # commands, signals (through a wake-up pipe: poll() is otherwise
        # resumed after a signal handler runs) and incoming connections
        # (``watch_listeners``) still wake it at once; any other session not
        # Established keeps the short turns, which drive its connection
        # attempts and OPENs.
        if no_wait_when_queued and sleeptime and self.asynchronous._async:
            sleeptime = 0
        ready = None
        if turns:
            self._testbed_ready = ready = set()
        wake = state.get("wake")
        if wake is None:
            wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
            self._poller.register(wake_r, select.POLLIN)
            state["wake"] = wake = wake_r
        listening = watch_listeners(self)
        if sleeptime and self._peers and not self.asynchronous._async and not self.signal.received \
                and all(can_sleep(peer, established) for peer in self._peers.values()):
            now = time.time()
            sleeptime = max(sleeptime, int((1.0 - now % 1.0 + IDLE_MARGIN) * 1000))
        for fd in wait_for_io(self, sleeptime):
            if fd == listening:  # a connection waits: the loop's next turn accepts it
                continue
            if fd == wake:
                try:
                    while os.read(wake, 256):
                        pass
                except BlockingIOError:
                    pass
                continue
            if ready is not None:
                ready.add(fd)
            yield fd

    wait_for_io = compat.replace("reactor-wait", reactor_class, _wait_for_io)
    if not turns and not drain:
        return

    # Turns: ExaBGP's loop gives every peer a turn whenever it wakes up,
    # whatever woke it: a turn resumes the peer's generator, which tries to
    # read, looks at its timers and its Adj-RIB-Out, and yields. A router
    # with 200 sessions resumed 200 generators for every UPDATE one of them
    # received. The timers count whole seconds, so a turn for every peer in
    # each new second sees them whenever they can change; within a second
    # an Established peer needs one only if ``needs_turn``.
    #
    # Drain: a peer's turn reads one message, or sends up to 25 UPDATEs,
    # and ends with ``ACTION.NOW`` if there may be more; the loop then goes
    # round its listener, its peers, its API and its async queue and polls
    # before the next. An Established peer gets up to ``drain`` steps in
    # one turn while it says NOW (the steps the loop would have given it
    # in the next turns, with the round between them skipped).
    def peer_run(self):
        action = run(self)
        if drain:
            steps = 1
            while action == again and steps < drain and self.fsm.state == established:
                action = run(self)
                steps += 1
            COUNTERS["peer_steps"] += steps
        self._testbed_action = action
        return action

    def reactor_active_peers(self):
        peers = active_peers(self)
        second = int(time.time())
        if second != getattr(self, "_testbed_second", None):
            self._testbed_second = second
            return peers
        ready = getattr(self, "_testbed_ready", ())
        table = self._peers
        return {key for key in peers if needs_turn(table[key], ready, established, later)}

    run = compat.replace("peer-run", peer_class, peer_run)
    if turns:
        active_peers = compat.replace("reactor-active-peers", reactor_class, reactor_active_peers)


def can_sleep(peer, established) -> bool:
    """Whether a peer lets an idle speaker sleep until the next second: it
    is Established, or it is passive and waits for its neighbor to connect
    (ExaBGP gives such a peer no turn at all, ``Reactor.active_peers``;
    the connection wakes the speaker through ``watch_listeners``). Half a
    lab's sessions wait so while the speakers start one by one: at 1,000
    ASes that waiting, 20 wake-ups a second, took most of the speakers'
    CPU before routes flowed."""
    if peer.fsm.state == established:
        return True
    return bool(peer.neighbor["passive"]) and not peer.proto and not peer.stopping()


def watch_listeners(reactor) -> int:
    """Keep an epoll of the reactor's listening sockets in its poller, so
    that an incoming connection wakes the loop (ExaBGP only tries to
    accept on each turn). The epoll is ours: it is unregistered before it
    is closed, and a new one made whenever the listener's sockets change
    (a reload); a closed socket leaves it by itself. Returns its descriptor."""
    import select

    listener = reactor.listener
    sockets = tuple(listener._sockets) if listener.serving else ()
    watched = reactor.__dict__.get("_testbed_listening")
    if watched is not None and watched[0] == sockets:
        return watched[2]
    if watched is not None:
        reactor._poller.unregister(watched[2])
        watched[1].close()
    poller = select.epoll()
    for sock in sockets:
        if sock.fileno() >= 0:
            poller.register(sock.fileno(), select.EPOLLIN)
    reactor._poller.register(poller.fileno(), select.POLLIN)
    reactor._testbed_listening = (sockets, poller, poller.fileno())
    return poller.fileno()


def needs_turn(peer, ready, established, later) -> bool:
    """Whether an ExaBGP peer needs a turn of the loop before the next
    second: it is not Established (its connection attempts and OPENs run
    on turns), its last turn did not end with ``ACTION.LATER`` (nothing
    more to do for now; ``ACTION.NOW``: more to read or write),
    its socket is readable (``ready``: the file descriptors the last poll
    returned), it is told to tear down or take a new configuration, or
    something waits to be sent (Adj-RIB-Out changes, a resend, operational
    messages, route refreshes, EORs)."""
    if peer.fsm.state != established or getattr(peer, "_testbed_action", None) != later:
        return True
    if peer._teardown is not None or peer._neighbor is not None or peer.socket() in ready:
        return True
    neighbor = peer.neighbor
    return bool(neighbor.rib.outgoing.pending() or neighbor.messages or neighbor.refresh
                or neighbor.eor)


class Lost:
    """The API process this speaker lost while it ran, if any."""

    process: str | None = None


def watch_helpers(processes_class) -> None:
    """If ExaBGP loses its API process while it is not shutting down, shut
    the speaker down (SIGTERM: it closes its sessions cleanly) and make it
    exit with status 1 (``Lost.process`` says which). ``Processes._handle_problem``
    is where ExaBGP learns that a helper's pipe closed or that it exited;
    ``silence`` is set once ExaBGP itself is terminating its helpers.
    Setting it here too matters: ExaBGP forgets the lost helper but still
    tells it about every session going down during the shutdown, and that
    write raises KeyError (processes.py ``write``) and aborts the shutdown
    half-way."""
    def _handle_problem(self, process):
        if process in self._process and not self.silence and Lost.process is None:
            Lost.process = process
            self.silence = True
            sys.stderr.write(f"testbed.speaker.zygote: API process {process} ended on its own: "
                             "shutting the speaker down\n")
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, process)

    original = compat.replace("helper-lost", processes_class, _handle_problem)
