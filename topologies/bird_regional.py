"""A regional network that runs BIRD with its own configuration, among ExaBGP networks.

        T1 ========= T2        Tier-1s, settlement-free peering
          \\          /  \\
           \\        /    \\     R buys transit from T1 and T2;
             R ------------ P  R and P peer; P buys transit from T2
             |
             C                 C buys transit from R

R's configuration is ``configs/regional.bird.j2``, a BIRD 2 file as a
network team writes it (prefix lists and an AS-path filter for the
customer, bogon and own-prefix filters, communities tagging where a route
was learned and deciding what goes to upstreams and peers, max-prefix
limits), with the lab's addresses filled in from the plan (Jinja2).
``configs/regional-leak.bird.j2`` is the same file with one line changed
(the peer's routes tagged as a customer's): R then leaks P's routes to
its upstreams. ``build(config)`` makes the topology with either.
"""

from pathlib import Path

from testbed import Topology

HERE = Path(__file__).parent
CONFIG = HERE / "configs" / "regional.bird.j2"
LEAKY_CONFIG = HERE / "configs" / "regional-leak.bird.j2"


def build(config: Path = CONFIG, name: str = "bird_regional") -> Topology:
    topology = Topology(name, description=__doc__, hold_time=3)
    t1 = topology.add_as(64500, "T1", ["198.51.100.0/24", "2001:db8:100::/48"])
    t2 = topology.add_as(64501, "T2", ["198.51.101.0/24", "2001:db8:101::/48"])
    r = topology.add_as(64510, "R", ["203.0.113.0/24", "2001:db8:110::/48"], router="bird", config=config)
    p = topology.add_as(64520, "P", ["192.0.2.0/24", "2001:db8:120::/48"])
    c = topology.add_as(64530, "C", ["198.18.0.0/24", "2001:db8:130::/48"])
    topology.peering(t1, t2)
    topology.transit(t1, r)
    topology.transit(t2, r)
    topology.transit(t2, p)
    topology.peering(r, p)
    topology.transit(r, c)
    return topology


topology = build()
