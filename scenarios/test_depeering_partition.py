"""Depeering partition: when two Tier-1 networks stop peering.

Level3 and Cogent are Tier-1 networks: they buy transit from nobody, so the
only way between their networks is their peering. In October 2005 Level 3
ended its peering with Cogent. Customers that bought transit from only one
of the two (single-homed) could no longer reach customers of the other: the
Internet was partitioned. Customers that bought transit from both
(multi-homed) still reached everyone.

Here L3Cust buys only from Level3, CogentCust only from Cogent, and Multi
from both. Multi sees both sides but does not carry traffic between them:
a customer never gives transit to its providers (its routes from one
provider are announced to its customers only, and it has none).
"""

import pytest

from testbed.assertions import (assert_as_path, assert_no_route, assert_reachable,
                                assert_session_down, assert_unreachable)

TOPOLOGY = "tier1_partition"
DEPEERED = pytest.mark.lab_state(down=[("Level3", "Cogent")])


def test_before_everyone_reaches_everyone(lab):
    assert_as_path(lab, "L3Cust", "CogentCust", ["Level3", "Cogent", "CogentCust"])
    for src, dst in [("L3Cust", "CogentCust"), ("L3Cust", "Multi"), ("CogentCust", "Multi")]:
        assert_reachable(lab, src, dst)
        assert_reachable(lab, src, dst, family=6)


def test_depeering_partitions_single_homed_customers(lab, report):
    elapsed = lab.depeer("Level3", "Cogent")
    report("partition convergence", f"{elapsed:.3f}", " s")
    assert_session_down(lab, "Level3", "Cogent")
    for family in (4, 6):
        assert_no_route(lab, "L3Cust", "CogentCust", family=family)
        assert_no_route(lab, "CogentCust", "L3Cust", family=family)
        assert_unreachable(lab, "L3Cust", "CogentCust", family=family)
        assert_unreachable(lab, "CogentCust", "L3Cust", family=family)


@DEPEERED
def test_multihomed_customer_still_reaches_both_sides(lab):
    assert_as_path(lab, "Multi", "L3Cust", ["Level3", "L3Cust"])
    assert_as_path(lab, "Multi", "CogentCust", ["Cogent", "CogentCust"])
    for dst in ("L3Cust", "CogentCust"):
        assert_reachable(lab, "Multi", dst)
        assert_reachable(lab, dst, "Multi")
        assert_reachable(lab, "Multi", dst, family=6)


@DEPEERED
def test_multihomed_customer_gives_no_transit(lab):
    # Multi hears CogentCust's prefix from Cogent but must not offer it to Level3.
    towards_level3 = lab.snapshot("Multi")["adj_rib_out"][lab.plan.routers["Multi"].neighbor("Level3").address]
    assert lab.prefix_of("CogentCust") not in towards_level3


@DEPEERED
def test_repeering_heals_the_partition(lab):
    lab.repeer("Level3", "Cogent")
    assert_as_path(lab, "L3Cust", "CogentCust", ["Level3", "Cogent", "CogentCust"])
    assert_reachable(lab, "L3Cust", "CogentCust")
