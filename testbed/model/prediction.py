"""The routing state a lab should converge to, predicted without running it.

``Expectation`` builds one pure ``RouterEngine`` per router from the address
plan (through the agent's own configuration, so with the same policies), connects them in memory along the sessions that are up, and runs them
to a fixpoint (``testbed.bgp.simulate``). The lab waits until every real
router's Loc-RIB equals this prediction, which makes "converged" an exact,
event-driven condition rather than "nothing changed for a while". The same
engine runs inside each route agent, so a difference means the real path
(ExaBGP, sessions, messages) lost or changed something.
"""

from __future__ import annotations

from collections.abc import Mapping

from testbed.model.addressing import Plan
from testbed.bgp.configure import engine_from_config
from testbed.bgp.simulate import Session, SessionEnd, converge
from testbed.model.agent_config import agent_config
from testbed.model import fast_prediction


class Expectation:
    """Predicted Loc-RIBs for a plan, a set of sessions up and originations."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self.up: set[frozenset] = {s.key for s in plan.sessions}
        # router -> prefix -> (communities, large communities) it is originated with
        self.originated: dict[str, dict[str, tuple]] = {
            r.name: {p: ((), ()) for p in r.prefixes} for r in plan.routers.values()}
        self.policies: dict[tuple[str, str], dict | None] = {}  # (router, peer name) -> policy
        self.paths: dict[tuple[str, str], tuple] = {}  # (router, prefix) -> AS path it carries (replays)
        self._cache: dict[str, dict] | None = None
        self.model: str | None = None   # which model made the last prediction
        self.fast = True                # may use the rank-order model where it applies

    def set_policy(self, router: str, peer: str, policy: dict | None) -> None:
        """``router`` now applies ``policy`` on its session with ``peer``."""
        self.policies[(router, peer)] = policy
        self._cache = None

    def set_session(self, a: str, b: str, up: bool) -> None:
        key = frozenset((a, b))
        (self.up.add if up else self.up.discard)(key)
        self._cache = None

    def set_origin(self, router: str, prefix: str, on: bool, communities=(),
                   large_communities=(), as_path=()) -> None:
        if on:
            self.originated[router][prefix] = (tuple(communities), tuple(large_communities))
        else:
            self.originated[router].pop(prefix, None)
        if on and as_path:
            self.paths[(router, prefix)] = tuple(as_path)
        else:
            self.paths.pop((router, prefix), None)
        self._cache = None

    def max_messages(self) -> int:
        """How many messages the model may deliver before it declares the
        policies unstable (``NoConvergence``): generous for path exploration
        (every prefix crossing every session 50 times), small enough that a
        dispute wheel is reported in seconds, not after a million messages."""
        prefixes = sum(len(p) for p in self.originated.values())
        return max(10_000, 50 * (len(self.plan.sessions) + 1) * (prefixes + 1))

    def session_up(self, a: str, b: str) -> bool:
        """Whether the session between routers ``a`` and ``b`` should be
        Established: it is not depeered, and the model did not close it
        (a maximum-prefix limit)."""
        key = frozenset((a, b))
        if key not in self.up:
            return False
        self.loc_ribs()
        return key not in self._shut

    def loc_ribs(self) -> Mapping[str, dict[str, dict]]:
        """router -> prefix -> route (JSON form) once routing has converged."""
        if self._cache is None and self.fast and fast_prediction.out_of_scope(self) is None:
            self.model = fast_prediction.MODEL_FAST
            self._cache, self._adj_in, self._digests, self._adj_in_size = fast_prediction.predict(self)
            self._shut = set()
        if self._cache is None:
            self.model = fast_prediction.MODEL_EVENTS
            engines = {}
            for router in self.plan.routers.values():
                config = agent_config(self.plan, router, "", "")
                for neighbor in config["neighbors"]:
                    if (router.name, neighbor["name"]) in self.policies:
                        neighbor["policy"] = self.policies[(router.name, neighbor["name"])]
                engine = engine_from_config(config)
                for prefix, (communities, large) in sorted(self.originated[router.name].items()):
                    engine.originate(prefix, communities=communities, large_communities=large,
                                     as_path=self.paths.get((router.name, prefix), ()))
                engines[router.name] = engine
            sessions = [Session(SessionEnd(s.a, s.address_b), SessionEnd(s.b, s.address_a))
                        for s in self.plan.sessions]
            up = [sess for sess, plan_s in zip(sessions, self.plan.sessions) if plan_s.key in self.up]
            converge(engines, sessions, up, max_messages=self.max_messages())
            # Route objects, not their JSON form: at 1,000 ASes the JSON of
            # every router's tables took 5 GB of the harness's memory.
            self._cache = {name: engine.loc_rib() for name, engine in engines.items()}
            names = {(r.name, n.address): n.name for r in self.plan.routers.values() for n in r.neighbors}
            self._shut = {frozenset((name, names[(name, address)]))
                          for name, engine in engines.items() for address in engine.shut}
            self._adj_in = {name: {a: engine.adj_rib_in(a) for a in engine.neighbors}
                            for name, engine in engines.items()}
            self._digests = {name: engine.fingerprint() for name, engine in engines.items()}
            self._adj_in_size = lambda: sum(len(rib) for ribs in self._adj_in.values() for rib in ribs.values())
        return _AsJson(self._cache, depth=1)

    def adj_ribs_in(self) -> Mapping[str, dict[str, dict[str, dict]]]:
        """router -> neighbor address -> prefix -> route received, once converged."""
        self.loc_ribs()
        return _AsJson(self._adj_in, depth=2)

    def adj_rib_in_size(self) -> int:
        """How many routes all the Adj-RIBs-In hold together once converged
        (counted, not built, where the rank-order model applies)."""
        self.loc_ribs()
        return self._adj_in_size()

    def digests(self) -> dict[str, str]:
        """router -> ``testbed.routers.agent_client.state_digest`` of its predicted state."""
        self.loc_ribs()
        return dict(self._digests)


class _AsJson(Mapping):
    """A read-only view of the prediction's tables (router -> ... -> prefix
    -> ``Route``) that gives each router's tables in JSON form
    (``Route.to_json``) when they are looked up, one router at a time."""

    def __init__(self, tables: dict, depth: int):
        self._tables = tables
        self._depth = depth

    def __getitem__(self, router: str):
        return _json(self._tables[router], self._depth)

    def __iter__(self):
        return iter(self._tables)

    def __len__(self) -> int:
        return len(self._tables)


def _json(table: dict, depth: int) -> dict:
    if depth == 1:
        return {prefix: route.to_json() for prefix, route in table.items()}
    return {key: _json(inner, depth - 1) for key, inner in table.items()}
