"""The route agent's update delay (``Agent.end_update_delay``): while it
lasts, routes reach the kernel but no neighbor; when it ends, each neighbor
gets the last word per prefix, once."""

from __future__ import annotations

import io

from test_agent_mrai import CUSTOMER, NEIGHBORS, PROVIDER, sent
from test_agent_mrai import agent as mrai_agent

from testbed.agent.agent import Agent
from testbed.bgp import Origin, Route

OWN, LEARNT = "192.0.2.0/24", "198.51.100.0/24"


def agent(update_delay: float | None) -> tuple[Agent, io.StringIO]:
    """R with its provider and customer (no iBGP peer), originating OWN."""
    return mrai_agent(0, neighbors=NEIGHBORS[:2], prefixes=[OWN], update_delay=update_delay)


def from_provider(*path: int) -> Route:
    return Route(prefix=LEARNT, next_hop=PROVIDER, as_path=path, origin=Origin.IGP)


def start(a: Agent) -> None:
    """What the agent does before its event loop, then both sessions come up."""
    a.apply(a.engine.originate(OWN))
    for peer in (PROVIDER, CUSTOMER):
        a.on_state(peer, "up", None)


def test_nothing_is_sent_during_the_delay_but_the_kernel_learns():
    a, out = agent(60.0)
    start(a)
    a.on_update(PROVIDER, [from_provider(65001, 64999)], [])
    assert sent(out) == []
    assert a.kernel_routes.get(LEARNT) == PROVIDER
    assert a.summary()["update_delay"] == {"active": True}


def test_when_the_delay_ends_each_neighbor_gets_the_last_path_once():
    a, out = agent(60.0)
    start(a)
    a.on_update(PROVIDER, [from_provider(65001, 64000, 64999)], [])
    a.on_update(PROVIDER, [from_provider(65001, 64999)], [])   # a shorter path replaces it
    a.end_update_delay("the lab's sessions are up")
    lines = sent(out)
    assert sorted(line.split(" route ")[1].split()[0] + " to " + line.split()[1] for line in lines) == sorted([
        f"{OWN} to {CUSTOMER}", f"{OWN} to {PROVIDER}", f"{LEARNT} to {CUSTOMER}"])
    learnt = [line for line in lines if LEARNT in line]
    assert "as-path [ 65002 65001 64999 ]" in learnt[0]
    state = a.summary()["update_delay"]
    assert state["active"] is False and state["reason"] == "the lab's sessions are up"
    a.end_update_delay("again")  # a second end changes nothing
    assert sent(out) == []


def test_a_route_gone_before_the_delay_ends_is_neither_announced_nor_withdrawn():
    a, out = agent(60.0)
    start(a)
    a.on_update(PROVIDER, [from_provider(65001, 64999)], [])
    a.on_update(PROVIDER, [], [LEARNT])
    a.end_update_delay("the lab's sessions are up")
    assert [line for line in sent(out) if LEARNT in line] == []


def test_after_the_delay_updates_go_out_at_once():
    a, out = agent(60.0)
    start(a)
    a.end_update_delay("the lab's sessions are up")
    sent(out)
    a.on_update(PROVIDER, [from_provider(65001, 64999)], [])
    assert [line.split()[1] for line in sent(out)] == [CUSTOMER]


def test_the_delay_ends_by_itself_after_its_longest_wait():
    a, out = agent(30.0)
    start(a)
    now = a.update_delay_until - 30.0
    assert a.check_update_delay(now + 10.0) == 20.0
    assert sent(out) == []
    assert a.check_update_delay(now + 30.0) is None
    assert len(sent(out)) == 2  # its own prefix, to both neighbors
    assert a.summary()["update_delay"]["reason"] == "its longest wait passed"


def test_without_a_delay_routes_go_out_at_once():
    a, out = agent(None)
    a.apply(a.engine.originate(OWN))
    assert len(sent(out)) == 2
    assert a.check_update_delay(1e12) is None
    assert a.summary()["update_delay"] == {"active": False}
