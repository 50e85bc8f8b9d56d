"""The relationship kinds beyond transit and peering: paid peering, partial
transit and IXP route servers, from the topology model through the address
plan (testbed.model.addressing) to the converged state the lab must reach
(testbed.model.prediction), and validation of what they add (per-relationship
policy, ROAs, the rov/otc flags).

Each AS declares one IPv4 prefix, 192.0.2.0/24-style by index, so that the
predicted Loc-RIBs can be read as "which AS's prefix does this router
reach, and how".
"""

from __future__ import annotations

import re
import sys

import pytest

from testbed import Topology
from testbed.model.addressing import PAID_PEERING_LOCAL_PREF, plan
from testbed.bgp.configure import engine_from_config
from testbed.bgp import RouteServerEngine
from testbed.model.prediction import Expectation
from testbed.model.agent_config import agent_config
from testbed.model.validate import problems

LOCATION = re.compile(r"^[^:]+:\d+: ")


def prefix_of(index: int) -> str:
    return f"198.18.{index}.0/24"


def build(name: str, systems: dict[str, int]) -> tuple[Topology, dict[str, str]]:
    """A topology with ``systems`` (name -> ASN), each originating one
    prefix; returns it and name -> prefix."""
    topo = Topology(name)
    prefixes = {}
    for index, (system, asn) in enumerate(systems.items(), 1):
        prefixes[system] = prefix_of(index)
        topo.add_as(asn, system, [prefixes[system]])
    return topo, prefixes


def ribs(topo: Topology) -> dict[str, dict[str, dict]]:
    assert problems(topo) == [], problems(topo)
    return Expectation(plan(topo)).loc_ribs()


def reach(rib: dict[str, dict], prefixes: dict[str, str]) -> dict[str, tuple]:
    """AS name -> the AS path this Loc-RIB reaches its prefix by."""
    return {name: tuple(rib[p]["as_path"]) for name, p in prefixes.items() if p in rib}


def texts(topo: Topology) -> list[str]:
    """The problems of ``topo`` without their file:line."""
    return [LOCATION.sub("", p) for p in problems(topo)]


# -- paid peering --------------------------------------------------------------------

PAID = {"T": 64500, "A": 64501, "B": 64502, "C": 64503, "X": 64510}


def paid_topology(paid: bool, policy=None) -> tuple[Topology, dict[str, str]]:
    """T is everyone's provider; A peers with B (paying B if ``paid``) and
    freely with C; X is a customer of both B and C."""
    topo, prefixes = build("paid", PAID)
    for member in "ABC":
        topo.transit("T", member)
    if paid:
        topo.paid_peering("A", "B", policy=policy)
    else:
        topo.peering("A", "B")
    topo.peering("A", "C")
    topo.transit("B", "X")
    topo.transit("C", "X")
    return topo, prefixes


def test_paid_peering_plan_gives_the_payer_local_pref_90():
    topo, _ = paid_topology(paid=True)
    assert problems(topo) == []
    addresses = plan(topo)
    payer, payee = addresses.routers["A"].neighbor("B"), addresses.routers["B"].neighbor("A")
    assert PAID_PEERING_LOCAL_PREF == 90
    assert (payer.relationship, payer.policy) == ("peer", {"local_pref": 90})
    assert (payee.relationship, payee.policy) == ("peer", None)
    assert addresses.session("A", "B").kind == "paid-peering"


def test_paid_peering_user_local_pref_wins_and_other_knobs_are_kept():
    topo, _ = paid_topology(paid=True, policy={"A": {"local_pref": 120, "med": 5},
                                               "B": {"prepend": 1}})
    addresses = plan(topo)
    assert addresses.routers["A"].neighbor("B").policy == {"local_pref": 120, "med": 5}
    assert addresses.routers["B"].neighbor("A").policy == {"prepend": 1}


def test_the_payer_prefers_a_free_peer_and_the_paid_peer_over_transit():
    topo, prefixes = paid_topology(paid=True)
    rib = ribs(topo)["A"]
    b_route = rib[prefixes["B"]]
    assert (b_route["as_path"], b_route["local_pref"]) == ([64502], 90)   # over T's 50
    x_route = rib[prefixes["X"]]
    assert (x_route["as_path"], x_route["local_pref"]) == ([64503, 64510], 100)  # free C over paid B
    # The payee treats the payer as any peer.
    assert ribs(topo)["B"][prefixes["A"]]["local_pref"] == 100


def test_without_payment_the_tie_goes_to_the_lower_router_id():
    topo, prefixes = paid_topology(paid=False)
    assert ribs(topo)["A"][prefixes["X"]]["as_path"] == [64502, 64510]


def test_paid_peering_exchanges_peer_routes_only():
    topo, prefixes = paid_topology(paid=True)
    all_ribs = ribs(topo)
    # B does not give A its provider's routes, A does not give T B's.
    assert all_ribs["A"][prefixes["T"]]["as_path"] == [64500]
    assert all_ribs["T"][prefixes["B"]]["as_path"] == [64502]


# -- partial transit ------------------------------------------------------------------

PARTIAL = {"T1": 64500, "P": 64501, "Q": 64502, "K": 64503, "R": 64504, "Z": 64509}


def partial_topology(partial: bool, policy=None) -> tuple[Topology, dict[str, str]]:
    """T1 is the provider of P and Z; P peers with Q, sells K full transit
    and R partial transit (or full, if not ``partial``)."""
    topo, prefixes = build("partial", PARTIAL)
    topo.transit("T1", "P")
    topo.transit("T1", "Z")
    topo.peering("P", "Q")
    topo.transit("P", "K")
    if partial:
        topo.partial_transit("P", "R", policy=policy)
    else:
        topo.transit("P", "R")
    return topo, prefixes


def test_partial_transit_plan_adds_export_terms_on_both_sides_of_the_provider():
    topo, _ = partial_topology(partial=True)
    assert problems(topo) == []
    addresses = plan(topo)
    to_customer = addresses.routers["P"].neighbor("R")
    assert to_customer.relationship == "customer"
    assert to_customer.policy == {"export": [{"match": {"learned_from": ["provider"]}, "action": "reject"}]}
    to_provider = addresses.routers["P"].neighbor("T1")
    assert to_provider.policy == {"export": [{"match": {"from_asn": [64504]}, "action": "reject"}]}
    # Peers and other customers of P, and R itself, get no extra terms.
    assert addresses.routers["P"].neighbor("Q").policy is None
    assert addresses.routers["P"].neighbor("K").policy is None
    assert addresses.routers["R"].neighbor("P").relationship == "provider"
    assert addresses.routers["R"].neighbor("P").policy is None
    assert addresses.session("P", "R").kind == "partial-transit"


def test_partial_transit_routes():
    topo, prefixes = partial_topology(partial=True)
    all_ribs = ribs(topo)
    # The customer gets the provider's own, its peers' and its customers' routes ...
    assert reach(all_ribs["R"], prefixes) == {
        "P": (64501,), "Q": (64501, 64502), "K": (64501, 64503), "R": ()}
    # ... and its routes go to the provider's peers and customers only.
    assert reach(all_ribs["Q"], prefixes)["R"] == (64501, 64504)
    assert reach(all_ribs["K"], prefixes)["R"] == (64501, 64504)
    assert "R" not in reach(all_ribs["T1"], prefixes)
    assert "R" not in reach(all_ribs["Z"], prefixes)
    # P itself uses R's routes, and its full-transit customer K reaches everyone.
    assert reach(all_ribs["P"], prefixes)["R"] == (64504,)
    assert set(reach(all_ribs["K"], prefixes)) == set(PARTIAL)


def test_full_transit_for_comparison():
    topo, prefixes = partial_topology(partial=False)
    all_ribs = ribs(topo)
    assert set(reach(all_ribs["R"], prefixes)) == set(PARTIAL)
    assert reach(all_ribs["T1"], prefixes)["R"] == (64501, 64504)


def test_partial_transit_terms_come_before_the_user_s():
    # A user's accept-everything term cannot undo partial transit.
    topo, prefixes = partial_topology(partial=True, policy={"P": {"export": [{"action": "accept"}]}})
    policy = plan(topo).routers["P"].neighbor("R").policy
    assert policy["export"] == [{"match": {"learned_from": ["provider"]}, "action": "reject"},
                                {"action": "accept"}]
    assert "T1" not in reach(ribs(topo)["R"], prefixes)


def test_two_partial_transit_customers_are_both_kept_from_the_provider_s_providers():
    topo, prefixes = partial_topology(partial=True)
    topo.add_as(64505, "S", [prefix_of(9)])
    topo.partial_transit("P", "S")
    prefixes["S"] = prefix_of(9)
    assert plan(topo).routers["P"].neighbor("T1").policy == {
        "export": [{"match": {"from_asn": [64504, 64505]}, "action": "reject"}]}
    all_ribs = ribs(topo)
    assert "S" not in reach(all_ribs["T1"], prefixes)
    # Each partial customer is the other's provider's customer: they see each other.
    assert reach(all_ribs["R"], prefixes)["S"] == (64501, 64505)


# -- route servers -------------------------------------------------------------------

def rs_topology(**rs_kwargs) -> tuple[Topology, dict[str, str]]:
    """A, B, C are clients of RS (AS64700) at IXP ix; T is A's provider;
    A and C also peer bilaterally across ix."""
    topo, prefixes = build("rs", {"T": 64600, "A": 64601, "B": 64602, "C": 64603})
    ix = topo.add_ixp("ix", lan4="100.64.0.0/24", lan6="2001:db8:ffff::/64")
    rs = topo.add_route_server(64700, "RS", ix, **rs_kwargs)
    for member in "ABC":
        topo.route_server_client(member, rs)
    topo.transit("T", "A")
    topo.peering("A", "C", via=ix)
    return topo, prefixes


def test_route_server_plan():
    topo, _ = rs_topology()
    assert problems(topo) == []
    addresses = plan(topo)
    server = addresses.routers["RS"]
    assert server.route_server and server.asn == 64700
    assert server.prefixes == () and server.host_ports == () and server.lan4 is None
    assert addresses.hosts_of("RS") == []
    # On the IXP LAN, in ASN order: A .1, B .2, C .3, RS .4.
    assert addresses.ixps["ix"].members == ("A", "B", "C", "RS")
    assert [p.address4 for p in server.ports] == ["100.64.0.4/24"]
    assert [(n.name, n.relationship, n.via, n.address, n.policy) for n in server.neighbors] == [
        ("A", "rs-client", "ix", "100.64.0.1", {"blackhole": True}),
        ("B", "rs-client", "ix", "100.64.0.2", {"blackhole": True}),
        ("C", "rs-client", "ix", "100.64.0.3", {"blackhole": True}),
    ]
    member = addresses.routers["B"].neighbor("RS")
    assert (member.relationship, member.via, member.address, member.local_address, member.policy) == (
        "route-server", "ix", "100.64.0.4", "100.64.0.2", None)
    assert member.ifname == "ix-ix"
    session = addresses.session("B", "RS")
    assert (session.kind, session.via, session.address_b) == ("route-server", "ix", "100.64.0.4")
    assert not addresses.routers["B"].route_server


def test_the_route_server_runs_the_route_server_engine():
    topo, _ = rs_topology()
    addresses = plan(topo)
    engine = engine_from_config(agent_config(addresses, addresses.routers["RS"], "", ""))
    assert isinstance(engine, RouteServerEngine)
    assert not isinstance(engine_from_config(agent_config(addresses, addresses.routers["A"], "", "")),
                          RouteServerEngine)


def test_members_reach_each_other_through_the_route_server():
    topo, prefixes = rs_topology()
    all_ribs = ribs(topo)
    b_at_c = all_ribs["C"][prefixes["B"]]
    assert b_at_c["as_path"] == [64602]                  # the route server adds no AS
    assert b_at_c["next_hop"] == "100.64.0.2"            # B itself, not the route server
    assert b_at_c["neighbor"] == "100.64.0.4" and b_at_c["relationship"] == "route-server"
    # A's prefix at C comes both bilaterally and through the route server,
    # equal up to the router id: A's (10.255.0.2) beats the route server's.
    a_at_c = all_ribs["C"][prefixes["A"]]
    assert (a_at_c["as_path"], a_at_c["neighbor"]) == ([64601], "100.64.0.1")
    # A gives the route server only its own and its customers' routes, not
    # its provider's; and gives its provider nothing learned at the IXP.
    assert all_ribs["A"][prefixes["T"]]["as_path"] == [64600]
    assert prefixes["T"] not in all_ribs["B"]
    assert prefixes["B"] not in all_ribs["T"]
    # The route server itself holds every member's route and originates nothing.
    assert sorted(all_ribs["RS"]) == sorted(prefixes[m] for m in "ABC")


def test_members_ipv6_routes_keep_the_member_s_ipv6_next_hop():
    topo, prefixes = rs_topology()
    topo.system("B").prefixes = [prefixes["B"], "2001:db8:2::/48"]
    all_ribs = ribs(topo)
    assert all_ribs["C"]["2001:db8:2::/48"]["next_hop"] == "2001:db8:ffff::2"


def test_a_route_server_flag_reaches_its_sessions():
    topo, _ = rs_topology(otc=True)
    for neighbor in plan(topo).routers["RS"].neighbors:
        assert neighbor.policy == {"otc": True, "blackhole": True}


def test_the_shipped_route_server_topology():
    from testbed.model.loader import load

    topo = load("route_server")
    addresses = plan(topo)
    assert addresses.routers["RS"].route_server
    all_ribs = Expectation(addresses).loc_ribs()
    b_prefixes = addresses.routers["B"].prefixes
    for prefix in b_prefixes:
        assert all_ribs["A"][prefix]["neighbor"] == addresses.routers["A"].neighbor("RS").address


# -- AS flags and ROAs in the plan ---------------------------------------------------------

def test_rov_and_otc_flags_become_session_policy_and_roas_reach_the_plan():
    topo, prefixes = build("flags", {"A": 64501, "B": 64502})
    topo.system("A").rov = True
    topo.system("B").otc = True
    topo.peering("A", "B", policy={"A": {"rov": False, "med": 3}})
    topo.roa(prefixes["B"], 64502, 25)
    topo.roa("2001:db8::/32", 64503)  # AS 0 is refused like on an AS (issue 15)
    assert problems(topo) == []
    addresses = plan(topo)
    assert addresses.routers["A"].neighbor("B").policy == {"rov": False, "med": 3}   # the user's word wins
    assert addresses.routers["B"].neighbor("A").policy == {"otc": True}
    assert addresses.roas == ({"prefix": prefixes["B"], "asn": 64502, "max_length": 25},
                              {"prefix": "2001:db8::/32", "asn": 64503})


def test_rov_drops_a_hijack_in_the_prediction():
    topo, prefixes = build("rov", {"T": 64500, "V": 64501, "H": 64666})
    topo.transit("T", "V")
    topo.transit("T", "H")
    topo.roa(prefixes["V"], 64501)
    hijack = prefixes["V"].replace("/24", "/25")   # a more-specific of V's prefix, from H

    def t_rib():
        assert problems(topo) == []
        expectation = Expectation(plan(topo))
        expectation.set_origin("H", hijack, True)
        return expectation.loc_ribs()["T"]

    assert t_rib()[hijack]["as_path"] == [64666]
    topo.system("T").rov = True
    assert hijack not in t_rib()
    assert t_rib()[prefixes["V"]]["as_path"] == [64501]
    assert t_rib()[prefixes["H"]]["as_path"] == [64666]   # not found: kept


# -- validation ------------------------------------------------------------------------

def pair() -> Topology:
    topo = Topology("v")
    topo.add_as(65001, "A")
    topo.add_as(65002, "B")
    return topo


def test_policy_for_an_as_not_in_the_relationship():
    topo = pair()
    topo.add_as(65003, "C")
    topo.transit("A", "C")
    topo.peering("A", "B", policy={"C": {"med": 1}})
    assert texts(topo) == [("peering A -- B: policy for 'C', which is not an end of this "
                            "relationship ('A' or 'B')")]


def test_policy_that_is_not_a_mapping():
    topo = pair()
    topo.peering("A", "B", policy={"med": 1}.items())
    (problem,) = texts(topo)
    assert problem.startswith("peering A -- B: policy must map an AS name of the relationship to its policy")


@pytest.mark.parametrize("policy,message", [
    ({"B": {"weight": 1}}, "paid-peering A -> B: policy of B: unknown key 'weight' (known: "),
    ({"A": {"import": [{"match": {"prefix": ["192.0.2.1/24"]}, "action": "reject"}]}},
     "paid-peering A -> B: policy of A.import[0].match.prefix[0]: '192.0.2.1/24': 192.0.2.1/24 has host bits set"),
    ({"A": {"export": [{"set": {"local_pref": 5}}]}},
     "paid-peering A -> B: policy of A.export[0].set.local_pref: local_pref is set on import"),
    ({"A": "reject-all"}, "paid-peering A -> B: policy of A: 'reject-all' must be a dict"),
    ({"A": {"max_prefix": 0}, "B": {"otc": "yes"}}, "paid-peering A -> B: policy of A.max_prefix: 0 must be"),
])
def test_bad_policy_names_the_relationship_the_end_and_the_field(policy, message):
    topo = pair()
    topo.paid_peering("A", "B", policy=policy)
    found = texts(topo)
    assert any(p.startswith(message) for p in found), found


def test_every_bad_end_is_reported():
    topo = pair()
    topo.peering("A", "B", policy={"A": {"med": -1}, "B": {"otc": "yes"}})
    assert texts(topo) == ["peering A -- B: policy of A.med: -1 must be a whole number in 0..4294967295",
                           "peering A -- B: policy of B.otc: 'yes' must be True or False"]


def rs_pair() -> Topology:
    topo = pair()
    topo.add_ixp("ix")
    topo.add_route_server(64700, "RS", "ix")
    topo.route_server_client("A", "RS")
    return topo


@pytest.mark.parametrize("relate,message", [
    (lambda t: t.transit("RS", "B"),
     "transit RS -> B: 'RS' is a route server: it only has route-server clients (route_server_client)"),
    (lambda t: t.transit("B", "RS"),
     "transit B -> RS: 'RS' is a route server: it only has route-server clients"),
    (lambda t: t.peering("B", "RS", via="ix"),
     "peering B -- RS via ix: 'RS' is a route server"),
    (lambda t: t.partial_transit("B", "RS"),
     "partial-transit B -> RS: 'RS' is a route server"),
    (lambda t: t.route_server_client("B", "A"),
     "route-server client B of A: 'A' is not a route server (declare it with add_route_server)"),
    (lambda t: (t.add_route_server(64701, "RS2", "ix"), t.route_server_client("RS2", "RS")),
     "route-server client RS2 of RS: a route server cannot be the client of another"),
    (lambda t: t.route_server_client("B", "Nobody"), "route-server client B of Nobody: no AS named 'Nobody'"),
    (lambda t: t.relate("route-server", "B", "A"), "route-server client B of A: 'A' is not a route server"),
])
def test_route_server_relationship_problems(relate, message):
    topo = rs_pair()
    topo.peering("A", "B")
    relate(topo)
    found = texts(topo)
    assert message in "\n".join(found), found


def test_route_server_with_an_unknown_ixp():
    topo = pair()
    topo.peering("A", "B")
    topo.add_route_server(64700, "RS", "nowhere")
    topo.route_server_client("A", "RS")
    found = texts(topo)
    assert "route server 'RS': no IXP named 'nowhere'" in found
    # The one mistake is not also reported as a session across a missing IXP.
    assert not any("no IXP named" in p and "route-server client" in p for p in found), found


def test_a_valid_route_server_topology_has_no_problem():
    topo = rs_pair()
    topo.route_server_client("B", "RS")
    topo.peering("A", "B", via="ix")
    assert problems(topo) == []


@pytest.mark.parametrize("roa,message", [
    (("192.0.2.1/24", 65001), "ROA.prefix: '192.0.2.1/24': 192.0.2.1/24 has host bits set"),
    (("not-a-prefix", 65001), "ROA.prefix: 'not-a-prefix'"),
    (("192.0.2.0/24", 65001, 33), "ROA.max_length: 33 must be a whole number in 24..32"),
    (("192.0.2.0/24", 65001, 16), "ROA.max_length: 16 must be a whole number in 24..32"),
    (("2001:db8::/32", 65001, 129), "ROA.max_length: 129 must be a whole number in 32..128"),
    (("192.0.2.0/24", -1), "ROA.asn: -1 must be a whole number in 0..4294967294"),
    (("192.0.2.0/24", 2**32), "ROA.asn: 4294967296 must be a whole number in 0..4294967294"),
    (("192.0.2.0/24", "AS65001"), "ROA.asn: 'AS65001' must be a whole number"),
])
def test_bad_roas(roa, message):
    topo = pair()
    topo.peering("A", "B")
    topo.roa(*roa)
    (problem,) = texts(topo)
    assert problem.startswith(message), problem


def test_roa_problems_start_with_the_roa_s_line():
    topo = pair()
    topo.peering("A", "B")
    topo.roa("192.0.2.0/24", 65001, 8); line = sys._getframe().f_lineno  # noqa: E702
    (problem,) = problems(topo)
    assert re.match(rf"^[^:]+test_topology_kinds\.py:{line}: ROA\.max_length", problem), problem


@pytest.mark.parametrize("flag,value", [("rov", "yes"), ("otc", 1), ("rov", None)])
def test_rov_and_otc_must_be_bool(flag, value):
    topo = pair()
    topo.peering("A", "B")
    setattr(topo.system("A"), flag, value)
    assert texts(topo) == [f"AS 'A': {flag} must be True or False, not {value!r}"]


def test_partial_transit_takes_part_in_the_cycle_check():
    topo = pair()
    topo.add_as(65003, "C")
    topo.transit("A", "B")
    topo.partial_transit("B", "C")
    topo.transit("C", "A")
    (problem,) = texts(topo)
    assert "transit relationships form a cycle" in problem and "A -> B -> C -> A" in problem
