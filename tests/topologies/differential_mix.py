"""The differential check's hand-made topology: what a generated Internet lacks.

    A (west, east)  ====  X (east, west, mid)     two peerings, iBGP and an IGP inside each:
        |   \\               |    \\               hot potato, IGP cost, MEDs from X
        C    \\_____________ D     E               C buys from A and X, prepending twice towards X
                                                   IXP "ix" with route server RS: C, D, E clients,
                                                   D and E also peer bilaterally across it
"""

from testbed import Topology

topology = Topology("differential_mix", description=__doc__, hold_time=3)
a = topology.add_as(64601, "A", pops=["west", "east"])
x = topology.add_as(64602, "X", pops=["east", "west", "mid"])
topology.internal_link(a, "west", "east", cost=10)
topology.internal_link(x, "east", "west", cost=10)
topology.internal_link(x, "mid", "east", cost=5)
topology.internal_link(x, "mid", "west", cost=20)
# X sends MEDs: A's routers compare them for routes from the same AS.
topology.peering(a.pop("west"), x.pop("west"), policy={"X": {"med": 0}})
topology.peering(a.pop("east"), x.pop("east"), policy={"X": {"med": 10}})
c = topology.add_as(64610, "C")
d = topology.add_as(64611, "D")
e = topology.add_as(64612, "E")
topology.transit(a.pop("west"), c)
topology.transit(x.pop("mid"), c, policy={"C": {"prepend": 2}})
topology.transit(x.pop("mid"), d)
topology.transit(a.pop("east"), e)
ix = topology.add_ixp("ix")
rs = topology.add_route_server(64700, "RS", ix)
for member in (c, d, e):
    topology.route_server_client(member, rs)
topology.peering(d, e, via=ix)
