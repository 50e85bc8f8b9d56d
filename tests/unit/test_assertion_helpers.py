"""The pure helpers behind the relationship assertions (testbed.testing.assertions):
``_relation`` (what one AS is to another in the plan), ``valley`` (why an AS
path is not valley-free) and ``assert_traffic_ratio``. They read only the
address plan, so they are tested here on the shipped topologies' plans,
without a lab.

route_leak:  T1 -- T2 peers; T1 > P1, T2 > P2; P1 > C, P2 > C; P1 > X, P2 > Y
route_server: T > A, B, C; A, B, C clients of the route server RS; A -- C peers
two_pops:    A and X peer at two PoPs each
"""

from __future__ import annotations

import math

import pytest

from testbed.model.addressing import plan
from testbed.testing.assertions import _relation, assert_traffic_ratio, valley
from testbed.model.loader import load


@pytest.fixture(scope="module")
def leak():
    return plan(load("route_leak"))


@pytest.fixture(scope="module")
def rs():
    return plan(load("route_server"))


# -- _relation -----------------------------------------------------------------------

def test_relation_by_business_relationship(leak):
    assert _relation(leak, "P1", "C") == "customer"
    assert _relation(leak, "C", "P1") == "provider"
    assert _relation(leak, "T1", "T2") == _relation(leak, "T2", "T1") == "peer"
    assert _relation(leak, "X", "Y") is None
    assert _relation(leak, "X", "nobody") is None and _relation(leak, "nobody", "X") is None


def test_clients_of_one_route_server_are_peers(rs):
    assert _relation(rs, "A", "B") == _relation(rs, "B", "A") == "peer"
    assert _relation(rs, "B", "C") == "peer"
    assert _relation(rs, "A", "C") == "peer"          # bilateral too
    assert _relation(rs, "T", "B") == "customer" and _relation(rs, "B", "T") == "provider"
    # A route server and its client are peers, from either side.
    assert _relation(rs, "A", "RS") == _relation(rs, "RS", "A") == "peer"


def test_relation_is_between_ases_not_routers():
    p = plan(load("two_pops"))
    assert _relation(p, "A", "X") == _relation(p, "X", "A") == "peer"
    assert _relation(p, "X", "C") is None


# -- valley ----------------------------------------------------------------------------

@pytest.mark.parametrize("path", [
    ["X", "P1", "C"],                          # down from a provider
    ["C", "P1", "X"],                          # up to the provider, then down
    ["X", "P1", "T1", "T2", "P2", "Y"],        # up, across once, down
    ["T2", "T1", "P1", "C"],                   # up, up, across
    ["X", "P1", "P1", "P1", "C"],              # prepending is not a hop
    ["X"],
])
def test_valley_free_paths(leak, path):
    assert valley(leak, path) is None


def test_customer_leaking_a_provider_route(leak):
    # C passed P2's route (to Y) on to its other provider P1.
    assert valley(leak, ["X", "P1", "C", "P2", "Y"]) == (
        "C gave P1 (its provider) a route it learned from a peer or provider")


def test_route_from_across_and_down_going_up_again(leak):
    # T2's own route came across to T1, down through P1 to C, and C gave
    # it up to its other provider P2.
    assert valley(leak, ["P2", "C", "P1", "T1", "T2"]) == (
        "C gave P2 (its provider) a route it learned from a peer or provider")


def test_two_peer_hops_are_a_leak(rs):
    # C's route went up to T, down to A, and A gave it to its peer B.
    assert valley(rs, ["B", "A", "T", "C"]) == (
        "A gave B (its peer) a route it learned from a peer or provider")
    # Across the route server once is fine; twice is not.
    assert valley(rs, ["B", "A"]) is None
    assert valley(rs, ["B", "A", "C"]) == (
        "A gave B (its peer) a route it learned from a peer or provider")


def test_path_through_strangers(leak):
    assert valley(leak, ["X", "Y"]) == "Y and X are not neighbors"
    assert valley(leak, ["X", "P1", "T2"]) == "T2 and P1 are not neighbors"


def test_a_route_server_in_the_path_is_a_peer_hop(rs):
    # A route server does not add its AS, but a path naming it must not crash.
    assert valley(rs, ["A", "RS"]) is None
    assert valley(rs, ["RS", "A", "T"]) == (
        "A gave RS (its peer) a route it learned from a peer or provider")


# -- assert_traffic_ratio ----------------------------------------------------------------

def test_ratio_within_the_clause_is_returned():
    assert assert_traffic_ratio(200, 100, 2.0) == 2.0
    assert assert_traffic_ratio(100, 300, 3, "A", "B") == 3.0
    assert assert_traffic_ratio(500, 500, 1) == 1.0


def test_ratio_over_the_clause_names_the_heavier_direction():
    with pytest.raises(AssertionError) as caught:
        assert_traffic_ratio(300, 100, 2, "A", "X")
    assert str(caught.value) == ("traffic ratio 3.00:1 exceeds the agreed 2:1 "
                                 "(A -> X 300 bytes, X -> A 100 bytes; heavier: A -> X)")
    with pytest.raises(AssertionError, match=r"heavier: X -> A\)$"):
        assert_traffic_ratio(100, 250, 2, "A", "X")


def test_ratio_names_the_sides_by_default():
    with pytest.raises(AssertionError, match=r"^traffic ratio 2\.50:1 exceeds the agreed 1\.5:1 "
                                             r"\(a -> b 10 bytes, b -> a 25 bytes; heavier: b -> a\)$"):
        assert_traffic_ratio(10, 25, 1.5)


def test_one_silent_direction_is_an_infinite_ratio():
    with pytest.raises(AssertionError, match="traffic ratio inf:1 exceeds the agreed 4:1"):
        assert_traffic_ratio(1000, 0, 4, "A", "X")
    assert math.isinf(assert_traffic_ratio(1000, 0, math.inf))
