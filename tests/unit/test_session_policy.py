"""Per-session policy through the engine (testbed.bgp.policy, engine and
simulate): well-known communities, BLACKHOLE, route origin validation,
RFC 9234 Only-to-Customer, the local_pref/MED/prepend knobs, selective
announcement, export terms that leak on purpose, and maximum prefixes.

Single-router tests use AS65001 with a customer, a peer, a provider and an
iBGP neighbor, each session with the policy the test gives it. Network
tests build a few engines joined by sessions (link i is 10.0.i.0/30, the
first named AS takes .1) and converge them.
"""

from __future__ import annotations

import pytest

from testbed.bgp import (
    BLACKHOLE,
    NO_ADVERTISE,
    NO_EXPORT,
    InstallRoute,
    Neighbor,
    Network,
    Relationship,
    RemoveRoute,
    Route,
    RouterEngine,
    Session,
    SessionEnd,
    Teardown,
    Withdraw,
    parse_policy,
    parse_roas,
)

CUSTOMER, PEER, PROVIDER, INTERNAL = (Relationship.CUSTOMER, Relationship.PEER,
                                      Relationship.PROVIDER, Relationship.INTERNAL)
ASN = 65001
C, P, U, I = "10.0.1.2", "10.0.2.2", "10.0.3.2", "10.0.4.2"
SIDES = {  # name -> (address, ASN, relationship, router id, our address)
    "C": (C, 65010, CUSTOMER, "10.255.0.10", "10.0.1.1"),
    "P": (P, 65020, PEER, "10.255.0.20", "10.0.2.1"),
    "U": (U, 65030, PROVIDER, "10.255.0.30", "10.0.3.1"),
    "I": (I, ASN, INTERNAL, "10.255.0.2", "10.0.4.1"),
}
PFX = "203.0.113.0/24"


def router(roas=(), **policies) -> RouterEngine:
    """AS65001 with neighbors C, P, U, I; ``policies`` maps a neighbor's
    letter to the policy data of that session."""
    neighbors = [Neighbor(address, asn, rel, rid, local, policy=parse_policy(policies.get(name)))
                 for name, (address, asn, rel, rid, local) in SIDES.items()]
    return RouterEngine(ASN, "10.255.0.1", neighbors, parse_roas(list(roas)))


def wire(neighbor: str, path, prefix=PFX, **attrs) -> Route:
    """A route as the neighbor at ``neighbor`` sends it."""
    return Route(prefix=prefix, next_hop=neighbor, as_path=tuple(path), **attrs)


def sent_to(engine: RouterEngine) -> dict[str, Route | None]:
    """Neighbor letter -> what the router advertises it for PFX."""
    return {name: engine.adj_rib_out(side[0]).get(PFX) for name, side in SIDES.items()}


def receivers(engine: RouterEngine) -> set[str]:
    return {name for name, route in sent_to(engine).items() if route is not None}


def paths(engine: RouterEngine) -> dict[str, tuple]:
    return {name: route.as_path for name, route in sent_to(engine).items() if route is not None}


# -- NO_EXPORT and NO_ADVERTISE (RFC 1997) ----------------------------------------------

def test_no_export_stays_inside_the_as():
    engine = router()
    engine.receive(C, [wire(C, [65010], communities=("no-export",))])
    assert engine.best(PFX).neighbor == C
    assert receivers(engine) == {"I"}
    assert sent_to(engine)["I"].communities == (NO_EXPORT,)


def test_no_advertise_goes_to_no_one():
    engine = router()
    actions = engine.receive(C, [wire(C, [65010], communities=("no-advertise", "64500:1"))])
    assert actions == [InstallRoute(PFX, C)]
    assert engine.best(PFX).communities == (64500 << 16 | 1, NO_ADVERTISE)
    assert receivers(engine) == set()


def test_a_locally_originated_no_export_route():
    engine = router()
    actions = engine.originate(PFX, communities=(NO_EXPORT,))
    assert [a.neighbor for a in actions] == [I]
    assert actions[0].route.communities == (NO_EXPORT,)


def test_no_export_cannot_be_overridden_by_an_accepting_term():
    engine = router(P={"export": [{"action": "accept"}]})
    engine.receive(C, [wire(C, [65010], communities=("no-export",))])
    assert "P" not in receivers(engine)


# -- BLACKHOLE (RFC 7999) -----------------------------------------------------------

def test_blackhole_refused_from_a_session_that_does_not_honour_it():
    engine = router()
    actions = engine.receive(C, [wire(C, [65010], communities=("blackhole",))])
    assert actions == []
    assert engine.best(PFX) is None
    assert "BLACKHOLE community (RFC 7999) not honoured" in engine.adj_rib_in(C)[PFX].rejected


def test_blackhole_accepted_installs_a_discard_route_and_goes_no_further():
    engine = router(C={"blackhole": True})
    actions = engine.receive(C, [wire(C, [65010], communities=("blackhole",))])
    best = engine.best(PFX)
    assert best.communities == (BLACKHOLE, NO_EXPORT)   # NO_EXPORT added on import
    assert actions[0] == InstallRoute(PFX, C, blackhole=True)
    assert [a.neighbor for a in actions[1:]] == [I]      # iBGP only: NO_EXPORT
    assert receivers(engine) == {"I"}
    # Withdrawn: the discard route goes.
    assert engine.receive(C, [], [PFX])[0] == RemoveRoute(PFX)


def test_blackhole_then_a_plain_route_from_the_same_next_hop_reinstalls_a_forwarding_route():
    engine = router(C={"blackhole": True})
    engine.receive(C, [wire(C, [65010], communities=("blackhole",))])
    actions = engine.receive(C, [wire(C, [65010])])
    assert actions[0] == InstallRoute(PFX, C)
    assert receivers(engine) == {"P", "U", "I"}


def test_blackhole_honoured_on_one_session_only():
    engine = router(C={"blackhole": True})
    engine.receive(P, [wire(P, [65020], communities=("blackhole",))])
    assert engine.adj_rib_in(P)[PFX].rejected is not None
    assert engine.best(PFX) is None


# -- route origin validation (RFC 6811) -----------------------------------------------

ROAS = [{"prefix": PFX, "asn": 65011}]


def test_rov_drops_invalid_routes():
    engine = router(roas=ROAS, C={"rov": True})
    engine.receive(C, [wire(C, [65010, 65666])])
    rejected = engine.adj_rib_in(C)[PFX].rejected
    assert rejected == ("RPKI invalid (RFC 6811): origin AS65666 is not authorised for "
                        "203.0.113.0/24")
    assert engine.best(PFX) is None


def test_rov_accepts_valid_and_not_found():
    engine = router(roas=ROAS, C={"rov": True})
    engine.receive(C, [wire(C, [65010, 65011]), wire(C, [65010, 65666], prefix="198.51.100.0/24")])
    assert set(engine.loc_rib()) == {PFX, "198.51.100.0/24"}


def test_rov_rejects_a_more_specific_than_max_length():
    engine = router(roas=ROAS, C={"rov": True})
    engine.receive(C, [wire(C, [65010, 65011], prefix="203.0.113.0/25")])
    assert engine.adj_rib_in(C)["203.0.113.0/25"].rejected.startswith("RPKI invalid")


def test_without_rov_an_invalid_route_is_used():
    engine = router(roas=ROAS)
    engine.receive(C, [wire(C, [65010, 65666])])
    assert engine.best(PFX).as_path == (65010, 65666)


def test_an_rpki_term_can_depreference_instead_of_dropping():
    engine = router(roas=ROAS, C={"import": [{"match": {"rpki": "invalid"}, "set": {"local_pref": 10}}]})
    engine.receive(C, [wire(C, [65010, 65666])])
    engine.receive(U, [wire(U, [65030, 65011])])
    # The provider's valid route (50) beats the customer's invalid one (10).
    assert engine.best(PFX).neighbor == U
    assert engine.adj_rib_in(C)[PFX].local_pref == 10


# -- local_pref, MED, prepend -------------------------------------------------------

def test_session_local_pref_replaces_the_relationship_s():
    engine = router(U={"local_pref": 300})
    engine.receive(C, [wire(C, [65010, 65099])])
    engine.receive(U, [wire(U, [65030, 65099])])
    assert engine.best(PFX).neighbor == U and engine.best(PFX).local_pref == 300
    assert engine.adj_rib_in(C)[PFX].local_pref == 200


def test_an_import_term_overrides_the_session_local_pref():
    engine = router(U={"local_pref": 300, "import": [
        {"match": {"prefix": [PFX]}, "set": {"local_pref": 20}}]})
    engine.receive(U, [wire(U, [65030]), wire(U, [65030], prefix="198.51.100.0/24")])
    assert engine.best(PFX).local_pref == 20
    assert engine.best("198.51.100.0/24").local_pref == 300


def test_med_and_prepend_on_export():
    engine = router(P={"med": 40, "prepend": 2}, U={"export": [{"set": {"prepend": 1, "med": 7}}]})
    engine.originate(PFX)
    out = sent_to(engine)
    assert (out["P"].as_path, out["P"].med) == ((65001, 65001, 65001), 40)
    assert (out["U"].as_path, out["U"].med) == ((65001, 65001), 7)
    assert (out["C"].as_path, out["C"].med) == ((65001,), None)


def test_session_knobs_leave_ibgp_alone():
    engine = router(I={"med": 40, "prepend": 2})
    engine.receive(C, [wire(C, [65010], med=5)])
    assert sent_to(engine)["I"].as_path == (65010,)
    assert sent_to(engine)["I"].med == 5


# -- selective announcement, terms on export ---------------------------------------------

def test_selective_announcement():
    engine = router(U={"announce": ["203.0.113.0/24 le 25"]})
    engine.originate(PFX)
    engine.originate("198.51.100.0/24")
    engine.originate("203.0.113.0/26")
    assert set(engine.adj_rib_out(U)) == {PFX}
    assert set(engine.adj_rib_out(P)) == {PFX, "198.51.100.0/24", "203.0.113.0/26"}


def test_selective_announcement_cannot_leak():
    # announce limits; it does not widen valley-free.
    engine = router(U={"announce": ["0.0.0.0/0 le 32"]})
    engine.receive(P, [wire(P, [65020])])
    assert receivers(engine) == {"C", "I"}


def test_export_accept_overrides_valley_free():
    engine = router(U={"export": [{"match": {"learned_from": ["peer"]}, "action": "accept"}]})
    engine.receive(P, [wire(P, [65020])])
    assert paths(engine) == {"C": (65001, 65020), "U": (65001, 65020), "I": (65020,)}


def test_export_reject_by_community_and_by_source():
    engine = router(U={"export": [{"match": {"community": ["65001:666"]}, "action": "reject"}]},
                    P={"export": [{"match": {"from_asn": [65010]}, "action": "reject"}]})
    engine.receive(C, [wire(C, [65010], communities=("65001:666",)),
                       wire(C, [65010], prefix="198.51.100.0/24")])
    assert set(engine.adj_rib_out(U)) == {"198.51.100.0/24"}
    assert set(engine.adj_rib_out(P)) == set()


def test_learned_from_local_on_export():
    engine = router(U={"export": [{"match": {"learned_from": ["customer"]}, "action": "reject"}]})
    engine.originate(PFX)
    engine.receive(C, [wire(C, [65010], prefix="198.51.100.0/24")])
    assert set(engine.adj_rib_out(U)) == {PFX}


def test_export_terms_see_the_route_as_sent():
    # Tagging on export changes what goes out, not the Loc-RIB.
    engine = router(P={"export": [{"set": {"add_communities": ["65001:20"],
                                           "remove_communities": ["64500:1"]}}]})
    engine.receive(C, [wire(C, [65010], communities=("64500:1", "64500:2"))])
    assert sent_to(engine)["P"].communities == (64500 << 16 | 2, 65001 << 16 | 20)
    assert sent_to(engine)["U"].communities == (64500 << 16 | 1, 64500 << 16 | 2)
    assert engine.best(PFX).communities == (64500 << 16 | 1, 64500 << 16 | 2)


def test_export_terms_match_the_path_as_held_before_prepending():
    engine = router(U={"export": [{"match": {"as_path": "^65020$"}, "action": "accept"},
                                  {"match": {"origin_as": [65010]}, "action": "reject"}]},
                    P={"prepend": 2, "export": [{"match": {"as_path": "_65001_"}, "action": "reject"}]})
    engine.receive(P, [wire(P, [65020])])
    engine.receive(C, [wire(C, [65010], prefix="198.51.100.0/24")])
    engine.originate("192.0.2.0/24")
    # "^65020$" saw the peer's route as held, not "65001 65020" as sent.
    assert set(engine.adj_rib_out(U)) == {PFX, "192.0.2.0/24"}
    assert engine.adj_rib_out(U)[PFX].as_path == (65001, 65020)
    # Neither the local AS nor its prepends are part of the path matched.
    assert set(engine.adj_rib_out(P)) == {"198.51.100.0/24", "192.0.2.0/24"}
    assert engine.adj_rib_out(P)["192.0.2.0/24"].as_path == (65001, 65001, 65001)


def test_import_term_rejects_by_as_path():
    engine = router(C={"import": [{"match": {"as_path": "_64666_"}, "action": "reject"}]})
    engine.receive(C, [wire(C, [65010, 64666, 65011]), wire(C, [65010, 64667], prefix="198.51.100.0/24")])
    assert engine.adj_rib_in(C)[PFX].rejected == "rejected by an import term"
    assert set(engine.loc_rib()) == {"198.51.100.0/24"}


# -- RFC 9234 Only-to-Customer, single router -------------------------------------------

def test_otc_added_on_ingress_from_provider_and_peer():
    engine = router(U={"otc": True}, P={"otc": True}, C={"otc": True})
    engine.receive(U, [wire(U, [65030])])
    engine.receive(P, [wire(P, [65020], prefix="198.51.100.0/24")])
    engine.receive(C, [wire(C, [65010], prefix="192.0.2.0/24")])
    rib = engine.loc_rib()
    assert (rib[PFX].otc, rib["198.51.100.0/24"].otc, rib["192.0.2.0/24"].otc) == (65030, 65020, None)


def test_otc_from_a_customer_is_a_leak():
    engine = router(C={"otc": True})
    engine.receive(C, [wire(C, [65010, 65099], otc=65099)])
    assert engine.adj_rib_in(C)[PFX].rejected.startswith("route leak (RFC 9234)")


def test_otc_from_a_peer_must_be_the_peer_s():
    engine = router(P={"otc": True})
    engine.receive(P, [wire(P, [65020], otc=65020),
                       wire(P, [65020, 65099], prefix="198.51.100.0/24", otc=65099)])
    assert engine.adj_rib_in(P)[PFX].rejected is None
    assert engine.adj_rib_in(P)["198.51.100.0/24"].rejected.startswith("route leak (RFC 9234)")


def test_otc_added_on_egress_to_customers_and_peers_only():
    engine = router(C={"otc": True}, P={"otc": True}, U={"otc": True})
    engine.originate(PFX)
    out = sent_to(engine)
    assert (out["C"].otc, out["P"].otc, out["U"].otc, out["I"].otc) == (65001, 65001, None, None)


def test_a_route_with_otc_never_goes_up_even_when_a_term_accepts():
    engine = router(U={"otc": True, "export": [{"action": "accept"}]})
    engine.receive(C, [wire(C, [65010], otc=65099)])   # C's session does not check OTC
    assert "U" not in receivers(engine)
    assert sent_to(engine)["P"].otc == 65099            # P's session does not apply OTC


# -- small networks ---------------------------------------------------------------

class Net:
    """Engines joined by sessions. ``systems``: name -> ASN; ``links``:
    (x, y, what y is to x, what x is to y, x's policy, y's policy)."""

    def __init__(self, systems: dict[str, int], links, roas=()):
        router_id = {name: f"10.255.0.{i}" for i, name in enumerate(systems, 1)}
        neighbors: dict[str, list[Neighbor]] = {name: [] for name in systems}
        self.address: dict[tuple[str, str], str] = {}
        self.sessions: dict[frozenset, Session] = {}
        for i, (x, y, y_to_x, x_to_y, x_policy, y_policy) in enumerate(links, 1):
            x4, y4 = f"10.0.{i}.1", f"10.0.{i}.2"
            neighbors[x].append(Neighbor(y4, systems[y], y_to_x, router_id[y], x4,
                                         policy=parse_policy(x_policy)))
            neighbors[y].append(Neighbor(x4, systems[x], x_to_y, router_id[x], y4,
                                         policy=parse_policy(y_policy)))
            self.address[(x, y)], self.address[(y, x)] = y4, x4
            self.sessions[frozenset((x, y))] = Session(SessionEnd(x, y4), SessionEnd(y, x4))
        roas = parse_roas(list(roas))
        self.engines = {name: RouterEngine(asn, router_id[name], neighbors[name], roas)
                        for name, asn in systems.items()}

    def network(self, originate: dict[str, list[str]]) -> Network:
        for name, prefixes in originate.items():
            for prefix in prefixes:
                self.engines[name].originate(prefix)
        return Network(self.engines, self.sessions.values())

    def path(self, router: str, prefix: str = PFX) -> tuple | None:
        best = self.engines[router].best(prefix)
        return None if best is None else best.as_path


def transit(provider, customer, provider_policy=None, customer_policy=None):
    return (provider, customer, CUSTOMER, PROVIDER, provider_policy, customer_policy)


def peering(a, b, a_policy=None, b_policy=None):
    return (a, b, PEER, PEER, a_policy, b_policy)


LEAK = {"export": [{"match": {"learned_from": ["provider"]}, "action": "accept"}]}


def leak_net(p1_policy=None, p2_policy=None, leaker_policy_up=LEAK):
    """P1 and P2 (no other link between them) are both providers of L; L
    leaks P1's route to P2. X, a customer of P1, originates PFX."""
    net = Net({"P1": 64501, "P2": 64502, "L": 64510, "X": 64520},
              [transit("P1", "L", p1_policy), transit("P2", "L", p2_policy, leaker_policy_up),
               transit("P1", "X")])
    net.network({"X": [PFX]})
    return net


def test_a_configured_leak_propagates():
    net = leak_net()
    assert net.path("P2") == (64510, 64501, 64520)


def test_otc_provider_stops_the_leak_of_its_customer():
    # P1 marks routes it gives L Only-to-Customer; P2 checks OTC on routes
    # from its customer L and refuses the leaked one.
    net = leak_net(p1_policy={"otc": True}, p2_policy={"otc": True})
    assert net.path("P2") is None
    leaked = net.engines["P2"].adj_rib_in(net.address[("P2", "L")])[PFX]
    assert leaked.otc == 64501
    assert leaked.rejected == ("route leak (RFC 9234): Only-to-Customer AS64501 set on a route "
                               "from a customer")


def test_a_provider_without_otc_takes_the_leak():
    net = leak_net(p1_policy={"otc": True})
    assert net.path("P2") == (64510, 64501, 64520)
    assert net.engines["P2"].best(PFX).otc == 64501


def test_an_otc_enforcing_leaker_does_not_leak_even_when_told_to():
    # L itself applies RFC 9234 on its sessions: the route from P1 gets OTC
    # on ingress and the egress rule keeps it from P2, whatever the term says.
    net = Net({"P1": 64501, "P2": 64502, "L": 64510, "X": 64520},
              [transit("P1", "L", None, {"otc": True}), transit("P2", "L", None, {**LEAK, "otc": True}),
               transit("P1", "X")])
    net.network({"X": [PFX]})
    assert net.engines["L"].best(PFX).otc == 64501
    assert net.path("P2") is None


def test_peering_leak_stopped_by_otc():
    # B learns A's customer route over peering and leaks it to peer C.
    net = Net({"A": 64501, "B": 64502, "C": 64503, "X": 64520},
              [peering("A", "B", {"otc": True}), peering("B", "C", {"export": [{"action": "accept"}]},
                                                          {"otc": True}),
               transit("A", "X")])
    net.network({"X": [PFX]})
    assert net.path("B") == (64501, 64520)
    assert net.path("C") is None
    assert "Only-to-Customer AS64501 on a route from peer AS64502" in \
        net.engines["C"].adj_rib_in(net.address[("C", "B")])[PFX].rejected


def test_otc_on_the_way_out_only_does_not_mark_the_route():
    # The mark is added where the route comes in; a session to P2 that
    # applies RFC 9234 cannot stop a route that entered unmarked.
    net = leak_net(leaker_policy_up={**LEAK, "otc": True})
    assert net.path("P2") == (64510, 64501, 64520)
    assert net.engines["L"].best(PFX).otc is None


def test_valley_free_without_a_leak_term():
    net = leak_net(leaker_policy_up=None)
    assert net.path("P2") is None
    assert net.path("L") == (64501, 64520)


def test_rov_in_a_network():
    # H hijacks X's prefix; R has routes from both, and only its ROV session drops H's.
    systems = {"R": 64500, "X": 64520, "H": 64666}
    roas = [{"prefix": PFX, "asn": 64520}]
    plain = Net(systems, [transit("R", "X"), transit("R", "H")], roas)
    plain.network({"X": [PFX], "H": [PFX]})
    assert plain.path("R") == (64520,)    # lowest router id wins among equals ...
    validating = Net(systems, [transit("R", "X"), transit("R", "H", {"rov": True})], roas)
    validating.network({"H": [PFX]})
    assert validating.path("R") is None   # ... but with ROV H's route is never usable
    plain = Net(systems, [transit("R", "X"), transit("R", "H")], roas)
    plain.network({"H": [PFX]})
    assert plain.path("R") == (64666,)


# -- maximum prefixes -------------------------------------------------------------

PREFIXES = ["198.51.100.0/24", "198.51.101.0/24", "198.51.102.0/24"]


def test_max_prefix_tears_the_session_down():
    engine = router(C={"max_prefix": 2})
    assert engine.receive(C, [wire(C, [65010], prefix=PREFIXES[0])])[0] == InstallRoute(PREFIXES[0], C)
    engine.receive(C, [wire(C, [65010], prefix=PREFIXES[1])])
    actions = engine.receive(C, [wire(C, [65010], prefix=PREFIXES[2])])
    reason = "maximum prefixes exceeded: 3 accepted from 10.0.1.2 (AS65010), limit 2"
    assert actions[-1] == Teardown(C, reason)
    assert RemoveRoute(PREFIXES[0]) in actions and Withdraw(U, PREFIXES[1]) in actions
    assert engine.loc_rib() == {} and engine.adj_rib_in(C) == {}
    assert engine.shut == {C: reason}
    # Kept down: nothing more is taken and the session may not come back.
    assert engine.receive(C, [wire(C, [65010], prefix=PREFIXES[0])]) == []
    assert engine.session_up(C) == [Teardown(C, reason)]
    engine.clear_shut(C)
    assert engine.session_up(C) == []
    engine.receive(C, [wire(C, [65010], prefix=PREFIXES[0])])
    assert set(engine.loc_rib()) == {PREFIXES[0]}


def test_max_prefix_counts_accepted_routes_only():
    engine = router(C={"max_prefix": 1, "import": [
        {"match": {"prefix": ["198.51.100.0/22 le 24"]}, "action": "reject"}]})
    actions = engine.receive(C, [wire(C, [65010], prefix=p) for p in PREFIXES] + [wire(C, [65010])])
    assert not any(isinstance(a, Teardown) for a in actions)
    assert set(engine.loc_rib()) == {PFX}
    # Replacing a route does not count it twice; a withdrawal frees its place.
    assert not any(isinstance(a, Teardown) for a in engine.receive(C, [wire(C, [65010, 65011])]))
    engine.receive(C, [], [PFX])
    assert not any(isinstance(a, Teardown)
                   for a in engine.receive(C, [wire(C, [65010], prefix="192.0.2.0/24")]))


def test_max_prefix_teardown_also_forgets_what_the_same_update_withdrew():
    engine = router(C={"max_prefix": 2})
    engine.receive(C, [wire(C, [65010], prefix=p) for p in PREFIXES[:2]])
    actions = engine.receive(C, [wire(C, [65010], prefix=p) for p in (PFX, "192.0.2.0/24", PREFIXES[2])],
                             withdrawn=[PREFIXES[0]])
    assert isinstance(actions[-1], Teardown)
    assert engine.loc_rib() == {}, "a prefix withdrawn in the update that tore the session down stayed"
    assert engine.adj_rib_out(P) == {} and engine.adj_rib_out(U) == {}
    assert RemoveRoute(PREFIXES[0]) in actions and Withdraw(P, PREFIXES[0]) in actions


def test_max_prefix_in_a_network_keeps_the_session_down():
    net = Net({"A": 64501, "B": 64502, "D": 64503},
              [transit("A", "B", {"max_prefix": 2}), transit("A", "D")])
    network = net.network({"B": PREFIXES, "D": [PFX]})
    session = net.sessions[frozenset(("A", "B"))]
    assert session not in network.up
    assert net.engines["A"].shut
    assert set(net.engines["A"].loc_rib()) == {PFX}
    assert set(net.engines["B"].loc_rib()) == set(PREFIXES)   # B lost A's routes too
    assert set(net.engines["D"].loc_rib()) == {PFX}
    # Bringing it up again: A refuses at once, from either end's order.
    network.bring_up(session)
    assert session not in network.up
    assert set(net.engines["B"].loc_rib()) == set(PREFIXES)
    # After an operator clears it and B sends fewer routes, it stays up.
    net.engines["A"].clear_shut(net.address[("A", "B")])
    network.withdraw("B", PREFIXES[2])
    network.bring_up(session)
    assert session in network.up
    assert set(net.engines["A"].loc_rib()) == {PFX, *PREFIXES[:2]}
    assert set(net.engines["D"].loc_rib()) == {PFX, *PREFIXES[:2]}


def test_max_prefix_trips_when_routes_arrive_later():
    net = Net({"A": 64501, "B": 64502}, [transit("A", "B", {"max_prefix": 2})])
    network = net.network({"B": PREFIXES[:2]})
    session = net.sessions[frozenset(("A", "B"))]
    assert session in network.up
    network.originate("B", PREFIXES[2])
    assert session not in network.up
    assert net.engines["A"].loc_rib() == {}


@pytest.mark.parametrize("policy", [{"med": 5}, {"otc": True}, {"prepend": 0}])
def test_a_neutral_policy_changes_nothing_on_paths(policy):
    plain, tuned = router(), router(C=policy, P=policy, U=policy)
    for engine in (plain, tuned):
        engine.receive(C, [wire(C, [65010])])
        engine.receive(P, [wire(P, [65020], prefix="198.51.100.0/24")])
    for prefix in (PFX, "198.51.100.0/24"):
        assert ({a: r.as_path for a, r in ((x, plain.adj_rib_out(x).get(prefix)) for x in (C, P, U, I)) if r}
                == {a: r.as_path for a, r in ((x, tuned.adj_rib_out(x).get(prefix)) for x in (C, P, U, I)) if r})
