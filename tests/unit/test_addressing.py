"""The address plan (testbed.model.addressing): deterministic, collision-free and
consistent between the two ends of every session.

The shipped topologies are checked for the properties every plan must have;
small topologies built here pin concrete addresses, so a change of the
allocation scheme shows up as a failing test, not as a silent renumbering.
"""

from __future__ import annotations

import ipaddress
from collections import Counter

import pytest

from testbed import Topology
from testbed.model.addressing import (
    DEFAULT_PREFIXES4,
    DEFAULT_PREFIXES6,
    IXPS4,
    IXPS6,
    ROUTER_IDS,
    Plan,
    plan,
)
from testbed.model.loader import load
from testbed.model.validate import problems

SHIPPED = ["triangle", "ixp", "tier1_partition"]
MIRROR = {"customer": "provider", "provider": "customer", "peer": "peer"}


def checked(topo: Topology) -> Plan:
    assert problems(topo) == [], problems(topo)
    return plan(topo)


@pytest.fixture(params=SHIPPED)
def shipped(request) -> Plan:
    return plan(load(request.param))


def ixp_topology(reverse: bool = False) -> Topology:
    """The shape of topologies/ixp.py plus a private peering, declared in
    either order (ASes, IXPs, relationships and the ends of each peering)."""
    topo = Topology("ixp_like", hold_time=3)
    systems = [(64600, "T"), (64601, "A"), (64602, "B"), (64603, "C")]
    relations = [("transit", "T", "A", None), ("transit", "T", "B", None),
                 ("transit", "T", "C", None), ("peering", "A", "B", "ix"),
                 ("peering", "A", "C", "ix"), ("peering", "B", "C", "ix"),
                 ("peering", "C", "T", None)]
    if reverse:
        systems.reverse()
        relations = [(k, b, a, via) if k == "peering" else (k, a, b, via)
                     for k, a, b, via in reversed(relations)]
        relations = [r for r in relations if r[0] == "transit"] + [r for r in relations if r[0] != "transit"]
    for asn, name in systems:
        topo.add_as(asn, name)
    topo.add_ixp("ix")
    for kind, a, b, via in relations:
        if kind == "transit":
            topo.transit(a, b, via=via)
        else:
            topo.peering(a, b, via=via)
    return topo


def all_addresses(p: Plan) -> list[tuple[str, str]]:
    """(address, holder) for every address a router or host is given; an
    address given twice to one router appears twice (RouterPlan.addresses
    would fold it)."""
    found = []
    for r in p.routers.values():
        texts = [r.lan4, r.lan6, *r.loopbacks]   # the loopbacks hold the router id
        texts += [a for port in r.ports for a in (port.address4, port.address6)]
        found += [(str(ipaddress.ip_interface(t).ip), f"router {r.name}") for t in texts if t]
    for host in p.hosts.values():
        found += [(ip, f"host {host.name}") for ip in (host.ip4, host.ip6) if ip]
    return found


# -- determinism -------------------------------------------------------------------

@pytest.mark.parametrize("name", SHIPPED)
def test_plan_is_deterministic(name):
    topo = load(name)
    first, second = plan(topo), plan(topo)
    assert first == second
    assert plan(load(name)) == first


def test_declaration_order_does_not_change_the_plan():
    forward, backward = plan(ixp_topology()), plan(ixp_topology(reverse=True))
    for a, b in [("T", "A"), ("T", "B"), ("T", "C"), ("A", "B"), ("A", "C"), ("B", "C")]:
        s1, s2 = forward.session(a, b), backward.session(b, a)
        assert (s1.a, s1.address_a, s1.b, s1.address_b) == (s2.a, s2.address_a, s2.b, s2.address_b)
    assert forward.routers == backward.routers
    assert forward.hosts == backward.hosts
    assert forward.ixps == backward.ixps
    assert forward.owners == backward.owners
    assert sorted(forward.links, key=repr) == sorted(backward.links, key=repr)


def test_triangle_addresses_are_pinned():
    p = plan(load("triangle"))
    assert {(s.a, s.address_a, s.b, s.address_b, s.kind) for s in p.sessions} == {
        ("T", "10.0.0.1", "A", "10.0.0.2", "transit"),
        ("T", "10.0.0.5", "B", "10.0.0.6", "transit"),
        ("A", "10.0.0.9", "B", "10.0.0.10", "peering"),
    }
    assert {n: r.router_id for n, r in p.routers.items()} == {
        "T": "10.255.0.1", "A": "10.255.0.2", "B": "10.255.0.3"}
    a = p.routers["A"]
    assert [(port.ifname, port.address4, port.address6) for port in a.ports] == [
        ("to-T", "10.0.0.2/30", "fd00::2/64"), ("to-B", "10.0.0.9/30", "fd00:0:0:2::1/64")]


# -- uniqueness ----------------------------------------------------------------------

def test_router_ids_are_unique_and_from_their_pool(shipped):
    ids = [r.router_id for r in shipped.routers.values()]
    assert len(set(ids)) == len(ids), ids
    for rid in ids:
        assert ipaddress.ip_address(rid) in ROUTER_IDS
        assert f"{rid}/32" in shipped.routers[shipped.owner_of(rid)].loopbacks


def test_every_address_is_unique(shipped):
    found = all_addresses(shipped)
    counts = Counter(a for a, _ in found)
    dupes = {a: [h for x, h in found if x == a] for a, n in counts.items() if n > 1}
    assert not dupes, f"addresses given twice: {dupes}"


def test_every_address_is_unique_in_a_larger_plan():
    topo = Topology("bigger")
    for k in range(12):
        topo.add_as(65001 + k, f"N{k}", hosts=k % 3)
    ix1, ix2 = topo.add_ixp("ixa"), topo.add_ixp("ixb", lan4="203.0.113.0/24")
    for k in range(1, 12):
        topo.transit("N0", f"N{k}")
    for k in range(1, 11):
        topo.peering(f"N{k}", f"N{k + 1}", via=ix1 if k % 2 else ix2)
    p = checked(topo)
    found = all_addresses(p)
    assert len(found) == len({a for a, _ in found}), Counter(a for a, _ in found).most_common(3)
    assert p.ixps["ixa"].lan4 == "10.1.0.0/24" and p.ixps["ixb"].lan4 == "203.0.113.0/24"
    assert p.ixps["ixb"].lan6 == "fd00:1:0:1::/64"   # index 1 of the pool: IXPs are sorted by name


def test_interface_names_fit_the_kernel_limit():
    topo = Topology("long_names")
    topo.add_as(65001, "ABCDEFGHIJKL", hosts=2)
    topo.add_as(65002, "MNOPQRSTUVWX", hosts=["a-host-name-of-thirty-two-chars1"])
    topo.add_as(65003, "Short")
    ix = topo.add_ixp("IXPIXPIXPIXP")
    topo.transit("ABCDEFGHIJKL", "MNOPQRSTUVWX")
    topo.peering("MNOPQRSTUVWX", "Short", via=ix)
    topo.peering("ABCDEFGHIJKL", "Short", via=ix)
    p = checked(topo)
    names = [(link.node1, link.ifname1) for link in p.links] + [(link.node2, link.ifname2) for link in p.links]
    assert ("ABCDEFGHIJKL", "to-MNOPQRSTUVWX") in names
    assert ("Short", "ix-IXPIXPIXPIXP") in names
    for node, ifname in names:
        assert 1 <= len(ifname) <= 15, f"{node}: interface {ifname!r} is {len(ifname)} characters"
        assert ifname.isascii() and "/" not in ifname and " " not in ifname
    assert len(set(names)) == len(names), "an interface name is used twice on one node"
    for router in p.routers.values():
        for port in router.ports:
            assert len(port.ifname) <= 15


def test_interface_names_of_shipped_topologies(shipped):
    for link in shipped.links:
        for name in (link.ifname1, link.ifname2):
            assert len(name) <= 15, link


# -- sessions --------------------------------------------------------------------------

def test_sessions_have_exactly_one_passive_side(shipped):
    for s in shipped.sessions:
        from_a = shipped.routers[s.a].neighbor(s.b)
        from_b = shipped.routers[s.b].neighbor(s.a)
        assert [from_a.passive, from_b.passive].count(True) == 1, s


def test_neighbor_relationships_are_mirrored(shipped):
    count = 0
    for router in shipped.routers.values():
        for n in router.neighbors:
            back = shipped.routers[n.name].neighbor(router.name)
            assert back.relationship == MIRROR[n.relationship], (router.name, n.name)
            # the two ends agree on every address and identity
            assert (n.address, n.address6, n.local_address, n.local_address6) == (
                back.local_address, back.local_address6, back.address, back.address6)
            assert n.asn == shipped.routers[n.name].asn
            assert back.asn == router.asn
            assert n.router_id == shipped.routers[n.name].router_id
            assert n.via == back.via
            count += 1
    assert count == 2 * len(shipped.sessions)


def test_relationships_as_declared():
    p = plan(load("tier1_partition"))
    seen = {(r.name, n.name): n.relationship for r in p.routers.values() for n in r.neighbors}
    assert seen == {
        ("Level3", "Cogent"): "peer", ("Cogent", "Level3"): "peer",
        ("Level3", "L3Cust"): "customer", ("L3Cust", "Level3"): "provider",
        ("Cogent", "CogentCust"): "customer", ("CogentCust", "Cogent"): "provider",
        ("Level3", "Multi"): "customer", ("Multi", "Level3"): "provider",
        ("Cogent", "Multi"): "customer", ("Multi", "Cogent"): "provider",
    }
    assert [n.name for n in p.routers["Multi"].neighbors] == ["Cogent", "Level3"]   # by ASN
    assert {s.key: s.kind for s in p.sessions}[frozenset(("Level3", "Cogent"))] == "peering"


def test_session_addresses_are_on_the_named_interface(shipped):
    for router in shipped.routers.values():
        ports = {p.ifname: p for p in router.ports}
        for n in router.neighbors:
            port = ports[n.ifname]
            local4, local6 = ipaddress.ip_interface(port.address4), ipaddress.ip_interface(port.address6)
            assert str(local4.ip) == n.local_address and str(local6.ip) == n.local_address6
            assert ipaddress.ip_address(n.address) in local4.network, (router.name, n)
            assert ipaddress.ip_address(n.address6) in local6.network, (router.name, n)


# -- IXPs ------------------------------------------------------------------------------

def test_ixp_members_use_the_ixp_lan():
    p = plan(load("ixp"))
    ix = p.ixps["ix"]
    assert (ix.lan4, ix.lan6, ix.members) == ("10.1.0.0/24", "fd00:1::/64", ("A", "B", "C"))
    lan4, lan6 = ipaddress.ip_network(ix.lan4), ipaddress.ip_network(ix.lan6)
    assert lan4.subnet_of(IXPS4) and lan6.subnet_of(IXPS6)
    expected = {"A": ("10.1.0.1/24", "fd00:1::1/64"), "B": ("10.1.0.2/24", "fd00:1::2/64"),
                "C": ("10.1.0.3/24", "fd00:1::3/64")}
    for member, (a4, a6) in expected.items():
        [port] = [x for x in p.routers[member].ports if x.ifname == "ix-ix"]
        assert (port.address4, port.address6) == (a4, a6)
    assert all(not x.ifname.startswith("ix-") for x in p.routers["T"].ports)
    for a, b in [("A", "B"), ("A", "C"), ("B", "C")]:
        s = p.session(a, b)
        assert s.via == "ix" and s.kind == "peering"
        assert (s.address_a, s.address_b) == (expected[s.a][0][:-3], expected[s.b][0][:-3])
        n = p.routers[a].neighbor(b)
        assert (n.ifname, n.via, n.address, n.address6) == (
            "ix-ix", "ix", expected[b][0][:-3], expected[b][1][:-3])
    ixp_links = sorted((x.node1, x.ifname1, x.node2, x.ifname2) for x in p.links if x.kind == "ixp")
    assert ixp_links == [("A", "ix-ix", "ix", "A"), ("B", "ix-ix", "ix", "B"), ("C", "ix-ix", "ix", "C")]


def test_declared_ixp_lan_is_used():
    topo = Topology("t")
    topo.add_as(65002, "B")
    topo.add_as(65001, "A")
    ix = topo.add_ixp("ix", lan4="203.0.113.0/24", lan6="2001:db8:ff::/64")
    topo.peering("B", "A", via=ix)
    p = checked(topo)
    assert p.session("A", "B").address_a == "203.0.113.1"   # A has the lower ASN
    assert p.session("A", "B").address_b == "203.0.113.2"
    assert p.routers["B"].neighbor("A").address6 == "2001:db8:ff::1"


# -- prefixes, hosts, owners -------------------------------------------------------

def test_default_prefixes_avoid_declared_ones():
    topo = Topology("t")
    topo.add_as(65001, "Decl", ["172.16.0.0/23", "2001:db8::/47"])
    topo.add_as(65002, "D1")
    topo.add_as(65003, "D2")
    topo.peering("Decl", "D1")
    topo.peering("D1", "D2")
    p = checked(topo)
    assert p.routers["Decl"].prefixes == ("172.16.0.0/23", "2001:db8::/47")
    assert p.routers["D1"].prefixes == ("172.16.2.0/24", "2001:db8:2::/48")
    assert p.routers["D2"].prefixes == ("172.16.3.0/24", "2001:db8:3::/48")


def test_default_prefixes_come_from_the_default_pools(shipped):
    declared = {n for r in shipped.routers.values() for n in r.prefixes}
    for router in shipped.routers.values():
        nets = [ipaddress.ip_network(n) for n in router.prefixes]
        assert [n.version for n in nets] == [4, 6]
        for net in nets:
            pool = DEFAULT_PREFIXES4 if net.version == 4 else DEFAULT_PREFIXES6
            assert net.subnet_of(pool) or str(net) in declared


def test_owner_of_maps_addresses_to_their_as():
    p = plan(load("triangle"))
    assert p.owner_of("10.0.0.9") == "A"       # A's end of the A-B link
    assert p.owner_of("10.0.0.10") == "B"
    assert p.owner_of("fd00::1") == "T"
    assert p.owner_of("10.255.0.3") == "B"     # router id
    assert p.owner_of("192.0.2.1") == "A"      # router's LAN address
    assert p.owner_of("192.0.2.10") == "A"     # host A-h1
    assert p.owner_of("192.0.2.138") == "B"    # host B-h1
    assert p.owner_of("2001:db8:64::a") == "T"
    assert p.owner_of("192.0.2.127") == "A"    # any address of A's prefix
    assert p.owner_of("192.0.2.128") == "B"
    assert p.owner_of("8.8.8.8") is None
    assert p.owner_of("2001:db8:ffff::1") is None
    q = plan(load("ixp"))
    assert q.owner_of("10.1.0.3") == "C"
    assert q.owner_of("fd00:1::2") == "B"
    for host in q.hosts.values():
        assert q.owner_of(host.ip4) == host.system
        assert q.owner_of(host.ip6) == host.system
    for router in q.routers.values():
        for address in router.addresses:
            assert q.owner_of(address) == router.name


def test_hosts_use_the_router_lan_as_gateway(shipped):
    assert shipped.hosts, "every shipped topology has end hosts"
    for host in shipped.hosts.values():
        router = shipped.routers[host.system]
        lan4, lan6 = ipaddress.ip_interface(router.lan4), ipaddress.ip_interface(router.lan6)
        assert host.gateway4 == str(lan4.ip) and host.gateway6 == str(lan6.ip)
        assert ipaddress.ip_address(host.ip4) in lan4.network
        assert ipaddress.ip_address(host.ip6) in lan6.network
        assert host.port in router.host_ports
        assert ipaddress.ip_interface(host.address4).network == lan4.network


def test_host_addresses_are_pinned():
    p = plan(load("triangle"))
    h = p.hosts["A-h1"]
    assert (h.address4, h.address6, h.gateway4, h.gateway6, h.port) == (
        "192.0.2.10/25", "2001:db8:a::a/48", "192.0.2.1", "2001:db8:a::1", "h1")
    assert sorted(p.hosts) == ["A-h1", "B-h1", "T-h1"]


def test_named_hosts_and_hostless_routers():
    topo = Topology("t")
    topo.add_as(65001, "A", ["198.51.100.0/24", "203.0.113.0/24", "2001:db8:a::/48"],
                hosts=["web", "dns"])
    topo.add_as(65002, "B", ["192.0.2.0/24"], hosts=0)
    topo.peering("A", "B")
    p = checked(topo)
    assert [(h.name, h.address4, h.address6, h.port) for h in p.hosts_of("A")] == [
        ("web", "198.51.100.10/24", "2001:db8:a::a/48", "h1"),
        ("dns", "198.51.100.11/24", "2001:db8:a::b/48", "h2")]
    a, b = p.routers["A"], p.routers["B"]
    assert (a.lan4, a.lan6, a.host_ports) == ("198.51.100.1/24", "2001:db8:a::1/48", ("h1", "h2"))
    assert a.loopbacks == ("10.255.0.1/32", "203.0.113.1/32")   # the second IPv4 prefix
    assert (b.lan4, b.lan6, b.host_ports) == (None, None, ())
    assert b.loopbacks == ("10.255.0.2/32", "192.0.2.1/32")     # no LAN: the prefix lives on lo
    assert p.hosts_of("B") == []
    lan_links = sorted((x.node1, x.ifname1, x.node2, x.ifname2) for x in p.links if x.kind == "lan")
    assert lan_links == [("A", "h1", "web", "eth0"), ("A", "h2", "dns", "eth0")]


def test_lookups_name_what_is_missing():
    p = plan(load("triangle"))
    with pytest.raises(KeyError, match="no BGP session between T and Nowhere"):
        p.session("T", "Nowhere")
    with pytest.raises(KeyError, match="router A has no neighbor Nowhere"):
        p.routers["A"].neighbor("Nowhere")


# -- known bugs --------------------------------------------------------------------

def test_default_prefix_avoids_a_declared_ixp_lan():
    topo = Topology("t")
    topo.add_as(65001, "A")
    topo.add_as(65002, "B")
    ix = topo.add_ixp("ix", lan4="172.16.0.0/24")
    topo.peering("A", "B", via=ix)
    p = checked(topo)
    lan = ipaddress.ip_network(p.ixps["ix"].lan4)
    for router in p.routers.values():
        for prefix in router.prefixes:
            assert not ipaddress.ip_network(prefix).overlaps(lan), (router.name, prefix)
    counts = Counter(a for a, _ in all_addresses(p))
    assert [a for a, n in counts.items() if n > 1] == []


def test_default_prefixes_stay_in_their_pools_or_validation_objects():
    topo = Topology("t")
    topo.add_as(65001, "Greedy", ["172.16.0.0/12", "2001:db8::/32"])
    topo.add_as(65002, "B")
    topo.peering("Greedy", "B")
    if problems(topo):
        return
    b = plan(topo).routers["B"]
    assert ipaddress.ip_network(b.prefixes[0]).subnet_of(DEFAULT_PREFIXES4), b.prefixes
    assert ipaddress.ip_network(b.prefixes[1]).subnet_of(DEFAULT_PREFIXES6), b.prefixes
