"""Every relationship kind the picture distinguishes, for the golden tests.

T is a Tier-1 with PoPs; R buys transit from T; P gives S partial
transit; S pays R for peering; A and S peer privately and A and B across
the IXP, whose route server RS has A and B as clients.
"""

from testbed import Topology

topology = Topology("showcase", description=__doc__, hold_time=3)
t = topology.add_as(64500, "T", pops=["west", "east"])
topology.internal_link(t, "west", "east", cost=7)
r = topology.add_as(64510, "R")
p = topology.add_as(64511, "P")
a = topology.add_as(64520, "A")
b = topology.add_as(64521, "B")
s = topology.add_as(64522, "S")
ix = topology.add_ixp("ix")
rs = topology.add_route_server(64700, "RS", ix)
topology.transit(t.pop("west"), r)
topology.transit(t.pop("east"), p)
topology.transit(r, a)
topology.transit(r, b)
topology.partial_transit(p, s)
topology.paid_peering(s, r)
topology.peering(a, s)
topology.peering(a, b, via=ix)
topology.route_server_client(a, rs)
topology.route_server_client(b, rs)
