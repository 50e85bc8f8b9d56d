"""Import and export policy by business relationship (Gao-Rexford).

Routes enter through ``import_route``, which annotates a received route with
the neighbor it came from and a local_pref by the neighbor's relationship
(customers over peers over providers), or marks it rejected with a reason.
Routes leave through ``may_export`` (valley-free: only customers are given
routes learned from peers and providers) and ``export_route``, which builds
the route as sent. These functions are pure; the engine calls them for every
route it takes in or gives out.

On top of the relationship rules, each neighbor's ``SessionPolicy``
(``testbed.bgp.rules``) adds what operators configure per session: terms
that match and modify routes, local_pref/MED overrides, prepending,
selective announcement, BLACKHOLE (RFC 7999), route origin validation
(RFC 6811) and the Only-to-Customer attribute of RFC 9234; and the
well-known communities NO_EXPORT and NO_ADVERTISE are always honoured.
"""

from __future__ import annotations

from dataclasses import replace

from testbed.bgp.community import BLACKHOLE, NO_ADVERTISE, NO_EXPORT, community_set
from testbed.bgp.decision import DEFAULT_LOCAL_PREF
from testbed.bgp.route import Neighbor, Relationship, Route, normalise_prefix
from testbed.bgp.rules import DEFAULT_POLICY, INVALID, rpki_state, run_terms

__all__ = ["LOCAL_PREF", "import_route", "may_export", "export_route", "export",
           "customer_class", "origin_as"]

LOCAL_PREF: dict[Relationship, int | None] = {
    Relationship.CUSTOMER: 200,
    Relationship.PEER: 100,
    Relationship.ROUTE_SERVER: 100,
    Relationship.RS_CLIENT: 100,
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
_PEER = Relationship.PEER
_PROVIDER = Relationship.PROVIDER
_ROUTE_SERVER = Relationship.ROUTE_SERVER
_RS_CLIENT = Relationship.RS_CLIENT
_CUSTOMER_LOCAL_PREF = LOCAL_PREF[_CUSTOMER]


def _path_text(path: tuple[int, ...]) -> str:
    return "[" + " ".join(str(a) for a in path) + "]"


def origin_as(route: Route) -> int | None:
    """The AS that originated ``route``: the last of its path."""
    return route.as_path[-1] if route.as_path else None


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
        # else is a misconfigured or spoofing neighbor. A route server does
        # not add its AS (RFC 7947): the first AS is the member's.
        if not route.as_path:
            return f"empty AS path from eBGP neighbor AS{neighbor.asn}"
        if route.as_path[0] != neighbor.asn and neighbor.relationship is not _ROUTE_SERVER:
            return (f"first AS {route.as_path[0]} is not the neighbor's AS "
                    f"{neighbor.asn}")
    return None


def _otc_ingress(neighbor: Neighbor, route: Route) -> tuple[int | None, str | None]:
    """RFC 9234 section 5, on receipt: (the OTC value to keep, or the
    reason the route is a leak)."""
    relationship = neighbor.relationship
    otc = route.otc
    if otc is not None:
        if relationship is _CUSTOMER or relationship is _RS_CLIENT:
            return otc, (f"route leak (RFC 9234): Only-to-Customer AS{otc} set on a route "
                         f"from a {relationship.value}")
        if relationship is _PEER and otc != neighbor.asn:
            return otc, (f"route leak (RFC 9234): Only-to-Customer AS{otc} on a route from "
                         f"peer AS{neighbor.asn}")
        return otc, None
    if relationship is _PROVIDER or relationship is _PEER or relationship is _ROUTE_SERVER:
        return neighbor.asn, None
    return None, None


def import_route(local_asn: int, neighbor: Neighbor, route: Route, roas=()) -> Route:
    """``route`` as received from ``neighbor``, annotated for the RIB.

    Sets the neighbor fields, ``ebgp`` and ``local_pref`` (by relationship
    or the session's ``local_pref``; over iBGP the received local_pref is
    kept, 100 if none). Sets ``rejected`` to the reason when the route must
    not be used: an invalid prefix, no next hop, ``local_asn`` in the AS
    path, (eBGP) an AS path that does not start with the neighbor's AS, a
    BLACKHOLE the session does not honour, an RPKI-invalid origin where the
    session validates (``roas``), a route leak by RFC 9234, or an import
    term that rejects it. Never raises for a bad route.
    """
    policy = neighbor.policy or DEFAULT_POLICY
    if neighbor.ibgp:
        local_pref = DEFAULT_LOCAL_PREF if route.local_pref is None else route.local_pref
    elif policy.local_pref is not None:
        local_pref = policy.local_pref
    else:
        local_pref = LOCAL_PREF[neighbor.relationship]
    rejected = _rejection(local_asn, neighbor, route)
    otc = route.otc
    communities = route.communities
    if rejected is None and not neighbor.ibgp:
        if policy.otc:
            otc, rejected = _otc_ingress(neighbor, route)
        if rejected is None and BLACKHOLE in communities:
            if not policy.blackhole:
                rejected = "BLACKHOLE community (RFC 7999) not honoured from this neighbor"
            elif neighbor.relationship is not _RS_CLIENT:
                # RFC 7999 3.2: a blackholed prefix goes no further.
                communities = community_set(communities + (NO_EXPORT,))
        if rejected is None and policy.rov:
            state = rpki_state(roas, route.prefix, origin_as(route))
            if state == INVALID:
                rejected = (f"RPKI invalid (RFC 6811): origin AS{origin_as(route)} is not "
                            f"authorised for {route.prefix}")
    # Built field by field rather than with dataclasses.replace, which costs
    # three times as much; this runs for every route received.
    imported = Route(
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
        rejected=rejected,
        communities=communities,
        large_communities=route.large_communities,
        otc=otc,
    )
    if rejected is None and policy.import_terms:
        imported, verdict = run_terms(policy.import_terms, imported,
                                      lambda r: rpki_state(roas, r.prefix, origin_as(r)))
        if verdict == "reject":
            imported = replace(imported, rejected="rejected by an import term")
    return imported


def customer_class(route: Route) -> bool:
    """Whether ``route`` may go to every neighbor: it is locally originated
    or learned from a customer.

    A route learned over iBGP has lost the relationship it entered the AS
    through; its class is recovered from what the AS kept: an empty AS path
    means another router of the AS originated it, and a local_pref of at
    least the customer one means it entered from a customer.
    """
    relationship = route.relationship
    if route.neighbor is None or relationship is _CUSTOMER or relationship is _RS_CLIENT:
        return True
    if relationship is _INTERNAL:
        if not route.as_path:
            return True
        return route.local_pref is not None and route.local_pref >= _CUSTOMER_LOCAL_PREF
    return False


def _allowed(route: Route, to: Neighbor) -> bool:
    """The rules no policy can override: never a rejected route, never back
    to the neighbor it came from or to an AS already in the path, never an
    IPv6 route without an IPv6 next hop, honour NO_ADVERTISE and (towards
    eBGP) NO_EXPORT, and (RFC 9234) never a route marked Only-to-Customer
    to a provider, peer or route server when the session applies it."""
    if route.rejected is not None:
        return False
    if route.neighbor is not None and route.neighbor == to.address:
        return False
    if to.asn in route.as_path:
        return False
    if route.family == 6 and to.local_address6 is None:
        return False
    if route.communities:
        if NO_ADVERTISE in route.communities:
            return False
        if not to.ibgp and NO_EXPORT in route.communities:
            return False
    if route.otc is not None and to.policy is not None and to.policy.otc:
        relationship = to.relationship
        if relationship is _PROVIDER or relationship is _PEER or relationship is _ROUTE_SERVER:
            return False
    return True


def _valley_free(route: Route, to: Neighbor) -> bool:
    if to.ibgp:
        return route.relationship is not _INTERNAL
    if customer_class(route):
        return True
    return to.relationship is _CUSTOMER


def may_export(route: Route, to: Neighbor) -> bool:
    """Whether the local router, holding ``route`` as its best, advertises
    it to ``to`` by the relationship rules alone (no session terms).

    Valley-free: locally originated and customer routes go to every
    neighbor, peer and provider routes only to customers (and, if learned
    over eBGP, to iBGP neighbors, which must know every route of the AS).
    Never back to the neighbor it came from, never to a neighbor whose AS is
    already in the path, never from iBGP to iBGP (no route reflection), never
    an IPv6 route to a neighbor without an IPv6 next hop, never a rejected
    route, never against NO_ADVERTISE/NO_EXPORT.
    """
    return _allowed(route, to) and _valley_free(route, to)


def export_route(local_asn: int, route: Route, to: Neighbor) -> Route:
    """``route`` as sent to ``to``: next hop self (``to.local_address`` for
    IPv4, ``to.local_address6`` for IPv6), origin, communities and OTC kept.
    Over eBGP ``local_asn`` is prepended and MED and local_pref are dropped;
    over iBGP the path, MED and local_pref (100 if none) are kept. The
    neighbor fields of the result are ``None``: it is an outgoing route.

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
            communities=route.communities,
            large_communities=route.large_communities,
            otc=route.otc,
        )
    return Route(
        prefix=route.prefix,
        next_hop=next_hop,
        as_path=(local_asn,) + route.as_path,
        origin=route.origin,
        communities=route.communities,
        large_communities=route.large_communities,
        otc=route.otc,
    )


def export(local_asn: int, route: Route, to: Neighbor, roas=()) -> Route | None:
    """The route to send ``to`` when ``route`` is the best, or ``None``.

    The fixed rules first (``may_export``'s, except valley-free), then the
    session policy: ``announce`` (selective announcement), the route as
    sent (``export_route``) with the session's MED and prepending, OTC added
    towards customers, peers and route-server clients (RFC 9234), and the
    export terms. A term that accepts overrides valley-free; without one,
    valley-free decides.
    """
    if not _allowed(route, to):
        return None
    policy = to.policy
    if policy is None or policy is DEFAULT_POLICY:
        if not _valley_free(route, to):
            return None
        return export_route(local_asn, route, to)
    if policy.announce is not None and not any(r.contains(route.prefix) for r in policy.announce):
        return None
    default = _valley_free(route, to)
    if not default and not policy.export_terms:
        return None
    sent = export_route(local_asn, route, to)
    changes: dict = {}
    if not to.ibgp:
        if policy.med == "igp":
            changes["med"] = route.igp_cost or 0
        elif policy.med is not None:
            changes["med"] = policy.med
        if policy.prepend:
            changes["as_path"] = (local_asn,) * policy.prepend + sent.as_path
        relationship = to.relationship
        if policy.otc and sent.otc is None and (relationship is _CUSTOMER or relationship is _PEER
                                                or relationship is _RS_CLIENT):
            changes["otc"] = local_asn
    if changes:
        sent = replace(sent, **changes)
    if policy.export_terms:
        # Validation state and prepending as for the route the router holds:
        # a local route's origin is the local AS; no prepending over iBGP.
        origin = origin_as(route) or local_asn
        sent, verdict = run_terms(policy.export_terms, sent,
                                  lambda r: rpki_state(roas, r.prefix, origin),
                                  None if to.ibgp else local_asn, source=route)
        if verdict == "reject":
            return None
        if verdict == "accept":
            return sent
    return sent if default else None
