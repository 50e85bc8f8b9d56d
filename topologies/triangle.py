"""Two regional networks that buy transit from one Tier-1 and peer directly.

    T (Tier-1, AS 64500)
     /            \\        transit: T sells to A and to B
    A ------------ B       settlement-free peering over a private interconnect
  (64501)        (64502)
"""

from testbed import Topology

topology = Topology("triangle", description=__doc__, hold_time=3)
t = topology.add_as(64500, "T", ["198.51.100.0/24", "2001:db8:64::/48"])
a = topology.add_as(64501, "A", ["192.0.2.0/25", "2001:db8:a::/48"])
b = topology.add_as(64502, "B", ["192.0.2.128/25", "2001:db8:b::/48"])
topology.transit(t, a)
topology.transit(t, b)
topology.peering(a, b)
