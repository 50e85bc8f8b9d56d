"""Generated Internet-like topologies (testbed.model.generate): deterministic, valid,
shaped as documented, and fully reachable under valley-free routing."""

from __future__ import annotations

from collections import Counter

import networkx as nx
import pytest

from testbed.model.addressing import plan
from testbed.model.prediction import Expectation
from testbed.model.generate import describe, internet, roles, tier_sizes
from testbed.model.topology import Kind
from testbed.model.validate import NAME_RE, problems

SIZES = [2, 5, 10, 20, 50, 100, 300, 1000]


def declarations(topo):
    """What a topology declares, without the source lines it came from."""
    return ([(s.asn, s.name, s.prefixes, s.hosts) for s in topo.systems],
            [x.name for x in topo.ixps],
            [(r.kind, r.a, r.b, r.via) for r in topo.relationships])


def test_same_seed_same_topology():
    assert internet(50, seed=7) == internet(50, seed=7)
    assert declarations(internet(300, seed=3)) == declarations(internet(300, seed=3))


def test_different_seed_different_topology():
    for n in (20, 50, 300):
        assert declarations(internet(n, seed=1)) != declarations(internet(n, seed=2))
        assert len(internet(n, seed=1).systems) == len(internet(n, seed=2).systems)


@pytest.mark.parametrize("n", SIZES)
def test_validates(n):
    topo = internet(n)
    assert problems(topo) == []
    assert len(topo.systems) == n
    for system in topo.systems:
        assert NAME_RE.match(system.name), system.name
        assert system.prefixes is None and system.hosts == 1


@pytest.mark.parametrize("n", [1001, 4096])
def test_large_topologies_use_four_byte_asns(n):
    topo = internet(n)
    assert problems(topo) == []
    assert min(s.asn for s in topo.systems) >= 4200000000


def test_too_small_or_too_large_is_refused():
    for n in (0, 1, 4097):
        with pytest.raises(ValueError):
            internet(n)


@pytest.mark.parametrize("n", [20, 100])
def test_everyone_reaches_everyone(n):
    """Under valley-free routing every router has every other AS's prefixes."""
    topo = internet(n)
    addresses = plan(topo)
    ribs = Expectation(addresses).loc_ribs()
    every = {p for r in addresses.routers.values() for p in r.prefixes}
    for router, rib in ribs.items():
        missing = sorted(every - set(rib))
        assert not missing, f"router {router} has no route to {missing[:5]} ({len(missing)} missing)"


@pytest.mark.parametrize("n", [10, 20, 50, 100, 300, 1000])
def test_shape(n):
    topo = internet(n)
    role = roles(topo)
    count = Counter(role.values())
    n_tier1, n_regional, n_stub = tier_sizes(n)
    assert count == {"tier1": n_tier1, "transit": n_regional, "stub": n_stub}
    assert 2 <= n_tier1 <= 6 and n_tier1 == max(2, min(6, n // 25))
    assert abs(n_regional - n / 5) <= 1
    kinds = Counter((r.kind, r.via is not None) for r in topo.relationships)

    tier1 = [name for name, r in role.items() if r == "tier1"]
    peerings = {frozenset((r.a, r.b)) for r in topo.relationships if r.kind == Kind.PEERING}
    for i, a in enumerate(tier1):
        for b in tier1[i + 1:]:
            assert frozenset((a, b)) in peerings, f"Tier-1s {a} and {b} do not peer"

    providers: dict[str, list[str]] = {}
    for rel in topo.relationships:
        if rel.kind == Kind.TRANSIT:
            providers.setdefault(rel.b, []).append(rel.a)
            assert role[rel.a] != "stub", f"stub {rel.a} sells transit"
            assert role[rel.b] != "tier1", f"Tier-1 {rel.b} buys transit"
    for name, r in role.items():
        if r != "tier1":
            assert 1 <= len(providers[name]) <= 2, f"{name} has providers {providers[name]}"
    multihomed = sum(1 for p in providers.values() if len(p) == 2)
    assert 0 < multihomed < len(providers)

    regional_peering = [r for r in topo.relationships if r.kind == Kind.PEERING and r.via is None
                        and role[r.a] == role[r.b] == "transit"]
    assert regional_peering
    assert len(topo.ixps) == 1 and kinds[(Kind.PEERING, True)] >= 2
    members = {end for r in topo.relationships if r.via is not None for end in (r.a, r.b)}
    assert 3 <= len(members) <= 8 and all(role[m] != "tier1" for m in members)


def test_no_ixp_when_asked_or_small():
    assert internet(50, ixp=False).ixps == []
    assert all(r.via is None for r in internet(50, ixp=False).relationships)
    assert internet(9).ixps == []


def test_transit_is_acyclic_and_reaches_the_clique():
    topo = internet(1000, seed=5)
    graph = nx.DiGraph((r.a, r.b) for r in topo.relationships if r.kind == Kind.TRANSIT)
    assert nx.is_directed_acyclic_graph(graph)
    tier1 = {name for name, r in roles(topo).items() if r == "tier1"}
    for system in topo.systems:
        assert system.name in tier1 or nx.ancestors(graph, system.name) & tier1


def test_hold_time_and_describe():
    topo = internet(20, seed=4, hold_time=3)
    assert topo.hold_time == 3
    text = describe(topo)
    n_tier1, n_regional, n_stub = tier_sizes(20)
    assert f"20 ASes ({n_tier1} Tier-1, {n_regional} transit providers, {n_stub} stubs)" in text
    assert f"{len(topo.relationships)} relationships" in text
    assert "IXP ixp1:" in text
