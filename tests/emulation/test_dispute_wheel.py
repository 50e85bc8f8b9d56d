"""A policy dispute wheel: routing that can never settle, caught and
reported, never waited on forever.

BAD GADGET (Griffin, Shepherd and Wilfong): O is a customer of X, Y and Z,
which peer with each other in a ring. Each of X, Y, Z is configured to
prefer the route to O through its clockwise neighbour over its own
customer route. But a peer passes on only its customer routes: X can use
Y's route only while Y uses its direct one, and so on around an odd cycle.
No assignment of best routes is stable, so the real routers change their
minds forever; the model finds no fixpoint within its bound and says so.
"""

import time

import pytest

from testbed import Topology
from testbed.errors import NoConvergence
from testbed.testing.wait import wait_until

pytestmark = pytest.mark.emulation


def build() -> Topology:
    topo = Topology("gadget", hold_time=3)
    o = topo.add_as(64500, "O")
    ring = [topo.add_as(64501 + i, name) for i, name in enumerate("XYZ")]
    for node in ring:
        topo.transit(node, o)
    for i, node in enumerate(ring):
        topo.peering(node, ring[(i + 1) % 3])
    return topo


TOPOLOGY = build()
CLOCKWISE = {"X": "Y", "Y": "Z", "Z": "X"}


def test_a_dispute_wheel_is_reported_not_waited_on(lab):
    prefix = lab.prefix_of("O")
    for node, next_one in CLOCKWISE.items():
        lab.set_policy(node, next_one, {"local_pref": 300}, wait=False)
    started = time.monotonic()
    with pytest.raises(NoConvergence, match="did not converge.*dispute wheel"):
        lab.wait_converged(timeout=30)
    assert time.monotonic() - started < 10, "the model should give up within its message bound"
    # The real routers keep changing their best route to O, as predicted.
    def bests():
        return tuple(lab.route(node, prefix)["neighbor"] for node in CLOCKWISE)
    seen = {bests()}

    def oscillating():
        seen.add(bests())
        return len(seen) >= 2

    wait_until(oscillating, 5, "the best routes to O of X, Y and Z to change", interval=0.05,
               explain=lambda: f"best routes seen: {seen}")
    assert len(seen) >= 2, f"the routers settled on {seen}: no oscillation"
    # Undo one of the preferences: the wheel is broken and routing settles.
    lab.set_policy("X", "Y", None, wait=False)
    lab.set_policy("Y", "Z", None, wait=False)
    lab.set_policy("Z", "X", None)
    for node in CLOCKWISE:
        assert lab.route(node, prefix)["as_path"] == [64500]
