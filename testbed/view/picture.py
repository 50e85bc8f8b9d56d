"""What a topology picture shows, as plain data (no layout, no text format).

``picture(topology)`` takes a validated ``Topology`` and derives, with its
address plan: each AS's tier from the transit graph (an AS with no provider
is tier 1, a customer sits one tier below its lowest provider, an AS with
neither providers nor customers sits with its peers), the rows of the
drawing (a crowded tier wraps onto several rows, customers grouped under
their providers), each BGP session between ASes with its kind and direction
(provider to customer, payer to payee, client to route server) and whether
it is a private link or crosses an IXP, each IXP's members and route
servers, and the PoPs and internal links of ASes with several routers.
Nothing here runs Graphviz; ``testbed.view.dot`` turns the result into text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..model.addressing import plan as make_plan
from ..model.topology import Kind, Topology

ROW_WIDTH = 10  # ASes per row before a tier wraps onto another row

# How a session is drawn, by relationship kind: tail -> head.
DIRECTED = {Kind.TRANSIT.value, Kind.PARTIAL_TRANSIT.value, Kind.PAID_PEERING.value}


def session_id(a: str, b: str) -> str:
    """The element id of the session between routers ``a`` and ``b``."""
    low, high = sorted((a, b))
    return f"session-{low}-{high}"


@dataclass(frozen=True)
class Node:
    """An AS: ``routers`` are its routers (``<AS>-<pop>`` for PoPs)."""

    name: str
    asn: int
    tier: int            # 1 is the top; 0 for a route server (drawn with its IXP)
    row: int
    role: str            # "tier1", "transit", "stub", "peer-only" or "route-server"
    routers: tuple[str, ...]
    pops: tuple[str, ...]
    prefixes: tuple[str, ...]
    description: str = ""

    @property
    def id(self) -> str:
        return f"as-{self.name}"


@dataclass(frozen=True)
class Edge:
    """A BGP session between routers of two ASes. ``tail`` is the provider
    (transit, partial transit), the payer (paid peering) or the client (a
    route server's); for peering the routers in plan order."""

    kind: str
    tail: str
    head: str
    tail_as: str
    head_as: str
    via: str | None      # IXP name, or None for a private link
    tail_pop: str | None = None
    head_pop: str | None = None

    @property
    def id(self) -> str:
        return session_id(self.tail, self.head)

    @property
    def directed(self) -> bool:
        return self.kind in DIRECTED


@dataclass(frozen=True)
class Lan:
    """An IXP peering LAN, its member ASes and route servers."""

    name: str
    row: int
    members: tuple[str, ...]
    route_servers: tuple[str, ...]
    lan4: str
    lan6: str

    @property
    def id(self) -> str:
        return f"ixp-{self.name}"


@dataclass(frozen=True)
class InternalLink:
    system: str
    a: str
    b: str
    cost: int


@dataclass
class Picture:
    """Everything a drawing of one topology shows; see the module docstring."""

    name: str
    nodes: list[Node]
    edges: list[Edge]
    lans: list[Lan]
    internal: list[InternalLink]
    rows: list[str]                  # label of each row, top first
    show_prefixes: bool = False
    legend: bool = True
    by_name: dict[str, Node] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.by_name = {n.name: n for n in self.nodes}

    def index(self) -> dict:
        """The drawing's element ids as data for a page: AS name -> id,
        router -> AS name, session id -> its ends and kind, IXP -> id."""
        return {
            "ases": {n.name: {"id": n.id, "asn": n.asn, "tier": n.tier, "routers": list(n.routers),
                              "prefixes": list(n.prefixes)} for n in self.nodes},
            "routers": {r: n.name for n in self.nodes for r in n.routers},
            "sessions": {e.id: {"a": e.tail, "b": e.head, "a_as": e.tail_as, "b_as": e.head_as,
                                "kind": e.kind, "via": e.via} for e in self.edges},
            "ixps": {lan.name: {"id": lan.id, "members": list(lan.members),
                                "route_servers": list(lan.route_servers)} for lan in self.lans},
        }


def tiers(topology: Topology) -> dict[str, int]:
    """AS name -> tier: 1 with no provider, else one below its lowest
    provider (the longest chain of providers above it, plus one). An AS
    with neither providers nor customers takes its highest peer's tier.
    Route servers get 0. Validation has ruled out transit cycles."""
    providers: dict[str, list[str]] = {s.name: [] for s in topology.systems}
    customers: dict[str, int] = {s.name: 0 for s in topology.systems}
    peers: dict[str, list[str]] = {s.name: [] for s in topology.systems}
    for rel in topology.relationships:
        if rel.kind in (Kind.TRANSIT, Kind.PARTIAL_TRANSIT):
            providers[rel.b].append(rel.a)
            customers[rel.a] += 1
        elif rel.kind in (Kind.PEERING, Kind.PAID_PEERING):
            peers[rel.a].append(rel.b)
            peers[rel.b].append(rel.a)
    found: dict[str, int] = {}

    def tier(name: str) -> int:
        if name not in found:
            found[name] = 1 + max((tier(p) for p in providers[name]), default=0)
        return found[name]

    servers = {s.name for s in topology.systems if s.route_server is not None}
    for system in topology.systems:
        if system.name not in servers:
            tier(system.name)
    for system in topology.systems:
        name = system.name
        if name in servers:
            found[name] = 0
        elif not providers[name] and not customers[name] and peers[name]:
            ranked = [found[p] for p in peers[name] if providers[p] or customers[p]]
            found[name] = min(ranked, default=1)
    return found


def roles(topology: Topology, tier_of: dict[str, int]) -> dict[str, str]:
    has_customer = {rel.a for rel in topology.relationships
                    if rel.kind in (Kind.TRANSIT, Kind.PARTIAL_TRANSIT)}
    has_provider = {rel.b for rel in topology.relationships
                    if rel.kind in (Kind.TRANSIT, Kind.PARTIAL_TRANSIT)}
    found = {}
    for system in topology.systems:
        name = system.name
        if system.route_server is not None:
            found[name] = "route-server"
        elif name not in has_provider:
            found[name] = "tier1" if name in has_customer or tier_of[name] == 1 else "peer-only"
        else:
            found[name] = "transit" if name in has_customer else "stub"
    return found


def picture(topology: Topology, *, prefixes: bool = False, legend: bool = True,
            row_width: int = ROW_WIDTH) -> Picture:
    """The picture of a validated topology (see the module docstring)."""
    plan = make_plan(topology)
    tier_of = tiers(topology)
    role_of = roles(topology, tier_of)
    systems = sorted(topology.systems, key=lambda s: s.asn)
    order = {s.name: i for i, s in enumerate(systems)}

    # Providers of each AS, for grouping a wrapped tier's ASes under them.
    providers: dict[str, list[str]] = {s.name: [] for s in systems}
    for rel in topology.relationships:
        if rel.kind in (Kind.TRANSIT, Kind.PARTIAL_TRANSIT):
            providers[rel.b].append(rel.a)

    # Rows: each tier in order, wrapped at row_width; an IXP's row follows
    # the last row of its highest member's tier.
    rows: list[str] = []
    row_of: dict[str, int] = {}
    last_row: dict[int, int] = {}  # tier -> its last row
    position: dict[str, int] = {}
    for tier in sorted({t for t in tier_of.values() if t > 0}):
        members = [s.name for s in systems if tier_of[s.name] == tier]
        members.sort(key=lambda n: (min((position.get(p, 0) for p in providers[n]), default=0),
                                    order[n]))
        # A crowded tier wraps onto k rows, dealt round-robin in provider
        # order: the customers of one provider stack under it instead of
        # spreading sideways (dot puts each customer near its provider).
        k = -(-len(members) // row_width)
        first = len(rows)
        for j in range(k):
            rows.append(f"Tier {tier}" + (f" ({j + 1}/{k})" if k > 1 else ""))
        for i, name in enumerate(members):
            row_of[name] = first + i % k
            position[name] = i
        last_row[tier] = len(rows) - 1
    lans: list[Lan] = []
    servers_of: dict[str, list[str]] = {}
    for system in systems:
        if system.route_server is not None:
            servers_of.setdefault(system.route_server, []).append(system.name)
    ixp_rows: dict[str, int] = {}
    for ixp in sorted(plan.ixps.values(), key=lambda x: x.name):
        members = sorted({plan.system_of(r) for r in ixp.members} - set(servers_of.get(ixp.name, ())),
                         key=order.__getitem__)
        top = min((tier_of[m] for m in members if tier_of[m] > 0), default=None)
        ixp_rows[ixp.name] = last_row[top] if top is not None else len(rows) - 1
    # Insert IXP rows (deepest first, so earlier indexes stay valid).
    for name in sorted(ixp_rows, key=lambda n: (-ixp_rows[n], n)):
        at = ixp_rows[name] + 1
        rows.insert(at, f"IXP {name}")
        for key, row in row_of.items():
            if row >= at:
                row_of[key] = row + 1
        for other in ixp_rows:
            if other != name and ixp_rows[other] >= at:
                ixp_rows[other] += 1
        ixp_rows[name] = at
    for ixp in sorted(plan.ixps.values(), key=lambda x: x.name):
        members = sorted({plan.system_of(r) for r in ixp.members} - set(servers_of.get(ixp.name, ())),
                         key=order.__getitem__)
        lans.append(Lan(ixp.name, ixp_rows[ixp.name], tuple(members),
                        tuple(servers_of.get(ixp.name, ())), ixp.lan4, ixp.lan6))
        for server in servers_of.get(ixp.name, ()):
            row_of[server] = ixp_rows[ixp.name]

    nodes = []
    for system in systems:
        pops = tuple(system.pops) if isinstance(system.pops, (list, tuple)) and system.pops else ()
        nodes.append(Node(system.name, system.asn, tier_of[system.name], row_of.get(system.name, 0),
                          role_of[system.name], tuple(plan.systems.get(system.name, (system.name,))),
                          pops, tuple(plan.prefixes_of(system.name)), system.description or ""))

    edges = []
    for rel in topology.relationships:
        kind = rel.kind.value
        tail, head = rel.a, rel.b
        if rel.kind == Kind.PEERING and order[tail] > order[head]:
            tail, head = head, tail
        via = topology.system(rel.b).route_server if rel.kind == Kind.ROUTE_SERVER else rel.via
        tail_pop, head_pop = rel.pop_of(tail), rel.pop_of(head)
        tail_router = f"{tail}-{tail_pop}" if tail_pop else plan.systems.get(tail, (tail,))[0]
        head_router = f"{head}-{head_pop}" if head_pop else plan.systems.get(head, (head,))[0]
        edges.append(Edge(kind, tail_router, head_router, tail, head, via,
                          _pop_port(tail_pop, tail_router, plan, tail),
                          _pop_port(head_pop, head_router, plan, head)))
    internal = [InternalLink(str(link.system), f"{link.system}-{link.a}", f"{link.system}-{link.b}",
                             int(link.cost)) for link in topology.internal_links]
    return Picture(topology.name, nodes, edges, lans, internal, rows, prefixes, legend)


def _pop_port(pop: str | None, router: str, plan, system: str) -> str | None:
    """The PoP a session attaches to, in a multi-PoP AS (its first PoP by
    default, where the plan puts sessions without a PoP)."""
    if len(plan.systems.get(system, ())) <= 1:
        return None
    return pop if pop is not None else router[len(system) + 1:]
