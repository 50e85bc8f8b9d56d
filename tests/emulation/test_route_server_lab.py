"""An IXP route server with real speakers: transparency, bilateral sessions
next to it on the same LAN, and the control communities on the wire."""

import pytest

from testbed.testing.assertions import assert_forwarding_follows_bgp

pytestmark = pytest.mark.emulation
TOPOLOGY = "route_server"


def _from(lab, router: str, neighbor: str) -> dict:
    return lab.snapshot(router)["adj_rib_in"][lab.plan.routers[router].neighbor(neighbor).address]


def test_a_member_hears_a_peer_both_through_the_route_server_and_bilaterally(lab):
    prefix = lab.prefix_of("C")
    via_rs, direct = _from(lab, "A", "RS")[prefix], _from(lab, "A", "C")[prefix]
    assert via_rs["as_path"] == direct["as_path"] == [lab.plan.routers["C"].asn]
    assert via_rs["next_hop"] == direct["next_hop"]          # C's port, either way
    assert_forwarding_follows_bgp(lab, "A", "C") == ["A", "C"]
    assert_forwarding_follows_bgp(lab, "B", "A") == ["B", "A"]  # B has only the route server


def test_control_communities_steer_and_are_removed(lab):
    b, c = lab.plan.routers["B"].asn, lab.plan.routers["C"].asn
    rs = lab.plan.routers["RS"].asn
    lab.announce("A", "198.51.100.0/24", communities=[f"0:{b}", "64601:5"])              # not to B
    lab.announce("A", "198.51.101.0/24", large_communities=[f"{rs}:0:{c}"])             # not to C
    lab.announce("A", "198.51.102.0/24", communities=[f"0:{rs}", f"{rs}:{b}"])          # only to B
    lab.announce("A", "198.51.103.0/24", large_communities=[f"{rs}:102:{b}"])           # prepend 2x to B
    at_b, at_c = _from(lab, "B", "RS"), _from(lab, "C", "RS")
    assert "198.51.100.0/24" not in at_b and at_c["198.51.100.0/24"]["communities"] == ["64601:5"]
    assert "198.51.101.0/24" not in at_c and at_b["198.51.101.0/24"]["large_communities"] == []
    assert "198.51.102.0/24" in at_b and "198.51.102.0/24" not in at_c
    assert lab.names(at_b["198.51.103.0/24"]["as_path"]) == ["A", "A", "A"]
    assert lab.names(at_c["198.51.103.0/24"]["as_path"]) == ["A"]
    # The route server itself forwards nothing.
    assert lab.kernel_routes("RS") == {}
