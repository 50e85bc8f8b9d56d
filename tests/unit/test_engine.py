"""One router's RIBs and the actions they produce (testbed.bgp.engine).

The router under test is AS65001 with a customer, a peer and a provider;
every test asserts the exact list of actions, so a missing, extra or
misordered action fails.
"""

from __future__ import annotations

import pytest

import testbed.bgp.engine as engine_module
from testbed.bgp import (
    Announce,
    InstallRoute,
    Neighbor,
    Origin,
    Relationship,
    RemoveRoute,
    Route,
    RouterEngine,
    Withdraw,
)

ASN = 65001
C, P, U = "10.0.1.2", "10.0.2.2", "10.0.3.2"   # customer, peer, provider ("upstream")
NEIGHBORS = [
    Neighbor(U, 65030, Relationship.PROVIDER, "10.255.0.30", "10.0.3.1"),
    Neighbor(C, 65010, Relationship.CUSTOMER, "10.255.0.10", "10.0.1.1", "fd00:1::1"),
    Neighbor(P, 65020, Relationship.PEER, "10.255.0.20", "10.0.2.1", "fd00:2::1"),
]
PFX = "198.51.100.0/24"


@pytest.fixture
def router() -> RouterEngine:
    return RouterEngine(ASN, "10.255.0.1", NEIGHBORS)


def sent(path, next_hop, prefix=PFX, origin=Origin.IGP) -> Route:
    """A route as this router sends it over eBGP."""
    return Route(prefix=prefix, next_hop=next_hop, as_path=tuple(path), origin=origin)


def wire(path, next_hop, prefix=PFX, **attrs) -> Route:
    """A route as a neighbor sends it to this router."""
    return Route(prefix=prefix, next_hop=next_hop, as_path=tuple(path), **attrs)


# -- originating ------------------------------------------------------------------

def test_originate_announces_to_every_neighbor_in_address_order(router):
    actions = router.originate("198.51.100.0/24")
    assert actions == [
        Announce(C, sent([65001], "10.0.1.1")),
        Announce(P, sent([65001], "10.0.2.1")),
        Announce(U, sent([65001], "10.0.3.1")),
    ]
    assert router.loc_rib()[PFX].local
    assert router.adj_rib_out(U) == {PFX: sent([65001], "10.0.3.1")}
    assert router.originate(PFX) == []  # no change, no action


def test_originate_rejects_a_bad_prefix(router):
    with pytest.raises(ValueError, match="invalid prefix"):
        router.originate("198.51.100.1/24")


def test_stop_originating_withdraws_everywhere(router):
    router.originate(PFX)
    assert router.stop_originating(PFX) == [Withdraw(C, PFX), Withdraw(P, PFX),
                                            Withdraw(U, PFX)]
    assert router.loc_rib() == {}
    assert router.stop_originating(PFX) == []


def test_ipv6_prefix_goes_only_to_neighbors_with_an_ipv6_address(router):
    assert router.originate("2001:db8:1::/48") == [
        Announce(C, sent([65001], "fd00:1::1", prefix="2001:db8:1::/48")),
        Announce(P, sent([65001], "fd00:2::1", prefix="2001:db8:1::/48")),
    ]


# -- receiving ----------------------------------------------------------------------

def test_customer_route_is_installed_and_sent_to_everyone_else(router):
    actions = router.receive(C, [wire([65010, 65011], C, med=5)], [])
    assert actions == [
        InstallRoute(PFX, C),
        Announce(P, sent([65001, 65010, 65011], "10.0.2.1")),
        Announce(U, sent([65001, 65010, 65011], "10.0.3.1")),
    ]
    best = router.loc_rib()[PFX]
    assert (best.neighbor, best.local_pref, best.as_path, best.med) == (
        C, 200, (65010, 65011), 5)
    assert router.adj_rib_in(C)[PFX] == best
    assert router.adj_rib_out(C) == {}


def test_peer_route_goes_only_to_customers(router):
    assert router.receive(P, [wire([65020], P)], []) == [
        InstallRoute(PFX, P),
        Announce(C, sent([65001, 65020], "10.0.1.1")),
    ]


def test_better_route_replaces_best_and_moves_advertisements(router):
    router.receive(U, [wire([65030, 65099], U)], [])
    # Provider route: only the customer was told.
    assert router.adj_rib_out(C) == {PFX: sent([65001, 65030, 65099], "10.0.1.1")}
    # A customer route is preferred (local_pref 200 > 50) despite equal length.
    actions = router.receive(C, [wire([65010, 65099], C)], [])
    assert actions == [
        InstallRoute(PFX, C),
        Withdraw(C, PFX),
        Announce(P, sent([65001, 65010, 65099], "10.0.2.1")),
        Announce(U, sent([65001, 65010, 65099], "10.0.3.1")),
    ]


def test_worse_route_changes_nothing(router):
    router.receive(C, [wire([65010], C)], [])
    assert router.receive(U, [wire([65030], U)], []) == []
    assert [r.neighbor for r in router.candidates(PFX)] == [C, U]


def test_withdraw_falls_back_to_the_next_best_route(router):
    router.receive(U, [wire([65030, 65099], U)], [])
    router.receive(C, [wire([65010, 65099], C)], [])
    actions = router.receive(C, [], [PFX])
    assert actions == [
        InstallRoute(PFX, U),
        Announce(C, sent([65001, 65030, 65099], "10.0.1.1")),
        Withdraw(P, PFX),
        Withdraw(U, PFX),
    ]
    assert router.loc_rib()[PFX].neighbor == U
    assert router.adj_rib_in(C) == {}


def test_withdraw_of_the_last_route_removes_it(router):
    router.receive(P, [wire([65020], P)], [])
    assert router.receive(P, [], [PFX]) == [RemoveRoute(PFX), Withdraw(C, PFX)]
    assert router.loc_rib() == {}
    assert router.receive(P, [], [PFX]) == []  # withdrawing again: nothing


def test_implicit_withdraw_replaces_the_neighbors_route(router):
    router.receive(C, [wire([65010], C)], [])
    actions = router.receive(C, [wire([65010, 65011], C)], [])
    # Same next hop: the kernel is left alone.
    assert actions == [
        Announce(P, sent([65001, 65010, 65011], "10.0.2.1")),
        Announce(U, sent([65001, 65010, 65011], "10.0.3.1")),
    ]
    assert router.adj_rib_in(C)[PFX].as_path == (65010, 65011)
    assert len(router.candidates(PFX)) == 1


def test_identical_announcement_produces_no_action(router):
    router.receive(C, [wire([65010], C)], [])
    assert router.receive(C, [wire([65010], C)], []) == []


def test_received_med_and_attributes_other_than_path_do_not_leak(router):
    router.receive(C, [wire([65010], C, med=70, origin=Origin.EGP)], [])
    assert router.adj_rib_out(P)[PFX] == sent([65001, 65010], "10.0.2.1", origin=Origin.EGP)


def test_rejected_route_is_kept_in_adj_rib_in_but_not_used(router):
    assert router.receive(P, [wire([65020, 65001], P)], []) == []
    assert router.adj_rib_in(P)[PFX].rejected == "AS path loop: 65001 in [65020 65001]"
    assert router.candidates(PFX) == []
    assert router.loc_rib() == {}
    # A rejected route replacing an accepted one withdraws it.
    router.receive(C, [wire([65010], C)], [])
    assert router.receive(C, [wire([65099], C)], []) == [
        RemoveRoute(PFX), Withdraw(P, PFX), Withdraw(U, PFX)]
    assert router.explain(PFX)[-1].startswith("rejected by import policy:")


def test_bad_prefix_from_a_neighbor_is_rejected_not_raised(router):
    assert router.receive(C, [wire([65010], C, prefix="10.0.0.1/8")], []) == []
    assert "invalid prefix" in router.adj_rib_in(C)["10.0.0.1/8"].rejected


def test_unknown_neighbor_is_an_error(router):
    with pytest.raises(ValueError, match="no neighbor 10.9.9.9"):
        router.receive("10.9.9.9", [], [])


def test_local_route_beats_learned_and_takes_the_kernel_route_away(router):
    router.receive(C, [wire([65010], C)], [])
    actions = router.originate(PFX)
    assert actions == [
        RemoveRoute(PFX),
        Announce(C, sent([65001], "10.0.1.1")),
        Announce(P, sent([65001], "10.0.2.1")),
        Announce(U, sent([65001], "10.0.3.1")),
    ]
    assert router.stop_originating(PFX) == [
        InstallRoute(PFX, C),
        Withdraw(C, PFX),
        Announce(P, sent([65001, 65010], "10.0.2.1")),
        Announce(U, sent([65001, 65010], "10.0.3.1")),
    ]


def test_actions_are_sorted_kernel_first_then_neighbor_then_prefix(router):
    routes = [wire([65010], C, prefix=p) for p in
              ("198.51.100.0/24", "9.0.0.0/8", "2001:db8::/32", "10.0.0.0/8")]
    actions = router.receive(C, routes, [])
    order = ["9.0.0.0/8", "10.0.0.0/8", "198.51.100.0/24"]   # numeric, not textual
    assert actions == (
        [InstallRoute(p, C) for p in order + ["2001:db8::/32"]]
        + [Announce(P, sent([65001, 65010], "10.0.2.1", prefix=p)) for p in order]
        + [Announce(P, sent([65001, 65010], "fd00:2::1", prefix="2001:db8::/32"))]
        + [Announce(U, sent([65001, 65010], "10.0.3.1", prefix=p)) for p in order]
    )


# -- sessions -------------------------------------------------------------------------

def test_session_down_flushes_and_falls_back(router):
    for n in (C, U):
        router.session_up(n)
    router.receive(U, [wire([65030, 65099], U)], [])
    router.receive(C, [wire([65010, 65099], C), wire([65010], C, prefix="10.10.0.0/16")],
                   [])
    actions = router.session_down(C)
    assert actions == [
        RemoveRoute("10.10.0.0/16"),
        InstallRoute(PFX, U),
        Announce(C, sent([65001, 65030, 65099], "10.0.1.1")),
        Withdraw(P, "10.10.0.0/16"),
        Withdraw(P, PFX),
        Withdraw(U, "10.10.0.0/16"),
        Withdraw(U, PFX),
    ]
    assert router.adj_rib_in(C) == {}
    assert router.established() == {U}
    # Adj-RIB-Out of a down neighbor is kept: it is what would be sent.
    assert router.adj_rib_out(C) == {PFX: sent([65001, 65030, 65099], "10.0.1.1")}


def test_session_up_resends_the_whole_adj_rib_out(router):
    router.originate("10.20.0.0/16")
    router.receive(C, [wire([65010], C)], [])
    router.receive(U, [wire([65030], U, prefix="10.1.0.0/16")], [])
    assert router.established() == set()
    assert router.session_up(C) == [
        Announce(C, sent([65001, 65030], "10.0.1.1", prefix="10.1.0.0/16")),
        Announce(C, sent([65001], "10.0.1.1", prefix="10.20.0.0/16")),
    ]
    assert router.session_up(P) == [
        Announce(P, sent([65001], "10.0.2.1", prefix="10.20.0.0/16")),
        Announce(P, sent([65001, 65010], "10.0.2.1")),
    ]
    assert router.established() == {C, P}


def test_duplicate_or_inconsistent_neighbors_are_refused():
    with pytest.raises(ValueError, match="listed twice"):
        RouterEngine(ASN, "10.255.0.1", NEIGHBORS + NEIGHBORS[:1])
    with pytest.raises(ValueError, match="iBGP"):
        RouterEngine(ASN, "10.255.0.1",
                     [Neighbor("10.0.9.2", ASN, Relationship.PEER, "10.255.0.9", "10.0.9.1")])


def test_ibgp_neighbor_gets_next_hop_self_and_local_pref():
    ibgp = Neighbor("10.0.4.2", ASN, Relationship.INTERNAL, "10.255.0.2", "10.0.4.1")
    router = RouterEngine(ASN, "10.255.0.1", NEIGHBORS + [ibgp])
    router.receive(P, [wire([65020], P)], [])
    assert router.adj_rib_out(ibgp.address) == {
        PFX: Route(prefix=PFX, next_hop="10.0.4.1", as_path=(65020,), local_pref=100)}
    # What comes back over iBGP is not sent to the peer it entered from,
    # and a peer-class route (local_pref 100) not to the provider.
    router.receive(ibgp.address,
                   [Route("10.2.0.0/16", "10.0.4.2", (65020,), local_pref=100)], [])
    assert "10.2.0.0/16" not in router.adj_rib_out(P)
    assert "10.2.0.0/16" not in router.adj_rib_out(U)
    assert router.adj_rib_out(C)["10.2.0.0/16"].as_path == (65001, 65020)


def test_update_cost_does_not_grow_with_the_table(router, monkeypatch):
    table = [wire([65030, 4_200_000_000 + i % 500], U, prefix=f"10.{i // 256}.{i % 256}.0/24")
             for i in range(5_000)]
    router.receive(U, table, [])
    assert len(router.loc_rib()) == 5_000
    calls = []
    real = engine_module.best_route

    def counting(candidates):
        calls.append(len(candidates))
        return real(candidates)

    monkeypatch.setattr(engine_module, "best_route", counting)
    actions = router.receive(C, [wire([65010], C, prefix="10.3.7.0/24")], [])
    assert calls == [2]  # one prefix decided, over its two candidates
    assert actions[0] == InstallRoute("10.3.7.0/24", C)
    assert len(actions) == 4  # install, withdraw from C, announce to P and U
