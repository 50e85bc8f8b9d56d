"""Two Tier-1s that peer, their customers, and a third network.

        A ========= B           Tier-1s, settlement-free peers (no provider)
        |  \\     /  |
        |    P     |           P peers with both A and B
       CA        CB  \\
                       X       X buys transit from B and from P
                      /
                     P
"""

from testbed import Topology

topology = Topology("paid_peering", description=__doc__, hold_time=3)
a = topology.add_as(64500, "A")
b = topology.add_as(64501, "B")
p = topology.add_as(64630, "P")
ca = topology.add_as(64610, "CA")
cb = topology.add_as(64620, "CB")
x = topology.add_as(64640, "X")
topology.peering(a, b)
topology.peering(a, p)
topology.peering(b, p)
topology.transit(a, ca)
topology.transit(b, cb)
topology.transit(b, x)
topology.transit(p, x)
