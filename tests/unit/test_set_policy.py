"""Changing a session's policy on a running router (``RouterEngine.set_policy``,
``RouteServerEngine``), in a simulated network (``simulate.Network`` and the
Cease "other configuration change" it restarts a session after) and in the
model (``Expectation.set_policy``, ``Expectation.session_up``).

What an operator expects: an export change is a soft reset outbound (what
the neighbor is sent changes at once, the session stays up); an import
change resets an established session (Cease subcode 6) so the neighbor's
routes are taken in again under the new policy, and the session comes back.
"""

from __future__ import annotations

import pytest

from testbed.model.addressing import plan
from testbed.bgp import (
    Announce,
    InstallRoute,
    Neighbor,
    Network,
    Relationship,
    RemoveRoute,
    Route,
    RouterEngine,
    RouteServerEngine,
    Session,
    SessionEnd,
    Teardown,
    Withdraw,
    parse_policy,
)
from testbed.model.prediction import Expectation
from testbed.model.loader import load

ASN = 65001
C, P, U = "10.0.1.2", "10.0.2.2", "10.0.3.2"   # customer, peer, provider
PFX = "203.0.113.0/24"
OWN = "192.0.2.0/24"


def router(**policies) -> RouterEngine:
    """AS65001 with a customer C, a peer P and a provider U."""
    sides = {"C": (C, 65010, Relationship.CUSTOMER, "10.0.1.1"),
             "P": (P, 65020, Relationship.PEER, "10.0.2.1"),
             "U": (U, 65030, Relationship.PROVIDER, "10.0.3.1")}
    return RouterEngine(ASN, "10.255.0.1", [
        Neighbor(address, asn, rel, f"10.255.0.{asn - 65000}", local,
                 policy=parse_policy(policies[name]) if name in policies else None)
        for name, (address, asn, rel, local) in sides.items()])


def sent(path, next_hop, prefix=OWN, **attrs) -> Route:
    return Route(prefix=prefix, next_hop=next_hop, as_path=tuple(path), **attrs)


def up(engine: RouterEngine, *addresses: str) -> None:
    for address in addresses:
        engine.session_up(address)


# -- export side: a soft reset outbound ------------------------------------------------

def test_export_change_re_advertises_at_once():
    engine = router()
    engine.originate(OWN)
    up(engine, C, P, U)
    actions = engine.set_policy(P, parse_policy({"prepend": 2}))
    assert actions == [Announce(P, sent([65001, 65001, 65001], "10.0.2.1"))]
    assert engine.adj_rib_out(P)[OWN].as_path == (65001, 65001, 65001)
    assert engine.established() == {C, P, U}
    # The other neighbors are sent nothing new.
    assert engine.adj_rib_out(U)[OWN].as_path == (65001,)


def test_export_change_can_withdraw_and_announce_again():
    engine = router()
    engine.originate(OWN)
    engine.originate(PFX)
    up(engine, C, P, U)
    assert engine.set_policy(P, parse_policy({"announce": [PFX]})) == [Withdraw(P, OWN)]
    assert set(engine.adj_rib_out(P)) == {PFX}
    assert engine.set_policy(P, None) == [Announce(P, sent([65001], "10.0.2.1"))]
    assert set(engine.adj_rib_out(P)) == {OWN, PFX}


def test_the_same_policy_again_changes_nothing():
    engine = router(P={"med": 7})
    engine.originate(OWN)
    up(engine, P)
    assert engine.set_policy(P, parse_policy({"med": 7})) == []
    assert engine.set_policy(P, engine.neighbors[P].policy) == []


def test_an_export_knob_on_a_session_without_policy_keeps_it_up():
    # No policy and a policy with only an export knob agree on the import
    # side: no reset for a MED.
    engine = router()
    engine.originate(OWN)
    engine.receive(P, [sent([65020], P, prefix=PFX)])
    up(engine, C, P, U)
    actions = engine.set_policy(P, parse_policy({"med": 7}))
    assert actions == [Announce(P, sent([65001], "10.0.2.1", med=7))]
    assert P in engine.established()
    assert engine.adj_rib_in(P)[PFX].rejected is None
    assert engine.set_policy(P, None) == [Announce(P, sent([65001], "10.0.2.1"))]
    assert P in engine.established()


def test_export_change_also_applies_to_learned_routes():
    engine = router()
    engine.receive(C, [sent([65010], C, prefix=PFX)])
    up(engine, C, P, U)
    assert engine.set_policy(U, parse_policy({"med": 5})) == [
        Announce(U, sent([65001, 65010], "10.0.3.1", prefix=PFX, med=5))]


# -- import side: a reset ---------------------------------------------------------------

def test_import_change_on_an_established_session_resets_it():
    engine = router()
    engine.receive(C, [sent([65010], C, prefix=PFX)])
    up(engine, C, P, U)
    actions = engine.set_policy(C, parse_policy({"local_pref": 300}))
    # What C sent is forgotten (kernel and neighbors), then a Cease 6.
    assert actions == [RemoveRoute(PFX), Withdraw(P, PFX), Withdraw(U, PFX),
                       Teardown(C, "import policy changed", subcode=6)]
    assert engine.shut == {}, "a configuration change must not keep the session down"
    assert C not in engine.established()
    assert engine.adj_rib_in(C) == {} and engine.loc_rib() == {}
    # The neighbor comes back and sends its routes again: the new policy applies.
    assert engine.session_up(C) == []
    engine.receive(C, [sent([65010], C, prefix=PFX)])
    assert engine.best(PFX).local_pref == 300


@pytest.mark.parametrize("change", [
    {"local_pref": 300},
    {"max_prefix": 10},
    {"import": [{"match": {"prefix": ["198.51.100.0/24"]}, "action": "reject"}]},
    {"rov": True},
    {"otc": True},
    {"blackhole": True},
])
def test_every_import_knob_counts_as_an_import_change(change):
    engine = router()
    up(engine, C)
    actions = engine.set_policy(C, parse_policy(change))
    assert actions[-1] == Teardown(C, "import policy changed", subcode=6)


def test_import_change_on_a_session_that_is_not_up_needs_no_reset():
    engine = router()
    engine.receive(C, [sent([65010], C, prefix=PFX)])
    actions = engine.set_policy(C, parse_policy({"local_pref": 300}))
    assert not any(isinstance(a, Teardown) for a in actions)
    assert actions == []
    assert engine.neighbors[C].policy.local_pref == 300
    assert engine.shut == {}


def test_set_policy_names_an_unknown_neighbor():
    with pytest.raises(ValueError, match="has no neighbor 10.9.9.9"):
        router().set_policy("10.9.9.9", None)


# -- the route server -------------------------------------------------------------------

RS = "10.1.0.100"
MEMBERS = {"A": ("10.1.0.1", 64601), "B": ("10.1.0.2", 64602), "D": ("10.1.0.4", 64604)}


def route_server() -> RouteServerEngine:
    return RouteServerEngine(64700, "10.255.0.100", [
        Neighbor(address, asn, Relationship.RS_CLIENT, f"10.255.0.{i}", RS)
        for i, (address, asn) in enumerate(MEMBERS.values(), 1)])


def test_route_server_re_exports_to_the_changed_client_only():
    rs = route_server()
    a, b = MEMBERS["A"][0], MEMBERS["B"][0]
    rs.receive(a, [Route(prefix=PFX, next_hop=a, as_path=(64601,))])
    assert rs.adj_rib_out(b)[PFX].otc is None
    actions = rs.set_policy(b, parse_policy({"otc": True}))
    # RFC 9234: towards an RS client the route server marks the route.
    assert actions == [Announce(b, Route(prefix=PFX, next_hop=a, as_path=(64601,), otc=64700))]
    assert rs.adj_rib_out(MEMBERS["D"][0])[PFX].otc is None


def test_route_server_import_change_on_an_established_client_resets_it():
    rs = route_server()
    a, b = MEMBERS["A"][0], MEMBERS["B"][0]
    up(rs, a, b)
    rs.receive(b, [Route(prefix=PFX, next_hop=b, as_path=(64602,))])
    actions = rs.set_policy(b, parse_policy({"otc": True}))
    assert actions == [Withdraw(a, PFX), Withdraw(MEMBERS["D"][0], PFX),
                       Teardown(b, "import policy changed", subcode=6)]
    assert rs.shut == {} and b not in rs.established()


# -- in a simulated network --------------------------------------------------------------

def pair():
    """A (AS65001, 10.0.0.1) and B (AS65002, 10.0.0.2) peering; each
    originates one prefix."""
    engines = {
        "A": RouterEngine(65001, "10.255.0.1",
                          [Neighbor("10.0.0.2", 65002, Relationship.PEER, "10.255.0.2", "10.0.0.1")]),
        "B": RouterEngine(65002, "10.255.0.2",
                          [Neighbor("10.0.0.1", 65001, Relationship.PEER, "10.255.0.1", "10.0.0.2")]),
    }
    engines["A"].originate("192.0.2.0/24")
    engines["B"].originate("198.51.100.0/24")
    session = Session(SessionEnd("A", "10.0.0.2"), SessionEnd("B", "10.0.0.1"))
    return engines, session, Network(engines, [session])


def test_configuration_change_brings_the_session_back():
    engines, session, network = pair()
    assert engines["A"].best("198.51.100.0/24").local_pref == 100
    messages = network.apply("A", engines["A"].set_policy("10.0.0.2", parse_policy({"local_pref": 250})))
    assert session in network.up
    assert messages >= 2, "both sides must send their routes again"
    assert engines["A"].best("198.51.100.0/24").local_pref == 250
    assert engines["B"].best("192.0.2.0/24").neighbor == "10.0.0.1"
    assert engines["A"].established() == {"10.0.0.2"} and engines["B"].established() == {"10.0.0.1"}


def test_a_teardown_from_a_router_that_did_not_shut_the_session_is_a_restart():
    engines, session, network = pair()
    engines["A"].session_down("10.0.0.2")
    network.apply("A", [Teardown("10.0.0.2", "operator reset", subcode=6)])
    assert session in network.up
    assert set(engines["A"].loc_rib()) == set(engines["B"].loc_rib()) == {"192.0.2.0/24",
                                                                          "198.51.100.0/24"}


def test_a_teardown_after_a_maximum_prefix_keeps_the_session_down():
    engines, session, network = pair()
    reason = "maximum prefixes exceeded"
    engines["A"].shut["10.0.0.2"] = reason
    network.apply("A", engines["A"].session_down("10.0.0.2") + [Teardown("10.0.0.2", reason)])
    assert session not in network.up
    assert set(engines["B"].loc_rib()) == {"198.51.100.0/24"}


# -- in the model -------------------------------------------------------------------------

@pytest.fixture
def triangle():
    return Expectation(plan(load("triangle")))


def test_model_session_down_by_maximum_prefix(triangle):
    # B sends its peer A its own two prefixes (not T's): more than 1.
    assert triangle.session_up("A", "B")
    triangle.set_policy("A", "B", {"max_prefix": 1})
    assert not triangle.session_up("A", "B")
    assert triangle.session_up("A", "T") and triangle.session_up("B", "T")
    ribs = triangle.loc_ribs()
    # A reaches B's prefix the long way, through T.
    assert ribs["A"]["192.0.2.128/25"]["as_path"] == [64500, 64502]
    a_at_b = triangle.plan.routers["B"].neighbor("A").address
    assert triangle.adj_ribs_in()["B"][a_at_b] == {}


def test_model_session_up_again_when_the_limit_is_raised(triangle):
    triangle.set_policy("A", "B", {"max_prefix": 1})
    assert not triangle.session_up("A", "B")
    triangle.set_policy("A", "B", {"max_prefix": 100})
    assert triangle.session_up("A", "B")
    assert triangle.loc_ribs()["A"]["192.0.2.128/25"]["as_path"] == [64502]
    triangle.set_policy("A", "B", None)
    assert triangle.session_up("A", "B")


def test_model_session_up_is_false_when_depeered(triangle):
    triangle.set_session("A", "B", False)
    assert not triangle.session_up("A", "B") and not triangle.session_up("B", "A")
    triangle.set_session("A", "B", True)
    assert triangle.session_up("B", "A")
