"""An IXP's own BIRD route server configuration, tested against members on ExaBGP.

The route server of IXP "ix" runs BIRD 2 with the IXP's configuration
(``topologies/configs/route-server.bird.j2``): per-member prefix filters
and first-AS checks, RPKI origin validation against the topology's ROAs,
a max-prefix limit and the control communities members steer their
announcements with. Members A, B and C are the testbed's ExaBGP routers
and see what the route server really does: transparency (no RS AS in the
path, the announcing member's next hop), the communities obeyed and
removed, a hijack dropped as RPKI invalid, a member over its limit cut
off until the session is cleared.
"""

from testbed.assertions import (assert_as_path, assert_established, assert_forwarding_follows_bgp,
                                assert_no_leak, assert_session_down, assert_valley_free)

TOPOLOGY = "bird_route_server"


def _from_rs(lab, member: str) -> dict:
    return lab.snapshot(member)["adj_rib_in"][lab.plan.routers[member].neighbor("RS").address]


def test_the_route_server_is_transparent(lab):
    for member in "ABC":
        for other in "ABC":
            if other != member:
                assert_as_path(lab, member, other, [other])
                assert_as_path(lab, member, other, [other], family=6)
    route = lab.route("A", "C")
    c_port = lab.plan.routers["RS"].neighbor("C").address
    assert route["next_hop"] == c_port  # C's address on the LAN, not the route server's
    assert assert_forwarding_follows_bgp(lab, "A", "C") == ["A", "C"]
    assert_valley_free(lab)
    assert_no_leak(lab)
    assert lab.kernel_routes("RS") == {}


def test_control_communities_steer_and_are_removed(lab):
    rs, b, c = 64700, 64602, 64603
    lab.announce("A", "203.0.113.0/25", communities=[f"0:{b}", "64601:7"], wait=False)       # not to B
    lab.announce("A", "203.0.113.128/25", large_communities=[f"{rs}:0:0", f"{rs}:1:{b}"],     # only to B
                 wait=False)
    lab.announce("A", "2001:db8:1:1::/64", communities=[f"65502:{c}"])                     # 2 prepends to C
    at_b, at_c = _from_rs(lab, "B"), _from_rs(lab, "C")
    assert "203.0.113.0/25" not in at_b
    assert at_c["203.0.113.0/25"]["communities"] == ["64601:7"]                             # control one removed
    assert "203.0.113.128/25" in at_b and "203.0.113.128/25" not in at_c
    assert at_b["203.0.113.128/25"]["large_communities"] == []
    assert lab.names(at_c["2001:db8:1:1::/64"]["as_path"]) == ["A", "A", "A"]
    assert lab.names(at_b["2001:db8:1:1::/64"]["as_path"]) == ["A"]
    for prefix in ("203.0.113.0/25", "203.0.113.128/25", "2001:db8:1:1::/64"):
        lab.withdraw("A", prefix, wait=False)
    lab.wait_converged()


def test_a_hijack_is_dropped_as_rpki_invalid(lab):
    # C announces a more specific of B's prefix: C may not (prefix filter),
    # and B's ROA makes it invalid. A more specific of C's own prefix beyond
    # its ROA's max length (/25) is in C's prefix list but RPKI invalid.
    lab.announce("C", "203.0.114.0/25", wait=False)
    lab.announce("C", "203.0.115.0/26")
    for member in "AB":
        assert "203.0.114.0/25" not in _from_rs(lab, member)
        assert "203.0.115.0/26" not in _from_rs(lab, member)
    lab.withdraw("C", "203.0.114.0/25", wait=False)
    lab.announce("C", "203.0.115.0/25")  # valid: within the ROA's max length
    assert_as_path(lab, "A", "203.0.115.0/25", ["C"])
    lab.withdraw("C", "203.0.115.0/26", wait=False)
    lab.withdraw("C", "203.0.115.0/25")


def test_a_member_over_its_limit_is_cut_off_until_cleared(lab):
    for i in range(5):  # with its own prefix: 6 IPv4 routes, the limit is 5
        lab.announce("B", f"203.0.114.{16 * (i + 1)}/28", wait=False)
    lab.wait_converged()
    assert_session_down(lab, "RS", "B")
    assert lab.route("A", "B") is None
    for i in range(5):
        lab.withdraw("B", f"203.0.114.{16 * (i + 1)}/28", wait=False)
    lab.repeer("RS", "B")
    assert_established(lab, "RS", "B")
    assert_as_path(lab, "A", "B", ["B"])
