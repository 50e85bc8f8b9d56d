"""Waiting for a lab with BIRD or FRR routers: what "converged" means with a foreign policy.

The model predicts what the testbed's own routers do, not what a user's
BIRD or FRR configuration does, so ``ForeignConvergence`` (the lab's
``Convergence`` for a ``testbed.routers.foreign.MixedBackend``) waits
instead until: every session is in its expected state, on both sides; on
every session between a BIRD/FRR router and an ExaBGP router, the
prefixes the daemon exports are those the ExaBGP router holds from it, and
the daemon holds nothing the ExaBGP router no longer sends
(``testbed.routers.byo.consistency_problems``); and no router's routes or
sessions changed for ``QUIET`` seconds (plus FRR's default coalesce time
when an FRR router runs a user's configuration). Between two BIRD/FRR
routers only the first and last apply. It only looks.
"""

from __future__ import annotations

import time

from testbed.errors import ConvergenceTimeout
from testbed.lab.converge import Convergence
from testbed.routers.byo import consistency_problems

__all__ = ["ForeignConvergence"]

POLL = 0.1  # seconds between two looks at the daemons, which announce nothing


class ForeignConvergence(Convergence):
    """``wait_converged`` for a lab with BIRD or FRR routers: sessions as
    expected, exports consistent with what ExaBGP neighbours hold, and
    nothing changed for a quiet period (``testbed.routers.byo``)."""

    QUIET = 0.6
    FRR_COALESCE = 1.0

    def wait_converged(self, timeout: float) -> float:
        backend = self.backend
        foreign = backend.foreign
        quiet = self.QUIET + (self.FRR_COALESCE if any(
            c.kind == "frr" and c.config is not None for c in foreign.choices.values()) else 0.0)
        t0 = time.monotonic()
        deadline = t0 + timeout
        backend.refresh(deadline)
        last_change = checked = time.monotonic()
        problems: list[str] | None = None
        while True:
            news = backend.changes(POLL, deadline)
            if news:
                last_change = time.monotonic()
                problems = None
            backend.check_alive_now_and_then()
            now = time.monotonic()
            if now - last_change >= quiet and (problems is None or now - checked >= 0.5):
                checked = now
                problems = self.problems()
                if not problems:
                    backend.check_alive()
                    return time.monotonic() - t0
            if now >= deadline:
                backend.check_alive()
                problems = problems if problems is not None else self.problems() or [
                    "routes and sessions were still changing"]
                raise ConvergenceTimeout(f"routing did not converge within {timeout:.1f} s:\n  "
                                         + "\n  ".join(problems))

    def problems(self) -> list[str]:
        backend = self.backend
        states = backend.states
        sessions = {name: state["sessions"] for name, state in states.items() if name not in backend.crashed}
        foreign_states = {name: backend.foreign.adapters[name].state()
                          for name in backend.foreign.choices if name not in backend.crashed}
        return consistency_problems(self.plan, self.expect, sessions, foreign_states,
                                    set(backend.foreign.choices), backend.crashed, backend.snapshot)
