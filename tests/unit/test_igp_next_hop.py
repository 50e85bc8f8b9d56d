"""An iBGP next hop (another router's loopback) is resolved in one place,
testbed.model.igp.kernel_next_hop, to the first hop of the IGP path; the
agent, the plan and the assertions all go through it."""

from __future__ import annotations

from testbed.agent.agent import Agent
from testbed.bgp.engine import InstallRoute
from testbed.model.addressing import plan
from testbed.model.igp import IgpRoute, first_hops, igp_hops, kernel_next_hop
from testbed.model.loader import load
from testbed.model.agent_config import agent_config

ROUTES = (IgpRoute("B", "10.255.0.2", "fd00:255::2", "10.0.0.2", "fd00::2", 10),
          IgpRoute("C", "10.255.0.3", "fd00:255::3", "10.0.0.2", "fd00::2", 25))


def test_a_loopback_resolves_to_the_first_hop_of_either_family():
    hops = first_hops(ROUTES)
    assert kernel_next_hop(hops, "10.255.0.3") == "10.0.0.2"
    assert kernel_next_hop(hops, "fd00:255::2") == "fd00::2"
    assert igp_hops(ROUTES)["fd00:255::3"] == (25, "fd00::2")


def test_anything_else_is_its_own_next_hop():
    hops = first_hops(ROUTES)
    for next_hop in ("192.0.2.1", "blackhole", None):
        assert kernel_next_hop(hops, next_hop) == next_hop


def test_the_plan_the_agent_config_and_the_agent_resolve_alike():
    p = plan(load("two_pops"))
    for router in p.routers.values():
        config = agent_config(p, router, "", "")
        agent = Agent(config, kernel=None, out=None)
        for loopback, entry in config["igp"].items():
            assert router.kernel_next_hop(loopback) == entry["via"] == kernel_next_hop(agent.resolve, loopback)


class Kernel:
    def __init__(self):
        self.batches = []

    def apply(self, operations):
        self.batches.append(list(operations))
        return {}


def test_the_agent_installs_an_ibgp_route_via_the_first_hop():
    p = plan(load("two_pops"))
    router = next(r for r in p.routers.values() if r.igp)
    loopback, via = router.igp[0].loopback4, router.igp[0].via4
    kernel = Kernel()
    agent = Agent(agent_config(p, router, "", ""), kernel=kernel, out=None)
    agent.apply([InstallRoute("198.51.100.0/24", loopback)])
    agent.flush()
    assert kernel.batches == [[("replace", "198.51.100.0/24", via)]]
