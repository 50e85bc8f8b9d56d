"""The IGP in BGP: decision step 6 (lowest IGP cost to the next hop), the
cost the engine puts on routes learned over iBGP, the ``"med": "igp"``
session knob, and the hot- and cold-potato routing they give on
topologies/two_pops.py as the model (``testbed.model.prediction``) predicts it.

On two_pops, A's prefixes are originated at A-west and X's at X-east; X's
IGP costs are east-west 10, mid-east 5, mid-west 20 (so X-mid reaches
X-west through X-east at 15); A's west-east link costs 10.
"""

from __future__ import annotations

import ipaddress
import itertools

import pytest

from testbed import Topology
from testbed.model.addressing import plan
from testbed.bgp import (
    STEPS,
    Neighbor,
    Relationship,
    Route,
    RouterEngine,
    best_route,
    explain,
    parse_policy,
)
from testbed.model.prediction import Expectation
from testbed.model.loader import load

PREFIX = "203.0.113.0/24"
INTERNAL, PEER = Relationship.INTERNAL, Relationship.PEER


def ibgp(neighbor: str, router_id: str, igp_cost: int | None, **attrs) -> Route:
    """A route learned over iBGP from the router at loopback ``neighbor``
    (AS65001), first learned by that router from AS65002."""
    attrs.setdefault("local_pref", 100)
    attrs.setdefault("as_path", (65002,))
    return Route(prefix=PREFIX, next_hop=neighbor, neighbor=neighbor,
                 neighbor_asn=65001, neighbor_router_id=router_id, relationship=INTERNAL,
                 ebgp=False, igp_cost=igp_cost, **attrs)


def best_of(*routes: Route) -> Route | None:
    answers = {best_route(list(order)) for order in itertools.permutations(routes)}
    assert len(answers) == 1, f"decision depends on candidate order: {answers}"
    return answers.pop()


# -- step 6 ----------------------------------------------------------------------------

def test_step_6_is_the_igp_cost():
    assert STEPS[5] == "eBGP over iBGP"
    assert STEPS[6] == "lowest IGP cost to the next hop"
    assert STEPS[7] == "lowest BGP identifier"


def test_lowest_igp_cost_wins_over_a_lower_router_id():
    near = ibgp("10.255.0.9", "10.255.0.9", 5)
    far = ibgp("10.255.0.1", "10.255.0.1", 15)    # would win at step 7
    assert best_of(near, far) == near


def test_missing_igp_cost_counts_as_zero():
    unknown = ibgp("10.255.0.9", "10.255.0.9", None)
    costly = ibgp("10.255.0.1", "10.255.0.1", 1)
    assert best_of(unknown, costly) == unknown
    # ... and ties with an explicit 0, so the router id decides.
    zero = ibgp("10.255.0.1", "10.255.0.1", 0)
    assert best_of(unknown, zero) == zero


def test_equal_igp_costs_fall_through_to_the_router_id():
    a = ibgp("10.255.0.9", "10.255.0.9", 10)
    b = ibgp("10.255.0.10", "10.255.0.10", 10)
    assert best_of(a, b) == a


def test_earlier_steps_win_over_the_igp_cost():
    near = ibgp("10.255.0.2", "10.255.0.2", 1)
    far = "10.255.0.3"
    assert best_of(near, ibgp(far, far, 100, local_pref=200)).neighbor == far
    assert best_of(near, ibgp(far, far, 100, as_path=())).neighbor == far
    # Both through AS65002: the lower MED wins before the IGP is asked...
    assert best_of(ibgp("10.255.0.2", "10.255.0.2", 1, med=10),
                   ibgp(far, far, 100, med=5)).neighbor == far
    # ... and an absent MED ties with 0, so the IGP decides.
    assert best_of(near, ibgp(far, far, 100, med=0)) == near
    # An eBGP route (no IGP cost) beats every iBGP one at step 5.
    ebgp = Route(prefix=PREFIX, next_hop="10.0.0.2", as_path=(65002,), local_pref=100,
                 neighbor="10.0.0.2", neighbor_asn=65002, neighbor_router_id="10.255.0.99",
                 relationship=PEER, ebgp=True)
    assert best_of(near, ebgp) == ebgp


def test_explain_names_step_6():
    near = ibgp("10.255.0.9", "10.255.0.9", 5)
    far = ibgp("10.255.0.1", "10.255.0.1", 15)
    lines = explain([far, near])
    assert lines[0] == f"best: {near}"
    assert lines[1] == (f"lost at step 6 (lowest IGP cost to the next hop): {far}: "
                        f"IGP cost 15, another route has IGP cost 5")
    assert len(lines) == 2
    assert "igp cost 15" in str(far)


# -- the engine sets the cost on iBGP routes --------------------------------------------

ASN = 65001
I1, I2, P = "10.255.0.2", "10.255.0.3", "10.0.0.2"


def engine(p_policy=None) -> RouterEngine:
    """AS65001 at 10.255.0.1 with two iBGP neighbors (costs 30 and 10) and
    an eBGP peer whose address the IGP table also (wrongly) lists."""
    neighbors = [
        Neighbor(I1, ASN, INTERNAL, I1, "10.255.0.1", "fd00:255::1"),
        Neighbor(I2, ASN, INTERNAL, I2, "10.255.0.1", "fd00:255::1"),
        Neighbor(P, 65002, PEER, "10.255.0.20", "10.0.0.1", "fd00::1",
                 policy=parse_policy(p_policy) if p_policy else None),
    ]
    return RouterEngine(ASN, "10.255.0.1", neighbors,
                        igp={I1: 30, I2: 10, "fd00:255::2": 31, P: 99})


def over_ibgp(address: str, prefix: str = PREFIX, next_hop: str | None = None, **attrs) -> Route:
    attrs.setdefault("as_path", (65009,))
    return Route(prefix=prefix, next_hop=next_hop or address, local_pref=100, **attrs)


def test_routes_over_ibgp_get_the_igp_cost_of_their_next_hop():
    e = engine()
    e.receive(I1, [over_ibgp(I1)])
    e.receive(I2, [over_ibgp(I2)])
    assert e.adj_rib_in(I1)[PREFIX].igp_cost == 30
    assert e.adj_rib_in(I2)[PREFIX].igp_cost == 10
    assert e.best(PREFIX).neighbor == I2          # the nearer exit, although I1's id is lower
    assert "lost at step 6" in e.explain(PREFIX)[1]
    # An IPv6 route's next hop is the IPv6 loopback.
    e.receive(I1, [over_ibgp(I1, "2001:db8:9::/48", "fd00:255::2")])
    assert e.adj_rib_in(I1)["2001:db8:9::/48"].igp_cost == 31


def test_next_hop_outside_the_igp_and_ebgp_routes_get_no_cost():
    e = engine()
    e.receive(I1, [over_ibgp(I1, next_hop="10.9.9.9")])
    assert e.adj_rib_in(I1)[PREFIX].igp_cost is None
    e.receive(P, [Route(prefix="198.51.100.0/24", next_hop=P, as_path=(65002,))])
    assert e.adj_rib_in(P)["198.51.100.0/24"].igp_cost is None


def test_a_cheaper_exit_appearing_moves_the_best():
    e = engine()
    e.receive(I1, [over_ibgp(I1)])
    assert e.best(PREFIX).neighbor == I1
    e.receive(I2, [over_ibgp(I2)])
    assert e.best(PREFIX).neighbor == I2
    e.receive(I2, [], [PREFIX])
    assert e.best(PREFIX).neighbor == I1


# -- "med": "igp" ----------------------------------------------------------------------

def test_med_igp_sends_the_igp_cost_of_the_best_route():
    e = engine({"med": "igp"})
    e.receive(I1, [over_ibgp(I1, as_path=())])   # originated by the other router: may go to a peer
    sent = e.adj_rib_out(P)[PREFIX]
    assert (sent.med, sent.as_path) == (30, (65001,))


def test_med_igp_is_zero_for_local_routes():
    e = engine({"med": "igp"})
    e.originate("192.0.2.0/24")
    assert e.adj_rib_out(P)["192.0.2.0/24"].med == 0


def test_med_igp_is_not_applied_over_ibgp():
    e = RouterEngine(ASN, "10.255.0.1", [
        Neighbor(I1, ASN, INTERNAL, I1, "10.255.0.1", policy=parse_policy({"med": "igp"})),
        Neighbor(P, 65002, PEER, "10.255.0.20", "10.0.0.1", policy=parse_policy({"med": "igp"})),
    ], igp={I1: 30})
    e.receive(P, [Route(prefix=PREFIX, next_hop=P, as_path=(65002,), med=7)])
    # The received MED goes on over iBGP as it came, not replaced by a cost.
    assert e.adj_rib_out(I1)[PREFIX].med == 7
    e.originate("192.0.2.0/24")
    assert e.adj_rib_out(I1)["192.0.2.0/24"].med is None


def test_med_igp_parses_and_other_text_is_refused():
    assert parse_policy({"med": "igp"}).med == "igp"
    assert parse_policy({"med": 5}).med == 5
    with pytest.raises(ValueError, match="med"):
        parse_policy({"med": "far"})


# -- hot and cold potato on two_pops ---------------------------------------------------

@pytest.fixture(scope="module")
def two_pops():
    return plan(load("two_pops"))


A4 = "172.16.0.0/24"   # A's IPv4 prefix, originated at A-west


def address(p, router: str, of: str) -> str:
    """The address ``router`` knows router ``of`` by (its neighbor key)."""
    return p.routers[router].neighbor(of).address


def test_hot_potato_at_x_mid_picks_the_nearer_exit(two_pops):
    expect = Expectation(two_pops)
    best = expect.loc_ribs()["X-mid"][A4]
    assert best["neighbor"] == address(two_pops, "X-mid", "X-east")
    assert (best["igp_cost"], best["relationship"], best["ebgp"]) == (5, "internal", False)
    assert best["as_path"] == [64601]
    via_west = expect.adj_ribs_in()["X-mid"][address(two_pops, "X-mid", "X-west")][A4]
    assert via_west["igp_cost"] == 15 and via_west["rejected"] is None
    # The same holds for the IPv6 prefix, next hops being IPv6 loopbacks.
    best6 = expect.loc_ribs()["X-mid"]["2001:db8::/48"]
    assert (best6["next_hop"], best6["igp_cost"]) == ("fd00:255::3", 5)


def test_hot_potato_border_routers_use_their_own_exit(two_pops):
    ribs = Expectation(two_pops).loc_ribs()
    east, west = ribs["X-east"][A4], ribs["X-west"][A4]
    assert east["neighbor"] == address(two_pops, "X-east", "A-east") and east["ebgp"]
    assert west["neighbor"] == address(two_pops, "X-west", "A-west") and west["ebgp"]
    assert east["igp_cost"] is None and east["med"] is None
    # A-east reaches its own prefix over iBGP from A-west, at the IGP cost.
    inside = ribs["A-east"][A4]
    assert (inside["neighbor"], inside["igp_cost"], inside["as_path"]) == ("10.255.0.1", 10, [])
    # And in the other direction: A-west leaves for X's prefix at its own exit.
    toward_x = ribs["A-west"]["172.16.1.0/24"]
    assert toward_x["neighbor"] == address(two_pops, "A-west", "X-west")


def test_cold_potato_with_med_from_the_igp(two_pops):
    expect = Expectation(two_pops)
    expect.set_policy("A-west", "X-west", {"med": "igp"})
    expect.set_policy("A-east", "X-east", {"med": "igp"})
    ribs = expect.loc_ribs()
    # A-west originates the prefix: MED 0; A-east is 10 away from it: MED 10.
    east_in = expect.adj_ribs_in()["X-east"][address(two_pops, "X-east", "A-east")][A4]
    assert east_in["med"] == 10
    east = ribs["X-east"][A4]
    assert east["neighbor"] == address(two_pops, "X-east", "X-west")
    assert (east["med"], east["ebgp"], east["igp_cost"]) == (0, False, 10)
    mid = ribs["X-mid"][A4]
    assert mid["neighbor"] == address(two_pops, "X-mid", "X-west")
    assert (mid["med"], mid["igp_cost"]) == (0, 15)
    assert ribs["X-west"][A4]["med"] == 0 and ribs["X-west"][A4]["ebgp"]


def test_setting_the_policy_back_restores_hot_potato(two_pops):
    expect = Expectation(two_pops)
    before = expect.loc_ribs()
    expect.set_policy("A-east", "X-east", {"med": "igp"})
    assert expect.loc_ribs()["X-east"][A4]["neighbor"] == address(two_pops, "X-east", "X-west")
    expect.set_policy("A-east", "X-east", None)
    assert expect.loc_ribs() == before


def test_hot_potato_beats_the_router_id_in_the_model():
    # two_pops with X's PoPs listed west first: X-west now has the lower
    # router id, so only step 6 sends X-mid to the nearer X-east.
    topo = Topology("two_pops_reordered", hold_time=3)
    a = topo.add_as(64601, "A", pops=["west", "east"])
    x = topo.add_as(64602, "X", pops=["west", "east", "mid"])
    topo.internal_link(a, "west", "east", cost=10)
    topo.internal_link(x, "east", "west", cost=10)
    topo.internal_link(x, "mid", "east", cost=5)
    topo.internal_link(x, "mid", "west", cost=20)
    topo.peering(a.pop("west"), x.pop("west"))
    topo.peering(a.pop("east"), x.pop("east"))
    p = plan(topo.validate())
    rid = {name: ipaddress.ip_address(r.router_id) for name, r in p.routers.items()}
    assert rid["X-west"] < rid["X-east"]
    best = Expectation(p).loc_ribs()["X-mid"][A4]
    assert best["neighbor"] == p.routers["X-east"].router_id
    assert best["igp_cost"] == 5
