"""A lab's converged routing state from the rank-order model, when it applies.

``testbed.model.prediction.Expectation`` predicts a lab by running every router's BGP
engine event by event; for plain Gao-Rexford labs (transit, peering, paid
peering, partial transit, route servers; one router per AS; no session
policy of the user's, no communities, no ROV/OTC, no maximum prefixes) the
stable state is the one ``testbed.internet.propagate`` builds class by class,
in a small fraction of the time. ``out_of_scope(expectation)`` says why a
lab needs the event simulation (``None``: it does not); ``predict`` gives the
same tables the event simulation gives (Loc-RIBs and Adj-RIBs-In as
``Route`` objects, built per router on first look-up, and every router's
state digest), from the plan and the expectation's sessions, originations
and policies. Pure; no I/O.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Mapping

from testbed.bgp.configure import engine_from_config
from testbed.bgp.fingerprint import MASK, state_fingerprint
from testbed.bgp.policy import import_route
from testbed.bgp.route import Route
from testbed.model.agent_config import agent_config
from testbed.internet.graph import ASGraph
from testbed.internet.propagate import CUSTOMER, NONE, PROVIDER, SEED, propagate

__all__ = ["out_of_scope", "predict", "Prediction", "MODEL_FAST", "MODEL_EVENTS"]

MODEL_FAST = "rank-order propagation"
MODEL_EVENTS = "event simulation"

_PARTIAL_TO_CUSTOMER = {"export": [{"match": {"learned_from": ["provider"]}, "action": "reject"}]}


def _partial_to_provider(asns) -> dict:
    return {"export": [{"match": {"from_asn": sorted(asns)}, "action": "reject"}]}


def _policies(expectation) -> dict[tuple[str, str], dict | None]:
    """(router, neighbor name) -> the session policy in force."""
    found = {}
    for router in expectation.plan.routers.values():
        for n in router.neighbors:
            found[(router.name, n.name)] = n.policy
    found.update(expectation.policies)
    return found


def out_of_scope(expectation) -> str | None:
    """Why the rank-order model cannot predict this lab (the first reason
    found), or ``None`` when it can."""
    plan = expectation.plan
    for system, routers in plan.systems.items():
        if len(routers) > 1:
            return f"AS {system} has several routers (PoPs, iBGP, IGP)"
    policies = _policies(expectation)
    partial_of: dict[str, set[int]] = {}
    for router in plan.routers.values():
        for n in router.neighbors:
            if n.relationship == "customer" and policies[(router.name, n.name)] == _PARTIAL_TO_CUSTOMER:
                partial_of.setdefault(router.name, set()).add(n.asn)
    for router in plan.routers.values():
        for n in router.neighbors:
            policy = policies[(router.name, n.name)]
            if not policy:
                continue
            allowed = (
                (n.relationship == "peer" and policy == {"local_pref": 90})
                or (n.relationship == "customer" and policy == _PARTIAL_TO_CUSTOMER)
                or (n.relationship == "provider" and router.name in partial_of
                    and policy == _partial_to_provider(partial_of[router.name]))
                or (n.relationship == "rs-client" and policy == {"blackhole": True}))
            if not allowed:
                return f"router {router.name}: a session policy towards {n.name} ({policy})"
    for router, prefix in expectation.paths:
        return f"router {router} originates {prefix} with an AS path (a replayed route)"
    for router, prefixes in expectation.originated.items():
        if prefixes and plan.routers[router].route_server:
            return f"route server {router} originates a prefix"
        for prefix, (communities, large) in prefixes.items():
            if communities or large:
                return f"router {router} originates {prefix} with communities"
    return None


class Prediction:
    """The tables ``predict`` computes; see the module docstring."""

    def __init__(self, expectation):
        self.exp = expectation
        plan = expectation.plan
        self.plan = plan
        self.names = sorted(plan.routers)
        graph = ASGraph()
        for name in self.names:
            router = plan.routers[name]
            graph.add_node(router.asn, name, int(ipaddress.IPv4Address(router.router_id)))
        self.graph = graph
        policies = _policies(expectation)
        node = graph.by_name
        self.sessions: list[tuple[int, int, str]] = []   # (sender, receiver, what receiver is to sender)
        for s in plan.sessions:
            if s.key not in expectation.up:
                continue
            a, b = node[s.a], node[s.b]
            relationship = plan.routers[s.a].neighbor(s.b).relationship  # b to a
            if relationship == "customer":
                partial = policies[(s.a, s.b)] == _PARTIAL_TO_CUSTOMER
                graph.add_transit(a, b, partial)
            elif relationship == "provider":
                partial = policies[(s.b, s.a)] == _PARTIAL_TO_CUSTOMER
                graph.add_transit(b, a, partial)
            elif relationship == "peer":
                pays = {end: (policies[(end, other)] or {}).get("local_pref") == 90
                        for end, other in ((s.a, s.b), (s.b, s.a))}
                payer = a if pays[s.a] else b if pays[s.b] else None
                graph.add_peering(a, b, payer)
            elif relationship == "route-server":
                graph.add_route_server_client(b, a)
            else:
                graph.add_route_server_client(a, b)
            back = {"customer": "provider", "provider": "customer", "peer": "peer",
                    "route-server": "rs-client", "rs-client": "route-server"}[relationship]
            self.sessions.append((a, b, relationship))
            self.sessions.append((b, a, back))
        # node -> neighbor node -> NeighborPlan (the receiver's view of the sender)
        self.view = {}
        for name in self.names:
            router = plan.routers[name]
            self.view[node[name]] = {node[n.name]: n for n in router.neighbors}
        groups: dict[frozenset, list[str]] = {}
        for router, prefixes in expectation.originated.items():
            for prefix in prefixes:
                groups.setdefault(prefix, []).append(router)
        self.by_origins: dict[frozenset, list[str]] = {}
        for prefix, routers in groups.items():
            self.by_origins.setdefault(frozenset(node[r] for r in routers), []).append(prefix)
        self.routings = {origins: propagate(graph, sorted(origins)) for origins in self.by_origins}
        self._neighbors: dict[str, dict] = {}
        self._texts: dict[frozenset, tuple] = {}
        self._by_receiver: dict[int, list[tuple]] | None = None

    # -- routes ----------------------------------------------------------------
    def _sender(self, routing, x: int) -> tuple[int, int]:
        """(the node whose path x's route carries, the node x heard it from)."""
        q = routing.nh[x]
        rs = routing.via[x]
        return q, (q if rs < 0 else rs)

    def _next_hop(self, heard_from: int, announcer: int, receiver: int, family: int) -> str:
        if heard_from != announcer:  # through a route server: the member's address on its LAN
            seen = self.view[heard_from][announcer]
        else:
            seen = self.view[receiver][announcer]
        return seen.address6 if family == 6 else seen.address

    def _rs_choice(self, routing, rs: int, client: int, ancestors) -> int:
        best, chosen = None, -1
        for q in self.graph.route_servers.get(rs, ()):
            if q == client or routing.cls[q] not in (SEED, CUSTOMER):
                continue
            if client >= 0 and ancestors(client, q):
                continue
            key = (routing.length[q], self.graph.rank[q])
            if best is None or key < best:
                best, chosen = key, q
        return chosen

    def _cached_tables(self, origins):
        if origins not in self._texts:
            self._texts[origins] = self._tables(self.routings[origins])
        return self._texts[origins]

    def _tables(self, routing):
        """Per routing: path texts and an ancestor test."""
        n = len(self.graph)
        cls, nh, asns = routing.cls, routing.nh, self.graph.asns
        order = sorted((x for x in range(n) if cls[x] != NONE), key=lambda x: routing.length[x])
        text = [""] * n   # a node's Loc-RIB AS path as text
        children: list[list[int]] = [[] for _ in range(n)]
        for x in order:
            if cls[x] != SEED:
                parent = nh[x]
                children[parent].append(x)
                text[x] = f"{asns[parent]} {text[parent]}" if text[parent] else str(asns[parent])
        tin, tout = [0] * n, [0] * n
        clock = 0
        for start in routing.seeds:
            stack = [(start, False)]
            while stack:
                x, done = stack.pop()
                if done:
                    tout[x] = clock
                    continue
                clock += 1
                tin[x] = clock
                stack.append((x, True))
                stack.extend((c, False) for c in children[x])

        def ancestor(a: int, b: int) -> bool:
            """Whether ``a`` is in ``b``'s AS path (a proper ancestor)."""
            return cls[a] != NONE and cls[b] != NONE and a != b and tin[a] < tin[b] and tout[b] <= tout[a]
        ancestor.tin, ancestor.tout = tin, tout
        return text, ancestor

    def _exports(self, routing, ancestor):
        """(sender, receiver, announcer): every route one session carries
        for this routing's prefixes."""
        cls, nh, via = routing.cls, routing.nh, routing.via
        partial = self.graph.partial
        for sender, receiver, what in self.sessions:
            c = cls[sender]
            if what == "rs-client":   # the route server gives its pick for this client
                q = self._rs_choice(routing, sender, receiver, ancestor)
                if q >= 0:
                    yield sender, receiver, q
                continue
            if c == NONE or ancestor(receiver, sender):
                continue
            if what == "customer":
                if c == PROVIDER and receiver in partial.get(sender, ()):
                    continue
            elif c not in (SEED, CUSTOMER):
                continue
            elif what == "provider" and c == CUSTOMER and nh[sender] in partial.get(sender, ()):
                continue
            yield sender, receiver, sender

    def digests(self) -> dict[str, str]:
        """router -> the state digest the lab's agent must reach.

        The hot loop of the model: one 64-bit hash per route of every
        Loc-RIB and Adj-RIB-In (``testbed.bgp.fingerprint``), written out
        flat because a 1,000-AS lab has about five million of them."""
        n = len(self.graph)
        asns = self.graph.asns
        loc = [0] * n
        adj: list[dict[int, int]] = [dict() for _ in range(n)]
        blake, from_bytes = hashlib.blake2b, int.from_bytes
        address = {}
        for receiver, seen in self.view.items():
            for sender, neighbor in seen.items():
                address[(receiver, sender)] = (neighbor.address, neighbor.address6)
        partial = self.graph.partial
        kinds = {"customer": 0, "peer": 1, "provider": 2, "route-server": 3, "rs-client": 4}
        sessions = [(sender, receiver, kinds[what], receiver in partial.get(sender, ()),
                     partial.get(sender, ()), address[(receiver, sender)])
                    for sender, receiver, what in self.sessions]
        servers = list(self.graph.route_servers)
        for origins, prefixes in self.by_origins.items():
            routing = self.routings[origins]
            text, ancestor = self._tables(routing)
            tin, tout = ancestor.tin, ancestor.tout
            cls, nh, via = routing.cls, routing.nh, routing.via
            fams = [(p, 1 if ":" in p else 0) for p in prefixes]
            sent = [f"{asns[x]} {text[x]}" if text[x] else str(asns[x]) for x in range(n)]
            for rs in servers:
                q = self._rs_choice(routing, rs, -1, ancestor)
                if q >= 0:
                    hop = address[(rs, q)]
                    for p, fam in fams:
                        loc[rs] += from_bytes(blake(f"{p} {sent[q]} {hop[fam]} None".encode(),
                                                    digest_size=8).digest(), "big")
            for x in range(n):
                c = cls[x]
                if c == NONE:
                    continue
                if c == SEED:
                    for p, _ in fams:
                        loc[x] += from_bytes(blake(f"{p}  None None".encode(), digest_size=8).digest(), "big")
                    continue
                q = nh[x]
                rs = via[x]
                hop = address[(x, q)] if rs < 0 else address[(rs, q)]
                path = sent[q]
                for p, fam in fams:
                    loc[x] += from_bytes(blake(f"{p} {path} {hop[fam]} None".encode(),
                                               digest_size=8).digest(), "big")
            for sender, receiver, kind, narrow, blocked, hop in sessions:
                c = cls[sender]
                q = sender
                if kind == 4:   # the route server gives its pick for this client
                    q = self._rs_choice(routing, sender, receiver, ancestor)
                    if q < 0:
                        continue
                    hop = address[(sender, q)]
                else:
                    if c == NONE:
                        continue
                    if (cls[receiver] != NONE and receiver != sender and tin[receiver] < tin[sender]
                            and tout[sender] <= tout[receiver]):
                        continue   # the receiver is in the path
                    if kind == 0:
                        if c == PROVIDER and narrow:
                            continue
                    elif c != SEED and c != CUSTOMER:
                        continue
                    elif kind == 2 and c == CUSTOMER and nh[sender] in blocked:
                        continue
                path = sent[q]
                total = adj[receiver].get(sender, 0)
                for p, fam in fams:
                    total += from_bytes(blake(f"{p} {path} {hop[fam]} None False".encode(),
                                              digest_size=8).digest(), "big")
                adj[receiver][sender] = total
        found = {}
        for name in self.names:
            x = self.graph.by_name[name]
            ribs = {n.address: adj[x].get(self.graph.by_name[n.name], 0) & MASK
                    for n in self.plan.routers[name].neighbors}
            found[name] = state_fingerprint(loc[x] & MASK, ribs)
        return found

    def _neighbor_objects(self, name: str) -> dict:
        if name not in self._neighbors:
            config = agent_config(self.plan, self.plan.routers[name], "", "")
            for neighbor in config["neighbors"]:
                if (name, neighbor["name"]) in self.exp.policies:
                    neighbor["policy"] = self.exp.policies[(name, neighbor["name"])]
            engine = engine_from_config(config)
            self._neighbors[name] = (engine.asn, {self.graph.by_name[n["name"]]: engine.neighbors[n["address"]]
                                                  for n in config["neighbors"]})
        return self._neighbors[name]

    def _received(self, x: int, heard: int, q: int, routing, text, prefix: str) -> Route:
        asn, neighbors = self._neighbor_objects(self.graph.names[x])
        fam = 6 if ":" in prefix else 4
        path = (self.graph.asns[q],) + tuple(int(a) for a in text[q].split())
        sent = Route(prefix=prefix, next_hop=self._next_hop(heard, q, x, fam), as_path=path)
        return import_route(asn, neighbors[heard], sent)

    def loc_rib(self, name: str) -> dict[str, Route]:
        x = self.graph.by_name[name]
        table = {}
        for origins, prefixes in self.by_origins.items():
            routing = self.routings[origins]
            c = routing.cls[x]
            if x in self.graph.route_servers:
                text, ancestor = self._cached_tables(origins)
                q = self._rs_choice(routing, x, -1, ancestor)
                for p in prefixes if q >= 0 else ():
                    table[p] = self._received(x, q, q, routing, text, p)
                continue
            if c == NONE:
                continue
            if c == SEED:
                for p in prefixes:
                    if p in self.exp.originated[name]:
                        table[p] = Route(prefix=p, next_hop=None)
                continue
            text, _ = self._cached_tables(origins)
            q, heard = self._sender(routing, x)
            for p in prefixes:
                table[p] = self._received(x, heard, q, routing, text, p)
        return table

    def _received_by(self) -> dict[int, list[tuple]]:
        """receiver -> every (origins, sender, announcer) it receives: the
        exports of all routings, walked once (not once per router, which
        took hours at 1,000 ASes)."""
        if self._by_receiver is None:
            self._by_receiver = {}
            for origins in self.by_origins:
                _, ancestor = self._cached_tables(origins)
                for sender, receiver, q in self._exports(self.routings[origins], ancestor):
                    self._by_receiver.setdefault(receiver, []).append((origins, sender, q))
        return self._by_receiver

    def adj_ribs_in(self, name: str) -> dict[str, dict[str, Route]]:
        x = self.graph.by_name[name]
        ribs = {n.address: {} for n in self.plan.routers[name].neighbors}
        address = {self.graph.by_name[n.name]: n.address for n in self.plan.routers[name].neighbors}
        for origins, sender, q in self._received_by().get(x, ()):
            routing = self.routings[origins]
            text, _ = self._cached_tables(origins)
            for p in self.by_origins[origins]:
                ribs[address[sender]][p] = self._received(x, sender, q, routing, text, p)
        return ribs

    def adj_rib_in_size(self) -> int:
        """How many routes every Adj-RIB-In holds together, counted
        without building them (3.4 million ``Route`` objects at 1,000 ASes)."""
        total = 0
        for origins, prefixes in self.by_origins.items():
            routing = self.routings[origins]
            _, ancestor = self._cached_tables(origins)
            total += len(prefixes) * sum(1 for _ in self._exports(routing, ancestor))
        return total


class _Lazy(Mapping):
    """router -> table, computed on first look-up."""

    def __init__(self, names, build):
        self._names, self._build, self._done = list(names), build, {}

    def __getitem__(self, name):
        if name not in self._done:
            if name not in self._names:
                raise KeyError(name)
            self._done[name] = self._build(name)
        return self._done[name]

    def __iter__(self):
        return iter(self._names)

    def __len__(self):
        return len(self._names)


def predict(expectation):
    """(Loc-RIBs, Adj-RIBs-In, digests, Adj-RIB-In size) of every router, as
    ``Expectation`` keeps them (the tables built per router on look-up)."""
    prediction = Prediction(expectation)
    return (_Lazy(prediction.names, prediction.loc_rib),
            _Lazy(prediction.names, prediction.adj_ribs_in),
            prediction.digests(), prediction.adj_rib_in_size)
