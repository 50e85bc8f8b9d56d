"""Depeering with transit fallback: A and B stop peering, traffic moves to T.

The setting is the one of the settlement-free peering scenario: A and B buy
transit from T and peer directly. Now the peering ends. Perhaps the traffic
became too unbalanced for one side, or one of them wants to be paid. We end
it in three ways and measure what the customers notice:

- administratively: A shuts the BGP session down. A withdraws B's routes at
  once, and B does the same on its side, so both fall back to the routes
  they already hold from T within milliseconds and few packets are lost;
- physically: the link is cut. Nobody sends a withdrawal: each side only
  notices when the BGP hold timer (3 s here) expires, and packets sent into
  the dead link are lost until then.

- by policy: the session stays up, but A stops announcing its routes on
  it. Only B's traffic *towards A* moves to T; A still uses the direct path
  towards B, which B still announces. Routing is now asymmetric until B
  answers in kind.

Because both networks still buy transit, nobody loses reachability: the
traffic just takes the longer, paid path through T. Re-peering brings the
direct path back.
"""

import pytest

from testbed.assertions import (assert_as_path, assert_established, assert_reachable,
                                assert_session_down, assert_traceroute)

TOPOLOGY = "triangle"
RATE = 200  # probe packets per second


def test_before_depeering_traffic_uses_the_peering_link(lab, report):
    assert_as_path(lab, "A", "B", ["B"])
    assert_traceroute(lab, "A", "B", ["A", "B"])
    report("A's AS path to B", " ".join(lab.as_path("A", "B")))
    report("packets A -> B cross", " -> ".join(lab.as_traceroute("A", "B")))


def test_administrative_depeering_falls_back_to_transit(lab, report):
    with lab.stream("A", "B", rate=RATE) as stream:
        shift = lab.depeer("A", "B", how="admin")
        assert_reachable(lab, "A", "B")  # the data plane works again before we stop counting
    result = stream.result
    report("control-plane shift (admin depeer)", f"{shift:.3f}", " s")
    report("probes lost (admin depeer)", f"{len(result.lost)}/{result.sent}")
    report("longest outage (admin depeer)", f"{result.longest_outage:.3f}", " s")
    assert_session_down(lab, "A", "B")
    assert_as_path(lab, "A", "B", ["T", "B"])
    assert_as_path(lab, "B", "A", ["T", "A"])
    assert_as_path(lab, "A", "B", ["T", "B"], family=6)
    assert_traceroute(lab, "A", "B", ["A", "T", "B"])
    report("A's AS path to B now", " ".join(lab.as_path("A", "B")))
    report("packets A -> B now cross", " -> ".join(lab.as_traceroute("A", "B")))
    assert result.received > 0
    # A withdrawal, not a timer: the outage is far below the 3 s hold time.
    assert result.longest_outage < 1.0, f"admin depeering interrupted traffic for {result.longest_outage:.2f} s"


@pytest.mark.lab_state(down=[("A", "B", "admin")])
def test_repeering_restores_the_direct_path(lab, report):
    elapsed = lab.repeer("A", "B")
    report("re-peering convergence", f"{elapsed:.3f}", " s")
    assert_as_path(lab, "A", "B", ["B"])
    assert_traceroute(lab, "A", "B", ["A", "B"])
    report("A's AS path to B again", " ".join(lab.as_path("A", "B")))


def test_link_cut_is_noticed_by_the_hold_timer(lab, report):
    hold = lab.plan.hold_time
    with lab.stream("A", "B", rate=RATE) as stream:
        shift = lab.depeer("A", "B", how="link", timeout=hold * 3 + 10)
        assert_reachable(lab, "A", "B")
    result = stream.result
    report("control-plane shift (link cut)", f"{shift:.3f}", " s")
    report("probes lost (link cut)", f"{len(result.lost)}/{result.sent}")
    report("longest outage (link cut)", f"{result.longest_outage:.3f}", " s")
    assert_as_path(lab, "A", "B", ["T", "B"])
    assert_traceroute(lab, "A", "B", ["A", "T", "B"])
    # Nothing tells the routers the link is gone but the silence: traffic is
    # lost until the hold timer expires (keepalives every hold/3 s).
    assert len(result.lost) > 0
    assert hold / 3 - 0.5 <= result.longest_outage <= hold + 2.5, result
    lab.repeer("A", "B")
    assert_as_path(lab, "A", "B", ["B"])
    assert_traceroute(lab, "A", "B", ["A", "B"])
    assert_traceroute(lab, "A", "B", ["A", "B"], family=6)  # the link carries IPv6 again too


ANNOUNCE_NOTHING = {"export": [{"action": "reject"}]}


def test_policy_depeering_keeps_the_session_but_not_the_traffic(lab, report):
    with lab.stream("B", "A", rate=RATE) as stream:
        shift = lab.set_policy("A", "B", ANNOUNCE_NOTHING)
        assert_reachable(lab, "B", "A")
    result = stream.result
    report("control-plane shift (policy depeer)", f"{shift:.3f}", " s")
    report("probes lost (policy depeer)", f"{len(result.lost)}/{result.sent}")
    report("longest outage (policy depeer)", f"{result.longest_outage:.3f}", " s")
    assert_established(lab, "A", "B")  # nothing is torn down...
    assert_as_path(lab, "B", "A", ["T", "A"])  # ...but B no longer hears A's routes over it
    assert_traceroute(lab, "B", "A", ["B", "T", "A"])
    # A still hears B's routes and uses the direct path: asymmetric routing.
    assert_as_path(lab, "A", "B", ["B"])
    assert_traceroute(lab, "A", "B", ["A", "B"])
    assert result.longest_outage < 1.0, f"policy depeering interrupted traffic for {result.longest_outage:.2f} s"
    lab.set_policy("B", "A", ANNOUNCE_NOTHING)  # B answers in kind
    assert_as_path(lab, "A", "B", ["T", "B"])
    assert_traceroute(lab, "A", "B", ["A", "T", "B"])
    lab.set_policy("A", "B", None, wait=False)
    lab.set_policy("B", "A", None)
    assert_as_path(lab, "A", "B", ["B"])
