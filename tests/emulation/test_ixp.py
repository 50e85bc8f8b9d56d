"""An IXP peering LAN: bilateral sessions across one Linux bridge."""

import pytest

from testbed.testing.assertions import (assert_as_path, assert_established, assert_route,
                                assert_traceroute)

pytestmark = pytest.mark.emulation
TOPOLOGY = "ixp"


def test_bilateral_sessions_cross_the_peering_lan(lab):
    for a, b in [("A", "B"), ("A", "C"), ("B", "C")]:
        assert_established(lab, a, b)
        assert lab.plan.session(a, b).via == "ix"


def test_members_route_to_each_other_across_the_lan(lab):
    lan = lab.plan.ixps["ix"]
    for family in (4, 6):
        assert_as_path(lab, "A", "B", ["B"], family=family)
        route = assert_route(lab, "A", "C", family=family)
        c = lab.plan.routers["A"].neighbor("C")
        assert route["next_hop"] == (c.address if family == 4 else c.address6)
    assert lab.plan.owner_of(lab.plan.routers["A"].neighbor("B").address) == "B"
    assert lab.plan.routers["A"].neighbor("B").address.startswith(lan.lan4.rsplit(".", 1)[0])
    assert_traceroute(lab, "A", "B", ["A", "B"])
    assert_traceroute(lab, "C", "A", ["C", "A"], family=6)


def test_depeering_one_pair_leaves_the_others(lab):
    lab.depeer("A", "B")
    assert_as_path(lab, "A", "B", ["T", "B"])
    assert_as_path(lab, "A", "C", ["C"])
    assert_traceroute(lab, "A", "B", ["A", "T", "B"])
    with pytest.raises(Exception, match="crosses IXP ix"):
        lab.depeer("A", "C", how="link")
    lab.repeer("A", "B")
    assert_as_path(lab, "A", "B", ["B"])
