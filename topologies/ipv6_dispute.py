"""Two backbones that exchange IPv4 but refuse to exchange IPv6.

        C ======= H          C and H peer for IPv4 only: neither sends
        |  \\   /  |          the other IPv6 routes on that session
        CC   D    HC         CC, HC: single-homed customers; D buys
                             transit from both
Neither C nor H buys transit from anyone: for IPv6 each considers itself
a Tier-1, and each waits for the other to give in.
"""

from testbed import Topology

NO_IPV6 = {"export": [{"match": {"family": 6}, "action": "reject"}]}

topology = Topology("ipv6_dispute", description=__doc__, hold_time=3)
c = topology.add_as(64500, "C")
h = topology.add_as(64501, "H")
cc = topology.add_as(64610, "CC")
hc = topology.add_as(64620, "HC")
d = topology.add_as(64630, "D")
topology.peering(c, h, policy={"C": NO_IPV6, "H": NO_IPV6})
topology.transit(c, cc)
topology.transit(h, hc)
topology.transit(c, d)
topology.transit(h, d)
