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

from testbed.errors import ConvergenceTimeout, LabError, SettledWrong, SpeakerCrashed
from testbed.model.addressing import Plan
from testbed.model.prediction import Expectation
from testbed.routers.base import RouterBackend

QUIET = 2.0  # seconds without a change after which a timed-out lab is said to have settled
SETTLED = ("Either something on the real path lost or changed a message, or the policies allow more "
           "than one stable state (a BGP wedgie, RFC 4264: possible once they break the customer > peer > "
           "provider rules), and which one a network lands in depends on timing.)")


class Convergence:
    """The waits of one lab over its backend and its prediction."""

    settle: float | None = None
    """Seconds without any router receiving or changing anything after
    which a lab whose sessions are all as expected, but whose RIBs are not
    the prediction, has settled wrong (``SettledWrong``, raised then
    instead of at the timeout); None waits for the timeout. It is safe
    where every change comes by message (the agents' MRAI hold is 20 ms),
    not where a hold timer must expire (a cut link): set it for that."""

    on_failure: Callable[[Exception], None] | None = None
    """Called with the ``ConvergenceTimeout`` (or ``SpeakerCrashed``) of a
    wait before it is raised, while the lab still runs
    (``testbed.lab.evidence.keep_evidence`` keeps the logs and RIBs)."""

    def __init__(self, plan: Plan, expect: Expectation, backend: RouterBackend,
                 names: Callable[[list], list[str]], progress: Callable[[str], None] = lambda stage: None):
        self.plan = plan
        self.expect = expect
        self.backend = backend
        self.names = names
        self.progress = progress

    # -- following the routers ----------------------------------------------------
    def follow(self, satisfied: Callable[[set[str]], bool], deadline: float,
               patience: float | None = None, since: float | None = None) -> tuple[bool, float]:
        """Follow every live router's state until ``satisfied(routers whose
        state changed)`` holds, which is asked first with every router; not
        past ``deadline``, or after ``patience`` seconds in which no router
        changed anything (counted from this call at the earliest; ``since``:
        when one last changed, if before this call). Returns whether it held
        and when a router last changed (monotonic clock); ``backend.states``
        holds each router's latest state."""
        backend = self.backend
        # Start from the routers' present state, asked directly: a change
        # report still in flight may describe an older generation.
        backend.refresh(deadline)
        changed = {name for name in self.plan.routers if name not in backend.crashed}
        began = time.monotonic()
        last_change = since if since is not None else began
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
            if now >= deadline or (patience is not None and now - max(last_change, began) >= patience):
                return False, last_change
            wait = min(deadline - now, 0.5)

    def wait_converged(self, timeout: float) -> float:
        """Wait until every session is in its expected state and every
        router's state digest equals the prediction's. Returns the seconds
        waited; raises ``ConvergenceTimeout`` saying what was still missing
        (``SettledWrong`` if nothing had changed for ``QUIET`` seconds, or
        for ``settle`` seconds before the timeout), ``SpeakerCrashed``
        naming a router whose daemon died. ``on_failure`` is told of either
        error first, while the lab still runs."""
        try:
            return self._wait_converged(timeout)
        except (ConvergenceTimeout, SpeakerCrashed) as exc:
            if self.on_failure is not None:
                try:
                    self.on_failure(exc)
                except Exception as failure:  # the evidence must not hide the error itself
                    exc.args = (f"{exc}\n  (keeping the evidence failed: {type(failure).__name__}: "
                                f"{failure})",)
            raise

    def _wait_converged(self, timeout: float) -> float:
        t0 = time.monotonic()
        deadline = t0 + timeout

        def converged(changed) -> bool:
            digests = self.expect.digests()  # the prediction may have changed (a held session)
            return not any(self.mismatch(r, digests) for r in self.plan.routers if r not in self.backend.crashed)

        last_change = None
        while True:
            done, last_change = self.follow(converged, deadline, patience=self.settle, since=last_change)
            if done:
                return time.monotonic() - t0
            if time.monotonic() >= deadline:
                break
            # Quiet for ``settle`` seconds: settled, unless a session is
            # still to come up (ExaBGP retries a connection every few seconds).
            self.backend.check_alive()
            if not any(self.session_mismatch(r) for r in self.plan.routers if r not in self.backend.crashed):
                quiet = time.monotonic() - last_change
                raise SettledWrong(
                    self.describe_mismatch(self.expect.digests(), time.monotonic() - t0, timeout)
                    + f"\n  (every session is as expected, and no router received or changed anything "
                    f"in the last {quiet:.1f} s: the lab settled in a state other than the model's. " + SETTLED)
        self.backend.check_alive()
        message = self.describe_mismatch(self.expect.digests(), timeout)
        quiet = time.monotonic() - last_change
        if quiet >= QUIET:
            raise SettledWrong(message + f"\n  (no router changed anything in the last {quiet:.1f} s: the lab "
                               "settled in a state other than the model's. " + SETTLED)
        raise ConvergenceTimeout(message + f"\n  (still converging: a router changed something "
                                 f"{quiet:.1f} s before the timeout)")

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
        problems = self.session_mismatch(router)
        if state["state_digest"] != digests[router]:
            problems.append(f"router {router}: Loc-RIB or Adj-RIB-In differs from the expected one")
        return problems

    def session_mismatch(self, router: str) -> list[str]:
        """The sessions of ``router`` not in their expected state, one sentence each."""
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
        return problems

    def describe_mismatch(self, digests: dict[str, str], waited: float, timeout: float | None = None) -> str:
        lines = [f"routing did not converge within {waited:.1f} s:" if timeout is None else
                 f"routing settled wrong after {waited:.1f} s (of a {timeout:.1f} s timeout):"]
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
