"""The AS graph the Internet-scale routing model works on.

An ``ASGraph`` holds ASes (or, for a lab, routers) as dense indexes
``0..n-1`` with, per node, its providers, customers and peers as lists of
indexes, and the few attributes plain Gao-Rexford routing needs beyond the
relationships: the tie-break rank of each node (the lowest rank wins a tie
between equally good routes: the BGP identifier of a lab's router, the ASN
of an AS of a CAIDA graph), the local preference a node gives a peer it pays
(paid peering, 90 instead of 100), the partial-transit links, and the
route servers with their clients. Data enters through ``add_*`` calls (the
CAIDA importer, ``testbed.model.fast_prediction`` from a lab's address plan)
and leaves as these plain lists, read by ``testbed.internet.propagate``.
Pure; no I/O.
"""

from __future__ import annotations

__all__ = ["ASGraph", "PEER_LOCAL_PREF", "PAID_LOCAL_PREF"]

PEER_LOCAL_PREF = 100
PAID_LOCAL_PREF = 90


class ASGraph:
    """Nodes with Gao-Rexford relationships; see the module docstring."""

    def __init__(self) -> None:
        self.asns: list[int] = []
        self.names: list[str] = []
        self.index: dict[int, int] = {}       # ASN -> node (ASes of a CAIDA graph)
        self.by_name: dict[str, int] = {}
        self.rank: list[int] = []
        self.providers: list[list[int]] = []
        self.customers: list[list[int]] = []
        self.peers: list[list[int]] = []
        # (payer, payee) -> local_pref the payer gives the payee's routes
        self.peer_pref: dict[tuple[int, int], int] = {}
        # provider -> its partial-transit customers (it keeps its providers'
        # routes from them, and their routes from its providers)
        self.partial: dict[int, set[int]] = {}
        # route server node -> its clients, in the order they were added
        self.route_servers: dict[int, list[int]] = {}
        self.rs_of: list[list[int]] = []        # node -> the route servers it is a client of
        self.links = 0

    def __len__(self) -> int:
        return len(self.asns)

    # -- building ------------------------------------------------------------
    def add_node(self, asn: int, name: str | None = None, rank: int | None = None) -> int:
        """A new node for AS ``asn`` (or a router of it) and its index.
        ``rank`` defaults to the ASN: lowest ASN wins a tie."""
        node = len(self.asns)
        self.asns.append(asn)
        self.names.append(name if name is not None else str(asn))
        self.index.setdefault(asn, node)
        self.by_name[self.names[-1]] = node
        self.rank.append(asn if rank is None else rank)
        self.providers.append([])
        self.customers.append([])
        self.peers.append([])
        self.rs_of.append([])
        return node

    def node(self, asn: int) -> int:
        """The node of AS ``asn``, adding it if it is new."""
        found = self.index.get(asn)
        return found if found is not None else self.add_node(asn)

    def add_transit(self, provider: int, customer: int, partial: bool = False) -> None:
        self.customers[provider].append(customer)
        self.providers[customer].append(provider)
        if partial:
            self.partial.setdefault(provider, set()).add(customer)
        self.links += 1

    def add_peering(self, a: int, b: int, payer: int | None = None) -> None:
        self.peers[a].append(b)
        self.peers[b].append(a)
        if payer is not None:
            payee = b if payer == a else a
            self.peer_pref[(payer, payee)] = PAID_LOCAL_PREF
        self.links += 1

    def add_route_server_client(self, route_server: int, client: int) -> None:
        self.route_servers.setdefault(route_server, []).append(client)
        self.rs_of[client].append(route_server)
        self.links += 1

    def remove_link(self, a: int, b: int) -> str:
        """Remove the link between ``a`` and ``b`` (either way round) and
        say what it was: "transit", "peering" (raises ``KeyError`` if none)."""
        for provider, customer in ((a, b), (b, a)):
            if customer in self.customers[provider]:
                self.customers[provider].remove(customer)
                self.providers[customer].remove(provider)
                self.partial.get(provider, set()).discard(customer)
                self.links -= 1
                return "transit"
        if b in self.peers[a]:
            self.peers[a].remove(b)
            self.peers[b].remove(a)
            self.peer_pref.pop((a, b), None)
            self.peer_pref.pop((b, a), None)
            self.links -= 1
            return "peering"
        raise KeyError(f"no link between {self.label(a)} and {self.label(b)}")

    # -- reading -------------------------------------------------------------
    def label(self, node: int) -> str:
        name, asn = self.names[node], self.asns[node]
        return f"AS{asn}" if name == str(asn) else f"{name} (AS{asn})"

    def relationship(self, a: int, b: int) -> str | None:
        """What ``b`` is to ``a``: "customer", "provider", "peer" or None."""
        if b in self.customers[a]:
            return "customer"
        if b in self.providers[a]:
            return "provider"
        if b in self.peers[a]:
            return "peer"
        return None

    def neighbours(self, node: int) -> set[int]:
        return set(self.providers[node]) | set(self.customers[node]) | set(self.peers[node])

    def provider_free(self) -> list[int]:
        """Nodes with no provider (a graph's clique and its islands)."""
        return [n for n in range(len(self)) if not self.providers[n] and not n in self.route_servers]

    def customer_cone(self, node: int) -> set[int]:
        """``node`` and every node below it through customer links."""
        seen = {node}
        stack = [node]
        while stack:
            for c in self.customers[stack.pop()]:
                if c not in seen:
                    seen.add(c)
                    stack.append(c)
        return seen

    def transit_cycle(self) -> list[int] | None:
        """A cycle of provider-to-customer links, or None (there must be
        none for Gao-Rexford routing to have one stable state)."""
        state = [0] * len(self)   # 0 new, 1 on the stack, 2 done
        for start in range(len(self)):
            if state[start]:
                continue
            stack = [(start, iter(self.customers[start]))]
            state[start] = 1
            path = [start]
            while stack:
                node, it = stack[-1]
                for child in it:
                    if state[child] == 1:
                        return path[path.index(child):] + [child]
                    if state[child] == 0:
                        state[child] = 1
                        stack.append((child, iter(self.customers[child])))
                        path.append(child)
                        break
                else:
                    state[node] = 2
                    stack.pop()
                    path.pop()
        return None

    def copy(self) -> "ASGraph":
        """A copy whose links can change without touching this one."""
        other = ASGraph.__new__(ASGraph)
        other.asns, other.names, other.index, other.by_name, other.rank = (
            self.asns, self.names, self.index, self.by_name, self.rank)
        other.providers = [list(x) for x in self.providers]
        other.customers = [list(x) for x in self.customers]
        other.peers = [list(x) for x in self.peers]
        other.peer_pref = dict(self.peer_pref)
        other.partial = {k: set(v) for k, v in self.partial.items()}
        other.route_servers = {k: list(v) for k, v in self.route_servers.items()}
        other.rs_of = [list(x) for x in self.rs_of]
        other.links = self.links
        return other
