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
prefix (both numerically). The actions are defined in
``testbed.bgp.actions``; the IXP route server's engine, a subclass, in
``testbed.bgp.route_server``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from testbed.bgp import policy
from testbed.bgp.actions import Action, Announce, InstallRoute, RemoveRoute, Teardown, Withdraw, kernel_target
from testbed.bgp.decision import best_route, explain
from testbed.bgp.fingerprint import FingerprintedTable, state_fingerprint
from testbed.bgp.route import (
    Neighbor,
    Origin,
    Route,
    RouteGroup,
    RouteGroups,
    address_sort_key,
    normalise_prefix,
    prefix_sort_key,
    with_prefix,
)
from testbed.bgp.rules import DEFAULT_POLICY

__all__ = [
    "Announce",
    "Withdraw",
    "InstallRoute",
    "RemoveRoute",
    "Teardown",
    "Action",
    "RouterEngine",
    "kernel_target",
]


def _import_side(session_policy) -> tuple:
    # No policy is the default policy: adding an export-only knob to a
    # session without one changes nothing on the import side.
    p = DEFAULT_POLICY if session_policy is None else session_policy
    return (p.import_terms, p.local_pref, p.max_prefix, p.blackhole, p.rov, p.otc)


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

    def __init__(self, asn: int, router_id: str, neighbors: Iterable[Neighbor], roas=(),
                 igp: dict[str, int] | None = None):
        self.asn = asn
        self.router_id = router_id
        self.roas = tuple(roas)
        # IGP cost to the other routers of the AS, by their addresses: the
        # next hops of the routes they send over iBGP.
        self.igp = dict(igp or {})
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
        self._rib_in: dict[str, FingerprintedTable] = {a: FingerprintedTable(adj_in=True) for a in self.neighbors}
        self._rib_out: dict[str, dict[str, Route]] = {a: {} for a in self.neighbors}
        # prefix -> source (neighbor address, None for local) -> accepted
        # route: the candidates of the decision, indexed so that deciding a
        # prefix never scans the neighbors' tables.
        self._candidates: dict[str, dict[str | None, Route]] = {}
        self._loc_rib = FingerprintedTable()
        self._established: set[str] = set()
        self._accepted: dict[str, int] = {a: 0 for a in self.neighbors}
        # neighbor -> why its session is kept down (maximum prefixes)
        self.shut: dict[str, str] = {}

    # -- policy hooks --------------------------------------------------------
    def import_route(self, neighbor: Neighbor, route: Route) -> Route:
        """``route`` as received from ``neighbor``, annotated (and possibly
        rejected) by import policy. Default: ``policy.import_route``."""
        imported = policy.import_route(self.asn, neighbor, route, self.roas)
        if neighbor.ibgp and imported.next_hop in self.igp:
            imported = replace(imported, igp_cost=self.igp[imported.next_hop])
        return imported

    def export_route(self, route: Route, to: Neighbor) -> Route | None:
        """The route to advertise to ``to`` when ``route`` is the best, or
        ``None`` to advertise nothing. Default: ``policy.export``."""
        return policy.export(self.asn, route, to, self.roas)

    # -- events --------------------------------------------------------------
    def originate(self, prefix: str, origin: Origin = Origin.IGP, communities=(),
                  large_communities=(), as_path=()) -> list[Action]:
        """Originate ``prefix`` from this router, tagged with ``communities``
        and ``large_communities`` (raises ``ValueError`` for a bad prefix or
        community). Originating it again with other attributes replaces it.
        ``as_path``: the path the route carries behind this AS's own ASN (a
        route replayed from a real table, as if learned from customers)."""
        prefix = normalise_prefix(prefix)
        route = Route(prefix=prefix, next_hop=None, origin=Origin.parse(origin),
                      as_path=tuple(int(a) for a in as_path),
                      communities=tuple(communities), large_communities=tuple(large_communities))
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

    def receive(self, neighbor: str, announced: Iterable[Route] | RouteGroup,
                withdrawn: Iterable[str] = ()) -> list[Action]:
        """Take an update from the neighbor at ``neighbor``: ``withdrawn``
        prefixes first, then ``announced`` routes (as received, or a
        ``RouteGroup`` of them; import policy is applied here). A route
        replaces the neighbor's previous route to the same prefix. Raises
        ``ValueError`` for an unknown neighbor; bad routes are kept as
        rejected, never raised."""
        peer = self._neighbor(neighbor)
        if neighbor in self.shut:
            return []
        rib = self._rib_in[neighbor]
        touched: set[str] = set()
        accepted = self._accepted[neighbor]
        for prefix in withdrawn:
            prefix = _prefix_or_text(prefix)
            old = rib.pop(prefix, None)
            if old is not None:
                accepted -= old.rejected is None
                self._drop_candidate(prefix, neighbor)
                touched.add(prefix)
        for prefix, imported in self._imported(peer, announced):
            old = rib.get(prefix)
            if old is not None:
                accepted -= old.rejected is None
            rib[prefix] = imported
            if imported.rejected is None:
                accepted += 1
                self._candidates.setdefault(prefix, {})[neighbor] = imported
            else:
                self._drop_candidate(prefix, neighbor)
            touched.add(prefix)
        self._accepted[neighbor] = accepted
        limit = peer.policy.max_prefix if peer.policy is not None else None
        if limit is not None and accepted > limit:
            reason = (f"maximum prefixes exceeded: {accepted} accepted from {neighbor} "
                      f"(AS{peer.asn}), limit {limit}")
            self.shut[neighbor] = reason
            # The prefixes this update withdrew are no longer in the
            # Adj-RIB-In: decide them with the ones the teardown drops.
            return self._forget(neighbor, touched) + [Teardown(neighbor, reason)]
        return self._decide(touched)

    def _imported(self, peer: Neighbor, announced: Iterable[Route] | RouteGroup):
        """(prefix, route as imported) for each route of ``announced``."""
        if type(announced) is RouteGroups:
            for group in announced.groups:
                yield from self._imported(peer, group)
            return
        if type(announced) is RouteGroup and self._import_ignores_prefix(peer):
            # One import for the group's attributes, then a copy per
            # prefix: what importing each would give, since nothing in
            # this session's import policy looks at the prefix.
            template, imported = announced.template, None
            for text in announced.prefixes:
                try:
                    prefix = normalise_prefix(text)
                except ValueError:  # kept under its own text, rejected by import
                    yield text, self.import_route(peer, with_prefix(template, text))
                    continue
                if imported is None:
                    imported = self.import_route(peer, with_prefix(template, prefix))
                    yield prefix, imported
                else:
                    yield prefix, with_prefix(imported, prefix)
            return
        for route in announced:
            prefix = _prefix_or_text(route.prefix)
            if prefix != route.prefix:
                route = replace(route, prefix=prefix)
            yield prefix, self.import_route(peer, route)

    def _import_ignores_prefix(self, peer: Neighbor) -> bool:
        """Whether importing a route from ``peer`` gives the same route
        whatever its (valid) prefix: no origin validation, no import terms,
        and this class's import."""
        terms = peer.policy or DEFAULT_POLICY
        return (not terms.rov and not terms.import_terms
                and type(self).import_route is RouterEngine.import_route)

    def session_up(self, neighbor: str) -> list[Action]:
        """The session with ``neighbor`` is established: an ``Announce`` for
        every route of its Adj-RIB-Out, sorted by prefix."""
        self._neighbor(neighbor)
        if neighbor in self.shut:
            return [Teardown(neighbor, self.shut[neighbor])]
        self._established.add(neighbor)
        out = self._rib_out[neighbor]
        return [Announce(neighbor, out[p]) for p in sorted(out, key=prefix_sort_key)]

    def session_down(self, neighbor: str) -> list[Action]:
        """The session with ``neighbor`` is gone: forget every route it sent
        and decide those prefixes again."""
        self._neighbor(neighbor)
        return self._forget(neighbor, set())

    def _forget(self, neighbor: str, touched: set[str]) -> list[Action]:
        """Drop every route ``neighbor`` sent and decide those prefixes and
        ``touched`` again."""
        self._established.discard(neighbor)
        rib = self._rib_in[neighbor]
        for prefix in rib:
            self._drop_candidate(prefix, neighbor)
        touched = touched | set(rib)
        rib.clear()
        self._accepted[neighbor] = 0
        return self._decide(touched)

    def set_policy(self, neighbor: str, new_policy) -> list[Action]:
        """Replace the session policy towards ``neighbor`` (a
        ``SessionPolicy`` or ``None``), as an operator changing a router's
        configuration: what is advertised to it is evaluated again at once
        (a soft reset outbound). If the import side changed, the routes it
        sent must be evaluated again too; the engine keeps no copy of them as
        received, so it resets the session (Cease, "other configuration
        change") and the neighbor sends them again when it comes back."""
        peer = self._neighbor(neighbor)
        old = peer.policy
        updated = replace(peer, policy=new_policy)
        self.neighbors[neighbor] = updated
        actions = self._export_again(neighbor)
        if _import_side(old) != _import_side(new_policy) and neighbor in self._established:
            actions += self.session_down(neighbor)
            actions.append(Teardown(neighbor, "import policy changed", subcode=6))
        return actions

    def _export_again(self, neighbor: str) -> list[Action]:
        to = self.neighbors[neighbor]
        out = self._rib_out[neighbor]
        actions: list[Action] = []
        for prefix in sorted(set(self._loc_rib) | set(out), key=prefix_sort_key):
            best = self._loc_rib.get(prefix)
            self._advertise(neighbor, prefix, None if best is None else self.export_route(best, to),
                            actions)
        return actions

    def _advertise(self, neighbor: str, prefix: str, new: Route | None, actions: list) -> None:
        """Make ``new`` (``None``: nothing) what ``neighbor`` is sent for
        ``prefix``; append the Announce or Withdraw that takes, if any."""
        out = self._rib_out[neighbor]
        if new == out.get(prefix):
            return
        if new is None:
            del out[prefix]
            actions.append(Withdraw(neighbor, prefix))
        else:
            out[prefix] = new
            actions.append(Announce(neighbor, new))

    def clear_shut(self, neighbor: str) -> None:
        """Allow the session with ``neighbor`` again after a maximum-prefix
        teardown (an operator's "clear bgp")."""
        self._neighbor(neighbor)
        self.shut.pop(neighbor, None)

    # -- queries -------------------------------------------------------------
    def loc_rib(self) -> dict[str, Route]:
        """A copy of the Loc-RIB: prefix -> best route, local ones included."""
        return dict(self._loc_rib)

    def loc_rib_size(self) -> int:
        return len(self._loc_rib)

    def fingerprint(self) -> str:
        """``testbed.routers.agent_client.state_digest`` of this router's Loc-RIB and
        Adj-RIBs-In, from the fingerprints its tables keep as they change."""
        return state_fingerprint(self._loc_rib.fingerprint,
                                 {a: rib.fingerprint for a, rib in self._rib_in.items()})

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
        candidates, loc_rib = self._candidates, self._loc_rib
        for prefix in sorted(touched, key=prefix_sort_key):
            routes = candidates.get(prefix)
            if not routes:
                best = None
            elif len(routes) == 1:  # most prefixes, most of the time
                (best,) = routes.values()
                if best.rejected is not None:
                    best = None
            else:
                best = best_route(list(routes.values()))
            old = loc_rib.get(prefix)
            if best is old or (best is not None and old is not None and best == old):
                continue
            if best is None:
                del loc_rib[prefix]
            else:
                loc_rib[prefix] = best
            target, old_target = kernel_target(best), kernel_target(old)
            if target != old_target:
                if target is None:
                    kernel.append(RemoveRoute(prefix))
                elif target == "blackhole":
                    kernel.append(InstallRoute(prefix, best.next_hop, blackhole=True))
                else:
                    kernel.append(InstallRoute(prefix, target))
            source = None if best is None else best.neighbor
            for address, neighbor in neighbors:
                # never back to where it came from (policy's first rule, without the calls)
                new = None if best is None or address == source else self.export_route(best, neighbor)
                self._advertise(address, prefix, new, sent[address])
        for actions in sent.values():
            kernel.extend(actions)
        return kernel
