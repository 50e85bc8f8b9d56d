"""Gao-Rexford route propagation in rank order: every AS's best route to
one prefix, in time linear in the graph.

Under the relationship policies of ``testbed.bgp.policy`` (customer routes
over peer routes over provider routes, valley-free export, shortest AS path,
then the lowest BGP identifier of the neighbor) routing has one stable state,
and it can be built class by class instead of message by message:

1. customer routes climb from the origins up provider links, one path
   length at a time (a breadth-first search, so each AS takes the shortest,
   ties to the lowest-ranked customer);
2. every AS holding a customer route (or the origin) offers it once across
   its peerings and route servers; an AS without a customer route takes the
   best offer (local preference, length, rank);
3. every AS with a route offers it down to its customers, again one length
   at a time from the shortest (a bucket queue), to ASes still without one.

``propagate(graph, seeds)`` returns a ``Routing``: for each node its next
hop (the neighbor it learned the route from: a compact tree per prefix,
paths rebuilt on demand by ``Routing.path``), path length, class and the
seed it descends from. Seeds are the origins (length 0) and, for a route
leak, the leaker with the length of the route it leaks, which it then gives
every neighbor. ``rejects`` lets nodes refuse routes descending from given
seeds (route origin validation, or the ASes a leaked route already
crossed). Pure; the graph is read, never changed.
"""

from __future__ import annotations

from dataclasses import dataclass

from .graph import PEER_LOCAL_PREF, ASGraph

__all__ = ["Routing", "propagate", "SEED", "CUSTOMER", "PEER", "PROVIDER", "NONE"]

SEED, CUSTOMER, PEER, PROVIDER, NONE = 0, 1, 2, 3, 9
CLASS_NAMES = {SEED: "origin", CUSTOMER: "customer", PEER: "peer", PROVIDER: "provider"}


@dataclass
class Routing:
    """Every node's best route to one prefix (see the module docstring).

    ``nh[x]``: the node x learned its route from (-1: none, or x is an
    origin); ``via[x]``: the route server it came through (-1: none);
    ``length[x]``: its AS path length (-1: no route); ``cls[x]``: SEED,
    CUSTOMER, PEER, PROVIDER or NONE; ``root[x]``: the seed it descends from.
    """

    graph: ASGraph
    seeds: tuple[int, ...]
    nh: list[int]
    via: list[int]
    length: list[int]
    cls: list[int]
    root: list[int]

    def has_route(self, node: int) -> bool:
        return self.cls[node] != NONE

    def path(self, node: int) -> list[int]:
        """The nodes of ``node``'s AS path (itself excluded, the origin
        last); [] for an origin or a node without a route."""
        path = []
        x = node
        seeds = set(self.seeds)
        while self.cls[x] != NONE and not (x in seeds and self.nh[x] < 0):
            x = self.nh[x]
            if x < 0:
                break
            path.append(x)
            if len(path) > len(self.nh):
                raise RuntimeError("routing loop in the next-hop tree")
        return path

    def as_path(self, node: int) -> tuple[int, ...]:
        """``path`` as ASNs."""
        asns = self.graph.asns
        return tuple(asns[x] for x in self.path(node))

    def reached(self) -> int:
        """How many nodes have a route."""
        return sum(1 for c in self.cls if c != NONE)


def _rs_offer(graph: ASGraph, members: list, client: int, nh, via, seeds_set) -> int:
    """The member whose route a route server gives ``client``: the best of
    its members' (sorted) routes that does not come from ``client`` or
    cross it."""
    for _, _, q in members:
        if q == client:
            continue
        x, crossed = q, False
        while x >= 0:
            if x == client:
                crossed = True
                break
            if x in seeds_set and nh[x] < 0:
                break
            x = nh[x]
        if not crossed:
            return q
    return -1


def propagate(graph: ASGraph, seeds, rejects: dict[int, set[int]] | None = None) -> Routing:
    """The stable state for one prefix. ``seeds``: nodes originating it
    (ints), or (node, length, next hop) triples for a leaker that re-sends
    a route of that length learned from that next hop. ``rejects``: node ->
    seeds whose routes it refuses."""
    n = len(graph)
    nh = [-1] * n
    via = [-1] * n
    length = [-1] * n
    cls = [NONE] * n
    root = [-1] * n
    rank = graph.rank
    rejects = rejects or {}
    seed_nodes = []
    buckets: dict[int, list[int]] = {}
    for seed in seeds:
        node, seed_len, parent = (seed, 0, -1) if isinstance(seed, int) else seed
        nh[node], length[node], cls[node], root[node] = parent, seed_len, SEED, node
        seed_nodes.append(node)
        buckets.setdefault(seed_len, []).append(node)
    seeds_set = set(seed_nodes)
    providers, customers, peers = graph.providers, graph.customers, graph.peers
    partial = graph.partial

    # 1. Customer routes, up, shortest first.
    customer_class = []
    if buckets:
        level = min(buckets)
        top = max(buckets)
        while True:
            current = buckets.get(level)
            if not current and level > top:
                break
            if current:
                customer_class.extend(current)
                found: dict[int, int] = {}
                for x in current:
                    if cls[x] != SEED:
                        blocked = partial.get(x)
                        if blocked and nh[x] in blocked:
                            continue  # learned from a partial-transit customer: not to providers
                    origin = root[x]
                    for y in providers[x]:
                        if cls[y] != NONE:
                            continue
                        refused = rejects.get(y)
                        if refused and origin in refused:
                            continue
                        held = found.get(y)
                        if held is None or rank[x] < rank[held]:
                            found[y] = x
                nxt = level + 1
                if found:
                    bucket = buckets.setdefault(nxt, [])
                    for y, x in found.items():
                        nh[y], length[y], cls[y], root[y] = x, nxt, CUSTOMER, root[x]
                        bucket.append(y)
                    top = max(top, nxt)
            level += 1

    # 2. Peer routes: one hop across from a customer route.
    offers: dict[int, tuple] = {}
    peer_pref = graph.peer_pref
    for q in customer_class:
        origin = root[q]
        reach = length[q] + 1
        for x in peers[q]:
            if cls[x] != NONE:
                continue
            refused = rejects.get(x)
            if refused and origin in refused:
                continue
            key = (-peer_pref.get((x, q), PEER_LOCAL_PREF), reach, rank[q], -1)
            held = offers.get(x)
            if held is None or key < held[0]:
                offers[x] = (key, q, -1)
    for rs, clients in graph.route_servers.items():
        members = sorted((length[q], rank[q], q) for q in clients if cls[q] in (SEED, CUSTOMER))
        if not members:
            continue
        for x in clients:
            if cls[x] != NONE:
                continue
            q = _rs_offer(graph, members, x, nh, via, seeds_set)
            if q < 0:
                continue
            refused = rejects.get(x)
            if refused and root[q] in refused:
                continue
            key = (-PEER_LOCAL_PREF, length[q] + 1, rank[rs], rank[q])
            held = offers.get(x)
            if held is None or key < held[0]:
                offers[x] = (key, q, rs)
    for x, (key, q, rs) in offers.items():
        nh[x], via[x], length[x], cls[x], root[x] = q, rs, key[1], PEER, root[q]

    # 3. Provider routes, down, shortest first.
    buckets = {}
    for x in range(n) if len(offers) + len(customer_class) > n // 4 else (
            customer_class + list(offers)):
        if cls[x] != NONE:
            buckets.setdefault(length[x], []).append(x)
    if buckets:
        level, top = min(buckets), max(buckets)
        while level <= top:
            current = buckets.get(level)
            level += 1
            if not current:
                continue
            found = {}
            for p in current:
                below = customers[p]
                if not below:
                    continue
                narrow = partial.get(p) if cls[p] == PROVIDER else None
                origin = root[p]
                for x in below:
                    if cls[x] != NONE:
                        continue
                    if narrow and x in narrow:
                        continue  # partial transit: no provider routes to it
                    refused = rejects.get(x)
                    if refused and origin in refused:
                        continue
                    held = found.get(x)
                    if held is None or rank[p] < rank[held]:
                        found[x] = p
            if found:
                bucket = buckets.setdefault(level, [])
                for x, p in found.items():
                    nh[x], length[x], cls[x], root[x] = p, level, PROVIDER, root[p]
                    bucket.append(x)
                top = max(top, level)
    return Routing(graph, tuple(seed_nodes), nh, via, length, cls, root)
