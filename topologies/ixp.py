"""Three regional networks that buy transit from a Tier-1 and peer with each
other bilaterally across one IXP peering LAN (a Linux bridge).

            T
         /  |  \\          transit
        A   B   C
        \\   |   /
       [  IXP "ix"  ]     bilateral sessions A-B, A-C, B-C on one LAN
"""

from testbed import Topology

topology = Topology("ixp", description=__doc__, hold_time=3)
t = topology.add_as(64600, "T")
ix = topology.add_ixp("ix")
members = [topology.add_as(64600 + i, name) for i, name in enumerate("ABC", start=1)]
for member in members:
    topology.transit(t, member)
for i, left in enumerate(members):
    for right in members[i + 1:]:
        topology.peering(left, right, via=ix)
