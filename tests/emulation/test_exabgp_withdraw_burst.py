"""ExaBGP 5.0.15 with its own Adj-RIB-Out (``adj-rib-out true``, its
default) can send a bare withdrawal before an announcement of the same
prefix queued just before it, leaving the peer with a route that was
withdrawn (found by the soak test). The agent therefore sends withdrawals
carrying the attributes last announced. Our speakers now keep no
Adj-RIB-Out of their own, and the bare form has not been lost since; the
agent keeps the safe form. This replays such a burst through a real
speaker both ways: the agent's form must lose none; what the bare form
loses is reported."""

import time

import pytest

from testbed.agent.codec import command_for
from testbed.bgp import Announce, Route, Withdraw
from testbed.lab.lab import Lab
from testbed.testing.wait import wait_until

pytestmark = pytest.mark.emulation


def burst(lab, base: int, carry: bool) -> tuple[list[str], str]:
    """Sends the burst from A to T; returns the prefixes it withdraws and
    the one it leaves announced."""
    a = lab.plan.routers["A"]
    t = a.neighbor("T")
    prefixes = [f"203.0.{base + i}.0/24" for i in range(20)]
    kept = f"203.0.{base + 100}.0/24"
    lines = []
    for i, prefix in enumerate(prefixes):
        q = Route(prefix=prefix, next_hop=t.local_address, as_path=(a.asn, 64999))
        other = Route(prefix=kept, next_hop=t.local_address, as_path=(a.asn, 65000 + i))
        lines += [command_for(Announce(t.address, q)), command_for(Announce(t.address, other)),
                  command_for(Withdraw(t.address, prefix), q if carry else None)]
    lab.clients["A"].request("exabgp", lines=lines)
    return prefixes, kept


def still_announced(lab, sent: tuple[list[str], str], quiet: float = 0.4, timeout: float = 5.0):
    """What T kept of a burst's withdrawn prefixes once the burst drained:
    T holds the route the burst leaves announced, and its Adj-RIB-In from A
    has not changed for ``quiet`` seconds."""
    prefixes, kept = sent
    address = lab.plan.routers["T"].neighbor("A").address
    held, since = None, time.monotonic()

    def drained() -> bool:
        nonlocal held, since
        now = lab.snapshot("T")["adj_rib_in"][address]
        if now != held:
            held, since = now, time.monotonic()
            return False
        return kept in held and time.monotonic() - since >= quiet

    wait_until(drained, timeout, f"T to hold {kept} from A, its Adj-RIB-In from A unchanged for {quiet} s",
               interval=0.1, explain=lambda: f"T's Adj-RIB-In from A holds {len(held or ())} prefixes")
    assert kept in held, f"T never received the burst's {kept}"
    return sorted(p for p in prefixes if p in held)


def test_withdrawals_in_a_burst_are_not_lost(report):
    with Lab("triangle") as lab:
        bare = still_announced(lab, burst(lab, 0, carry=False))
        carried = still_announced(lab, burst(lab, 30, carry=True))
        assert carried == [], f"withdrawals carrying attributes were lost: {carried}"
        # The ExaBGP bug itself, timing-dependent: reported, not judged.
        report("bare withdrawals lost in a burst of 20", len(bare))
