"""Two Tier-1 networks that peer, each with a single-homed customer, and one
customer multi-homed to both (the shape of Level 3 and Cogent in 2005).

    Level3 ========= Cogent        settlement-free peering (no one above them)
     |     \\       /    |
    L3Cust  Multi(homed) CogentCust    transit
"""

from testbed import Topology

topology = Topology("tier1_partition", description=__doc__, hold_time=3)
level3 = topology.add_as(3356, "Level3")
cogent = topology.add_as(174, "Cogent")
l3cust = topology.add_as(64510, "L3Cust")
cocust = topology.add_as(64520, "CogentCust")
multi = topology.add_as(64530, "Multi")
topology.peering(level3, cogent)
topology.transit(level3, l3cust)
topology.transit(cogent, cocust)
topology.transit(level3, multi)
topology.transit(cogent, multi)
