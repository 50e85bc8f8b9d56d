"""A multihomed customer between two providers: the classic route leak setting.

        T1 ---- T2          Tier-1s, settlement-free peers
        |        |
        P1      P2          regional providers
       /  \\    /  \\
      X     C      Y        X and Y single-homed; C buys transit from P1 and P2
"""

from testbed import Topology

topology = Topology("route_leak", description=__doc__, hold_time=3)
t1 = topology.add_as(64500, "T1")
t2 = topology.add_as(64501, "T2")
p1 = topology.add_as(64601, "P1")
p2 = topology.add_as(64602, "P2")
c = topology.add_as(64610, "C")
x = topology.add_as(64620, "X")
y = topology.add_as(64630, "Y")
topology.peering(t1, t2)
topology.transit(t1, p1)
topology.transit(t2, p2)
topology.transit(p1, c)
topology.transit(p2, c)
topology.transit(p1, x)
topology.transit(p2, y)
