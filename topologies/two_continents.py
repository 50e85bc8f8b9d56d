"""Two regional networks on different Tier-1s, and a possible peering.

      T1 ======== T2          Tier-1s, settlement-free peers
      |           |
      A --------- B           A and B buy transit (A from T1, B from T2)
                              and peer directly with each other
"""

from testbed import Topology

topology = Topology("two_continents", description=__doc__, hold_time=3)
t1 = topology.add_as(64500, "T1")
t2 = topology.add_as(64501, "T2")
a = topology.add_as(64601, "A")
b = topology.add_as(64602, "B")
topology.peering(t1, t2)
topology.transit(t1, a)
topology.transit(t2, b)
topology.peering(a, b)
