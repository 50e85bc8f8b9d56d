"""Waiting for a lab's routing to converge: checks that only look.

``Convergence`` compares what the router backend reports of every router
(its sessions and the digest of its Loc-RIB and Adj-RIB-In, in
``backend.states``) with the model's prediction (``Expectation``): a lab
has converged when every session is in its expected state and every
digest equals the predicted one. It follows the routers' state changes as
the backend reports them (``RouterBackend.changes``), so a wait ends the
moment the last router gets there, and a timeout says, router by router,
what was still missing. Nothing here changes the lab: an action a router
takes by itself (holding a session it closed at a maximum-prefix limit)
is the backend's, where it learns of it, and the prediction follows it
through ``on_session_held`` (``testbed.lab.events``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from testbed.errors import ConvergenceTimeout, LabError
from testbed.model.addressing import Plan
from testbed.model.prediction import Expectation
from testbed.routers.base import RouterBackend

QUIET = 2.0  # seconds without a change after which a timed-out lab is said to have settled


class Convergence:
    """The waits of one lab over its backend and its prediction."""

    def __init__(self, plan: Plan, expect: Expectation, backend: RouterBackend,
                 names: Callable[[list], list[str]], progress: Callable[[str], None] = lambda stage: None):
        self.plan = plan
        self.expect = expect
        self.backend = backend
        self.names = names
        self.progress = progress

    # -- following the routers ----------------------------------------------------
    def follow(self, satisfied: Callable[[set[str]], bool], deadline: float,
               patience: float | None = None) -> tuple[bool, float]:
        """Follow every live router's state until ``satisfied(routers whose
        state changed)`` holds, which is asked first with every router; not
        past ``deadline``, or after ``patience`` seconds in which no router
        changed anything. Returns whether it held and when a router last
        changed (monotonic clock); ``backend.states`` holds each router's
        latest state."""
        backend = self.backend
        # Start from the routers' present state, asked directly: a change
        # report still in flight may describe an older generation.
        backend.refresh(deadline)
        changed = {name for name in self.plan.routers if name not in backend.crashed}
        last_change = time.monotonic()
        wait = 0.0
        while True:
            news = backend.changes(wait, deadline)
            if news:
                last_change = time.monotonic()
                changed |= news
            # A dead agent closes its socket (changes raises); a dead
            # speaker is looked for a few times a second, and once more
            # before saying the lab converged.
            backend.check_alive_now_and_then()
            if satisfied(changed):
                backend.check_alive()
                return True, last_change
            changed = set()
            now = time.monotonic()
            if now >= deadline or (patience is not None and now - last_change >= patience):
                return False, last_change
            wait = min(deadline - now, 0.5)

    def wait_converged(self, timeout: float) -> float:
        """Wait until every session is in its expected state and every
        router's state digest equals the prediction's. Returns the seconds
        waited; raises ``ConvergenceTimeout`` saying what was still missing,
        ``SpeakerCrashed`` naming a router whose daemon died."""
        t0 = time.monotonic()

        def converged(changed) -> bool:
            digests = self.expect.digests()  # the prediction may have changed (a held session)
            return not any(self.mismatch(r, digests) for r in self.plan.routers if r not in self.backend.crashed)

        done, last_change = self.follow(converged, t0 + timeout)
        if done:
            return time.monotonic() - t0
        self.backend.check_alive()
        message = self.describe_mismatch(self.expect.digests(), timeout)
        quiet = time.monotonic() - last_change
        if quiet >= QUIET:
            message += (f"\n  (no router changed anything in the last {quiet:.1f} s: the lab settled in "
                        "a state other than the model's. Either something on the real path lost or "
                        "changed a message, or the policies allow more than one stable state (a BGP "
                        "wedgie, RFC 4264: possible once they break the customer > peer > provider "
                        "rules), and which one a network lands in depends on timing.)")
        raise ConvergenceTimeout(message)

    def end_update_delay(self, deadline: float, patience: float) -> None:
        """Wait until every session the model expects is Established, then
        let the routers send their UPDATEs (``backend.release_routes``).

        Routers start over seconds (minutes at a thousand ASes), so routes
        sent as soon as each session opens would be explored again with
        every session that opens after it, on the CPU the speakers still
        starting need: the lab's own "bgp update-delay". After ``patience``
        seconds without a session coming up it ends anyway (a session that
        cannot come up is ``wait_converged``'s to report)."""
        missing: dict[str, int] = {}

        def all_up(changed) -> bool:
            for router in changed:
                sessions = self.backend.states[router]["sessions"].values()
                missing[router] = sum(1 for state in sessions if state["state"] != "established"
                                      and frozenset((router, state["name"])) in self.expect.up)
            return len(missing) == len(self.plan.routers) and not any(missing.values())

        up, _ = self.follow(all_up, deadline, patience=patience)
        if not up:
            down = sorted(router for router, count in missing.items() if count)
            self.progress(f"sending routes with sessions of {len(down)} router(s) still down "
                          f"({', '.join(down[:5])}{', ...' if len(down) > 5 else ''})")
        self.backend.release_routes(deadline)

    # -- comparing ------------------------------------------------------------------
    def mismatch(self, router: str, digests: dict[str, str]) -> list[str]:
        """What differs at ``router`` from the prediction, one sentence each."""
        state = self.backend.states.get(router)
        if state is None:
            return [f"router {router}: no answer from its route agent yet"]
        expected = {n.name: self.expect.session_up(router, n.name) for n in self.plan.routers[router].neighbors}
        problems = []
        for address, session in state["sessions"].items():
            want = expected[session["name"]]
            have = session["state"] == "established"
            if want != have:
                hint = ""
                if session.get("last_notification"):
                    hint = f"; last notification {session['last_notification']}"
                elif want and self.plan.routers[router].neighbor(session["name"]).password:
                    hint = ("; no NOTIFICATION: the session has a TCP MD5 password, and a "
                            "mismatch drops every segment silently")
                problems.append(f"router {router}: session to {session['name']} ({address}) is "
                                f"{session['state']}, expected {'established' if want else 'down'}{hint}")
        if state["state_digest"] != digests[router]:
            problems.append(f"router {router}: Loc-RIB or Adj-RIB-In differs from the expected one")
        return problems

    def describe_mismatch(self, digests: dict[str, str], timeout: float) -> str:
        lines = [f"routing did not converge within {timeout:.1f} s:"]
        expected = self.expect.loc_ribs()
        for router in self.plan.routers:
            if router in self.backend.crashed:
                continue
            problems = self.mismatch(router, digests)
            lines += [f"  {p}" for p in problems if "Adj-RIB-In" not in p]
            if not any("Adj-RIB-In" in p for p in problems):
                continue
            try:
                snapshot = self.backend.snapshot(router)
            except LabError as exc:
                lines.append(f"  router {router}: {exc}")
                continue
            actual = snapshot["loc_rib"]
            wanted = expected[router]  # converted to JSON at each lookup: once
            for prefix in sorted(set(wanted) | set(actual)):
                want, have = wanted.get(prefix), actual.get(prefix)
                if _brief(want) != _brief(have):
                    lines.append(f"  router {router}: {prefix}: expected {self._fmt(want)}, got {self._fmt(have)}")
            received = snapshot.get("adj_rib_in", {})
            names = {n.address: n.name for n in self.plan.routers[router].neighbors}
            for address, want_rib in self.expect.adj_ribs_in()[router].items():
                have_rib = received.get(address, {})
                missing = sorted(set(want_rib) - set(have_rib))
                extra = sorted(set(have_rib) - set(want_rib))
                if missing or extra:
                    lines.append(f"  router {router}: from {names.get(address, address)}: "
                                 f"not yet received {missing or 'nothing'}, not expected {extra or 'nothing'}")
        return "\n".join(lines)

    def _fmt(self, route: dict | None) -> str:
        if route is None:
            return "no route"
        if route.get("neighbor") is None and not route.get("as_path"):
            return "local origin"
        return f"AS path {self.names(route['as_path'])} via {route['next_hop']}"


def _brief(route: dict | None):
    return None if route is None else (tuple(route.get("as_path", ())), route.get("next_hop"))
