"""Remote blackholing: an attacked network asks the IXP to drop the attack.

V's host V-h1 is under a denial-of-service attack coming in over the IXP.
V cannot filter it at home: by the time the traffic reaches V's router, its
IXP port is already full. So V announces the attacked address alone, as a
/32, tagged with the well-known BLACKHOLE community (65535:666, RFC 7999),
to the IXP's route server. The route server passes it to every member.

- A has agreed to honour blackholing: it accepts the /32 and installs a
  *discard* route for it. Traffic from A's customers to V-h1 is dropped at
  A's edge and never crosses the exchange. A does not pass the /32 on
  (NO_EXPORT is added, as RFC 7999 asks).
- B has not agreed: it refuses the /32, and its traffic still reaches V-h1
  over V's normal /24.
- Only the attacked address goes dark: V-h2, in the same /24, stays
  reachable from everyone. Withdrawing the /32 ends the blackholing.
"""

import pytest

from testbed.assertions import assert_reachable, assert_unreachable

TOPOLOGY = "ixp_blackholing"


def _victim(lab) -> str:
    return lab.address("V-h1") + "/32"


def blackholed(lab) -> dict:
    """The state after V asked for its attacked address to be blackholed."""
    return {"announced": [("V", _victim(lab), ["blackhole"])]}


def test_before_the_attack_everyone_reaches_the_victim(lab):
    for src in ("A", "B"):
        assert_reachable(lab, src, "V-h1")


def test_blackhole_announcement_is_honoured_only_where_agreed(lab, report):
    target = _victim(lab)
    elapsed = lab.announce("V", target, communities=["blackhole"])
    report("blackhole request propagated", f"{elapsed:.3f}", " s")
    assert lab.kernel_routes("A").get(target) == "blackhole", (
        f"A should discard traffic to {target}; its kernel has {lab.kernel_routes('A').get(target)}")
    assert "65535:65281" in lab.route("A", target)["communities"], "A must not pass the /32 on (NO_EXPORT)"
    from_rs = lab.snapshot("B")["adj_rib_in"][lab.plan.routers["B"].neighbor("RS").address]
    assert target in from_rs and "BLACKHOLE" in from_rs[target]["rejected"], from_rs.get(target)
    assert target not in lab.kernel_routes("B")
    # T never agreed either: the /32 does not leak into the Internet.
    assert lab.route("T", target) is None


@pytest.mark.lab_state(state=blackholed)
def test_attack_traffic_is_dropped_at_the_ingress_member(lab, report):
    before = lab.counters("A", "RS")["tx_bytes"]
    lab.send("A", "V-h1", packets=500, size=1000)
    sent_over_ixp = lab.counters("A", "RS")["tx_bytes"] - before
    report("bytes A sent over the IXP while attacking V-h1", sent_over_ixp)
    assert sent_over_ixp < 50_000, f"{sent_over_ixp} bytes of the 500 kB attack still crossed the IXP"
    assert_unreachable(lab, "A", "V-h1")
    assert_reachable(lab, "B", "V-h1")       # B did not agree to blackhole
    assert_reachable(lab, "A", "V-h2")       # only the attacked address is dark


@pytest.mark.lab_state(state=blackholed)
def test_withdrawing_the_request_restores_the_victim(lab):
    lab.withdraw("V", _victim(lab))
    assert _victim(lab) not in lab.kernel_routes("A")
    assert_reachable(lab, "A", "V-h1")
