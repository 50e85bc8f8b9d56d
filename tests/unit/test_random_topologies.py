"""Property: any topology, however random, is either accepted (and then
gets a consistent address plan and a converging model) or refused with the
project's own TopologyError: never another exception."""

import ipaddress

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testbed.model.addressing import plan
from testbed.errors import TopologyError
from testbed.model.topology import Topology

names = st.one_of(st.sampled_from(["A", "B", "C", "T", "ix", "A-h1", "x" * 13, "a b", "9z", "", "ok_1"]),
                  st.text(max_size=14))
asns = st.one_of(st.integers(min_value=-5, max_value=70000), st.sampled_from([0, 23456, 65535, 4294967295, 4200000000]),
                 st.just("65001"), st.none())
prefixes = st.one_of(st.none(), st.lists(st.sampled_from([
    "192.0.2.0/24", "192.0.2.0/25", "192.0.2.128/25", "198.51.100.0/24", "10.0.0.0/24", "2001:db8:a::/48",
    "2001:db8:a::/64", "203.0.113.1/24", "224.0.0.0/24", "not-a-prefix", "0.0.0.0/0"]), max_size=3))
hosts = st.one_of(st.integers(min_value=-1, max_value=3), st.lists(st.sampled_from(["h", "A", "B-h1", "bad name"]), max_size=2))


@st.composite
def topologies(draw):
    topo = Topology(draw(st.sampled_from(["t", "lab-1", "bad name"])), hold_time=draw(st.sampled_from([0, 1, 3, 9])))
    declared = []
    for _ in range(draw(st.integers(min_value=0, max_value=5))):
        name = draw(names)
        declared.append(name)
        topo.add_as(draw(asns), name, draw(prefixes), draw(hosts))
    ixps = [topo.add_ixp(draw(names)).name for _ in range(draw(st.integers(0, 1)))]
    pool = declared + ["nobody"]
    for _ in range(draw(st.integers(min_value=0, max_value=6))):
        kind = draw(st.sampled_from(["transit", "peering", "paid", "transit"]))
        via = draw(st.sampled_from([None, None, *ixps, "nowhere"]))
        bw = draw(st.sampled_from([None, None, 10, 0, -1, "fast"]))
        topo.relate(kind, draw(st.sampled_from(pool)), draw(st.sampled_from(pool)), via=via, bandwidth=bw)
    return topo


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topologies())
def test_accepted_or_refused_with_a_topology_error(topo):
    try:
        topo.validate()
    except TopologyError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)
        return
    p = plan(topo)
    addresses = [a for r in p.routers.values() for a in r.addresses] + \
                [h.ip4 for h in p.hosts.values() if h.ip4] + [h.ip6 for h in p.hosts.values() if h.ip6]
    assert len(addresses) == len(set(addresses)), "an address is used twice"
    for address in addresses:
        ipaddress.ip_address(address)
    for router in p.routers.values():
        assert all(len(port.ifname) <= 15 for port in router.ports)
