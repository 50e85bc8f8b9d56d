"""One router's BGP state: Adj-RIBs-In, Loc-RIB and Adj-RIBs-Out.

A ``RouterEngine`` is fed events (a prefix originated or no longer
originated, routes received or withdrawn by a neighbor, a session up or
down) and answers each with the list of actions that follow from it:
``Announce``/``Withdraw`` for the neighbors, ``InstallRoute``/``RemoveRoute``
for the kernel. It does no I/O; the route agent turns the actions into
ExaBGP commands and netlink calls, and ``testbed.bgp.simulate`` delivers them
to other engines.

Only real changes produce actions, and only the prefixes an event touches
are decided again, so the cost of an update is proportional to its size,
not to the table's. Actions come in a fixed order: kernel actions first
(so that the router forwards a route before it tells anyone about it),
sorted by prefix; then neighbor actions sorted by neighbor address, then by
prefix (both numerically).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Union

from . import policy
from .decision import best_route, explain
from .route import (
    Neighbor,
    Origin,
    Route,
    address_sort_key,
    normalise_prefix,
    prefix_sort_key,
)

__all__ = [
    "Announce",
    "Withdraw",
    "InstallRoute",
    "RemoveRoute",
    "Action",
    "RouterEngine",
]


@dataclass(frozen=True)
class Announce:
    """Send ``route`` (as it goes on the wire) to the neighbor at ``neighbor``."""

    neighbor: str
    route: Route


@dataclass(frozen=True)
class Withdraw:
    """Withdraw ``prefix`` from the neighbor at ``neighbor``."""

    neighbor: str
    prefix: str


@dataclass(frozen=True)
class InstallRoute:
    """Program the kernel route to ``prefix`` via ``next_hop`` (add or replace)."""

    prefix: str
    next_hop: str


@dataclass(frozen=True)
class RemoveRoute:
    """Remove the kernel route to ``prefix``."""

    prefix: str


Action = Union[Announce, Withdraw, InstallRoute, RemoveRoute]


def _prefix_or_text(prefix: str) -> str:
    # A received prefix that does not parse is kept under its own text, so
    # it shows in the Adj-RIB-In as rejected instead of failing the update.
    try:
        return normalise_prefix(prefix)
    except ValueError:
        return prefix if isinstance(prefix, str) else repr(prefix)


class RouterEngine:
    """The BGP state of one router of AS ``asn``; see the module docstring.

    ``neighbors`` is fixed at construction: the Adj-RIB-Out of every
    neighbor is kept whether its session is up or not, since it is what
    policy says should be advertised; the caller decides what to deliver.

    Subclasses may override ``import_route`` and ``export_route`` to apply a
    different policy.
    """

    def __init__(self, asn: int, router_id: str, neighbors: Iterable[Neighbor]):
        self.asn = asn
        self.router_id = router_id
        self.neighbors: dict[str, Neighbor] = {}
        problems = []
        for neighbor in sorted(neighbors, key=lambda n: address_sort_key(n.address)):
            if neighbor.address in self.neighbors:
                problems.append(f"neighbor {neighbor.address} is listed twice")
            elif neighbor.ibgp != (neighbor.asn == asn):
                problems.append(
                    f"neighbor {neighbor.address} is AS{neighbor.asn} with relationship "
                    f"{neighbor.relationship.value}: iBGP (internal) must be exactly "
                    f"the neighbors of the router's own AS{asn}")
            self.neighbors[neighbor.address] = neighbor
        if problems:
            raise ValueError(f"router {router_id} (AS{asn}): " + "; ".join(problems))
        self._local: dict[str, Route] = {}
        self._rib_in: dict[str, dict[str, Route]] = {a: {} for a in self.neighbors}
        self._rib_out: dict[str, dict[str, Route]] = {a: {} for a in self.neighbors}
        # prefix -> source (neighbor address, None for local) -> accepted
        # route: the candidates of the decision, indexed so that deciding a
        # prefix never scans the neighbors' tables.
        self._candidates: dict[str, dict[str | None, Route]] = {}
        self._loc_rib: dict[str, Route] = {}
        self._established: set[str] = set()

    # -- policy hooks --------------------------------------------------------
    def import_route(self, neighbor: Neighbor, route: Route) -> Route:
        """``route`` as received from ``neighbor``, annotated (and possibly
        rejected) by import policy. Default: ``policy.import_route``."""
        return policy.import_route(self.asn, neighbor, route)

    def export_route(self, route: Route, to: Neighbor) -> Route | None:
        """The route to advertise to ``to`` when ``route`` is the best, or
        ``None`` to advertise nothing. Default: ``policy.may_export`` and
        ``policy.export_route``."""
        if not policy.may_export(route, to):
            return None
        return policy.export_route(self.asn, route, to)

    # -- events --------------------------------------------------------------
    def originate(self, prefix: str, origin: Origin = Origin.IGP) -> list[Action]:
        """Originate ``prefix`` from this router (raises ``ValueError`` for a
        bad prefix). Originating it again with another origin replaces it."""
        prefix = normalise_prefix(prefix)
        route = Route(prefix=prefix, next_hop=None, origin=Origin.parse(origin))
        self._local[prefix] = route
        self._candidates.setdefault(prefix, {})[None] = route
        return self._decide({prefix})

    def stop_originating(self, prefix: str) -> list[Action]:
        """Stop originating ``prefix``; nothing happens if it was not."""
        prefix = normalise_prefix(prefix)
        if self._local.pop(prefix, None) is None:
            return []
        self._drop_candidate(prefix, None)
        return self._decide({prefix})

    def receive(self, neighbor: str, announced: Iterable[Route],
                withdrawn: Iterable[str] = ()) -> list[Action]:
        """Take an update from the neighbor at ``neighbor``: ``withdrawn``
        prefixes first, then ``announced`` routes (as received; import
        policy is applied here). A route replaces the neighbor's previous
        route to the same prefix. Raises ``ValueError`` for an unknown
        neighbor; bad routes are kept as rejected, never raised."""
        peer = self._neighbor(neighbor)
        rib = self._rib_in[neighbor]
        touched: set[str] = set()
        for prefix in withdrawn:
            prefix = _prefix_or_text(prefix)
            if rib.pop(prefix, None) is not None:
                self._drop_candidate(prefix, neighbor)
                touched.add(prefix)
        for route in announced:
            prefix = _prefix_or_text(route.prefix)
            if prefix != route.prefix:
                route = replace(route, prefix=prefix)
            imported = self.import_route(peer, route)
            rib[prefix] = imported
            if imported.rejected is None:
                self._candidates.setdefault(prefix, {})[neighbor] = imported
            else:
                self._drop_candidate(prefix, neighbor)
            touched.add(prefix)
        return self._decide(touched)

    def session_up(self, neighbor: str) -> list[Action]:
        """The session with ``neighbor`` is established: an ``Announce`` for
        every route of its Adj-RIB-Out, sorted by prefix."""
        self._neighbor(neighbor)
        self._established.add(neighbor)
        out = self._rib_out[neighbor]
        return [Announce(neighbor, out[p]) for p in sorted(out, key=prefix_sort_key)]

    def session_down(self, neighbor: str) -> list[Action]:
        """The session with ``neighbor`` is gone: forget every route it sent
        and decide those prefixes again."""
        self._neighbor(neighbor)
        self._established.discard(neighbor)
        rib = self._rib_in[neighbor]
        touched = set(rib)
        for prefix in touched:
            self._drop_candidate(prefix, neighbor)
        rib.clear()
        return self._decide(touched)

    # -- queries -------------------------------------------------------------
    def loc_rib(self) -> dict[str, Route]:
        """A copy of the Loc-RIB: prefix -> best route, local ones included."""
        return dict(self._loc_rib)

    def best(self, prefix: str) -> Route | None:
        """The best route to ``prefix``, or ``None``."""
        return self._loc_rib.get(_prefix_or_text(prefix))

    def adj_rib_in(self, neighbor: str) -> dict[str, Route]:
        """A copy of what ``neighbor`` sent, annotated by import policy;
        rejected routes are included with ``rejected`` set."""
        self._neighbor(neighbor)
        return dict(self._rib_in[neighbor])

    def adj_rib_out(self, neighbor: str) -> dict[str, Route]:
        """A copy of what is advertised to ``neighbor`` (as sent)."""
        self._neighbor(neighbor)
        return dict(self._rib_out[neighbor])

    def candidates(self, prefix: str) -> list[Route]:
        """Every accepted route to ``prefix``: the best first, then the
        others, local first and then by neighbor address."""
        routes = list(self._candidates.get(_prefix_or_text(prefix), {}).values())
        best = best_route(routes)
        routes.sort(key=lambda r: (r != best, address_sort_key(r.neighbor)))
        return routes

    def explain(self, prefix: str) -> list[str]:
        """Why the best route to ``prefix`` won, one line per route
        (``decision.explain``), rejected routes included."""
        prefix = _prefix_or_text(prefix)
        routes = list(self._candidates.get(prefix, {}).values())
        routes += [rib[prefix] for rib in self._rib_in.values()
                   if prefix in rib and rib[prefix].rejected is not None]
        return explain(routes)

    def established(self) -> set[str]:
        """The addresses of the neighbors whose session is up."""
        return set(self._established)

    # -- internals -----------------------------------------------------------
    def _neighbor(self, address: str) -> Neighbor:
        try:
            return self.neighbors[address]
        except KeyError:
            known = ", ".join(self.neighbors) or "none"
            raise ValueError(f"router {self.router_id} (AS{self.asn}) has no neighbor "
                             f"{address} (its neighbors: {known})") from None

    def _drop_candidate(self, prefix: str, source: str | None) -> None:
        routes = self._candidates.get(prefix)
        if routes is not None:
            routes.pop(source, None)
            if not routes:
                del self._candidates[prefix]

    def _decide(self, touched: Iterable[str]) -> list[Action]:
        # Deciding the prefixes in sorted order leaves the kernel list and
        # each neighbor's list sorted, and self.neighbors is sorted by
        # address: concatenating them gives the documented order.
        kernel: list[Action] = []
        sent: dict[str, list[Action]] = {address: [] for address in self.neighbors}
        neighbors = list(self.neighbors.items())
        for prefix in sorted(touched, key=prefix_sort_key):
            routes = self._candidates.get(prefix)
            best = best_route(list(routes.values())) if routes else None
            old = self._loc_rib.get(prefix)
            if best == old:
                continue
            if best is None:
                del self._loc_rib[prefix]
            else:
                self._loc_rib[prefix] = best
            old_learned = old is not None and not old.local
            if best is not None and not best.local:
                if not old_learned or old.next_hop != best.next_hop:
                    kernel.append(InstallRoute(prefix, best.next_hop))
            elif old_learned:
                kernel.append(RemoveRoute(prefix))
            for address, neighbor in neighbors:
                out = self._rib_out[address]
                new = None if best is None else self.export_route(best, neighbor)
                if new == out.get(prefix):
                    continue
                if new is None:
                    del out[prefix]
                    sent[address].append(Withdraw(address, prefix))
                else:
                    out[prefix] = new
                    sent[address].append(Announce(address, new))
        for actions in sent.values():
            kernel.extend(actions)
        return kernel
