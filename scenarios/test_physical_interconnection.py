"""Physical interconnection: one peering, three ways to build it.

A and B, two regional networks that buy transit from T, want to peer. How
do they connect? The scenario builds the same peering three ways and runs
the same checks on each:

- **private interconnect** (PNI): a dedicated link between their routers,
  with its own little /30 subnet. A's route to B's prefix has B's address on
  that link as next hop.
- **bilateral peering at an IXP**: both routers have one port on the
  exchange's shared peering LAN (a Linux bridge here, a switch fabric in
  reality) and run a BGP session with each other across it. The next hop is
  B's address on the peering LAN; C, another member, shares the LAN.
- **multilateral peering through the IXP's route server**: A and B each have
  one session, with the route server RS, and none with each other. RS
  passes B's routes to A *transparently* (RFC 7947): it does not add its own
  AS to the path and leaves B's LAN address as the next hop. So the BGP
  neighbor that sent the route is RS, but the packets go straight from A to
  B across the LAN: the route server carries no traffic.

What to watch: the AS path is [B] in all three cases, the next hop differs
(private link vs peering LAN), and the traceroute is A -> B every time.
"""

import ipaddress

from testbed import Topology
from testbed.assertions import assert_as_path, assert_forwarding_follows_bgp, assert_route


def build(how: str) -> Topology:
    topo = Topology(f"pni-{how}" if how == "private" else f"ixp-{how}", hold_time=3,
                    description=f"A and B peer ({how})")
    t = topo.add_as(64600, "T")
    a, b, c = (topo.add_as(64600 + i, name) for i, name in enumerate("ABC", start=1))
    for member in (a, b, c):
        topo.transit(t, member)
    if how == "private":
        topo.peering(a, b)
    else:
        ix = topo.add_ixp("ix")
        if how == "bilateral":
            topo.peering(a, b, via=ix)
            topo.peering(a, c, via=ix)
        else:
            rs = topo.add_route_server(64700, "RS", ix)
            for member in (a, b, c):
                topo.route_server_client(member, rs)
    return topo


TOPOLOGY = [build("private"), build("bilateral"), build("rs")]


def _how(lab) -> str:
    return lab.topology.name.split("-", 1)[1]


def test_the_path_is_the_peering_in_every_case(lab, report):
    for family in (4, 6):
        assert_as_path(lab, "A", "B", ["B"], family=family)
        assert_as_path(lab, "B", "A", ["A"], family=family)
    report(f"{_how(lab)}: A's AS path to B", " ".join(lab.as_path("A", "B")))


def test_the_next_hop_is_bs_address_on_the_shared_medium(lab, report):
    route = assert_route(lab, "A", "B")  # also in A's kernel
    next_hop = ipaddress.ip_address(route["next_hop"])
    if _how(lab) == "private":
        link = lab.plan.routers["A"].neighbor("B")
        assert route["next_hop"] == link.address
        assert next_hop in ipaddress.ip_network(f"{link.local_address}/30", strict=False)
    else:
        lan = ipaddress.ip_network(lab.plan.ixps["ix"].lan4)
        assert next_hop in lan, f"next hop {next_hop} is not on the peering LAN {lan}"
        assert lab.plan.owner_of(str(next_hop)) == "B", "the next hop is not B's port"
    report(f"{_how(lab)}: next hop at A for B's prefix", route["next_hop"])


def test_who_sent_the_route(lab):
    route = lab.route("A", "B")
    if _how(lab) != "rs":
        # Bilateral: B told A itself, over their own session.
        assert route["neighbor"] == lab.plan.routers["A"].neighbor("B").address
        assert "RS" not in lab.plan.routers
        return
    rs = lab.plan.routers["A"].neighbor("RS")
    assert route["neighbor"] == rs.address, "A should have learned B's route from the route server"
    assert route["next_hop"] != rs.address, "the route server put itself in the path as next hop"
    assert lab.plan.owner_of(route["next_hop"]) == "B"
    assert lab.kernel_routes("RS") == {}, "a route server installs no routes: it forwards nothing"
    # A has no session with B: one session with RS replaces one per member.
    assert set(lab.sessions("A")) == {"T", "RS"}


def test_packets_go_straight_from_a_to_b(lab, report):
    for family in (4, 6):
        path = assert_forwarding_follows_bgp(lab, "A", "B", family=family)
        assert path == ["A", "B"]
    report(f"{_how(lab)}: packets A -> B cross", " -> ".join(lab.as_traceroute("A", "B")))
