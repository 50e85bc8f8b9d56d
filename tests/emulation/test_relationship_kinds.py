"""Partial transit and paid peering, declared in a topology and carried out
by real speakers."""

import pytest

from testbed import Topology
from testbed.testing.assertions import assert_no_route, assert_reachable, assert_unreachable

pytestmark = pytest.mark.emulation


def build() -> Topology:
    #        T                 T sells R full transit
    #        |
    #  P --- R ==paid== Q      R peers with P for free and pays Q
    #        :
    #        C                 C buys partial transit from R
    topo = Topology("kinds", hold_time=3)
    t = topo.add_as(64500, "T")
    r = topo.add_as(64510, "R")
    p = topo.add_as(64520, "P")
    q = topo.add_as(64530, "Q")
    c = topo.add_as(64540, "C")
    topo.transit(t, r)
    topo.peering(r, p)
    topo.paid_peering(r, q)
    topo.partial_transit(r, c)
    return topo


TOPOLOGY = build()


def test_partial_transit_gives_peer_routes_but_not_upstream_ones(lab):
    for family in (4, 6):
        assert lab.as_path("C", "P", family) == ["R", "P"]       # R's peer: included
        assert lab.as_path("C", "R", family) == ["R"]
        assert_no_route(lab, "C", "T", family)                   # R's provider: not sold
    assert_reachable(lab, "C", "P")
    assert_unreachable(lab, "C", "T")


def test_partial_transit_customer_is_not_announced_upstream(lab):
    assert lab.as_path("P", "C") == ["R", "C"]                    # peers of R hear C
    assert_no_route(lab, "T", "C")                                # R's provider does not
    towards_t = lab.snapshot("R")["adj_rib_out"][lab.plan.routers["R"].neighbor("T").address]
    assert lab.prefix_of("C") not in towards_t and lab.prefix_of("R") in towards_t


def test_the_payer_of_a_paid_peering_ranks_it_below_free_peers(lab):
    assert lab.route("R", "Q")["local_pref"] == 90
    assert lab.route("R", "P")["local_pref"] == 100
    assert lab.route("Q", "R")["local_pref"] == 100               # the payee: an ordinary peer
    assert_reachable(lab, "R", "Q")
    assert_reachable(lab, "C", "Q")                               # a peer route, sold to C
