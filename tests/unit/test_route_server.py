"""The IXP route server (testbed.bgp.engine.RouteServerEngine, RFC 7947).

The route server is AS64700 on the peering LAN 10.1.0.0/24 with clients A,
B, C and D (AS64601-64604 at .1-.4); it is .100. Every test asserts what
each client is sent: the route server is transparent (no AS of its own,
next hop and MED as the member sent them), chooses a best path per client,
obeys the control communities and strips them.
"""

from __future__ import annotations

import pytest

from testbed.bgp import (
    BLACKHOLE,
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
    Withdraw,
    parse_policy,
)

RS_ASN = 64700
RS_ADDRESS = "10.1.0.100"
CLIENTS = {"A": ("10.1.0.1", 64601), "B": ("10.1.0.2", 64602),
           "C": ("10.1.0.3", 64603), "D": ("10.1.0.4", 64604)}
ADDRESS = {name: address for name, (address, _) in CLIENTS.items()}
ASN_OF = {name: asn for name, (_, asn) in CLIENTS.items()}
PFX = "203.0.113.0/24"


def server(asn: int = RS_ASN, **policies) -> RouteServerEngine:
    neighbors = [Neighbor(address, client_asn, Relationship.RS_CLIENT, f"10.255.0.{i}", RS_ADDRESS,
                          policy=parse_policy(policies.get(name, {"blackhole": True})))
                 for i, (name, (address, client_asn)) in enumerate(CLIENTS.items(), 1)]
    return RouteServerEngine(asn, "10.255.0.100", neighbors)


def from_client(name: str, path=None, prefix=PFX, **attrs) -> Route:
    """A route as client ``name`` sends it to the route server."""
    path = (ASN_OF[name],) if path is None else tuple(path)
    return Route(prefix=prefix, next_hop=ADDRESS[name], as_path=path, **attrs)


def announce(rs: RouteServerEngine, name: str, path=None, prefix=PFX, **attrs) -> list:
    return rs.receive(ADDRESS[name], [from_client(name, path, prefix, **attrs)])


def given(rs: RouteServerEngine, prefix=PFX) -> dict[str, Route]:
    """Client name -> the route the route server sends it for ``prefix``."""
    return {name: rs.adj_rib_out(address)[prefix] for name, address in ADDRESS.items()
            if prefix in rs.adj_rib_out(address)}


def who(rs: RouteServerEngine, prefix=PFX) -> dict[str, str]:
    """Client name -> which client's route it is given (by next hop)."""
    by_address = {address: name for name, address in ADDRESS.items()}
    return {name: by_address[route.next_hop] for name, route in given(rs, prefix).items()}


def std(high: int, low: int) -> int:
    return high << 16 | low


# -- transparency -----------------------------------------------------------------

def test_routes_go_out_as_the_member_sent_them():
    rs = server()
    actions = announce(rs, "A", [64601, 64999], med=30, communities=("64601:7",),
                       large_communities=("64601:1:2",))
    expected = Route(prefix=PFX, next_hop=ADDRESS["A"], as_path=(64601, 64999), med=30,
                     communities=("64601:7",), large_communities=("64601:1:2",))
    assert actions == [Announce(ADDRESS[n], expected) for n in "BCD"]
    assert RS_ASN not in expected.as_path


def test_never_back_to_the_member_that_sent_it_nor_to_an_as_in_the_path():
    rs = server()
    announce(rs, "A", [64601, 64603])
    assert set(given(rs)) == {"B", "D"}


def test_no_kernel_actions_and_nothing_originated():
    rs = server()
    actions = announce(rs, "A") + announce(rs, "B", prefix="198.51.100.0/24", communities=("blackhole",))
    actions += rs.receive(ADDRESS["A"], [], [PFX])
    assert actions and all(isinstance(a, (Announce, Withdraw)) for a in actions)
    assert not any(isinstance(a, (InstallRoute, RemoveRoute)) for a in actions)
    rs.originate("192.0.2.0/24")
    assert all(rs.adj_rib_out(a).get("192.0.2.0/24") is None for a in ADDRESS.values())


def test_the_route_server_keeps_a_best_route_for_itself():
    rs = server()
    announce(rs, "A", [64601, 64999, 64998])
    announce(rs, "B", [64602, 64998])
    assert rs.best(PFX).next_hop == ADDRESS["B"]
    assert rs.loc_rib()[PFX].neighbor == ADDRESS["B"]


def test_withdrawal_falls_back_per_client():
    rs = server()
    announce(rs, "A", [64601])
    announce(rs, "B", [64602, 64999])
    assert who(rs) == {"B": "A", "C": "A", "D": "A", "A": "B"}
    actions = rs.receive(ADDRESS["A"], [], [PFX])
    b_route = from_client("B", [64602, 64999])
    # A keeps B's route (nothing to send); B had only A's; C and D move to B's.
    assert actions == [Withdraw(ADDRESS["B"], PFX), Announce(ADDRESS["C"], b_route),
                       Announce(ADDRESS["D"], b_route)]
    assert who(rs) == {"A": "B", "C": "B", "D": "B"}


def test_a_client_whose_path_does_not_start_with_its_as_is_refused():
    rs = server()
    announce(rs, "A", [64999])
    assert rs.adj_rib_in(ADDRESS["A"])[PFX].rejected == "first AS 64999 is not the neighbor's AS 64601"
    assert given(rs) == {}


# -- per-client best path, no path hiding ------------------------------------------------

def test_a_route_filtered_for_one_client_hides_no_alternative_from_it():
    rs = server()
    announce(rs, "A", [64601], communities=("0:64603",))     # A: not to C
    announce(rs, "B", [64602, 64999])                          # longer, but for everyone
    assert rs.best(PFX).next_hop == ADDRESS["A"]
    assert who(rs) == {"A": "B", "B": "A", "C": "B", "D": "A"}


def test_a_loop_for_one_client_hides_no_alternative_from_it():
    rs = server()
    announce(rs, "A", [64601, 64604])                          # D is in the path
    announce(rs, "B", [64602, 64998, 64999])
    assert who(rs) == {"A": "B", "B": "A", "C": "A", "D": "B"}


def test_changing_controls_moves_each_client_to_its_best():
    rs = server()
    announce(rs, "A", [64601])
    announce(rs, "B", [64602, 64999])
    assert who(rs)["C"] == "A"
    actions = announce(rs, "A", [64601], communities=("0:64603",))
    assert [a for a in actions if a.neighbor == ADDRESS["C"]] == [
        Announce(ADDRESS["C"], from_client("B", [64602, 64999]))]
    assert who(rs)["C"] == "B"


# -- control communities ------------------------------------------------------------

CONTROL_CASES = [
    # (id, standard communities, large communities, clients given A's route)
    ("none", (), (), {"B", "C", "D"}),
    ("0:peer", (std(0, 64603),), (), {"B", "D"}),
    ("0:peer-twice", (std(0, 64603), std(0, 64604)), (), {"B"}),
    ("0:RS", (std(0, RS_ASN),), (), set()),
    ("0:RS+RS:peer", (std(0, RS_ASN), std(RS_ASN, 64602)), (), {"B"}),
    ("0:RS+RS:peer-twice", (std(0, RS_ASN), std(RS_ASN, 64602), std(RS_ASN, 64604)), (), {"B", "D"}),
    ("RS:peer-alone-is-no-limit", (std(RS_ASN, 64602),), (), {"B", "C", "D"}),
    ("0:peer-beats-RS:peer", (std(0, RS_ASN), std(RS_ASN, 64602), std(0, 64602)), (), set()),
    ("large-RS:0:peer", (), ((RS_ASN, 0, 64603),), {"B", "D"}),
    ("large-RS:0:0", (), ((RS_ASN, 0, 0),), set()),
    ("large-RS:0:0+RS:1:peer", (), ((RS_ASN, 0, 0), (RS_ASN, 1, 64604)), {"D"}),
    ("large-mixed-with-standard", (std(0, RS_ASN),), ((RS_ASN, 1, 64603),), {"C"}),
    ("large-other-global-ignored", (), ((64999, 0, 64603), (64999, 0, 0)), {"B", "C", "D"}),
    ("standard-other-as-ignored", (std(64999, 64603),), (), {"B", "C", "D"}),
]


@pytest.mark.parametrize("communities,large,expected",
                         [pytest.param(c, l, e, id=i) for i, c, l, e in CONTROL_CASES])
def test_announce_controls(communities, large, expected):
    rs = server()
    announce(rs, "A", communities=communities, large_communities=large)
    assert set(given(rs)) == expected


PREPEND_CASES = [
    ("65501", (std(65501, 64602),), (), 1),
    ("65502", (std(65502, 64602),), (), 2),
    ("65503", (std(65503, 64602),), (), 3),
    ("largest-wins", (std(65501, 64602), std(65503, 64602)), (), 3),
    ("large-101", (), ((RS_ASN, 101, 64602),), 1),
    ("large-102", (), ((RS_ASN, 102, 64602),), 2),
    ("large-103", (), ((RS_ASN, 103, 64602),), 3),
    ("large-104-is-not-a-prepend", (), ((RS_ASN, 104, 64602),), 0),
]


@pytest.mark.parametrize("communities,large,count",
                         [pytest.param(c, l, n, id=i) for i, c, l, n in PREPEND_CASES])
def test_prepend_controls_towards_one_peer(communities, large, count):
    rs = server()
    announce(rs, "A", [64601, 64999], communities=communities, large_communities=large)
    out = given(rs)
    assert out["B"].as_path == (64601,) * (1 + count) + (64999,)
    assert out["C"].as_path == (64601, 64999) == out["D"].as_path


def test_prepending_applies_after_the_choice():
    # The route server picks each client's best on the routes as the
    # members sent them, then prepends: B is given C's route made longer
    # than A's, and it is B's own decision to weigh it against its others.
    rs = server()
    announce(rs, "A", [64601, 64998, 64999])
    announce(rs, "C", [64603, 64999], communities=("65502:64602",))
    assert who(rs) == {"A": "C", "B": "C", "C": "A", "D": "C"}
    assert given(rs)["B"].as_path == (64603, 64603, 64603, 64999)
    assert given(rs)["D"].as_path == (64603, 64999)


def test_control_communities_are_stripped_and_others_kept():
    rs = server()
    announce(rs, "A", communities=(std(0, 64603), std(RS_ASN, 64602), std(65502, 64604),
                                   std(64601, 1), BLACKHOLE, "no-export"),
             large_communities=((RS_ASN, 0, 64603), (RS_ASN, 7, 7), (64601, 0, 1)))
    out = given(rs)
    assert set(out) == {"B", "D"}
    for route in out.values():
        assert route.communities == tuple(sorted((std(64601, 1), BLACKHOLE,
                                                  std(65535, 65281))))
        assert route.large_communities == ((64601, 0, 1),)
    assert out["D"].as_path == (64601, 64601, 64601)


def test_a_route_server_with_a_four_byte_asn_is_steered_by_large_communities():
    rs = server(asn=4200000000)
    announce(rs, "A", large_communities=((4200000000, 0, 0), (4200000000, 1, 64604)),
             communities=(std(0, 64603),))
    assert set(given(rs)) == {"D"}
    out = given(rs)["D"]
    assert out.large_communities == () and out.communities == ()


# -- policy on the route server's sessions -------------------------------------------------

def test_blackhole_passes_through_without_no_export():
    rs = server()
    announce(rs, "A", communities=("blackhole",))
    out = given(rs)
    assert set(out) == {"B", "C", "D"}
    assert all(route.communities == (BLACKHOLE,) for route in out.values())


def test_blackhole_refused_from_a_client_without_it():
    rs = server(A={})
    announce(rs, "A", communities=("blackhole",))
    assert given(rs) == {}


def test_otc_on_the_route_server():
    rs = server(**{n: {"otc": True} for n in CLIENTS})
    announce(rs, "A")
    assert {route.otc for route in given(rs).values()} == {RS_ASN}
    # A route already marked keeps the first mark ...
    rs = server(**{n: {"otc": True} for n in "BCD"}, A={})
    announce(rs, "A", otc=64999)
    assert {route.otc for route in given(rs).values()} == {64999}
    # ... and a client that applies RFC 9234 may not send one.
    rs = server(**{n: {"otc": True} for n in CLIENTS})
    announce(rs, "A", otc=64999)
    assert rs.adj_rib_in(ADDRESS["A"])[PFX].rejected.startswith("route leak (RFC 9234)")


def test_max_prefix_on_a_client_session():
    rs = server(A={"max_prefix": 1})
    announce(rs, "A")
    actions = announce(rs, "A", prefix="198.51.100.0/24")
    assert actions[-1].neighbor == ADDRESS["A"] and "maximum prefixes" in actions[-1].reason
    assert all(given(rs, p) == {} for p in (PFX, "198.51.100.0/24"))


# -- members and the route server in a network --------------------------------------------

def ixp(member_policy=None, rs_policy=None):
    """Members A, B, C as RouterEngines, each a client of the route
    server; each originates one prefix."""
    engines = {"RS": server(**{n: rs_policy if rs_policy is not None else {"blackhole": True}
                               for n in CLIENTS})}
    sessions = []
    prefixes = {"A": PFX, "B": "198.51.100.0/24", "C": "192.0.2.0/24"}
    for i, name in enumerate("ABC", 1):
        rs_side = Neighbor(RS_ADDRESS, RS_ASN, Relationship.ROUTE_SERVER, "10.255.0.100",
                           ADDRESS[name], policy=parse_policy(member_policy))
        engines[name] = RouterEngine(ASN_OF[name], f"10.255.0.{i}", [rs_side])
        engines[name].originate(prefixes[name])
        sessions.append(Session(SessionEnd(name, RS_ADDRESS), SessionEnd("RS", ADDRESS[name])))
    # D is a client with no session: the route server still plans for it.
    return engines, sessions, prefixes


def test_members_learn_each_other_through_the_route_server():
    engines, sessions, prefixes = ixp()
    network = Network(engines, sessions)
    for name in "ABC":
        rib = engines[name].loc_rib()
        for other in "ABC":
            if other == name:
                continue
            route = rib[prefixes[other]]
            assert route.as_path == (ASN_OF[other],)          # no AS64700
            assert route.next_hop == ADDRESS[other]            # straight to the member
            assert route.neighbor == RS_ADDRESS and route.local_pref == 100
            assert route.relationship is Relationship.ROUTE_SERVER
    # A member gone: the others lose its prefix, the route server tells them.
    network.bring_down(network.session("A", "RS"))
    assert PFX not in engines["B"].loc_rib() and PFX not in engines["C"].loc_rib()


def test_a_member_takes_a_blackhole_from_the_route_server_only_if_it_honours_it():
    engines, sessions, _ = ixp()
    engines["A"].originate("203.0.113.128/25", communities=("blackhole",))
    Network(engines, sessions)
    assert "203.0.113.128/25" not in engines["B"].loc_rib()
    rejected = engines["B"].adj_rib_in(RS_ADDRESS)["203.0.113.128/25"].rejected
    assert "BLACKHOLE" in rejected

    engines, sessions, _ = ixp(member_policy={"blackhole": True})
    engines["A"].originate("203.0.113.128/25", communities=("blackhole",))
    Network(engines, sessions)
    route = engines["B"].best("203.0.113.128/25")
    assert route.communities == (BLACKHOLE, std(65535, 65281))   # NO_EXPORT added by B
    actions = engines["B"].session_down(RS_ADDRESS)
    assert RemoveRoute("203.0.113.128/25") in actions


def test_member_routes_towards_the_route_server_are_peer_routes():
    # A member gives the route server its own routes, not the other
    # members' routes it learned from the route server.
    engines, sessions, _ = ixp()
    Network(engines, sessions)
    assert set(engines["A"].adj_rib_out(RS_ADDRESS)) == {PFX}


def test_per_member_export_filters_choose_among_what_is_left():
    # The route server's policy towards B refuses routes from A's AS: B gets
    # C's route instead of none (the filter runs per client, before the choice).
    rs = server(B={"blackhole": True, "export": [{"match": {"origin_as": [64601]}, "action": "reject"}]},
                D={"blackhole": True, "announce": ["198.51.100.0/24"]})
    announce(rs, "A")
    announce(rs, "C", path=(64603, 64699))
    assert who(rs) == {"A": "C", "B": "C", "C": "A"}  # D: nothing outside its announce list
    announce(rs, "A", prefix="198.51.100.0/24")
    assert "198.51.100.0/24" in rs.adj_rib_out(ADDRESS["D"])
