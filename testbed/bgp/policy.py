"""Import and export policy by business relationship (Gao-Rexford).

Routes enter through ``import_route``, which annotates a received route with
the neighbor it came from and a local_pref by the neighbor's relationship
(customers over peers over providers), or marks it rejected with a reason.
Routes leave through ``may_export`` (valley-free: only customers are given
routes learned from peers and providers) and ``export_route``, which builds
the route as sent. These functions are pure; the engine calls them for every
route it takes in or gives out.
"""

from __future__ import annotations

from .decision import DEFAULT_LOCAL_PREF
from .route import Neighbor, Relationship, Route, normalise_prefix

__all__ = ["LOCAL_PREF", "import_route", "may_export", "export_route", "customer_class"]

LOCAL_PREF: dict[Relationship, int | None] = {
    Relationship.CUSTOMER: 200,
    Relationship.PEER: 100,
    Relationship.PROVIDER: 50,
    # iBGP keeps the local_pref the other router of the AS gave the route.
    Relationship.INTERNAL: None,
}
"""The local_pref import policy gives routes by the neighbor's relationship:
a customer route earns money, a peer route is free, a provider route costs."""


# Module constants: looking an Enum member up on its class is slow enough to
# show in a 100,000-route update.
_CUSTOMER = Relationship.CUSTOMER
_INTERNAL = Relationship.INTERNAL
_CUSTOMER_LOCAL_PREF = LOCAL_PREF[_CUSTOMER]


def _path_text(path: tuple[int, ...]) -> str:
    return "[" + " ".join(str(a) for a in path) + "]"


def _rejection(local_asn: int, neighbor: Neighbor, route: Route) -> str | None:
    try:
        if normalise_prefix(route.prefix) != route.prefix:
            return f"prefix {route.prefix!r} is not in canonical form"
    except ValueError as exc:
        return str(exc)
    if route.next_hop is None:
        return "no next hop"
    if local_asn in route.as_path:
        return f"AS path loop: {local_asn} in {_path_text(route.as_path)}"
    if not neighbor.ibgp:
        # RFC 4271 6.3: an eBGP speaker must put its own AS first; anything
        # else is a misconfigured or spoofing neighbor.
        if not route.as_path:
            return f"empty AS path from eBGP neighbor AS{neighbor.asn}"
        if route.as_path[0] != neighbor.asn:
            return (f"first AS {route.as_path[0]} is not the neighbor's AS "
                    f"{neighbor.asn}")
    return None


def import_route(local_asn: int, neighbor: Neighbor, route: Route) -> Route:
    """``route`` as received from ``neighbor``, annotated for the RIB.

    Sets the neighbor fields, ``ebgp`` and ``local_pref`` (by relationship;
    over iBGP the received local_pref is kept, 100 if none). Sets
    ``rejected`` to the reason when the route must not be used: an invalid
    prefix, no next hop, ``local_asn`` in the AS path, or (eBGP) an AS path
    that does not start with the neighbor's AS. Never raises for a bad route.
    """
    if neighbor.ibgp:
        local_pref = DEFAULT_LOCAL_PREF if route.local_pref is None else route.local_pref
    else:
        local_pref = LOCAL_PREF[neighbor.relationship]
    # Built field by field rather than with dataclasses.replace, which costs
    # three times as much; this runs for every route received.
    return Route(
        prefix=route.prefix,
        next_hop=route.next_hop,
        as_path=route.as_path,
        origin=route.origin,
        med=route.med,
        local_pref=local_pref,
        neighbor=neighbor.address,
        neighbor_asn=neighbor.asn,
        neighbor_router_id=neighbor.router_id,
        relationship=neighbor.relationship,
        ebgp=not neighbor.ibgp,
        rejected=_rejection(local_asn, neighbor, route),
    )


def customer_class(route: Route) -> bool:
    """Whether ``route`` may go to every neighbor: it is locally originated
    or learned from a customer.

    A route learned over iBGP has lost the relationship it entered the AS
    through; its class is recovered from what the AS kept: an empty AS path
    means another router of the AS originated it, and a local_pref of at
    least the customer one means it entered from a customer.
    """
    relationship = route.relationship
    if route.neighbor is None or relationship is _CUSTOMER:
        return True
    if relationship is _INTERNAL:
        if not route.as_path:
            return True
        return route.local_pref is not None and route.local_pref >= _CUSTOMER_LOCAL_PREF
    return False


def may_export(route: Route, to: Neighbor) -> bool:
    """Whether the local router, holding ``route`` as its best, advertises
    it to ``to``.

    Valley-free: locally originated and customer routes go to every
    neighbor, peer and provider routes only to customers (and, if learned
    over eBGP, to iBGP neighbors, which must know every route of the AS).
    Never back to the neighbor it came from, never to a neighbor whose AS is
    already in the path, never from iBGP to iBGP (no route reflection), never
    an IPv6 route to a neighbor without an IPv6 next hop, never a rejected
    route.
    """
    if route.rejected is not None:
        return False
    if route.neighbor is not None and route.neighbor == to.address:
        return False
    if to.asn in route.as_path:
        return False
    if route.family == 6 and to.local_address6 is None:
        return False
    if to.ibgp:
        return route.relationship is not _INTERNAL
    if customer_class(route):
        return True
    return to.relationship is _CUSTOMER


def export_route(local_asn: int, route: Route, to: Neighbor) -> Route:
    """``route`` as sent to ``to``: next hop self (``to.local_address`` for
    IPv4, ``to.local_address6`` for IPv6), origin kept. Over eBGP
    ``local_asn`` is prepended and MED and local_pref are dropped; over iBGP
    the path, MED and local_pref (100 if none) are kept. The neighbor fields
    of the result are ``None``: it is an outgoing route.

    Raises ``ValueError`` for an IPv6 route to a neighbor without an IPv6
    address; ``may_export`` refuses those.
    """
    if route.family == 6:
        if to.local_address6 is None:
            raise ValueError(f"cannot send IPv6 route {route.prefix} to neighbor "
                             f"{to.address}: no local IPv6 address on that link")
        next_hop = to.local_address6
    else:
        next_hop = to.local_address
    if to.ibgp:
        return Route(
            prefix=route.prefix,
            next_hop=next_hop,
            as_path=route.as_path,
            origin=route.origin,
            med=route.med,
            local_pref=DEFAULT_LOCAL_PREF if route.local_pref is None else route.local_pref,
        )
    return Route(
        prefix=route.prefix,
        next_hop=next_hop,
        as_path=(local_asn,) + route.as_path,
        origin=route.origin,
    )
