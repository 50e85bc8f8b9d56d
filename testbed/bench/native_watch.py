"""Waiting for a lab of BIRD routers until every one holds exactly what the model predicts.

A lab whose routers all run BIRD with the generated configuration
(``testbed.routers.bird_config``: the relationship policy and RFC 4271's
decision, as the ExaBGP routers apply them) can be held to the same
standard as the testbed's own routers: every session in its expected
state and every router's Loc-RIB and Adj-RIB-In equal to the prediction,
compared by the same state digest (``testbed.bgp.fingerprint``: prefix, AS
path, next hop, MED of every route) that an agent reports, not just
"quiet for a while" (``testbed.lab.converge_foreign``, which a user's own
policy needs). ``BirdWatch`` is that wait, a ``Convergence`` the benchmark
puts on such a lab.

BIRD tells no one when its routes change, so the watch asks every daemon
at once over its control socket (``testbed.routers.bird_control``, no
birdc process per question), round after round: a cheap look first
(``show protocols all``: sessions, and a count of route updates received
that grows with every change); a router whose sessions are as expected
and that received nothing since the last round is asked for its whole
table (``show route all``), whose digest is compared with the
prediction's. A router that matched is looked at again only if its
sessions or its count changed since; the lab has converged once a whole
round finds every router unchanged since it matched, so at that round's
start every router held the predicted state at once. After an event,
a router whose predicted digest did not change and that changed nothing
still counts as matched. It only looks;
after a round it rests as long as the round took, so the watching takes
at most about half of one core from the routers. ``digest`` computes a
BIRD router's digest; ``expected_tables`` and ``differences`` say, route
by route, what differs when a wait times out.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from testbed.bgp.fingerprint import MASK, line_hash, route_line, state_fingerprint
from testbed.errors import ConvergenceTimeout, LabError
from testbed.lab.converge import Convergence
from testbed.routers.bird_config import protocol_name
from testbed.routers.bird_control import Session, clock_seconds, command, parse_channels, parse_table

__all__ = ["BirdWatch", "Matched", "differences", "digest", "expected_tables", "signature", "unchanged"]

POLL = 0.05      # seconds between two rounds, at least (and at least a round's own time)
ASKING = 8       # questions in flight at once (BIRD answers each in well under a millisecond of CPU)
EXPLAINED = 5    # routers whose differences a timeout lists route by route


@dataclass
class Matched:
    """What a router looked like when it last matched the prediction."""

    signature: tuple
    digest: str                # the state digest it matched
    sessions: dict[str, Session]
    last_route: float | None   # BIRD's clock (seconds of its day) of its newest route
    last_up: float | None      # and of its last session to come up


def signature(channels: dict[str, Session]) -> tuple:
    """What changes whenever a router's routes or sessions may have: each
    session's state and since when, the route updates received. Compare
    two with ``unchanged``."""
    ordered = sorted(channels.values(), key=lambda s: s.name)
    return (tuple((s.name, s.state, s.bgp_state) for s in ordered),
            sum(s.updates_received + s.withdraws_received for s in ordered),
            tuple(clock_seconds(s.since) for s in ordered))


SINCE_JITTER = 0.5  # seconds; BIRD shows "since" as now minus an age: it wobbles by a millisecond


def unchanged(a: tuple | None, b: tuple | None) -> bool:
    """Whether two signatures describe the same state (a session that went
    down and up again takes longer than ``SINCE_JITTER``)."""
    if a is None or b is None or a[:2] != b[:2]:
        return False
    return all(min(abs(x - y), 86400 - abs(x - y)) < SINCE_JITTER for x, y in zip(a[2], b[2]))


def digest(protocols: dict[str, str], routes: list[tuple]) -> str:
    """The state digest (``testbed.routers.agent_client.state_digest``) of a
    BIRD router holding ``routes`` (``parse_table``'s tuples);
    ``protocols``: BGP protocol name -> neighbour address. Routes of other
    protocols are its own prefixes (static), which count in its Loc-RIB
    as an agent's originated routes do."""
    loc = 0
    adj = dict.fromkeys(protocols.values(), 0)
    for prefix, proto, best, _, path, hop, med in routes:
        address = protocols.get(proto)
        if address is not None:
            adj[address] += line_hash(route_line(prefix, path, hop, med, False, adj_in=True))
            if best:
                loc += line_hash(route_line(prefix, path, hop, med))
        elif best:
            loc += line_hash(route_line(prefix, (), None, None))
    return state_fingerprint(loc & MASK, {address: total & MASK for address, total in adj.items()})


def session_problems(router: str, wanted: dict[str, bool], channels: dict[str, Session]) -> list[str]:
    """Sessions (protocol -> whether it should be Established) not in their expected state."""
    out = []
    for name, want in wanted.items():
        session = channels.get(name)
        have = session is not None and session.bgp_state.startswith("Established")
        if want != have:
            state = "missing" if session is None else f"{session.state} ({session.bgp_state or '-'})"
            out.append(f"router {router}: session {name} is {state}, expected "
                       f"{'established' if want else 'down'}")
    return out


def expected_tables(plan, expect, router: str) -> tuple[dict[str, dict[str, tuple]], dict[str, tuple]]:
    """``router``'s predicted Adj-RIBs-In (protocol -> prefix -> (AS path,
    next hop, MED)) and Loc-RIB (prefix -> the same; own prefixes ((),
    None, None)). Seconds per router at a hundred ASes: for explanations only."""
    by_address = {n.address: protocol_name(n) for n in plan.routers[router].neighbors}
    adj_in = {name: {} for name in by_address.values()}
    for address, rib in expect.adj_ribs_in()[router].items():
        for prefix, route in rib.items():
            adj_in[by_address[address]][prefix] = (tuple(route["as_path"]), route["next_hop"], route["med"])
    loc = {prefix: (tuple(route["as_path"]), route["next_hop"], route["med"])
           for prefix, route in expect.loc_ribs()[router].items()}
    return adj_in, loc


def differences(router: str, expected: tuple, routes: list[tuple]) -> list[str]:
    """Every difference between the routes BIRD holds (``parse_table``'s
    tuples) and ``expected_tables``, one sentence each."""
    want_in, want_loc = expected
    adj_in: dict[str, dict[str, tuple]] = {name: {} for name in want_in}
    loc: dict[str, tuple] = {}
    for prefix, proto, best, _, path, hop, med in routes:
        if proto in adj_in:
            adj_in[proto][prefix] = (path, hop, med)
            if best:
                loc[prefix] = (path, hop, med)
        elif best:
            loc[prefix] = ((), None, None)
    out = []
    for name, want in want_in.items():
        have = adj_in[name]
        for prefix in sorted(set(want) | set(have)):
            if want.get(prefix) != have.get(prefix):
                out.append(f"router {router}: from {name}, {prefix}: expected {_show(want.get(prefix))}, "
                           f"BIRD holds {_show(have.get(prefix))}")
    for prefix in sorted(set(want_loc) | set(loc)):
        if want_loc.get(prefix) != loc.get(prefix):
            out.append(f"router {router}: best route to {prefix}: expected "
                       f"{_show(want_loc.get(prefix))}, BIRD chose {_show(loc.get(prefix))}")
    return out


def _show(route: tuple | None) -> str:
    if route is None:
        return "no route"
    path, hop, med = route
    if not path and hop is None:
        return "its own prefix"
    return f"AS path {list(path)} via {hop}" + (f" MED {med}" if med is not None else "")


class BirdWatch(Convergence):
    """``wait_converged`` for a lab of BIRD routers with generated
    configurations (see the module docstring); ``matched`` keeps, per
    router, what it looked like when it matched, for the benchmark's
    figures; ``rounds`` counts the rounds of questions."""

    def __init__(self, lab):
        super().__init__(lab.plan, lab.expect, lab.backend, lab.queries.names, lambda stage: lab.progress(stage))
        self.matched: dict[str, Matched] = {}
        self.seen: dict[str, tuple] = {}  # router -> its signature at the last look, kept from wait to wait
        self.rounds = 0
        self._protocols = {name: {protocol_name(n): n.address for n in router.neighbors}
                           for name, router in self.plan.routers.items()}

    def _ask(self, routers: list[str], text: str) -> dict[str, str]:
        sockets = {router: self.backend.foreign.adapters[router].socket for router in routers}
        try:
            with ThreadPoolExecutor(ASKING) as pool:
                return dict(zip(routers, pool.map(lambda r: command(sockets[r], text), routers)))
        except LabError:
            self.backend.check_alive()  # a dead daemon is named as such
            raise

    def _wait_converged(self, timeout: float) -> float:
        # Convergence.wait_converged calls this and tells ``on_failure`` (the
        # benchmark's evidence) of a timeout. ``settle`` does not apply: the
        # watch does not tell settled from still converging.
        t0 = time.monotonic()
        deadline = t0 + timeout
        seen = self.seen
        digests = self.expect.digests()
        # An event changed the prediction: a router still matches if its
        # predicted state is the one it matched and it changed nothing since.
        self.matched = {router: m for router, m in self.matched.items() if m.digest == digests.get(router)}
        while True:
            round_start = time.monotonic()
            self.rounds += 1
            problems: dict[str, list[str]] = {}
            routers = [r for r in self.plan.routers if r not in self.backend.crashed]
            looks = {router: parse_channels(text) for router, text in self._ask(routers, "show protocols all").items()}
            quiet = []
            for router, channels in looks.items():
                sign = signature(channels)
                before = self.matched.get(router)
                if before is not None and unchanged(before.signature, sign):
                    continue
                self.matched.pop(router, None)
                wanted = {name: self.expect.session_up(router, n) for name, n in
                          ((protocol_name(n), n.name) for n in self.plan.routers[router].neighbors)}
                found = session_problems(router, wanted, channels)
                if found:
                    problems[router] = found
                elif not unchanged(seen.get(router), sign):
                    problems[router] = [f"router {router}: still receiving routes"]
                else:
                    quiet.append(router)
                seen[router] = sign
            for router, text in self._ask(quiet, "show route all").items():
                routes = parse_table(text)
                found = digest(self._protocols[router], routes)
                if found != digests[router]:
                    problems[router] = [f"router {router}: Loc-RIB or Adj-RIB-In differs from the prediction"]
                    continue
                channels = looks[router]
                bgp = [route[3] for route in routes if route[1] in self._protocols[router]]
                ups = [s.since for s in channels.values() if s.bgp_state.startswith("Established")]
                self.matched[router] = Matched(seen[router], found, channels,
                                               max(map(clock_seconds, bgp)) if bgp else None,
                                               max(map(clock_seconds, ups)) if ups else None)
            now = time.monotonic()
            if not problems and not quiet:
                self.backend.check_alive()
                return now - t0
            self.backend.check_alive()
            if now >= deadline:
                raise ConvergenceTimeout(self._describe(problems, timeout))
            if problems:  # after a round that only matched routers, confirm at once
                time.sleep(min(max(POLL, now - round_start), max(0.0, deadline - now)))

    def _describe(self, problems: dict[str, list[str]], timeout: float) -> str:
        lines = []
        explained = 0
        for router, found in problems.items():
            if found[0].endswith("differs from the prediction") and explained < EXPLAINED:
                explained += 1
                try:
                    routes = parse_table(command(self.backend.foreign.adapters[router].socket, "show route all"))
                    found = differences(router, expected_tables(self.plan, self.expect, router), routes) or found
                except LabError as exc:
                    found = found + [f"router {router}: {exc}"]
            lines += found
        shown = lines[:60]
        more = f"\n  ... and {len(lines) - len(shown)} more" if len(lines) > len(shown) else ""
        return (f"routing did not converge within {timeout:.1f} s: {len(problems)} BIRD router(s) "
                "differ from the prediction:\n  " + "\n  ".join(shown) + more)
