"""What ``wait_converged`` checks in a lab with a BIRD or FRR router
(``testbed.routers.byo.consistency_problems``), on states as the adapters
and agents give them: sessions in their expected state, a BYO router's
exports equal to what its ExaBGP neighbours hold from it, nothing held
that a neighbour no longer sends. No daemon runs: the lab is the plan, the
model and canned answers."""

from types import SimpleNamespace

from testbed.model.addressing import plan
from testbed.model.loader import load
from testbed.model.prediction import Expectation
from testbed.routers.byo import consistency_problems


class _Agent:
    def __init__(self, snapshot):
        self.snapshot = snapshot

    def request(self, op):
        assert op == "snapshot"
        return self.snapshot


def _lab():
    topology = load("triangle")
    for system in topology.systems:
        if system.name == "A":
            system.router = "bird"
    p = plan(topology)
    lab = SimpleNamespace(topology=topology, plan=p, expect=Expectation(p), crashed=set(),
                          disabled={r: set() for r in p.routers}, clients={})
    return lab, p


def _session(name, state="established", shut=None):
    return {"name": name, "state": state, "shut": shut}


def _states(p, exported_to_t, held_from_t=(), b_state="established", shut=None):
    a = p.routers["A"]
    t, b = a.neighbor("T").address, a.neighbor("B").address
    return {"A": {"sessions": {t: _session("T"), b: _session("B", b_state, shut)},
                  "adj_rib_out": {t: {prefix: {} for prefix in exported_to_t}, b: {}},
                  "adj_rib_in": {t: {prefix: {} for prefix in held_from_t}, b: {}}}}


def _agents(lab, p, t_holds_from_a, t_sends_to_a=()):
    back = p.routers["T"].neighbor("A").address
    for name in ("T", "B"):
        lab.clients[name] = _Agent({"adj_rib_in": {}, "adj_rib_out": {}})
    lab.clients["T"] = _Agent({"adj_rib_in": {back: {prefix: {} for prefix in t_holds_from_a}},
                               "adj_rib_out": {back: {prefix: {} for prefix in t_sends_to_a}}})
    return {name: {"sessions": {n.address: _session(n.name) for n in p.routers[name].neighbors}}
            for name in ("T", "B")}


class ForeignRouters:
    """The check over the canned lab, as ``ForeignConvergence.problems`` calls it."""

    def __init__(self, lab):
        self.lab = lab

    def problems(self, states, summaries):
        sessions = {name: state["sessions"] for name, state in states.items()}
        sessions.update({name: summary["sessions"] for name, summary in summaries.items()})
        return consistency_problems(self.lab.plan, self.lab.expect, sessions, states, set(states),
                                    self.lab.crashed, lambda peer: self.lab.clients[peer].request("snapshot"))


def test_consistent_states_have_no_problem():
    lab, p = _lab()
    byo = ForeignRouters(lab)
    summaries = _agents(lab, p, ["192.0.2.0/25"], ["198.51.100.0/24"])
    assert byo.problems(_states(p, ["192.0.2.0/25"], ["198.51.100.0/24"]), summaries) == []


def test_an_export_the_neighbour_has_not_received_is_named():
    lab, p = _lab()
    byo = ForeignRouters(lab)
    summaries = _agents(lab, p, [])
    problems = byo.problems(_states(p, ["192.0.2.0/25"]), summaries)
    assert problems == ["router A exports ['192.0.2.0/25'] to T, which has not received them; "
                        "T still holds [] from it"]


def test_a_route_the_neighbour_withdrew_is_named():
    lab, p = _lab()
    byo = ForeignRouters(lab)
    summaries = _agents(lab, p, [], [])
    problems = byo.problems(_states(p, [], ["198.51.100.0/24"]), summaries)
    assert problems == ["router A still holds ['198.51.100.0/24'] from T, which no longer sends them"]


def test_a_session_in_the_wrong_state_is_named():
    lab, p = _lab()
    byo = ForeignRouters(lab)
    summaries = _agents(lab, p, [])
    problems = byo.problems(_states(p, [], b_state="idle"), summaries)
    assert problems == [f"router A: session to B ({p.routers['A'].neighbor('B').address}) is idle, "
                        "expected established"]
    lab.expect.set_session("A", "B", up=False)  # depeered: now B's view is the wrong one
    problems = byo.problems(_states(p, [], b_state="idle"), summaries)
    assert problems == [f"router B: session to A ({p.routers['B'].neighbor('A').address}) is established, "
                        "expected down"]
