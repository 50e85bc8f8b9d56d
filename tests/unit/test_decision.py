"""The BGP decision process (testbed.bgp.decision), step by step.

Each tie-breaker gets a case where it decides, built so that every later
step would pick the other route, and a case where an earlier step overrides
it. Order independence is checked over every permutation of the candidates.
"""

from __future__ import annotations

import itertools

import pytest

from testbed.bgp import Origin, Relationship, Route, best_route, explain

PREFIX = "203.0.113.0/24"


def learned(neighbor: str = "10.0.0.2", asn: int = 65002, router_id: str = "10.255.0.2",
            path: tuple[int, ...] | None = None, **attrs) -> Route:
    """A route as the Adj-RIB-In holds it after import policy."""
    attrs.setdefault("local_pref", 100)
    attrs.setdefault("relationship", Relationship.PEER)
    attrs.setdefault("next_hop", neighbor)
    return Route(prefix=PREFIX,
                 as_path=(asn,) if path is None else path,
                 neighbor=neighbor, neighbor_asn=asn, neighbor_router_id=router_id,
                 **attrs)


def best_of(*routes: Route) -> Route | None:
    """The best route, checked to be the same for every order of the input."""
    answers = {best_route(list(order)) for order in itertools.permutations(routes)}
    assert len(answers) == 1, f"decision depends on candidate order: {answers}"
    return answers.pop()


def test_no_candidates_gives_none():
    assert best_route([]) is None


def test_rejected_candidates_are_ignored():
    loop = learned(local_pref=1000, rejected="AS path loop: 65001 in [65002 65001]")
    plain = learned(neighbor="10.0.0.6", router_id="10.255.0.6", local_pref=50)
    assert best_of(loop, plain) == plain
    assert best_route([loop]) is None


def test_single_candidate_wins():
    route = learned()
    assert best_route([route]) is route


# -- step 0: locally originated -------------------------------------------------

def test_local_route_beats_any_learned_route():
    local = Route(prefix=PREFIX, next_hop=None, origin=Origin.INCOMPLETE)
    strong = learned(local_pref=1000, path=(65002,), origin=Origin.IGP)
    assert best_of(local, strong) == local


# -- step 1: local_pref -------------------------------------------------------

def test_highest_local_pref_decides_over_every_later_step():
    # The winner is worse at every later step: longer path, worse origin,
    # higher MED from the same AS, iBGP, higher router id and address.
    high = learned(neighbor="10.0.0.9", router_id="10.255.0.9", local_pref=200,
                   path=(65002, 65003, 65004), origin=Origin.INCOMPLETE, med=50,
                   ebgp=False)
    low = learned(neighbor="10.0.0.1", router_id="10.255.0.1", local_pref=100,
                  path=(65002,), origin=Origin.IGP, med=0)
    assert best_of(high, low) == high


def test_missing_local_pref_counts_as_100():
    unset = learned(neighbor="10.0.0.9", router_id="10.255.0.9", local_pref=None)
    assert best_of(unset, learned(neighbor="10.0.0.1", router_id="10.255.0.1",
                                  local_pref=99)) == unset
    above = learned(neighbor="10.0.0.1", router_id="10.255.0.1", local_pref=101)
    assert best_of(unset, above) == above


def test_local_route_wins_over_local_pref():
    local = Route(prefix=PREFIX, next_hop=None, local_pref=10)
    assert best_of(local, learned(local_pref=500)) == local


# -- step 2: AS path length -------------------------------------------------

def test_shortest_as_path_decides_over_later_steps():
    short = learned(neighbor="10.0.0.9", router_id="10.255.0.9", path=(65002, 65005),
                    origin=Origin.INCOMPLETE, med=99, ebgp=False)
    long = learned(neighbor="10.0.0.1", router_id="10.255.0.1",
                   path=(65002, 65003, 65005), origin=Origin.IGP)
    assert best_of(short, long) == short


def test_local_pref_wins_over_shorter_path():
    longer_but_preferred = learned(neighbor="10.0.0.9", router_id="10.255.0.9",
                                   local_pref=200, path=(65009, 65003, 65005), asn=65009)
    shorter = learned(neighbor="10.0.0.1", router_id="10.255.0.1", local_pref=100,
                      path=(65002,))
    assert best_of(longer_but_preferred, shorter) == longer_but_preferred


# -- step 3: origin ---------------------------------------------------------

def test_lowest_origin_decides_igp_egp_incomplete():
    igp = learned(neighbor="10.0.0.9", router_id="10.255.0.9", origin=Origin.IGP,
                  med=70, ebgp=False)
    egp = learned(neighbor="10.0.0.5", router_id="10.255.0.5", origin=Origin.EGP)
    incomplete = learned(neighbor="10.0.0.1", router_id="10.255.0.1",
                         origin=Origin.INCOMPLETE)
    assert best_of(igp, egp, incomplete) == igp
    assert best_of(egp, incomplete) == egp


def test_shorter_path_wins_over_better_origin():
    short = learned(neighbor="10.0.0.9", router_id="10.255.0.9", origin=Origin.INCOMPLETE)
    long_igp = learned(neighbor="10.0.0.1", router_id="10.255.0.1",
                       path=(65002, 65003), origin=Origin.IGP)
    assert best_of(short, long_igp) == short


# -- step 4: MED ------------------------------------------------------------

def test_lower_med_from_same_neighbouring_as_decides():
    low = learned(neighbor="10.0.0.9", router_id="10.255.0.9", med=5, ebgp=False)
    high = learned(neighbor="10.0.0.1", router_id="10.255.0.1", med=10)
    assert best_of(low, high) == low


def test_med_is_not_compared_across_neighbouring_ases():
    # Different first AS: the higher MED does not lose; the router id decides.
    high_med = learned(neighbor="10.0.0.1", asn=65002, router_id="10.255.0.1", med=900)
    low_med = learned(neighbor="10.0.0.9", asn=65003, router_id="10.255.0.9", med=1)
    assert best_of(high_med, low_med) == high_med


def test_missing_med_counts_as_zero():
    unset = learned(neighbor="10.0.0.9", router_id="10.255.0.9", med=None)
    five = learned(neighbor="10.0.0.1", router_id="10.255.0.1", med=5)
    assert best_of(unset, five) == unset


def test_med_groups_empty_paths_by_neighbor_asn():
    # iBGP routes originated inside the AS have an empty path: their
    # neighbouring AS is the neighbor's.
    low = learned(neighbor="10.0.0.9", asn=65001, router_id="10.255.0.9", path=(),
                  med=1, ebgp=False, relationship=Relationship.INTERNAL)
    high = learned(neighbor="10.0.0.1", asn=65001, router_id="10.255.0.1", path=(),
                   med=2, ebgp=False, relationship=Relationship.INTERNAL)
    assert best_of(low, high) == low


def test_origin_wins_over_med():
    igp_high_med = learned(neighbor="10.0.0.9", router_id="10.255.0.9", med=100)
    egp_low_med = learned(neighbor="10.0.0.1", router_id="10.255.0.1", med=0,
                          origin=Origin.EGP)
    assert best_of(igp_high_med, egp_low_med) == igp_high_med


def test_med_elimination_is_not_a_pairwise_order():
    # r1 and r3 come through AS 65001, r2 through AS 65002. Pairwise, r1
    # beats r2 (router id), r2 beats r3 (router id) and r3 beats r1 (MED):
    # a cycle. RFC 4271 first removes r1 (r3 has a lower MED from the same
    # AS), then r2 beats r3 on router id.
    r1 = learned(neighbor="10.0.0.1", asn=65001, router_id="10.255.0.1", med=10)
    r2 = learned(neighbor="10.0.0.2", asn=65002, router_id="10.255.0.2", med=0)
    r3 = learned(neighbor="10.0.0.3", asn=65001, router_id="10.255.0.3", med=5)
    assert best_of(r1, r2, r3) == r2

    # The case is worth having: a pairwise comparator run over the list gives
    # r3 for some orders.
    def pairwise(a: Route, b: Route) -> int:
        if a.as_path[0] == b.as_path[0] and a.med != b.med:
            return -1 if a.med < b.med else 1
        return -1 if a.neighbor_router_id < b.neighbor_router_id else 1

    def running_max(order):
        best = order[0]
        for route in order[1:]:
            if pairwise(route, best) < 0:
                best = route
        return best

    naive = {running_max(order) for order in itertools.permutations([r1, r2, r3])}
    assert r3 in naive


# -- step 5: eBGP over iBGP -------------------------------------------------

def test_ebgp_beats_ibgp():
    ebgp = learned(neighbor="10.0.0.9", router_id="10.255.0.9", ebgp=True)
    ibgp = learned(neighbor="10.0.0.1", router_id="10.255.0.1", ebgp=False,
                   relationship=Relationship.INTERNAL)
    assert best_of(ebgp, ibgp) == ebgp


def test_med_wins_over_ebgp():
    # Same neighbouring AS 65002: the iBGP route with the lower MED wins.
    ebgp = learned(neighbor="10.0.0.9", router_id="10.255.0.9", ebgp=True, med=20)
    ibgp = learned(neighbor="10.0.0.1", asn=65001, path=(65002,), router_id="10.255.0.1",
                   ebgp=False, med=10, relationship=Relationship.INTERNAL)
    assert best_of(ebgp, ibgp) == ibgp


# -- step 7: BGP identifier -------------------------------------------------

def test_lowest_router_id_decides_numerically():
    # As text "10.255.0.10" < "10.255.0.9"; as numbers .9 is lower.
    nine = learned(neighbor="10.0.0.200", router_id="10.255.0.9")
    ten = learned(neighbor="10.0.0.1", router_id="10.255.0.10")
    assert best_of(nine, ten) == nine
    assert best_of(learned(neighbor="10.0.0.5", router_id="9.0.0.1"),
                   learned(neighbor="10.0.0.1", router_id="10.0.0.1")).neighbor == "10.0.0.5"


def test_ebgp_wins_over_router_id():
    ebgp = learned(neighbor="10.0.0.9", router_id="10.255.0.99", ebgp=True)
    ibgp = learned(neighbor="10.0.0.1", router_id="10.255.0.1", ebgp=False,
                   relationship=Relationship.INTERNAL)
    assert best_of(ebgp, ibgp) == ebgp


# -- step 8: neighbor address -----------------------------------------------

def test_lowest_neighbor_address_decides_numerically():
    # Two sessions to the same router (same router id).
    nine = learned(neighbor="10.0.0.9", router_id="10.255.0.2")
    ten = learned(neighbor="10.0.0.10", router_id="10.255.0.2")
    assert best_of(nine, ten) == nine


def test_router_id_wins_over_neighbor_address():
    low_id = learned(neighbor="10.0.0.200", router_id="10.255.0.1")
    low_addr = learned(neighbor="10.0.0.1", router_id="10.255.0.2")
    assert best_of(low_id, low_addr) == low_id


# -- order independence and explanations ------------------------------------

def test_result_is_independent_of_candidate_order():
    routes = [
        learned(neighbor="10.0.0.1", asn=65001, router_id="10.255.0.7", med=10),
        learned(neighbor="10.0.0.2", asn=65002, router_id="10.255.0.3", med=3),
        learned(neighbor="10.0.0.3", asn=65001, router_id="10.255.0.5", med=4),
        learned(neighbor="10.0.0.4", asn=65002, router_id="10.255.0.4", med=2),
        learned(neighbor="10.0.0.5", asn=65003, router_id="10.255.0.6",
                path=(65003, 65009)),
        learned(neighbor="10.0.0.6", asn=65004, router_id="10.255.0.1",
                rejected="first AS 65009 is not the neighbor's AS 65004"),
    ]
    # MED removes .1 (AS 65001) and .2 (AS 65002); path length removes .5;
    # of .3 (id .5) and .4 (id .4), the router id picks .4.
    assert best_of(*routes).neighbor == "10.0.0.4"


def test_ties_past_every_step_are_broken_deterministically():
    # Two routes from one neighbor never meet in a RIB, but the answer must
    # still not depend on their order.
    a = learned(next_hop="10.0.0.2")
    b = learned(next_hop="10.0.0.3")
    assert best_of(a, b) == a


def test_explain_names_the_deciding_step_of_each_loser():
    winner = learned(neighbor="10.0.0.1", router_id="10.255.0.1", local_pref=200)
    by_pref = learned(neighbor="10.0.0.2", router_id="10.255.0.2", local_pref=100)
    rejected = learned(neighbor="10.0.0.3", router_id="10.255.0.3",
                       rejected="AS path loop: 65001 in [65002 65001]")
    lines = explain([by_pref, rejected, winner])
    assert lines[0].startswith("best: 203.0.113.0/24 from 10.0.0.1")
    assert lines[1].startswith("lost at step 1 (highest local_pref): 203.0.113.0/24 "
                               "from 10.0.0.2")
    assert "local_pref 100, another route has local_pref 200" in lines[1]
    assert lines[2].startswith("rejected by import policy:")
    assert "AS path loop: 65001 in [65002 65001]" in lines[2]
    assert len(lines) == 3


@pytest.mark.parametrize("loser, step", [
    (learned(neighbor="10.0.0.9", router_id="10.255.0.9", path=(65002, 65003)),
     "lost at step 2 (shortest AS path)"),
    (learned(neighbor="10.0.0.9", router_id="10.255.0.9", med=1),
     "lost at step 4 (lowest MED from the same neighbouring AS)"),
    (learned(neighbor="10.0.0.9", router_id="10.255.0.9"),
     "lost at step 7 (lowest BGP identifier)"),
    (learned(neighbor="10.0.0.9", router_id="10.255.0.1"),
     "lost at step 8 (lowest neighbor address)"),
])
def test_explain_reports_later_steps(loser, step):
    winner = learned(neighbor="10.0.0.1", router_id="10.255.0.1")
    lines = explain([loser, winner])
    assert lines[0].startswith("best: 203.0.113.0/24 from 10.0.0.1 ")
    assert lines[1].startswith(step), lines
