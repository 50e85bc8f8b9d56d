"""A sub-graph of a large AS graph, small enough to emulate, and its topology file.

``extract(graph, around, ...)`` keeps the chosen AS; all its providers, each
with a chain of providers up to the provider-free clique (the provider with
the shortest way up, then the largest cone, then the lowest ASN, at each
step, a provider already kept first); the ASes it must keep (``keep``, e.g. the other end of a depeering)
with their chains; then its peers and customers, then their neighbours up
to ``depth`` hops, busiest first, each with its chain, while ``max_ases``
allows. Since every AS left has a provider chain to a clique member and the
clique members kept all peer with each other, every AS reaches every other
under valley-free routing; ``extract`` checks that with the model and drops
any AS that does not. ``compare(sub, graph)`` says how the pruning changed
paths: for each pair of ASes kept, the path on the sub-graph against the
path on the whole graph. ``topology_source(sub)`` renders a topology module,
``topology_yaml(sub)`` the same as YAML
(``testbed.Topology``: one AS per node, transit and peering links). Pure;
the CLI writes the file.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from .caida import clique_of
from .graph import ASGraph
from .propagate import propagate

__all__ = ["SubGraph", "extract", "compare", "topology_source"]


@dataclass
class SubGraph:
    """The ASes kept (``nodes``, indexes of the full graph), the sub-graph
    itself (``graph``, its own indexes, same ASNs), and what was left out."""

    full: ASGraph
    around: int
    nodes: list[int]
    graph: ASGraph
    dropped: dict = field(default_factory=dict)   # "peers"/"customers"/... -> ASNs left out
    unreachable: list = field(default_factory=list)
    notes: list = field(default_factory=list)


def _up_depth(graph: ASGraph, clique: set[int]) -> list[int]:
    """Provider hops from each node up to the clique (-1: none)."""
    depth = [-1] * len(graph)
    queue = deque()
    for c in clique:
        depth[c] = 0
        queue.append(c)
    while queue:
        x = queue.popleft()
        for c in graph.customers[x]:
            if depth[c] < 0:
                depth[c] = depth[x] + 1
                queue.append(c)
    return depth


def extract(graph: ASGraph, around: int, depth: int = 2, max_ases: int = 30, keep=(),
            facts: dict | None = None) -> SubGraph:
    """See the module docstring; raises ``ValueError`` when the AS and its
    chains alone do not fit in ``max_ases``."""
    clique = set(clique_of(graph, facts))
    up = _up_depth(graph, clique)
    cone_size: dict[int, int] = {}
    chosen: dict[int, None] = {}

    def size(x: int) -> int:
        if x not in cone_size:
            cone_size[x] = len(graph.customers[x])   # direct customers: cheap and telling
        return cone_size[x]

    def chain(x: int) -> list[int]:
        found = [x]
        while x not in clique:
            options = [p for p in graph.providers[x] if up[p] >= 0]
            if not options:
                return []
            x = min(options, key=lambda p: (p not in chosen, up[p], -size(p), graph.rank[p]))
            found.append(x)
        return found

    def add(x: int) -> bool:
        nodes = chain(x)
        if not nodes:
            return False
        new = [n for n in nodes if n not in chosen]
        if len(chosen) + len(new) > max_ases:
            return False
        for n in new:
            chosen[n] = None
        return True

    if up[around] < 0:
        raise ValueError(f"{graph.label(around)} has no provider chain to the clique")
    required = [around] + list(graph.providers[around]) + list(keep)
    for x in required:
        if not add(x):
            raise ValueError(f"{graph.label(around)}, its providers and the ASes to keep need more "
                             f"than {max_ases} ASes with their chains to the clique: raise --max-ases")
    dropped: dict[str, list[int]] = {}
    busiest = lambda xs: sorted(xs, key=lambda n: (-len(graph.neighbours(n)), graph.rank[n]))  # noqa: E731
    for what, group in (("peers", graph.peers[around]), ("customers", graph.customers[around])):
        for x in busiest(group):
            if x not in chosen and not add(x):
                dropped.setdefault(what, []).append(graph.asns[x])
    frontier = list(chosen)
    far = 0
    for _ in range(max(0, depth - 1)):
        ring = busiest({n for x in frontier for n in graph.neighbours(x)} - set(chosen))
        added = [x for x in ring if add(x)]
        far += len(ring) - len(added)
        frontier = added
    if far:
        dropped["further neighbours"] = far
    nodes = list(chosen)
    sub = _induced(graph, nodes)
    result = SubGraph(graph, around, nodes, sub, dropped)
    # The model's check: every AS kept reaches every other.
    for origin in range(len(sub)):
        routing = propagate(sub, [origin])
        for x in range(len(sub)):
            if x != origin and not routing.has_route(x):
                result.unreachable.append((sub.asns[x], sub.asns[origin]))
    return result


def _induced(graph: ASGraph, nodes: list[int]) -> ASGraph:
    sub = ASGraph()
    local = {}
    for x in sorted(nodes, key=lambda n: graph.asns[n]):
        local[x] = sub.add_node(graph.asns[x], rank=graph.rank[x])
    for x in nodes:
        for c in graph.customers[x]:
            if c in local:
                sub.add_transit(local[x], local[c], partial=c in graph.partial.get(x, ()))
        for q in graph.peers[x]:
            if q in local and graph.asns[x] < graph.asns[q]:
                payer = (local[x] if (x, q) in graph.peer_pref else local[q] if (q, x) in graph.peer_pref
                         else None)
                sub.add_peering(local[x], local[q], payer)
    return sub


def compare(sub: SubGraph, limit: int = 10) -> dict:
    """How the pruning changed paths: {"pairs", "same", "different",
    "examples"} over every (AS, origin) pair of the sub-graph, the paths on
    the whole graph computed by the model."""
    same = different = 0
    examples = []
    full = sub.full
    for origin_full in sub.nodes:
        whole = propagate(full, [origin_full])
        origin = sub.graph.index[full.asns[origin_full]]
        part = propagate(sub.graph, [origin])
        for x_full in sub.nodes:
            if x_full == origin_full:
                continue
            x = sub.graph.index[full.asns[x_full]]
            before = whole.as_path(x_full) if whole.has_route(x_full) else None
            after = part.as_path(x) if part.has_route(x) else None
            if before == after:
                same += 1
            else:
                different += 1
                if len(examples) < limit:
                    examples.append((full.asns[x_full], full.asns[origin_full], before, after))
    return {"pairs": same + different, "same": same, "different": different, "examples": examples}


def name_of(asn: int) -> str:
    return f"as{asn}"


def declarations(sub: SubGraph, exchanges=()) -> dict:
    """What the topology declares, as plain data: ``ases`` (ASN, name),
    ``ixps`` (name, lan4, lan6, PeeringDB id and name), ``route_servers``
    (ASN, name, IXP), ``relationships`` (kind, a, b, IXP or None) in the
    topology API's order of ends. ``exchanges``
    (``testbed.internet.peeringdb.Exchange``) become IXPs: peerings between
    two members move onto the first exchange both are at, and members that
    use the route server become its clients."""
    from .peeringdb import ixp_name

    g = sub.graph
    found: dict = {"ases": [(g.asns[x], name_of(g.asns[x])) for x in range(len(g))],
                   "ixps": [], "route_servers": [], "relationships": []}
    peerings = [(g.asns[a], g.asns[b]) for a in range(len(g)) for b in g.peers[a] if g.asns[a] < g.asns[b]]
    taken: set[str] = set()
    via: dict[tuple[int, int], str] = {}
    clients = []
    for exchange in exchanges:
        members = set(exchange.members)
        moved = [pair for pair in peerings if set(pair) <= members and pair not in via]
        rs = exchange.rs_clients
        if not moved and len(rs) < 2:
            continue
        ixp = ixp_name(exchange.name, taken)
        found["ixps"].append((ixp, exchange.lan4, exchange.lan6, exchange.id, exchange.name))
        for pair in moved:
            via[pair] = ixp
        if len(rs) >= 2:
            server = ("rs-" + ixp)[:12]
            found["route_servers"].append((exchange.route_server_asn, server, ixp))
            clients += [("route_server_client", name_of(a), server, None) for a in rs]
    rels = found["relationships"]
    for p in range(len(g)):
        for c in sorted(g.customers[p], key=lambda n: g.asns[n]):
            kind = "partial_transit" if c in g.partial.get(p, ()) else "transit"
            rels.append((kind, name_of(g.asns[p]), name_of(g.asns[c]), None))
    for a, b in peerings:
        x, y = g.index[a], g.index[b]
        if (x, y) in g.peer_pref:
            rels.append(("paid_peering", name_of(a), name_of(b), via.get((a, b))))
        elif (y, x) in g.peer_pref:
            rels.append(("paid_peering", name_of(b), name_of(a), via.get((a, b))))
        else:
            rels.append(("peering", name_of(a), name_of(b), via.get((a, b))))
    rels += clients
    return found


def _header(sub: SubGraph, source: str, report: str) -> list[str]:
    lines = [f"Sub-graph of {source} around AS{sub.full.asns[sub.around]}: {len(sub.graph)} ASes, "
             f"{sub.graph.links} links.", "",
             "Written by `testbed import caida`; every AS reaches every other under",
             "valley-free routing."]
    return lines + ([""] + report.splitlines() if report else [])


def topology_source(sub: SubGraph, name: str, source: str, report: str = "",
                    exchanges=()) -> str:
    """A Python topology module for the sub-graph (``declarations``)."""
    d = declarations(sub, exchanges)
    var = {}
    lines = ['"""' + "\n".join(_header(sub, source, report)), '"""', "",
             "from testbed import Topology", "", f"topology = Topology({name!r}, hold_time=9)"]
    for asn, as_name in d["ases"]:
        lines.append(f"{as_name} = topology.add_as({asn}, {as_name!r})")
        var[as_name] = as_name
    for ixp, lan4, lan6, pdb_id, pdb_name in d["ixps"]:
        var[ixp] = "ix_" + ixp.replace("-", "_")
        options = "".join(f", {k}={v!r}" for k, v in (("lan4", lan4), ("lan6", lan6)) if v)
        lines.append(f"{var[ixp]} = topology.add_ixp({ixp!r}{options})  # PeeringDB ix {pdb_id}: {pdb_name}")
    for asn, server, ixp in d["route_servers"]:
        var[server] = server.replace("-", "_")
        lines.append(f"{var[server]} = topology.add_route_server({asn}, {server!r}, {var[ixp]})")
    for kind, a, b, at in d["relationships"]:
        lines.append(f"topology.{kind}({var[a]}, {var[b]}{f', via={var[at]}' if at else ''})")
    return "\n".join(lines) + "\n"


def topology_yaml(sub: SubGraph, name: str, source: str, report: str = "", exchanges=()) -> str:
    """The same topology in the YAML form (``testbed.model.yaml_loader``)."""
    d = declarations(sub, exchanges)
    lines = [f"# {line}".rstrip() for line in _header(sub, source, report)]
    lines += [f"name: {name}", "hold_time: 9", "ases:"]
    lines += [f"  - {{asn: {asn}, name: {as_name}}}" for asn, as_name in d["ases"]]
    if d["ixps"]:
        lines.append("ixps:")
        for ixp, lan4, lan6, pdb_id, pdb_name in d["ixps"]:
            options = "".join(f", {k}: {v!r}" for k, v in (("lan4", lan4), ("lan6", lan6)) if v)
            lines.append(f"  - {{name: {ixp}{options}}}   # PeeringDB ix {pdb_id}: {pdb_name}")
    if d["route_servers"]:
        lines.append("route_servers:")
        lines += [f"  - {{asn: {asn}, name: {server}, ixp: {ixp}}}" for asn, server, ixp in d["route_servers"]]
    lines.append("relationships:")
    for kind, a, b, at in d["relationships"]:
        lines.append(f"  - {{{kind}: [{a}, {b}]{f', via: {at}' if at else ''}}}")
    return "\n".join(lines) + "\n"
