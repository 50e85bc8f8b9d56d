"""The BGP decision process: which of the routes to a prefix is the best.

``best_route(candidates)`` runs the tie-breaking rules of RFC 4271 section
9.1.2.2 as elimination rounds over the candidates import policy accepted
(those without ``rejected``); ``explain(candidates)`` says, for each route
that lost, at which step and why. Both take routes as the Adj-RIB-In holds
them (annotated by ``testbed.bgp.policy.import_route``) and do nothing else.

The steps, in order:

0. a locally originated route beats every learned route;
1. highest local_pref (absent counts as 100);
2. shortest AS path;
3. lowest origin (IGP < EGP < INCOMPLETE);
4. lowest MED, compared only among routes from the same neighbouring AS
   (the first AS of the path; for an empty path, the neighbor's AS); an
   absent MED counts as 0;
5. eBGP-learned over iBGP-learned;
6. lowest IGP cost to the next hop (``igp_cost``, set on iBGP routes from
   the AS's IGP; 0 for a route learned over eBGP, whose next hop is on a
   directly connected link): "hot potato", leave by the nearest exit;
7. lowest BGP identifier of the neighbor, as a number;
8. lowest neighbor address, as a number.

Every step keeps a *set* of survivors, so the result does not depend on the
order of the candidates. Step 4 is why this must be elimination rather than
a sort: "beats by MED" only relates routes from the same AS, so the pairwise
"better than" relation is not transitive and a sort or a running pairwise
maximum can return a route the RFC eliminates. If routes are still tied
after step 8 (only possible for routes no real RIB holds together, such as
two routes from one neighbor), the smallest by a total order on all their
attributes wins, so the answer is still deterministic.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Sequence
from functools import lru_cache

from testbed.bgp.route import Route, address_sort_key

__all__ = ["DEFAULT_LOCAL_PREF", "STEPS", "best_route", "explain", "effective_local_pref"]

DEFAULT_LOCAL_PREF = 100
"""The local_pref of a route that carries none (RFC 4271 leaves it to the
operator; 100 is what every common implementation uses)."""


def effective_local_pref(route: Route) -> int:
    """The route's local_pref, with ``DEFAULT_LOCAL_PREF`` for none."""
    return DEFAULT_LOCAL_PREF if route.local_pref is None else route.local_pref


@lru_cache(maxsize=4096)
def _router_id_number(router_id: str | None) -> int:
    # BGP identifiers are 32-bit numbers written as dotted quads: compare the
    # numbers, since "10.0.0.9" < "10.0.0.10" is false as text.
    if router_id is None:
        return -1
    try:
        return int(ipaddress.IPv4Address(router_id))
    except ValueError:
        return 1 << 32  # a garbled identifier loses to every real one


def _neighbouring_as(route: Route) -> int | None:
    return route.as_path[0] if route.as_path else route.neighbor_asn


def _med(route: Route) -> int:
    return 0 if route.med is None else route.med


def _canonical(route: Route) -> str:
    return json.dumps(route.to_json(), sort_keys=True)


# Each simple step minimises a key over the survivors; ``describe`` renders
# the compared value for explanations.
_Simple = tuple[str, Callable[[Route], object], Callable[[Route], str]]

_BEFORE_MED: list[_Simple] = [
    ("locally originated route",
     lambda r: 0 if r.local else 1,
     lambda r: "locally originated" if r.local else "learned"),
    ("highest local_pref",
     lambda r: -effective_local_pref(r),
     lambda r: f"local_pref {effective_local_pref(r)}"),
    ("shortest AS path",
     lambda r: len(r.as_path),
     lambda r: f"AS path length {len(r.as_path)}"),
    ("lowest origin",
     lambda r: int(r.origin),
     lambda r: f"origin {r.origin.text}"),
]

_MED_STEP = "lowest MED from the same neighbouring AS"

_AFTER_MED: list[_Simple] = [
    ("eBGP over iBGP",
     lambda r: 0 if r.ebgp else 1,
     lambda r: "eBGP" if r.ebgp else "iBGP"),
    ("lowest IGP cost to the next hop",
     lambda r: r.igp_cost or 0,
     lambda r: f"IGP cost {r.igp_cost or 0}"),
    ("lowest BGP identifier",
     lambda r: _router_id_number(r.neighbor_router_id),
     lambda r: f"router id {r.neighbor_router_id}"),
    ("lowest neighbor address",
     lambda r: address_sort_key(r.neighbor),
     lambda r: f"neighbor {r.neighbor}"),
    ("final tie-break on all attributes",
     _canonical,
     lambda r: "attributes " + _canonical(r)),
]

STEPS: dict[int, str] = dict(zip(
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    [name for name, _, _ in _BEFORE_MED] + [_MED_STEP] + [name for name, _, _ in _AFTER_MED],
))
"""The elimination steps by number, in the order they run. Numbers follow
the module docstring; 9 is the final deterministic tie-break."""

# (loser, step name, why) as recorded by _decide for explain().
_Loss = tuple[Route, str, str]


def _keep_min(routes: list[Route], step: _Simple, losses: list[_Loss] | None) -> list[Route]:
    name, key, describe = step
    keys = [key(r) for r in routes]
    low = min(keys)
    survivors = [r for r, k in zip(routes, keys) if k == low]
    if losses is not None and len(survivors) < len(routes):
        winner = describe(survivors[0])
        for r, k in zip(routes, keys):
            if k != low:
                losses.append((r, name, f"{describe(r)}, another route has {winner}"))
    return survivors


def _keep_lowest_med(routes: list[Route], losses: list[_Loss] | None) -> list[Route]:
    # RFC 4271 9.1.2.2 (c): remove a route if another route from the same
    # neighbouring AS has a lower MED. Routes from different ASes are never
    # compared here.
    lowest: dict[int | None, Route] = {}
    for r in routes:
        group = _neighbouring_as(r)
        held = lowest.get(group)
        if held is None or _med(r) < _med(held):
            lowest[group] = r
    survivors = [r for r in routes if _med(r) == _med(lowest[_neighbouring_as(r)])]
    if losses is not None and len(survivors) < len(routes):
        for r in routes:
            by = lowest[_neighbouring_as(r)]
            if _med(r) != _med(by):
                losses.append((r, _MED_STEP,
                               f"MED {_med(r)}, the route from {by.neighbor} through the "
                               f"same AS{_neighbouring_as(r)} has MED {_med(by)}"))
    return survivors


def _decide(candidates: Sequence[Route], losses: list[_Loss] | None) -> Route | None:
    routes = [r for r in candidates if r.rejected is None]
    if len(routes) <= 1:
        return routes[0] if routes else None
    for step in _BEFORE_MED:
        routes = _keep_min(routes, step, losses)
        if len(routes) == 1:
            return routes[0]
    routes = _keep_lowest_med(routes, losses)
    for step in _AFTER_MED:
        if len(routes) == 1:
            break
        routes = _keep_min(routes, step, losses)
    return routes[0]


def best_route(candidates: Sequence[Route]) -> Route | None:
    """The best of ``candidates`` by RFC 4271 9.1.2.2 (see the module
    docstring), ignoring rejected ones; ``None`` if none is accepted."""
    return _decide(candidates, None)


def explain(candidates: Sequence[Route]) -> list[str]:
    """Why the best route won: one line for the best route, then one per
    other candidate saying at which step it lost (or that import policy
    rejected it), in decision order. Empty if there are no candidates."""
    losses: list[_Loss] = []
    best = _decide(candidates, losses)
    lines: list[str] = []
    if best is not None:
        lines.append(f"best: {best}")
    elif candidates:
        lines.append("no best route: every candidate was rejected by import policy")
    order = {name: number for number, name in STEPS.items()}
    losses.sort(key=lambda loss: (order[loss[1]], address_sort_key(loss[0].neighbor),
                                  _canonical(loss[0])))
    for route, step, why in losses:
        lines.append(f"lost at step {order[step]} ({step}): {route}: {why}")
    rejected = sorted((r for r in candidates if r.rejected is not None),
                      key=lambda r: (address_sort_key(r.neighbor), _canonical(r)))
    for route in rejected:
        lines.append(f"rejected by import policy: {route}")
    return lines
