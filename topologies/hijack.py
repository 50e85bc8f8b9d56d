"""A video site, a national operator, and the Internet between them.

        T1 ------ T2            Tier-1s, settlement-free peers
       /  \\      /  \\
      V    W    H    U         V: the video site; H: a national operator
                    |
                    Z           Z: H's customer (the country's users)

V's prefixes have ROAs: only AS 64620 may originate them, up to /24 and /48.
"""

from testbed import Topology

topology = Topology("hijack", description=__doc__, hold_time=3)
t1 = topology.add_as(64500, "T1")
t2 = topology.add_as(64501, "T2")
v = topology.add_as(64620, "V", prefixes=["198.51.100.0/24", "2001:db8:100::/48"])
w = topology.add_as(64660, "W")
h = topology.add_as(64630, "H")
u = topology.add_as(64650, "U")
z = topology.add_as(64640, "Z")
topology.peering(t1, t2)
topology.transit(t1, v)
topology.transit(t1, w)
topology.transit(t2, h)
topology.transit(t2, u)
topology.transit(h, z)
topology.roa("198.51.100.0/24", 64620, max_length=24)
topology.roa("2001:db8:100::/48", 64620, max_length=48)
