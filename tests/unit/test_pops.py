"""ASes with several routers (PoPs) in the address plan (testbed.model.addressing)
and in the configuration rendered from it (testbed.routers.exabgp_config).

``pops_topology()`` is the shape every test here reads:

    A (AS65001): west, east, mid          X (AS65002): east, west
      west --100-- east                     east --7-- west
      west --10--- mid --20-- east
    A-west -- X-west  peering             C (AS65003, one router)
    A-east -- X-east  peering             buys transit from A at A-mid

The cheapest path from A-west to A-east is the two-hop one through A-mid
(cost 30), not the direct link (cost 100). The values below are worked out
by hand from the allocation rules the module docstring of
``testbed.model.addressing`` states, so a change of the scheme fails here.
"""

from __future__ import annotations

import ipaddress
from collections import Counter

import pytest

from testbed import Topology
from testbed.model.addressing import IgpRoute, Plan, plan
from testbed.bgp.configure import engine_from_config
from testbed.model.agent_config import agent_config
from testbed.routers.exabgp_config import config_tree, render, speaker_environment
from testbed.model.loader import load
from testbed.model.validate import problems


def pops_topology() -> Topology:
    topo = Topology("pops", hold_time=3)
    a = topo.add_as(65001, "A", pops=["west", "east", "mid"])
    x = topo.add_as(65002, "X", pops=["east", "west"])
    c = topo.add_as(65003, "C")
    topo.internal_link(a, "west", "east", cost=100)
    topo.internal_link(a, "west", "mid", cost=10)
    topo.internal_link(a, "mid", "east", cost=20)
    topo.internal_link(x, "east", "west", cost=7)
    topo.peering(a.pop("west"), x.pop("west"))
    topo.peering(a.pop("east"), x.pop("east"))
    topo.transit(a.pop("mid"), c)
    return topo


@pytest.fixture(scope="module")
def p() -> Plan:
    topo = pops_topology()
    assert problems(topo) == [], problems(topo)
    return plan(topo)


# Relationship links first (A-X west, A-X east, A-C), then the internal
# links in declaration order: link i is 10.0.0.4i/30 and fd00:0:0:i::/64,
# the first named router taking .1.
LINK = {
    ("A-west", "X-west"): 0, ("A-east", "X-east"): 1, ("A-mid", "C"): 2,
    ("A-west", "A-east"): 3, ("A-west", "A-mid"): 4, ("A-mid", "A-east"): 5,
    ("X-east", "X-west"): 6,
}


def addr4(a: str, b: str) -> str:
    """``a``'s IPv4 address on the link between routers ``a`` and ``b``."""
    i, first = (LINK[(a, b)], True) if (a, b) in LINK else (LINK[(b, a)], False)
    return f"10.0.0.{4 * i + (1 if first else 2)}"


def addr6(a: str, b: str) -> str:
    i, first = (LINK[(a, b)], True) if (a, b) in LINK else (LINK[(b, a)], False)
    return str(ipaddress.ip_address(f"fd00:0:0:{i:x}::{1 if first else 2}"))


# -- routers, router ids and loopbacks ------------------------------------------------

def test_one_router_per_pop_named_as_then_pop(p):
    assert sorted(p.routers) == sorted(["A-west", "A-east", "A-mid", "X-east", "X-west", "C"])
    assert p.systems == {"A": ("A-west", "A-east", "A-mid"), "X": ("X-east", "X-west"),
                         "C": ("C",)}
    for name in ("A-west", "A-east", "A-mid"):
        router = p.routers[name]
        assert (router.asn, router.system, router.as_name) == (65001, "A", "A")
        assert p.system_of(name) == "A"
    assert (p.routers["C"].system, p.routers["C"].as_name, p.system_of("C")) == (None, "C", "C")


def test_router_ids_follow_asn_then_pop_order(p):
    # Not name order (east < mid < west), not the order of the internal links.
    ids = {name: router.router_id for name, router in p.routers.items()}
    assert ids == {"A-west": "10.255.0.1", "A-east": "10.255.0.2", "A-mid": "10.255.0.3",
                   "X-east": "10.255.0.4", "X-west": "10.255.0.5", "C": "10.255.0.6"}


def test_routers_of_ases_with_pops_get_ipv6_loopbacks(p):
    for name, number in (("A-west", 1), ("A-east", 2), ("A-mid", 3), ("X-east", 4), ("X-west", 5)):
        router = p.routers[name]
        assert router.loopback6 == f"fd00:255::{number}"
        assert router.loopbacks[:2] == (f"10.255.0.{number}/32", f"fd00:255::{number}/128")
    # C has one router: no IPv6 loopback, and its router id alone on lo.
    assert p.routers["C"].loopback6 is None
    assert p.routers["C"].loopbacks == ("10.255.0.6/32",)


def test_the_plan_is_deterministic():
    assert plan(pops_topology()) == plan(pops_topology())


# -- links and interfaces --------------------------------------------------------------

def test_relationship_links_come_before_internal_links(p):
    private = [(l.node1, l.node2) for l in p.links if l.kind == "private"]
    internal = [(l.node1, l.ifname1, l.node2, l.ifname2) for l in p.links if l.kind == "internal"]
    assert private == [("A-west", "X-west"), ("A-east", "X-east"), ("A-mid", "C")]
    assert internal == [
        ("A-west", "to-A-east", "A-east", "to-A-west"),
        ("A-west", "to-A-mid", "A-mid", "to-A-west"),
        ("A-mid", "to-A-east", "A-east", "to-A-mid"),
        ("X-east", "to-X-west", "X-west", "to-X-east"),
    ]


def test_internal_link_interfaces_are_named_after_the_other_router(p):
    ports = {name: {port.ifname: (port.address4, port.address6) for port in router.ports}
             for name, router in p.routers.items()}
    assert set(ports["A-west"]) == {"to-X-west", "to-A-east", "to-A-mid"}
    assert set(ports["A-east"]) == {"to-X-east", "to-A-west", "to-A-mid"}
    assert set(ports["A-mid"]) == {"to-C", "to-A-west", "to-A-east"}
    assert set(ports["X-east"]) == {"to-A-east", "to-X-west"}
    assert set(ports["C"]) == {"to-A-mid"}
    for (a, b) in LINK:
        for me, other in ((a, b), (b, a)):
            assert ports[me][f"to-{other}"] == (f"{addr4(me, other)}/30", f"{addr6(me, other)}/64")
    assert ports["A-west"]["to-A-mid"] == ("10.0.0.17/30", "fd00:0:0:4::1/64")
    assert ports["X-west"]["to-X-east"] == ("10.0.0.26/30", "fd00:0:0:6::2/64")


def test_every_address_is_given_once(p):
    texts = []
    for router in p.routers.values():
        texts += [t for t in (router.lan4, router.lan6, *router.loopbacks) if t]
        texts += [a for port in router.ports for a in (port.address4, port.address6)]
    texts += [a for host in p.hosts.values() for a in (host.address4, host.address6)]
    counts = Counter(str(ipaddress.ip_interface(t).ip) for t in texts)
    assert [a for a, n in counts.items() if n > 1] == []


# -- the IGP --------------------------------------------------------------------------

def test_igp_takes_the_cheapest_path_even_with_more_hops(p):
    west = {route.router: route for route in p.routers["A-west"].igp}
    assert west == {
        "A-east": IgpRoute("A-east", "10.255.0.2", "fd00:255::2", addr4("A-mid", "A-west"),
                           addr6("A-mid", "A-west"), 30),
        "A-mid": IgpRoute("A-mid", "10.255.0.3", "fd00:255::3", addr4("A-mid", "A-west"),
                          addr6("A-mid", "A-west"), 10),
    }
    # The first hop of the two-hop path is A-mid's end of the west-mid link,
    # not A-east's end of the direct (expensive) link.
    assert west["A-east"].via4 == "10.0.0.18" and west["A-east"].via6 == "fd00:0:0:4::2"


def test_igp_routes_of_every_router(p):
    def table(name):
        return [(r.router, r.via4, r.cost) for r in p.routers[name].igp]
    # In router order (router id order), the router itself left out.
    assert table("A-east") == [("A-west", addr4("A-mid", "A-east"), 30),
                               ("A-mid", addr4("A-mid", "A-east"), 20)]
    assert table("A-mid") == [("A-west", addr4("A-west", "A-mid"), 10),
                              ("A-east", addr4("A-east", "A-mid"), 20)]
    assert table("X-east") == [("X-west", addr4("X-west", "X-east"), 7)]
    assert table("X-west") == [("X-east", addr4("X-east", "X-west"), 7)]
    assert p.routers["C"].igp == ()


def test_igp_first_hops_are_on_directly_connected_links(p):
    for router in p.routers.values():
        for route in router.igp:
            on_link = [port for port in router.ports
                       if ipaddress.ip_address(route.via4) in ipaddress.ip_interface(port.address4).network]
            assert len(on_link) == 1, (router.name, route)
            assert ipaddress.ip_address(route.via6) in ipaddress.ip_interface(on_link[0].address6).network
            assert on_link[0].ifname.startswith(f"to-{router.as_name}-"), "IGP left the AS"
            assert p.router_of(route.via4) == p.router_of(route.via6)
            assert p.system_of(p.router_of(route.via4)) == router.as_name


# -- iBGP full mesh -------------------------------------------------------------------

def test_ibgp_full_mesh_sessions_between_loopbacks(p):
    internal = [(s.a, s.address_a, s.b, s.address_b) for s in p.sessions if s.kind == "internal"]
    assert internal == [
        ("A-west", "10.255.0.1", "A-east", "10.255.0.2"),
        ("A-west", "10.255.0.1", "A-mid", "10.255.0.3"),
        ("A-east", "10.255.0.2", "A-mid", "10.255.0.3"),
        ("X-east", "10.255.0.4", "X-west", "10.255.0.5"),
    ]
    assert all(s.via is None for s in p.sessions if s.kind == "internal")
    assert p.session("A-mid", "A-west").kind == "internal"


def test_ibgp_neighbors_use_loopbacks_and_the_later_router_waits(p):
    for system, members in p.systems.items():
        for me in members:
            for other in members:
                if other == me:
                    continue
                n = p.routers[me].neighbor(other)
                assert (n.relationship, n.asn, n.system, n.peer_system) == (
                    "internal", p.routers[me].asn, system, system)
                assert (n.address, n.address6) == (p.routers[other].router_id,
                                                   p.routers[other].loopback6)
                assert (n.local_address, n.local_address6) == (p.routers[me].router_id,
                                                               p.routers[me].loopback6)
                assert (n.router_id, n.ifname, n.via) == (p.routers[other].router_id, "lo", None)
                # Exactly one side waits: the one later in router order.
                later = (ipaddress.ip_address(p.routers[me].router_id)
                         > ipaddress.ip_address(p.routers[other].router_id))
                assert n.passive == later
                assert n.passive != p.routers[other].neighbor(me).passive
    assert not p.routers["A-west"].neighbor("A-mid").passive
    assert p.routers["A-mid"].neighbor("A-west").passive
    assert p.routers["A-mid"].neighbor("A-east").passive


def test_ebgp_sessions_run_at_the_pops_they_were_placed_at(p):
    ebgp = [(s.a, s.address_a, s.b, s.address_b, s.kind) for s in p.sessions if s.kind != "internal"]
    assert ebgp == [
        ("A-west", "10.0.0.1", "X-west", "10.0.0.2", "peering"),
        ("A-east", "10.0.0.5", "X-east", "10.0.0.6", "peering"),
        ("A-mid", "10.0.0.9", "C", "10.0.0.10", "transit"),
    ]
    west = p.routers["A-west"].neighbor("X-west")
    assert (west.relationship, west.asn, west.system, west.peer_system) == ("peer", 65002, "X", "X")
    assert (west.address, west.local_address, west.ifname) == ("10.0.0.2", "10.0.0.1", "to-X-west")
    assert west.router_id == "10.255.0.5"
    # C's only neighbor is A-mid, its provider; A-mid sees C (one router: no system).
    up = p.routers["C"].neighbor("A-mid")
    assert (up.relationship, up.system, up.peer_system, up.ifname) == ("provider", "A", "A", "to-A-mid")
    down = p.routers["A-mid"].neighbor("C")
    assert (down.relationship, down.system, down.peer_system) == ("customer", None, "C")
    # A router has neighbors only where a session was placed.
    assert [n.name for n in p.routers["A-mid"].neighbors] == ["A-west", "A-east", "C"]
    assert [n.name for n in p.routers["X-west"].neighbors] == ["A-west", "X-east"]


# -- hosts, prefixes and owners -------------------------------------------------------

def test_hosts_and_prefixes_only_at_the_first_pop(p):
    west, east, mid = (p.routers[n] for n in ("A-west", "A-east", "A-mid"))
    assert west.prefixes == ("172.16.0.0/24", "2001:db8::/48")
    assert (west.lan4, west.lan6, west.host_ports) == ("172.16.0.1/24", "2001:db8::1/48", ("h1",))
    for other in (east, mid):
        assert (other.prefixes, other.lan4, other.lan6, other.host_ports) == ((), None, None, ())
    # X's first PoP is "east", as listed, although "west" peers first.
    assert p.routers["X-east"].prefixes == ("172.16.1.0/24", "2001:db8:1::/48")
    assert p.routers["X-west"].prefixes == ()
    assert sorted(p.hosts) == ["A-h1", "C-h1", "X-h1"]
    assert [l.node1 for l in p.links if l.kind == "lan"] == ["A-west", "X-east", "C"]
    host = p.hosts["A-h1"]
    assert (host.system, host.address4, host.gateway4) == ("A", "172.16.0.10/24", "172.16.0.1")


def test_prefixes_of_an_as_are_those_of_its_routers(p):
    assert p.prefixes_of("A") == ("172.16.0.0/24", "2001:db8::/48")
    assert p.prefixes_of("X") == ("172.16.1.0/24", "2001:db8:1::/48")
    assert p.prefixes_of("C") == ("172.16.2.0/24", "2001:db8:2::/48")
    assert p.prefixes_of("nobody") == ()
    assert p.hosts_of("A") == [p.hosts["A-h1"]]


def test_owner_of_names_the_as_and_router_of_the_router(p):
    cases = {
        "10.255.0.3": ("A", "A-mid"),           # router id
        "fd00:255::2": ("A", "A-east"),         # IPv6 loopback
        "10.0.0.18": ("A", "A-mid"),            # internal link, A-mid's end
        "fd00:0:0:6::2": ("X", "X-west"),       # internal link of X
        "10.0.0.10": ("C", "C"),                # C's end of its link to A-mid
        "172.16.0.1": ("A", "A-west"),          # LAN address of the first PoP
    }
    for address, (system, router) in cases.items():
        assert (p.owner_of(address), p.router_of(address)) == (system, router), address
    # A host, or any address of an AS's prefix, belongs to the AS, not to a
    # router, and is no router's address.
    for address in ("172.16.0.10", "2001:db8::a", "172.16.0.200"):
        assert p.owner_of(address) == "A", address
        assert p.router_of(address) is None
    assert p.owner_of("172.16.1.10") == "X"
    assert p.owner_of("8.8.8.8") is None and p.router_of("8.8.8.8") is None


def test_router_owners_covers_every_router_address(p):
    for router in p.routers.values():
        for address in router.addresses:
            assert p.router_of(address) == router.name, address
            assert p.owners[address] == router.as_name, address


# -- an AS with a single PoP ----------------------------------------------------------

def test_a_single_pop_is_one_router_named_after_it():
    topo = Topology("one_pop")
    s = topo.add_as(65001, "S", pops=["only"])
    topo.add_as(65002, "B")
    topo.peering(s.pop("only"), "B")
    assert problems(topo) == []
    q = plan(topo)
    assert q.systems == {"S": ("S-only",), "B": ("B",)}
    router = q.routers["S-only"]
    assert (router.system, router.loopback6, router.igp) == ("S", None, ())
    assert [n.relationship for n in router.neighbors] == ["peer"]
    assert q.routers["B"].neighbor("S-only").peer_system == "S"
    assert [s.kind for s in q.sessions] == ["peering"]
    assert router.prefixes == q.prefixes_of("S") != ()


# -- ExaBGP and agent configuration ---------------------------------------------------

def test_ibgp_neighbor_renders_with_the_local_as_and_the_loopback(p):
    tree = config_tree(p.routers["A-west"], 3, ["agent"])
    ibgp = tree["neighbor 10.255.0.3"]
    assert ibgp["peer-as"] == ibgp["local-as"] == 65001
    assert ibgp["local-address"] == "10.255.0.1"
    assert ibgp["router-id"] == "10.255.0.1"
    assert ibgp["passive"] == "false"
    assert ibgp["description"] == '"A-west to A-mid (internal)"'
    ebgp = tree["neighbor 10.0.0.2"]
    assert (ebgp["peer-as"], ebgp["local-as"], ebgp["local-address"]) == (65002, 65001, "10.0.0.1")
    assert set(tree) == {"process agent", "neighbor 10.255.0.2", "neighbor 10.255.0.3",
                         "neighbor 10.0.0.2"}
    # The later router waits for the earlier one.
    assert config_tree(p.routers["A-mid"], 3, ["agent"])["neighbor 10.255.0.1"]["passive"] == "true"
    text = render(tree)
    block = text[text.index("neighbor 10.255.0.3 {"):]
    block = block[:block.index("\n    }\n")]
    assert "local-address 10.255.0.1;" in block
    assert "local-as 65001;" in block and "peer-as 65001;" in block


def test_speaker_listens_on_its_loopback_for_ibgp(p):
    bind = speaker_environment(p.routers["A-mid"], "lab")["exabgp_tcp_bind"].split()
    assert sorted(bind) == sorted(["10.255.0.3", "10.0.0.9"])


def test_agent_config_carries_the_igp_for_both_families(p):
    config = agent_config(p, p.routers["A-west"], "/sock", "/log")
    assert config["igp"] == {
        "10.255.0.2": {"cost": 30, "via": "10.0.0.18"},
        "fd00:255::2": {"cost": 30, "via": "fd00:0:0:4::2"},
        "10.255.0.3": {"cost": 10, "via": "10.0.0.18"},
        "fd00:255::3": {"cost": 10, "via": "fd00:0:0:4::2"},
    }
    internal = [n for n in config["neighbors"] if n["relationship"] == "internal"]
    assert [(n["name"], n["address"], n["asn"], n["local_address"]) for n in internal] == [
        ("A-east", "10.255.0.2", 65001, "10.255.0.1"), ("A-mid", "10.255.0.3", 65001, "10.255.0.1")]
    assert agent_config(p, p.routers["C"], "/sock", "/log")["igp"] == {}


def test_engine_from_the_agent_config_knows_the_igp_costs(p):
    engine = engine_from_config(agent_config(p, p.routers["A-east"], "", ""))
    assert engine.igp == {"10.255.0.1": 30, "fd00:255::1": 30, "10.255.0.3": 20, "fd00:255::3": 20}
    assert engine.neighbors["10.255.0.1"].ibgp and not engine.neighbors["10.0.0.6"].ibgp


# -- single-router topologies are unchanged -------------------------------------------

@pytest.mark.parametrize("name", ["triangle", "ixp", "route_server"])
def test_single_router_topologies_have_no_pop_fields(name):
    q = plan(load(name))
    assert q.systems == {r: (r,) for r in q.routers}
    for router in q.routers.values():
        assert (router.system, router.loopback6, router.igp) == (None, None, ())
        assert router.as_name == router.name == q.system_of(router.name)
        assert not any(l.startswith("fd00:255:") for l in router.loopbacks)
        for neighbor in router.neighbors:
            assert neighbor.system is None, (router.name, neighbor.name)
            assert neighbor.peer_system == neighbor.name
            assert neighbor.relationship != "internal" and neighbor.ifname != "lo"
        config = agent_config(q, router, "", "")
        assert config["igp"] == {}
    assert all(s.kind != "internal" for s in q.sessions)
    assert all(l.kind != "internal" for l in q.links)
    # Owners by router and by AS are the same map when every AS is one router.
    assert q.router_owners == q.owners
