"""A lab's routing state at one moment, as compact data, and what changed.

``capture(lab, label, t)`` asks every router's agent for its Loc-RIB
and summary (one control request each, without the Adj-RIBs) and keeps, per router, its Loc-RIB (prefix ->
AS path as names, the router of the next hop, the router it was learned
from), its sessions (peer -> state) and its counters (``stats``: UPDATEs
and routes received, announcements and withdrawals sent). ``changes``
lists the best paths that differ between two states; ``churn`` sums the
counters' growth across the lab. Pure data in and out apart from
``capture``'s requests; nothing here changes the lab.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CHURN_KEYS = ("updates_in", "routes_in", "withdrawn_in", "announced_out", "withdrawn_out")


@dataclass
class State:
    label: str
    t: float                                        # seconds since the lab converged at start
    ribs: dict[str, dict[str, dict]] = field(default_factory=dict)
    sessions: dict[str, dict[str, str]] = field(default_factory=dict)
    stats: dict[str, dict[str, int]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # router -> why it could not be read

    def to_json(self) -> dict:
        return {"label": self.label, "t": round(self.t, 4), "ribs": self.ribs,
                "sessions": self.sessions, "stats": self.stats, "errors": self.errors}


def compact_route(route: dict, names, router_of) -> dict:
    """A Loc-RIB route as the report keeps it: the AS path as names, the
    router of the next hop (``next``; the address ``nh`` only when no
    router of the lab has it) and the router it was learned from
    (``from``, only when that is not ``next``: a route server's routes)."""
    entry = {"path": names(route.get("as_path") or [])}
    next_hop = route.get("next_hop")
    if next_hop:
        entry["next"] = router_of(next_hop)
        if entry["next"] is None:
            entry["nh"] = next_hop
    learned = router_of(route["neighbor"]) if route.get("neighbor") else None
    if learned is not None and learned != entry.get("next"):
        entry["from"] = learned
    if route.get("communities"):
        entry["communities"] = route["communities"]
    return entry


def capture(lab, label: str, t: float) -> State:
    """Every router's Loc-RIB, sessions and counters now (see the module
    docstring). The requests go to every agent before any answer is read,
    so the agents work on them together. A router that cannot answer
    (crashed) is noted, not fatal."""
    state = State(label, t)
    router_of = lab.plan.router_of
    asked = []
    answers = {}
    for router in lab.plan.routers:
        try:
            if router not in lab.clients:  # BIRD or FRR: its backend reads it (testbed.routers.foreign)
                answers[router] = lab.backend.snapshot(router)
                asked.append(router)
                continue
            lab.clients[router].send({"op": "loc_rib"})  # no Adj-RIBs: a tenth of a snapshot
            asked.append(router)
        except Exception as exc:  # a crashed router is part of what a report shows
            state.errors[router] = f"{type(exc).__name__}: {exc}"
    for router in asked:
        try:
            snap = answers[router] if router in answers else lab.clients[router].receive()
        except Exception as exc:
            state.errors[router] = f"{type(exc).__name__}: {exc}"
            continue
        state.ribs[router] = {prefix: compact_route(route, lab.names, router_of)
                              for prefix, route in sorted(snap.get("loc_rib", {}).items())}
        state.sessions[router] = {s.get("name", address): s.get("state", "?")
                                  for address, s in sorted(snap.get("sessions", {}).items())}
        stats = snap.get("stats") or {}
        state.stats[router] = {key: int(stats.get(key) or 0) for key in CHURN_KEYS}
    return state


def changes(before: State, after: State) -> list[dict]:
    """Best paths that differ: router, prefix, the path before and after
    (None where there was no route)."""
    found = []
    for router in sorted(set(before.ribs) | set(after.ribs)):
        old, new = before.ribs.get(router, {}), after.ribs.get(router, {})
        for prefix in sorted(set(old) | set(new)):
            a, b = old.get(prefix), new.get(prefix)
            if (a and (a["path"], a.get("next"))) != (b and (b["path"], b.get("next"))):
                found.append({"router": router, "prefix": prefix,
                              "before": None if a is None else a["path"],
                              "after": None if b is None else b["path"]})
    return found


def churn(before: State, after: State) -> dict[str, int]:
    """Growth of each counter, summed over the routers read both times."""
    total = dict.fromkeys(CHURN_KEYS, 0)
    for router, stats in after.stats.items():
        old = before.stats.get(router)
        if old is None:
            continue
        for key in CHURN_KEYS:
            total[key] += max(0, stats.get(key, 0) - old.get(key, 0))
    return total
