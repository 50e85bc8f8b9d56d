"""An IXP whose route server runs BIRD with the IXP's own configuration; the members run ExaBGP.

           [ IXP "ix": peering LAN ]
           A      B      C              members (AS 64601-64603), clients of RS
                 RS (AS 64700)          BIRD, ``configs/route-server.bird.j2``

The route server's configuration is written as IXPs write theirs: per
member, the prefixes it may announce (here: what its AS originates, and
more specifics) and its first AS, RPKI origin validation against the
topology's ROAs, a max-prefix limit (5 per family), and the usual
control communities. The members are the testbed's own routers.
"""

from pathlib import Path

from testbed import Topology

topology = Topology("bird_route_server", description=__doc__, hold_time=3)
ix = topology.add_ixp("ix")
rs = topology.add_route_server(64700, "RS", ix, router="bird",
                               config=Path(__file__).parent / "configs" / "route-server.bird.j2")
members = {}
for i, name in enumerate("ABC", start=1):
    members[name] = topology.add_as(64600 + i, name, [f"203.0.{112 + i}.0/24", f"2001:db8:{i}::/48"])
    topology.route_server_client(members[name], rs)
    topology.roa(f"203.0.{112 + i}.0/24", 64600 + i, max_length=25)
    topology.roa(f"2001:db8:{i}::/48", 64600 + i, max_length=64)
