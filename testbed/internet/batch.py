"""Every origin of a large AS graph at once: ``propagate`` vectorised.

The same three phases as ``testbed.internet.propagate``, run for a batch of
origins side by side in (nodes x origins) numpy arrays: customer routes
climb breadth-first from all the batch's origins together (only the pairs
on the frontier are touched), peer routes are offered from the pairs that
hold a customer route, and provider routes descend through the provider
graph one depth level at a time (each level's candidates in one gather and
one segmented minimum). A route is one 64-bit key per (node, origin):
``length * n + rank position of the next hop``, so the minimum is the BGP
choice (shortest, then lowest rank) and the next hop and length come back
out of it. Plain transit, peering and paid peering only (graphs from CAIDA
files); ``supported(graph)`` says so. Data enters as an ``ASGraph`` and
leaves as one ``Batch`` per group of origins; nothing keeps more than one
batch (the memory plan: a batch of K origins costs about 9 bytes x nodes x
K, 170 MB for 75,000 ASes and 256 origins).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .graph import ASGraph, PAID_LOCAL_PREF
from .propagate import CUSTOMER, NONE, PEER, PROVIDER, SEED, Routing

__all__ = ["Batch", "Compiled", "supported", "compile_graph", "run_batch", "all_origins"]

INF = np.iinfo(np.int64).max


def supported(graph: ASGraph) -> str | None:
    """Why the batch model cannot run ``graph`` (None: it can)."""
    if graph.partial:
        return "partial transit"
    if graph.route_servers:
        return "route servers"
    if len(set(graph.rank)) != len(graph):
        return "two nodes share a tie-break rank"
    return None


@dataclass
class Compiled:
    """The graph as flat arrays (CSR) for the batch phases."""

    n: int
    rank_pos: np.ndarray          # node -> its position in rank order
    node_at: np.ndarray           # rank position -> node
    prov_ptr: np.ndarray          # providers of each node (CSR)
    prov: np.ndarray
    peer_ptr: np.ndarray          # peers of each node (CSR), with the penalty
    peer: np.ndarray              # the receiving peer gives the sender's routes
    peer_pen: np.ndarray          # 1 where the receiver pays the sender
    levels: list                  # per provider depth: (nodes, their providers, segment starts)


def _csr(lists) -> tuple[np.ndarray, np.ndarray]:
    ptr = np.zeros(len(lists) + 1, dtype=np.int64)
    ptr[1:] = np.cumsum([len(x) for x in lists])
    flat = np.fromiter((y for x in lists for y in x), dtype=np.int64, count=int(ptr[-1]))
    return ptr, flat


def compile_graph(graph: ASGraph) -> Compiled:
    reason = supported(graph)
    if reason:
        raise ValueError(f"the batch model does not handle {reason}")
    n = len(graph)
    order = sorted(range(n), key=lambda x: graph.rank[x])
    node_at = np.array(order, dtype=np.int64)
    rank_pos = np.empty(n, dtype=np.int64)
    rank_pos[node_at] = np.arange(n)
    prov_ptr, prov = _csr(graph.providers)
    peer_ptr, peer = _csr(graph.peers)
    pen = np.fromiter((1 if graph.peer_pref.get((q, x)) == PAID_LOCAL_PREF else 0
                       for x in range(n) for q in graph.peers[x]), dtype=np.int64, count=len(peer))
    # Depth in the provider graph: every provider of a node is shallower.
    depth = [0] * n
    indegree = [len(p) for p in graph.providers]
    ready = [x for x in range(n) if not indegree[x]]
    seen = 0
    while ready:
        x = ready.pop()
        seen += 1
        for c in graph.customers[x]:
            depth[c] = max(depth[c], depth[x] + 1)
            indegree[c] -= 1
            if not indegree[c]:
                ready.append(c)
    if seen != n:
        raise ValueError("the provider graph has a cycle")
    by_depth: dict[int, list[int]] = {}
    for x in range(n):
        if depth[x]:
            by_depth.setdefault(depth[x], []).append(x)
    levels = []
    for d in sorted(by_depth):
        nodes = np.array(by_depth[d], dtype=np.int64)
        lists = [graph.providers[x] for x in by_depth[d]]
        starts = np.zeros(len(lists), dtype=np.int64)
        starts[1:] = np.cumsum([len(x) for x in lists])[:-1]
        levels.append((nodes, np.fromiter((p for x in lists for p in x), dtype=np.int64), starts))
    return Compiled(n, rank_pos, node_at, prov_ptr, prov, peer_ptr, peer, pen, levels)


def _expand(ptr, flat, nodes):
    """For (node) entries: (index of the entry, neighbor, edge index) per CSR edge."""
    counts = ptr[nodes + 1] - ptr[nodes]
    total = int(counts.sum())
    entry = np.repeat(np.arange(len(nodes)), counts)
    firsts = np.repeat(ptr[nodes] - (np.cumsum(counts) - counts), counts)
    edges = firsts + np.arange(total)
    return entry, flat[edges], edges


def _keep_min(target, col, cand, K):
    """Indexes of the smallest candidate per (target, col)."""
    flat = target * K + col
    order = np.lexsort((cand, flat))
    flat_sorted = flat[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = flat_sorted[1:] != flat_sorted[:-1]
    return order[first]


@dataclass
class Batch:
    """Routes of every node towards each origin of a batch: ``cls`` and
    ``key`` are (nodes x origins)."""

    compiled: Compiled
    origins: np.ndarray
    cls: np.ndarray
    key: np.ndarray

    def length(self) -> np.ndarray:
        return np.where(self.cls == NONE, -1, self.key // self.compiled.n)

    def next_hop(self) -> np.ndarray:
        nh = self.compiled.node_at[self.key % self.compiled.n]
        return np.where((self.cls == NONE) | (self.cls == SEED), -1, nh)

    def routing(self, graph: ASGraph, column: int) -> Routing:
        """Column ``column`` as a ``propagate`` result."""
        cls = self.cls[:, column].astype(int).tolist()
        return Routing(graph, (int(self.origins[column]),), self.next_hop()[:, column].tolist(),
                       [-1] * len(cls), self.length()[:, column].tolist(), cls,
                       [int(self.origins[column]) if c != NONE else -1 for c in cls])


def run_batch(c: Compiled, origins) -> Batch:
    """Routes towards each of ``origins`` (node indexes)."""
    n = c.n
    origins = np.asarray(origins, dtype=np.int64)
    K = len(origins)
    cols = np.arange(K, dtype=np.int64)
    key = np.full((n, K), INF, dtype=np.int64)
    cls = np.full((n, K), NONE, dtype=np.int8)
    key[origins, cols] = 0
    cls[origins, cols] = SEED
    # 1. customer routes, breadth-first up, every origin at once
    nodes, at, length = origins, cols, 0
    while len(nodes):
        entry, dst, _ = _expand(c.prov_ptr, c.prov, nodes)
        col = at[entry]
        fresh = cls[dst, col] == NONE
        src, dst, col = nodes[entry[fresh]], dst[fresh], col[fresh]
        if not len(dst):
            break
        cand = (length + 1) * n + c.rank_pos[src]
        best = _keep_min(dst, col, cand, K)
        nodes, at = dst[best], col[best]
        key[nodes, at] = cand[best]
        cls[nodes, at] = CUSTOMER
        length += 1
    # 2. peer routes from every (node, origin) holding a customer route
    holders, at = np.nonzero(cls <= CUSTOMER)
    entry, dst, edges = _expand(c.peer_ptr, c.peer, holders)
    pen = c.peer_pen[edges]
    col = at[entry]
    src = holders[entry]
    fresh = cls[dst, col] == NONE
    src, dst, col, pen = src[fresh], dst[fresh], col[fresh], pen[fresh]
    if len(dst):
        plain = (key[src, col] // n + 1) * n + c.rank_pos[src]
        best = _keep_min(dst, col, pen * (n * n) + plain, K)
        key[dst[best], col[best]] = plain[best]
        cls[dst[best], col[best]] = PEER
    # 3. provider routes, one provider depth at a time
    for nodes, provs, starts in c.levels:
        for lo in range(0, len(nodes), 4096):
            hi = min(len(nodes), lo + 4096)
            e_lo = starts[lo]
            e_hi = starts[hi] if hi < len(nodes) else len(provs)
            p = provs[e_lo:e_hi]
            held = key[p]
            cand = np.where(cls[p] != NONE, (held // n + 1) * n + c.rank_pos[p][:, None], INF)
            best = np.minimum.reduceat(cand, starts[lo:hi] - e_lo, axis=0)
            mine = nodes[lo:hi]
            take = (cls[mine] == NONE) & (best != INF)
            key[mine] = np.where(take, best, key[mine])
            cls[mine] = np.where(take, PROVIDER, cls[mine])
    return Batch(c, origins, cls, key)


def all_origins(graph: ASGraph, origins=None, size: int = 256, compiled: Compiled | None = None):
    """Yield a ``Batch`` per ``size`` origins (all nodes by default)."""
    c = compiled or compile_graph(graph)
    todo = list(range(len(graph))) if origins is None else list(origins)
    for lo in range(0, len(todo), size):
        yield run_batch(c, todo[lo:lo + size])
