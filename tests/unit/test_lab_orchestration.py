"""The lab's orchestration against fake router backends, without root.

``Lab`` drives its routers only through ``testbed.routers.base.RouterBackend``;
here a fake backend plays the routers (their states, deaths, admin
shutdowns) so that the waits (``testbed.lab.converge``) and the events
(``testbed.lab.events``) are checked in milliseconds. The ExaBGP backend's
own admin-shutdown path, reload retry and maximum-prefix hold are checked
with a fake speaker and fake agent connections (a socket pair). The real
path (namespaces, ExaBGP, sessions) is the emulation tests' to check.
"""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from testbed import jsonlines
from testbed.errors import ConvergenceTimeout, LabError, SpeakerCrashed
from testbed.lab import Lab
from testbed.routers.agent_client import AgentClient
from testbed.routers.base import RouterBackend
from testbed.routers.exabgp import RELOAD_BEGUN, RELOAD_DONE, RELOAD_FAILED, ExaBGPBackend

MUTATIONS = {"admin_down", "admin_up", "reload", "set_policy", "originate", "withdraw", "crash",
             "release_routes", "start", "stop"}


class FakeBackend(RouterBackend):
    """Routers that report whatever the test makes them report.

    ``truth`` is what each router would say now; ``refresh`` and ``changes``
    hand it over as the backend contract says. ``script`` holds functions
    that ``changes`` runs one per call, as the passing of time in a lab."""

    kind = "fake"

    def __init__(self):
        super().__init__()
        self.calls: list[tuple] = []
        self.truth: dict[str, dict] = {}
        self.script: list = []
        self.dead: set[str] = set()
        self.generation = 0
        self.follow_prediction = True  # routers reach the prediction after each event

    def attach(self, lab: Lab) -> None:
        """Play ``lab``'s routers, which report a state the model does not expect."""
        self.plan, self.expect = lab.plan, lab.expect
        self.admin: dict[str, set[str]] = {r: set() for r in lab.plan.routers}
        self.report("wrong")

    # -- the test's controls ---------------------------------------------------
    def report(self, digest: str | None = None, down: set[frozenset] = frozenset(), routers=None, shut=None):
        """Make ``routers`` (all by default) report the model's sessions and
        digests (or ``digest``), with the sessions in ``down`` down."""
        digests = self.expect.digests()
        for router in routers or self.plan.routers:
            self.generation += 1
            sessions = {n.address: {"name": n.name, "last_notification": None,
                                    "state": "established" if self.expect.session_up(router, n.name)
                                    and frozenset((router, n.name)) not in down else "idle"}
                        for n in self.plan.routers[router].neighbors}
            self.truth[router] = {"generation": self.generation, "sessions": sessions,
                                  "state_digest": digest or digests[router], "shut": dict(shut or {})}

    def _event(self, *call):
        self.calls.append(call)
        if self.follow_prediction:
            self.script.append(lambda: self.report())

    # -- the contract ------------------------------------------------------------
    def check_machine(self):
        pass

    def prepare(self, lab_id, workdir):
        return None

    def write_configs(self):
        pass

    def start(self, nodes, deadline):
        self.calls.append(("start",))

    def release_routes(self, deadline):
        self.calls.append(("release_routes",))

    def stop(self):
        self.calls.append(("stop",))

    def check_alive(self):
        self.calls.append(("check_alive",))
        for router in sorted(self.dead - self.crashed):
            raise SpeakerCrashed(f"the BGP speaker of router {router} exited with status -9")

    def crash(self, router):
        self.calls.append(("crash", router))
        self.crashed.add(router)
        self.dead.add(router)
        self.truth.pop(router, None)
        self.script.append(lambda: self.report(routers=[r for r in self.plan.routers if r != router]))

    def refresh(self, deadline):
        self.calls.append(("refresh",))
        for router, state in self.truth.items():
            if router not in self.crashed:
                self._store(router, dict(state))

    def changes(self, timeout, deadline):
        self.calls.append(("changes",))
        if self.script:
            self.script.pop(0)()
        else:
            time.sleep(min(timeout, 0.02))
        return {router for router, state in self.truth.items()
                if router not in self.crashed and self._store(router, dict(state))}

    def _store(self, router, state) -> bool:
        grew = state["generation"] > self.states.get(router, {}).get("generation", -1)
        if grew:
            self.states[router] = state
            names = {n.address: n.name for n in self.plan.routers[router].neighbors}
            for address in state["shut"]:  # a router holds what it closed (the contract)
                if names[address] not in self.admin[router]:
                    self.admin[router].add(names[address])
                    self.on_session_held(router, names[address])
        return grew

    def snapshot(self, router):
        self.calls.append(("snapshot", router))
        return {"loc_rib": {}, "adj_rib_in": {}}

    def sessions(self, router):
        return self.truth[router]["sessions"]

    def admin_down(self, router, peer):
        self.admin[router].add(peer)
        self._event("admin_down", router, peer)

    def admin_up(self, router, peer):
        self.admin[router].discard(peer)
        self._event("admin_up", router, peer)

    def admin_down_peers(self, router):
        return set(self.admin[router])

    def reload(self, router):
        self._event("reload", router)

    def set_policy(self, router, peer, policy):
        self._event("set_policy", router, peer, policy)

    def originate(self, router, prefix, communities=(), large_communities=()):
        self._event("originate", router, prefix, list(communities), list(large_communities))

    def withdraw(self, router, prefix):
        self._event("withdraw", router, prefix)

    def log_tail(self, router, lines=15):
        return ""

    def files(self, router):
        return []


@pytest.fixture(name="fake_lab")
def fake_lab_fixture():
    """A started triangle whose routers are a fake backend's."""
    fake = FakeBackend()
    made = Lab("triangle", backend=fake, process_model="exec")
    fake.attach(made)
    made.started = True
    return made


def mutations(fake: FakeBackend) -> list[tuple]:
    return [call for call in fake.calls if call[0] in MUTATIONS]


# -- waits -------------------------------------------------------------------------
def test_a_wait_returns_once_every_router_reports_the_prediction(fake_lab):
    fake = fake_lab.backend
    fake.script += [lambda: None, lambda: fake.report(routers=["T", "A"]), lambda: None,
                    lambda: fake.report(routers=["B"])]
    elapsed = fake_lab.wait_converged(timeout=5)
    assert elapsed < 2
    assert not fake.script, "returned before the last router reported the prediction"
    assert fake_lab.summaries["B"]["state_digest"] == fake_lab.expect.digests()["B"]


def test_a_timeout_names_the_session_and_the_tables_awaited(fake_lab):
    fake = fake_lab.backend
    fake.report(down={frozenset(("A", "B"))}, routers=["A"])
    fake.report(routers=["T", "B"])
    fake.truth["T"]["state_digest"] = "stale"
    with pytest.raises(ConvergenceTimeout) as info:
        fake_lab.wait_converged(timeout=0.3)
    message = str(info.value)
    assert message.startswith("routing did not converge within 0.3 s:")
    assert "router A: session to B (" in message and "is idle, expected established" in message
    assert "router B" not in message  # B reports what the model expects
    assert "router T: 198.51.100.0/24: expected local origin, got no route" in message, message


def test_a_router_that_dies_during_a_wait_is_named(fake_lab):
    fake = fake_lab.backend
    fake.script += [lambda: None, lambda: fake.dead.add("B")]
    with pytest.raises(SpeakerCrashed, match="router B"):
        fake_lab.wait_converged(timeout=5)


def test_a_router_that_dies_is_named_even_if_the_rest_converged(fake_lab):
    fake = fake_lab.backend
    fake.report()
    fake.dead.add("T")
    fake._alive_checked = time.monotonic()  # a periodic check just ran: the last one must see it
    with pytest.raises(SpeakerCrashed, match="router T"):
        fake_lab.wait_converged(timeout=5)


def test_a_wait_only_waits(fake_lab):
    fake = fake_lab.backend
    fake.report(routers=["A"])
    fake.script += [lambda: None] * 3 + [lambda: fake.report()]
    fake_lab.wait_converged(timeout=5)
    assert mutations(fake) == [], "a wait changed the lab"


def test_the_update_delay_ends_when_the_sessions_are_up_or_nothing_moves(fake_lab, monkeypatch):
    fake = fake_lab.backend
    fake.report(down={frozenset(("A", "B"))})
    fake.script += [lambda: None, lambda: fake.report()]
    fake_lab.convergence.end_update_delay(time.monotonic() + 5, patience=5)
    assert mutations(fake) == [("release_routes",)]
    assert not fake.script, "routes released before every session was up"
    # A session that never comes up: released after the patience, and said.
    stages = []
    monkeypatch.setattr(fake_lab, "progress", stages.append)
    fake.calls.clear()
    fake.report(down={frozenset(("A", "B"))})
    fake_lab.convergence.end_update_delay(time.monotonic() + 5, patience=0.2)
    assert mutations(fake) == [("release_routes",)]
    assert stages == ["sending routes with sessions of 2 router(s) still down (A, B)"]


# -- events ------------------------------------------------------------------------
def test_an_admin_depeer_is_one_backend_operation_and_updates_the_prediction(fake_lab):
    fake = fake_lab.backend
    fake.report()
    fake_lab.depeer("A", "B")
    assert mutations(fake) == [("admin_down", "A", "B")]
    assert not fake_lab.expect.session_up("A", "B")
    assert fake_lab.disabled["A"] == {"B"} and fake_lab.disabled["B"] == set()
    # The wait awaited the new prediction: B's session down at A.
    state = fake_lab.summaries["A"]["sessions"][fake_lab.plan.routers["A"].neighbor("B").address]
    assert state["state"] != "established"
    fake.calls.clear()
    fake_lab.repeer("A", "B")
    assert mutations(fake) == [("admin_up", "A", "B")]  # only the end that was down
    assert fake_lab.expect.session_up("A", "B") and fake_lab.disabled["A"] == set()


def test_an_unknown_way_to_depeer_changes_nothing(fake_lab):
    with pytest.raises(LabError, match="unknown way to depeer 'cable'"):
        fake_lab.depeer("A", "B", how="cable")
    assert mutations(fake_lab.backend) == [] and fake_lab.expect.session_up("A", "B")


def test_a_depeer_without_waiting_does_not_wait(fake_lab):
    assert fake_lab.depeer("A", "B", wait=False) is None
    assert not [c for c in fake_lab.backend.calls if c[0] in ("refresh", "changes")]


def test_announce_and_withdraw_reach_the_backend_and_the_prediction(fake_lab):
    fake = fake_lab.backend
    fake_lab.announce("A", "203.0.113.0/24", communities=["65000:1"], large_communities=["64501:0:1"])
    assert mutations(fake) == [("originate", "A", "203.0.113.0/24", ["65000:1"], ["64501:0:1"])]
    assert "203.0.113.0/24" in fake_lab.expect.originated["A"]
    assert fake_lab.expect.loc_ribs()["B"]["203.0.113.0/24"]["as_path"] == [64501]
    fake.calls.clear()
    fake_lab.withdraw("A", "203.0.113.0/24")
    assert mutations(fake) == [("withdraw", "A", "203.0.113.0/24")]
    assert "203.0.113.0/24" not in fake_lab.expect.loc_ribs()["B"]
    with pytest.raises(LabError, match="announce 203.0.113.0/24 from A"):
        fake_lab.announce("A", "203.0.113.0/24", communities=["not a community"])


def test_set_policy_is_checked_then_applied_to_router_and_prediction(fake_lab):
    fake = fake_lab.backend
    policy = {"export": [{"match": {"prefix": ["192.0.2.0/25"]}, "action": "reject"}]}
    with pytest.raises(LabError, match="has no session with 'Z'"):
        fake_lab.set_policy("A", "Z", policy)
    with pytest.raises(LabError):
        fake_lab.set_policy("A", "B", {"export": "everything"})
    assert mutations(fake) == []
    fake_lab.set_policy("A", "B", policy)
    assert mutations(fake) == [("set_policy", "A", "B", policy)]
    assert fake_lab.policy("A", "B") == policy
    assert fake_lab.expect.loc_ribs()["B"]["192.0.2.0/25"]["as_path"] == [64500, 64501]


def test_a_crash_is_expected_and_the_rest_converges(fake_lab):
    fake = fake_lab.backend
    fake.report()
    fake_lab.crash("B")
    assert mutations(fake) == [("crash", "B")]
    assert not fake_lab.expect.session_up("A", "B") and not fake_lab.expect.session_up("T", "B")
    assert "192.0.2.128/25" not in fake_lab.expect.loc_ribs()["A"]
    fake_lab.check_alive()  # an expected death is no failure


# -- the maximum-prefix hold ---------------------------------------------------------
def test_a_session_a_router_holds_at_its_limit_is_down_in_the_prediction_until_a_repeer(fake_lab):
    fake = fake_lab.backend
    fake.follow_prediction = False
    address_b = fake_lab.plan.routers["A"].neighbor("B").address
    fake.script += [lambda: fake.report(routers=["A"], shut={address_b: "maximum prefixes"}),
                    lambda: fake.report()]
    fake_lab.wait_converged(timeout=5)
    assert not fake_lab.expect.session_up("A", "B")
    assert fake_lab.disabled["A"] == {"B"}
    fake.follow_prediction = True
    fake_lab.repeer("A", "B")
    assert ("admin_up", "A", "B") in fake.calls and fake_lab.expect.session_up("A", "B")


# -- the ExaBGP backend's own operations, with fake processes ----------------------------
class FakeSpeaker:
    """ExaBGP as far as a reload goes: on SIGUSR1 it logs that a reload
    began and, ``takes`` seconds later, how it ended (``fails``: it could
    not load the file); it ignores the first ``drop`` signals (as ExaBGP
    5.0 drops one that arrives while updates are queued)."""

    pid = 0

    def __init__(self, log, drop=0):
        self.log, self.drop, self.signals = log, drop, 0
        self.takes, self.fails = 0.0, False

    def send_signal(self, signum):
        self.signals += 1
        if self.signals <= self.drop:
            return
        self._write(RELOAD_BEGUN + b" 5.0.15\n")
        end = (RELOAD_FAILED if self.fails else RELOAD_DONE) + b"\n"
        if self.takes:
            threading.Timer(self.takes, self._write, (end,)).start()
        else:
            self._write(end)

    def _write(self, line):
        with open(self.log, "ab") as log:
            log.write(line)

    def poll(self):
        return None


class FakeAgent:
    def __init__(self):
        self.requests = []

    def request(self, op, timeout=None, **fields):
        self.requests.append({"op": op, **fields})
        return {"generation": 0}


@pytest.fixture
def exabgp(tmp_path):
    lab = Lab("triangle", process_model="exec")
    backend = lab.backend
    assert isinstance(backend, ExaBGPBackend)
    backend.prepare("abc123", tmp_path)
    for router in lab.plan.routers:
        (tmp_path / router).mkdir()
        (tmp_path / router / "exabgp.conf").write_text(backend.render(router))
        (tmp_path / router / "exabgp.log").write_bytes(b"")
        backend.speakers[router] = FakeSpeaker(tmp_path / router / "exabgp.log")
        backend.clients[router] = FakeAgent()
    return lab, backend


def test_the_exabgp_admin_shutdown_rewrites_tells_the_agent_and_reloads(exabgp):
    lab, backend = exabgp
    address = lab.plan.routers["A"].neighbor("B").address
    backend.speakers["A"].drop = 2  # ExaBGP drops two reload signals: the backend signals again
    backend.admin_down("A", "B")
    conf = (backend.router_dir("A") / "exabgp.conf").read_text()
    assert f"neighbor {address} " not in conf
    assert f"neighbor {lab.plan.routers['A'].neighbor('T').address} " in conf
    assert backend.clients["A"].requests == [{"op": "admin", "neighbor": address, "down": True}]
    assert backend.speakers["A"].signals == 3
    assert backend.admin_down_peers("A") == {"B"}
    backend.admin_up("A", "B")
    assert f"neighbor {address} " in (backend.router_dir("A") / "exabgp.conf").read_text()
    assert backend.clients["A"].requests[-1] == {"op": "admin", "neighbor": address, "down": False}
    assert backend.admin_down_peers("A") == set()


def test_a_reload_exabgp_never_does_is_an_error_naming_the_router(exabgp):
    lab, backend = exabgp
    backend.speakers["B"].drop = 10 ** 6
    t0 = time.monotonic()
    with pytest.raises(LabError, match="router B: ExaBGP did not reload its configuration"):
        backend.reload("B", timeout=0.5)
    assert time.monotonic() - t0 < 2
    assert backend.speakers["B"].signals >= 2  # signalled again, every 0.2 s


def test_a_reload_returns_when_it_ended_and_is_not_signalled_again_once_begun(exabgp):
    lab, backend = exabgp
    speaker = backend.speakers["T"]
    speaker.takes = 0.5  # longer than the 0.2 s after which a signal is sent again
    t0 = time.monotonic()
    backend.reload("T")
    assert time.monotonic() - t0 >= 0.45, "returned when the reload began, not when it ended"
    assert speaker.signals == 1
    speaker.takes, speaker.fails = 0.0, True
    with pytest.raises(LabError, match="router T: ExaBGP could not load its configuration on reload"):
        backend.reload("T")


def test_the_exabgp_backend_holds_a_session_its_agent_closed_at_the_limit(exabgp):
    lab, backend = exabgp
    # Watch answers come over a socket, as from an agent.
    ours, theirs = socket.socketpair()
    watcher = AgentClient("unused", "A")
    watcher.connection = jsonlines.Connection(ours)
    backend.watchers = {"A": watcher}
    backend._watch_pending = {"A": True}
    import selectors

    backend._selector = selectors.DefaultSelector()
    backend._selector.register(ours, selectors.EVENT_READ, "A")
    held = []
    backend.on_session_held = lambda router, peer: held.append((router, peer))
    address_b = lab.plan.routers["A"].neighbor("B").address

    def answer(generation, shut):
        state = {"generation": generation, "sessions": {}, "state_digest": "x", "shut": shut}
        theirs.sendall(json.dumps(state).encode() + b"\n")

    try:
        answer(5, {})
        assert backend.changes(1.0, time.monotonic() + 1) == {"A"}
        answer(4, {address_b: "maximum prefixes"})  # older than what is known: ignored
        assert backend.changes(1.0, time.monotonic() + 1) == set()
        assert held == [] and backend.states["A"]["generation"] == 5
        answer(6, {address_b: "maximum prefixes"})
        assert backend.changes(1.0, time.monotonic() + 1) == {"A"}
        assert held == [("A", "B")]
        assert backend.admin_down_peers("A") == {"B"}
        assert f"neighbor {address_b} " not in (backend.router_dir("A") / "exabgp.conf").read_text()
        assert backend.clients["A"].requests[-1] == {"op": "admin", "neighbor": address_b, "down": True}
        answer(7, {address_b: "maximum prefixes"})  # held already: not again
        backend.changes(1.0, time.monotonic() + 1)
        assert held == [("A", "B")] and len(backend.clients["A"].requests) == 1
        # The backend asked for the next change after each answer.
        asks = theirs.recv(65536).decode().splitlines()
        assert [json.loads(line) for line in asks][-1] == {"op": "watch", "after": 7}
    finally:
        backend._selector.close()
        ours.close()
        theirs.close()


def test_an_event_s_seconds_count_from_its_start_including_the_backend_s_work(fake_lab, monkeypatch):
    """The seconds ``depeer`` returns start before the backend acts: an
    ExaBGP reload that takes its time (routes move meanwhile) is part of the
    convergence time, not before it."""
    fake = fake_lab.backend
    fake.report()
    slow = fake.admin_down

    def admin_down(router, peer):
        time.sleep(0.3)
        slow(router, peer)

    monkeypatch.setattr(fake, "admin_down", admin_down)
    assert fake_lab.depeer("A", "B") >= 0.3
