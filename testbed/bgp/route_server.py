"""The IXP route server's engine (RFC 7947): best path per client,
transparent, steered by control communities.

``RouteServerEngine`` is a ``RouterEngine`` (``testbed.bgp.engine``) fed
the same events and answering with the same actions, but it installs no
kernel route and decides per client: each client gets the best of the
routes that may go to it, as the announcing member sent them.
"""

from __future__ import annotations

from collections.abc import Iterable

from testbed.bgp.actions import Action
from testbed.bgp.decision import best_route
from testbed.bgp.engine import RouterEngine
from testbed.bgp.route import Neighbor, Route, prefix_sort_key
from testbed.bgp.rules import run_terms

__all__ = ["RouteServerEngine"]


class RouteServerEngine(RouterEngine):
    """An IXP route server (RFC 7947): it forwards no traffic and installs
    no kernel route; it gives each client (``RS_CLIENT`` neighbors) the best
    of the routes that may go to that client, chosen per client so that a
    route filtered for one member hides no alternative from it (no path
    hiding). Routes go out transparently: AS path, next hop, MED and
    communities as the announcing member sent them.

    Members steer their routes with control communities (standard form,
    and large form of RFC 8092 with the route server's ASN ``RS``):

    =====================  ==================  ====================================
    standard               large               meaning
    =====================  ==================  ====================================
    ``0:peer``             ``RS:0:peer``       do not announce to ``peer``
    ``0:RS``               ``RS:0:0``          do not announce to anyone...
    ``RS:peer``            ``RS:1:peer``       ...but to ``peer``
    ``65501..65503:peer``  ``RS:101..103:peer``  prepend the member's AS 1-3 times towards ``peer``
    =====================  ==================  ====================================

    Control communities are removed from what the route server sends
    (standard ones whose first half is 0, ``RS`` or 65501-65503 when they
    fit 16 bits, large ones whose first part is ``RS``).
    """

    def _controls(self, route: Route, to: Neighbor) -> tuple[bool, int]:
        """(whether ``route`` may go to ``to``, how many prepends)."""
        rs, peer = self.asn, to.asn
        standard = set(route.communities)
        large = set(route.large_communities)
        small_rs = rs <= 0xFFFF
        small_peer = peer <= 0xFFFF
        if (rs, 0, peer) in large or (small_peer and peer in standard):  # 0:peer is the number peer
            return False, 0
        allowed = (rs, 1, peer) in large or (small_rs and small_peer and (rs << 16 | peer) in standard)
        if not allowed and ((rs, 0, 0) in large or (small_rs and rs in standard)):
            return False, 0
        prepend = 0
        for count in (1, 2, 3):
            if (rs, 100 + count, peer) in large or (small_peer and ((65500 + count) << 16 | peer) in standard):
                prepend = max(prepend, count)
        return True, prepend

    def _strip(self, communities: tuple[int, ...], large) -> tuple[tuple[int, ...], tuple]:
        rs = self.asn
        kept = tuple(c for c in communities
                     if not (c >> 16 == 0 or (rs <= 0xFFFF and c >> 16 == rs)
                             or 65501 <= c >> 16 <= 65503))
        kept_large = tuple(c for c in large if c[0] != rs)
        return kept, kept_large

    def export_route(self, route: Route, to: Neighbor) -> Route | None:
        """``route`` as the route server sends it to client ``to``, or
        ``None`` if it may not go there."""
        if route.rejected is not None or route.local:
            return None
        if route.neighbor == to.address or to.asn in route.as_path:
            return None
        if route.family == 6 and to.local_address6 is None:
            return None
        allowed, prepend = self._controls(route, to)
        if not allowed:
            return None
        communities, large = self._strip(route.communities, route.large_communities)
        path = route.as_path
        if prepend and path:
            path = (path[0],) * prepend + path
        otc = route.otc
        if otc is None and to.policy is not None and to.policy.otc:
            otc = self.asn  # RFC 9234: towards an RS-client
        sent = Route(prefix=route.prefix, next_hop=route.next_hop, as_path=path,
                     origin=route.origin, med=route.med, communities=communities,
                     large_communities=large, otc=otc)
        session = to.policy
        if session is not None:
            # The route server's per-member filters (RFC 7947 2.3): its
            # export policy towards this client, then its announce list.
            if session.announce is not None and not any(r.contains(route.prefix)
                                                        for r in session.announce):
                return None
            if session.export_terms:
                sent, verdict = run_terms(session.export_terms, sent, None, None, source=route)
                if verdict == "reject":
                    return None
        return sent

    def _export_again(self, neighbor: str) -> list[Action]:
        touched = set(self._candidates) | set(self._rib_out[neighbor])
        return [a for a in self._decide(touched) if a.neighbor == neighbor]

    def _decide(self, touched: Iterable[str]) -> list[Action]:
        sent: dict[str, list[Action]] = {address: [] for address in self.neighbors}
        neighbors = list(self.neighbors.items())
        for prefix in sorted(touched, key=prefix_sort_key):
            routes = list((self._candidates.get(prefix) or {}).values())
            best = best_route(routes) if routes else None
            if best is None:
                self._loc_rib.pop(prefix, None)
            else:
                self._loc_rib[prefix] = best
            for address, neighbor in neighbors:
                eligible = [r for r in routes if self.export_route(r, neighbor) is not None]
                chosen = best_route(eligible) if eligible else None
                new = None if chosen is None else self.export_route(chosen, neighbor)
                self._advertise(address, prefix, new, sent[address])
        actions: list[Action] = []
        for items in sent.values():
            actions.extend(items)
        return actions
