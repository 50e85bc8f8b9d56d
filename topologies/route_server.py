"""Multilateral peering through an IXP route server.

Three regional networks buy transit from the Tier-1 T and meet at one IXP.
Instead of a BGP session with every other member, each has one session with
the IXP's route server RS, which hands every member the routes of all the
others. C also peers bilaterally with A on the same LAN.

            T                   transit
         /  |  \\
        A   B   C
        [  IXP "ix"  ]          sessions A-RS, B-RS, C-RS; and A-C bilaterally
           RS (AS 64700)
"""

from testbed import Topology

topology = Topology("route_server", description=__doc__, hold_time=3)
t = topology.add_as(64600, "T")
ix = topology.add_ixp("ix")
rs = topology.add_route_server(64700, "RS", ix)
a, b, c = (topology.add_as(64600 + i, name) for i, name in enumerate("ABC", start=1))
for member in (a, b, c):
    topology.transit(t, member)
    topology.route_server_client(member, rs)
topology.peering(a, c, via=ix)
