"""The benchmark's native reference: the same generated Internet with every AS on BIRD 2.

``measure(size, model="bird")`` (``testbed.bench.benchmark``) runs the
topology it would give the testbed's own routers, switched to BIRD with
the generated configuration (``testbed.bench.differential.switched``,
``testbed.routers.bird_config``: the same relationship policy and
decision), through the same steps: ``lab(topology, progress)`` makes the
``Lab`` and puts ``BirdWatch`` on it (``testbed.bench.native_watch``:
converged means every session up and every Loc-RIB and Adj-RIB-In equal
to the prediction, as for our routers), and ``figures(lab, result,
started)`` fills what only BIRD can say: the route updates its sessions
received until converged (against the routes needed, for the path
exploration: what the Adj-RIBs-In hold once they match the prediction), and, read from BIRD's own clocks rather than from the
watching, when the last session came up and when the last route was put
in place. ``missing()`` says why BIRD cannot run here, if it cannot.
BIRD's daemons carry the lab's tag like any process of a lab, so CPU,
memory and leftovers are measured as for the others.
"""

from __future__ import annotations

import time

from testbed.bench.differential import switched
from testbed.bench.native_watch import BirdWatch

__all__ = ["MODEL", "figures", "lab", "missing", "since_start", "topology"]

MODEL = "bird"


def missing() -> str | None:
    """Why BIRD routers cannot run on this machine, or None."""
    from testbed.errors import LabError
    from testbed.routers.configs import daemon_binary

    try:
        daemon_binary("bird")
        daemon_binary("birdc")
    except LabError as exc:
        return str(exc)
    return None


def topology(generated):
    """The generated topology with every router on BIRD (generated configuration)."""
    return switched(generated, MODEL)


def lab(generated, progress):
    """A ``Lab`` of ``generated`` on BIRD routers, waited for by ``BirdWatch``."""
    from testbed.lab.lab import Lab

    made = Lab(topology(generated), progress=progress, merge_pages=False)
    made.convergence = BirdWatch(made)
    return made


def since_start(clock: float | None, started: float) -> float | None:
    """Seconds from ``started`` (the epoch) to a time of day on BIRD's clock
    (local time, seconds since midnight), taken within half a day of it."""
    if clock is None:
        return None
    local = time.localtime(started)
    of_day = local.tm_hour * 3600 + local.tm_min * 60 + local.tm_sec + started % 1
    delta = (clock - of_day) % 86400
    return delta - 86400 if delta > 43200 else delta


def figures(made, result, started: float) -> None:
    """Fill ``result`` (a ``testbed.bench.benchmark.Result``) from a
    converged BIRD lab: routes received and needed, and, on BIRD's clocks,
    start → last session up, start → last route in place and the spread
    between them. ``started``: the epoch at which ``start()`` was called."""
    watch: BirdWatch = made.convergence
    matched = watch.matched.values()
    result.routes_in = sum(s.updates_received for m in matched for s in m.sessions.values())
    # Every Adj-RIB-In matched the prediction's digest: the routes BIRD
    # holds are the routes needed (the prediction's own tables take minutes
    # to build at a thousand ASes).
    result.routes_needed = sum(count for m in matched for s in m.sessions.values() for count in s.imported.values())
    last_up = max((m.last_up for m in matched if m.last_up is not None), default=None)
    last_route = max((m.last_route for m in matched if m.last_route is not None), default=None)
    result.sessions_up_s = since_start(last_up, started)
    result.routes_placed_s = since_start(last_route, started)
    if result.sessions_up_s is not None and result.routes_placed_s is not None:
        result.spread_s = result.routes_placed_s - result.sessions_up_s

