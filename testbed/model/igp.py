"""The IGP inside an AS with several routers, and iBGP next hops.

An iBGP route's next hop is another router's loopback, which no link
reaches directly: the kernel must forward to the first hop of the IGP path
there. The address plan computes each router's ``IgpRoute``s (the static
IGP over the AS's internal links, cheapest path first); ``igp_hops`` turns
them into a table by loopback (IPv4 and IPv6) of the cost and the first
hop, which the router's agent is configured with, and ``kernel_next_hop``
is the one place a BGP next hop is resolved to the address the kernel
forwards to: the agent calls it for the routes it installs, the plan
(``RouterPlan.kernel_next_hop``) and the assertions for the routes they
expect.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple


@dataclass(frozen=True)
class IgpRoute:
    """A route of the IGP: another router's loopbacks, via a neighbour
    router of the same AS on an internal link, at a total cost."""

    router: str
    loopback4: str
    loopback6: str
    via4: str
    via6: str
    cost: int


class IgpHop(NamedTuple):
    """How a loopback of another router of the AS is reached."""

    cost: int
    via: str  # the directly connected first hop


def igp_hops(routes: Iterable[IgpRoute]) -> dict[str, IgpHop]:
    """Loopback (IPv4 and IPv6) of each router ``routes`` lead to -> the
    cost and the first hop there."""
    return {address: IgpHop(route.cost, via)
            for route in routes
            for address, via in ((route.loopback4, route.via4), (route.loopback6, route.via6))}


def first_hops(routes: Iterable[IgpRoute]) -> dict[str, str]:
    """Loopback -> first hop, the table ``kernel_next_hop`` reads."""
    return {address: hop.via for address, hop in igp_hops(routes).items()}


def kernel_next_hop(first_hops: Mapping[str, str], next_hop: str | None) -> str | None:
    """The address the kernel forwards to for a route whose BGP next hop
    is ``next_hop``: the first hop of the IGP path when it is another
    router's loopback (``first_hops``: loopback -> first hop), else the
    next hop itself (a directly connected eBGP peer, ``"blackhole"``, or
    None)."""
    return first_hops.get(next_hop, next_hop)
