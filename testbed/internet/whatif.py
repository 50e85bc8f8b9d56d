"""What-if questions asked of a whole AS graph, answered by the routing model.

Each question compares the stable routing state before and after a change:
``depeer`` (a link goes away), ``withdraw`` (an origin stops announcing,
to everyone or to some neighbors), ``hijack`` (another AS originates the
victim's prefix; ASes doing route origin validation, with a ROA for the
victim, refuse it) and ``leak`` (an AS sends the routes it learned from
providers and peers to all its neighbors). Only the origins whose routes
the change can touch are computed (for a depeering: the origins one end
reaches through the other, found from the two ends' customer cones), with
the batch model where the graph allows it, else ``propagate``. The answer
is an ``Outcome``: how many best paths changed, which ASes lost reach of
which origins, and the old and new paths of the ASes asked about. Data
enters as an ``ASGraph`` and node indexes; nothing is printed here.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from . import batch
from .graph import PEER_LOCAL_PREF, ASGraph
from .propagate import NONE, SEED, propagate

__all__ = ["Outcome", "depeer", "withdraw", "hijack", "leak", "peer_choice"]


@dataclass
class Outcome:
    """What a change does to routing (see the module docstring)."""

    change: str
    model: str
    origins_total: int
    origins_examined: int = 0
    changed: int = 0                     # (AS, origin) best paths that changed
    lost: int = 0                        # (AS, origin) pairs that had a route and have none
    gained: int = 0
    lost_by_as: Counter = field(default_factory=Counter)       # node -> origins it lost
    lost_by_origin: Counter = field(default_factory=Counter)   # origin -> ASes that lost it
    shown: dict = field(default_factory=dict)    # node -> [(origin, old path, new path)]
    crossing: Counter = field(default_factory=Counter)   # leak: origin -> ASes whose route crosses it
    fooled: list = field(default_factory=list)           # hijack: ASes routing to the attacker
    seconds: float = 0.0
    notes: list = field(default_factory=list)


def _columns(graph: ASGraph, origins, modify=None):
    """Yield (origins, cls, nh, length) arrays (nodes x origins) for
    ``origins`` on ``graph`` (after ``modify(graph)``, on a copy)."""
    if modify is not None:
        graph = graph.copy()
        modify(graph)
    if batch.supported(graph) is None and len(origins) > 8:
        compiled = batch.compile_graph(graph)
        for lo in range(0, len(origins), 64):
            result = batch.run_batch(compiled, origins[lo:lo + 64])
            yield result.origins, result.cls, result.next_hop(), result.length()
        return
    for origin in origins:
        yield (np.array([origin]),) + _arrays([propagate(graph, [origin])])


def _arrays(routings):
    cls = np.array([r.cls for r in routings], dtype=np.int64).T
    nh = np.array([[(-1 if c in (SEED, NONE) else h) for c, h in zip(r.cls, r.nh)]
                   for r in routings], dtype=np.int64).T
    length = np.array([r.length for r in routings], dtype=np.int64).T
    return cls, nh, length


def _path(nh: np.ndarray, column: int, node: int) -> list[int]:
    path, x = [], node
    while nh[x, column] >= 0 and len(path) <= len(nh):
        x = int(nh[x, column])
        path.append(x)
    return path


def _compare(outcome: Outcome, before, after, show: list[int], extra_origin=None) -> None:
    origins, cls_b, nh_b, len_b = before
    _, cls_a, nh_a, len_a = after
    # An origin's own route is no reach of anything: only learned routes count.
    had = (cls_b != NONE) & (cls_b != SEED)
    has = (cls_a != NONE) & (cls_a != SEED)
    changed = (nh_b != nh_a) | (had != has)
    # A path also changes when its next hop's path does: down the new tree.
    for level in range(1, int(len_a.max(initial=0)) + 1):
        rows, where = np.nonzero(len_a == level)
        hop = nh_a[rows, where]
        ok = hop >= 0
        changed[rows[ok], where[ok]] |= changed[hop[ok], where[ok]]
    outcome.changed += int(changed.sum())
    lost = had & ~has
    outcome.lost += int(lost.sum())
    outcome.gained += int((has & ~had).sum())
    rows, where = np.nonzero(lost)
    outcome.lost_by_as.update(rows.tolist())
    outcome.lost_by_origin.update(origins[where].tolist())
    for node in show:
        for column in np.nonzero(changed[node])[0].tolist():
            entries = outcome.shown.setdefault(node, [])
            if len(entries) < 20:
                entries.append((int(origins[column]) if extra_origin is None else extra_origin,
                                _path(nh_b, column, node) if had[node, column] else None,
                                _path(nh_a, column, node) if has[node, column] else None))


def peer_choice(graph: ASGraph, node: int) -> dict[int, int]:
    """origin -> the peer ``node`` takes its route from, for every origin it
    has a peer route to (no customer route), on a graph without partial
    transit or route servers: the peers' customer cones with their depths
    give the offers, the best is chosen as ``propagate`` does."""
    own = graph.customer_cone(node)
    best: dict[int, tuple] = {}
    for q in graph.peers[node]:
        pen = -graph.peer_pref.get((node, q), PEER_LOCAL_PREF)
        depth = {q: 0}
        frontier = [q]
        while frontier:
            nxt = []
            for x in frontier:
                for c in graph.customers[x]:
                    if c not in depth:
                        depth[c] = depth[x] + 1
                        nxt.append(c)
            frontier = nxt
        rank = graph.rank[q]
        for origin, d in depth.items():
            if origin in own:
                continue
            key = (pen, d + 1, rank, q)
            held = best.get(origin)
            if held is None or key < held:
                best[origin] = key
    return {origin: key[3] for origin, key in best.items()}


def _run(outcome: Outcome, graph: ASGraph, origins, modify, show) -> Outcome:
    start = time.perf_counter()
    outcome.origins_examined = len(origins)
    for before, after in zip(_columns(graph, origins), _columns(graph, origins, modify)):
        _compare(outcome, before, after, show)
    outcome.seconds = time.perf_counter() - start
    return outcome


def _model(graph: ASGraph, origins) -> str:
    if batch.supported(graph) is None and len(origins) > 8:
        return "batch rank-order model"
    return "rank-order propagation"


def depeer(graph: ASGraph, a: int, b: int, show=(), limit: int | None = None) -> Outcome:
    """``a`` and ``b`` end their link."""
    kind = graph.relationship(a, b)
    if kind is None:
        raise ValueError(f"{graph.label(a)} and {graph.label(b)} have no link")
    if kind == "peer" and batch.supported(graph) is None:
        chosen_a, chosen_b = peer_choice(graph, a), peer_choice(graph, b)
        origins = sorted({o for o, q in chosen_a.items() if q == b}
                         | {o for o, q in chosen_b.items() if q == a})
        how = "the origins either end reaches through the other (from their peers' cones)"
    else:
        origins = list(range(len(graph)))
        how = "every origin (a transit link can carry any)"
    outcome = Outcome(f"{graph.label(a)} and {graph.label(b)} end their {'peering' if kind == 'peer' else 'transit'}",
                      _model(graph, origins), len(graph))
    outcome.notes.append(f"origins examined: {how}")
    if limit is not None and len(origins) > limit:
        origins = sorted(random.Random(1).sample(origins, limit))
        outcome.notes.append(f"a sample of {limit} of them (--limit): counts are for the sample")
    return _run(outcome, graph, origins, lambda g: g.remove_link(a, b), list(show))


def withdraw(graph: ASGraph, origin: int, neighbors=(), show=()) -> Outcome:
    """``origin`` stops announcing its prefix (to ``neighbors`` only, if given)."""
    start = time.perf_counter()
    before = (np.array([origin]),) + _arrays([propagate(graph, [origin])])
    if neighbors:
        changed = graph.copy()
        for n in neighbors:
            changed.remove_link(origin, n)
        after_routing = propagate(changed, [origin])
        what = f"{graph.label(origin)} stops announcing its prefix to " + ", ".join(graph.label(n) for n in neighbors)
    else:
        after_routing = propagate(graph, [])
        what = f"{graph.label(origin)} withdraws its prefix"
    after = (np.array([origin]),) + _arrays([after_routing])
    outcome = Outcome(what, "rank-order propagation", len(graph), 1)
    _compare(outcome, before, after, list(show))
    outcome.seconds = time.perf_counter() - start
    return outcome


def hijack(graph: ASGraph, attacker: int, victim: int, rov=(), show=()) -> Outcome:
    """``attacker`` originates ``victim``'s prefix too; the ``rov`` nodes
    validate origins (a ROA for the victim) and refuse the attacker's."""
    start = time.perf_counter()
    before = (np.array([victim]),) + _arrays([propagate(graph, [victim])])
    rejects = {node: {attacker} for node in rov}
    routing = propagate(graph, [victim, attacker], rejects)
    after = (np.array([victim]),) + _arrays([routing])
    outcome = Outcome(f"{graph.label(attacker)} hijacks the prefix of {graph.label(victim)}"
                      + (f", {len(rov)} ASes validating origins" if rov else ""),
                      "rank-order propagation", len(graph), 1)
    _compare(outcome, before, after, list(show))
    fooled = [x for x in range(len(graph)) if routing.root[x] == attacker and x != attacker]
    outcome.notes.append(f"{len(fooled)} of {len(graph) - 2} ASes route the victim's prefix to the attacker")
    outcome.fooled = fooled
    outcome.seconds = time.perf_counter() - start
    return outcome


def leak(graph: ASGraph, leaker: int, origins=None, show=(), sample: int = 200) -> Outcome:
    """``leaker`` sends every route it learned from a provider or a peer to
    all its neighbors (each route's own next hop and path ASes excepted);
    for ``origins`` (a seeded sample of ``sample`` origins if None)."""
    start = time.perf_counter()
    outcome = Outcome(f"{graph.label(leaker)} leaks its provider and peer routes to all its neighbors",
                      "rank-order propagation", len(graph))
    if origins is None:
        pool = [o for o in range(len(graph)) if o != leaker]
        origins = sorted(random.Random(1).sample(pool, min(sample, len(pool))))
        outcome.notes.append(f"a sample of {len(origins)} origins: counts are for the sample")
    for origin in origins:
        base = propagate(graph, [origin])
        if base.cls[leaker] in (SEED, 1, NONE):
            continue  # its own or a customer route: it sends it everywhere already
        path = base.path(leaker)
        rejects = {x: {leaker} for x in path}
        leaked = propagate(graph, [origin, (leaker, base.length[leaker], base.nh[leaker])], rejects)
        leaked.cls[leaker] = base.cls[leaker]   # the leaker keeps its route; only its export changed
        before = (np.array([origin]),) + _arrays([base])
        after = (np.array([origin]),) + _arrays([leaked])
        _compare(outcome, before, after, list(show))
        outcome.origins_examined += 1
        outcome.crossing[origin] = sum(1 for x in range(len(graph)) if leaked.root[x] == leaker
                                       and x != leaker)
    outcome.seconds = time.perf_counter() - start
    return outcome
