"""Two networks present in two cities, peering in both.

     A-west ======== X-west          A and X each have a router in the west
       |                |   \\        and one in the east, joined inside each
       | IGP cost 10    | 10  X-mid  network by links with an IGP cost.
       |                |   /        They peer in both cities. X also has
     A-east ======== X-east   (5)    a router in between, with no peering:
                                     5 from the east, 20 from the west.
A's customers (its hosts) are in the west; X's are in the east.
"""

from testbed import Topology

topology = Topology("two_pops", description=__doc__, hold_time=3)
a = topology.add_as(64601, "A", pops=["west", "east"])
x = topology.add_as(64602, "X", pops=["east", "west", "mid"])
topology.internal_link(a, "west", "east", cost=10)
topology.internal_link(x, "east", "west", cost=10)
topology.internal_link(x, "mid", "east", cost=5)
topology.internal_link(x, "mid", "west", cost=20)
topology.peering(a.pop("west"), x.pop("west"))
topology.peering(a.pop("east"), x.pop("east"))
