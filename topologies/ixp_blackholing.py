"""An IXP whose route server passes blackhole requests on (RFC 7999).

V, A and B are members of the IXP "ix" and clients of its route server RS;
all three also buy transit from T. A has agreed to honour BLACKHOLE from the
route server (it accepts the community on that session and installs a
discard route); B has not, and treats such a route as any other /32 it does
not want. V has two hosts: V-h1 will be attacked, V-h2 not.
"""

from testbed import Topology

topology = Topology("ixp_blackholing", description=__doc__, hold_time=3)
t = topology.add_as(64600, "T")
ix = topology.add_ixp("ix")
rs = topology.add_route_server(64700, "RS", ix)
a = topology.add_as(64601, "A")
b = topology.add_as(64602, "B")
v = topology.add_as(64603, "V", hosts=2)
for member in (a, b, v):
    topology.transit(t, member)
topology.route_server_client(a, rs, policy={"A": {"blackhole": True}})
topology.route_server_client(b, rs)
topology.route_server_client(v, rs)
