"""The route agent's MRAI-like hold of announcements (``Agent.hold`` and
``Agent.release``), with the clock passed in: which announcements wait,
which path is finally sent, and that withdrawals are never delayed."""

from __future__ import annotations

import io

from testbed.agent.agent import Agent
from testbed.bgp import Announce, Origin, Route, Withdraw

ASN = 65002
PROVIDER, CUSTOMER, IBGP = "10.0.0.1", "10.0.1.2", "10.255.0.9"
PFX = "198.51.100.0/24"


NEIGHBORS = [
    {"name": "P", "address": PROVIDER, "asn": 65001, "relationship": "provider",
     "router_id": "10.255.0.1", "local_address": "10.0.0.2"},
    {"name": "C", "address": CUSTOMER, "asn": 65003, "relationship": "customer",
     "router_id": "10.255.0.3", "local_address": "10.0.1.1"},
    {"name": "I", "address": IBGP, "asn": ASN, "relationship": "internal",
     "router_id": "10.255.0.9", "local_address": "10.255.0.2"},
]


def agent(mrai: float, neighbors=NEIGHBORS, **config) -> tuple[Agent, io.StringIO]:
    """AS65002's router R with a provider, a customer and an iBGP peer
    (``neighbors``), sending its commands to a string; ``config`` adds to
    its agent configuration."""
    out = io.StringIO()
    config = {"router": "R", "asn": ASN, "router_id": "10.255.0.2", "prefixes": [],
              "control_socket": "/nonexistent", "neighbors": neighbors, "mrai": mrai, **config}
    return Agent(config, out=out), out


def route(*path: int) -> Route:
    return Route(prefix=PFX, next_hop="10.0.1.1", as_path=path, origin=Origin.IGP)


def sent(out: io.StringIO) -> list[str]:
    lines = out.getvalue().splitlines()
    out.seek(0)
    out.truncate()
    return lines


def test_only_the_last_path_of_the_window_is_announced():
    a, out = agent(0.05)
    assert a.hold(Announce(CUSTOMER, route(65002, 65001, 64999)), now=10.0)
    assert a.hold(Announce(CUSTOMER, route(65002, 64999)), now=10.02)
    assert abs(a.release(now=10.03) - 0.02) < 1e-9
    assert sent(out) == []
    assert a.release(now=10.05) is None
    lines = sent(out)
    assert len(lines) == 1 and "as-path [ 65002 64999 ]" in lines[0] and lines[0].startswith(
        f"neighbor {CUSTOMER} announce route {PFX}")


def test_a_held_route_is_sent_after_the_window_of_its_first_change():
    """The window is not extended by later changes: a route that keeps
    changing is still sent ``mrai`` after it first changed."""
    a, out = agent(0.05)
    for step in range(5):
        a.hold(Announce(CUSTOMER, route(65002, 64000 + step)), now=10.0 + 0.01 * step)
    a.release(now=10.05)
    assert ["as-path [ 65002 64004 ]" in line for line in sent(out)] == [True]


def test_withdrawal_goes_out_at_once_and_cancels_a_held_announcement():
    a, out = agent(0.05)
    a._announced[(CUSTOMER, PFX)] = route(65002, 64999)   # the neighbor has a route
    a.hold(Announce(CUSTOMER, route(65002, 65001, 64999)), now=10.0)
    assert not a.hold(Withdraw(CUSTOMER, PFX), now=10.01)  # sent now, by flush
    assert a.release(now=10.1) is None
    assert sent(out) == []  # the held announcement was dropped


def test_withdrawal_of_a_route_never_announced_is_not_sent():
    a, _ = agent(0.05)
    a.hold(Announce(CUSTOMER, route(65002, 64999)), now=10.0)
    assert a.hold(Withdraw(CUSTOMER, PFX), now=10.01)  # nothing to take back


def test_ibgp_and_mrai_zero_are_not_held():
    a, _ = agent(0.05)
    assert not a.hold(Announce(IBGP, route(64999)), now=10.0)
    b, _ = agent(0.0)
    assert not b.hold(Announce(CUSTOMER, route(65002, 64999)), now=10.0)


def test_a_session_going_down_drops_what_was_held_for_it():
    a, out = agent(0.05)
    a.hold(Announce(CUSTOMER, route(65002, 64999)), now=10.0)
    a.hold(Announce(PROVIDER, route(65002, 64999)), now=10.0)
    a.drop_held(CUSTOMER)
    a.release(now=10.1)
    lines = sent(out)
    assert len(lines) == 1 and lines[0].startswith(f"neighbor {PROVIDER} announce")


def test_flush_holds_announcements_but_installs_kernel_routes_at_once():
    class Kernel:
        def __init__(self):
            self.ops = []

        def apply(self, operations):
            self.ops += operations
            return {}

    a, out = agent(0.05)
    a.kernel = Kernel()
    from testbed.bgp import InstallRoute

    a.apply([InstallRoute(PFX, "10.0.1.2"), Announce(PROVIDER, route(65002, 65003))])
    assert a.kernel.ops == [("replace", PFX, "10.0.1.2")]
    assert sent(out) == []
    assert a.schedule.held


def test_commands_wait_when_the_pipe_to_exabgp_is_full():
    """The exec-model agent never blocks on its command pipe (ExaBGP may be
    blocked writing events to it): what does not fit waits in ``pending``."""
    import os

    from testbed.agent.transport import NonBlockingOutput

    read, write = os.pipe()
    try:
        out = NonBlockingOutput(write)
        line = "neighbor 10.0.0.1 announce route 192.0.2.0/24 next-hop self\n"
        for _ in range(5000):  # far more than a pipe holds
            out.write(line)
        assert out.pending  # did not block
        received = b""
        while out.pending or len(received) < 5000 * len(line):
            received += os.read(read, 1 << 16)
            out.flush()
        assert received == line.encode() * 5000
    finally:
        os.close(read)
        os.close(write)


def test_a_sustained_burst_of_events_is_read_together_and_a_short_run_as_it_comes():
    import os

    from testbed.agent.transport import BurstReader

    read, write = os.pipe()
    now = [100.0]
    slept = []

    def sleep(seconds):  # while the reader waits, more of the burst arrives
        slept.append(seconds)
        now[0] += seconds
        os.write(write, b"more\nand more\n")

    def event(line, after=0.001):
        now[0] += after
        os.write(write, line)
        return reader.read()

    try:
        reader = BurstReader(read, gather=0.002, burst=0.02, reads=3, clock=lambda: now[0], sleep=sleep)
        # a short run: three events close together, each read as it comes
        assert [event(b"1\n"), event(b"2\n"), event(b"3\n")] == [b"1\n", b"2\n", b"3\n"]
        assert slept == []
        # the run goes on: the next read waits for the rest of the burst
        assert event(b"4\n") == b"4\nmore\nand more\n" and slept == [0.002]
        # after a quiet spell, an event is read at once again
        assert event(b"lone\n", after=0.5) == b"lone\n" and slept == [0.002]
    finally:
        os.close(read)
        os.close(write)
