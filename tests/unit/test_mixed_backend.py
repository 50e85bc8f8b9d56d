"""A lab of several router kinds (``testbed.routers.foreign.MixedBackend``),
with no daemon: each router goes to the backend of its kind, the ExaBGP
backend gets a plan of its own routers only, states and crashes are
merged, the lab's callbacks reach both, and what a user's configuration
owns (policies, originating) is refused with the router's name."""

import pytest

from testbed.errors import LabError
from testbed.model.addressing import plan
from testbed.model.loader import load
from testbed.model.router_kinds import choices
from testbed.routers.foreign import ForeignBackend, MixedBackend


class Recorder:
    """Stands for the ExaBGP backend: records what it is asked."""

    def __init__(self, plan):
        self.plan = plan
        self.calls = []
        self.states = {name: {"generation": 1, "sessions": {}} for name in plan.routers}
        self.crashed = set()
        self.on_session_held = None
        self.start_timeout = 60.0

    def __getattr__(self, name):
        def call(*args):
            self.calls.append((name, *args))
            return set() if name in ("admin_down_peers", "changes") else None
        return call


def _mixed():
    topology = load("triangle")
    for system in topology.systems:
        if system.name == "A":
            system.router = "bird"
    p = plan(topology)
    made = []
    backend = MixedBackend(p, choices(topology), lambda sub: made.append(Recorder(sub)) or made[-1])
    return backend, made[0]


def test_each_router_goes_to_the_backend_of_its_kind():
    backend, exabgp = _mixed()
    assert sorted(exabgp.plan.routers) == ["B", "T"]          # ExaBGP never sees the BIRD router
    assert set(backend.foreign.choices) == {"A"}
    backend.admin_down("B", "A")
    assert exabgp.calls == [("admin_down", "B", "A")]
    backend.foreign.adapters["A"] = object()
    with pytest.raises(LabError, match="router A runs bird with its own configuration: a policy change"):
        backend.set_policy("A", "B", {"med": 5})
    with pytest.raises(LabError, match="router A runs bird .*originating a prefix"):
        backend.originate("A", "203.0.113.0/24")
    backend.originate("T", "203.0.113.0/24")
    assert exabgp.calls[-1] == ("originate", "T", "203.0.113.0/24", (), ())


def test_states_crashes_and_callbacks_span_both_backends():
    backend, exabgp = _mixed()
    backend.foreign.states["A"] = {"generation": 3, "sessions": {}}
    assert set(backend.states) == {"A", "B", "T"}
    exabgp.crashed.add("T")
    backend.foreign.crashed.add("A")
    assert backend.crashed == {"A", "T"}
    held = []
    backend.on_session_held = lambda router, peer: held.append((router, peer))
    backend.foreign.on_session_held("A", "B")
    exabgp.on_session_held("T", "B")
    assert held == [("A", "B"), ("T", "B")]
    backend.start_timeout = 12.0
    assert exabgp.start_timeout == backend.foreign.start_timeout == 12.0


def test_an_unknown_router_is_named():
    backend, _ = _mixed()
    with pytest.raises(LabError, match="no BIRD or FRR router named 'Z'"):
        ForeignBackend.sessions(backend.foreign, "Z")
