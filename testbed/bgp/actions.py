"""What a BGP engine asks the world to do: the actions it returns.

``RouterEngine`` answers every event with a list of these, in a fixed
order: ``InstallRoute``/``RemoveRoute`` for the kernel, ``Announce``/
``Withdraw`` for the neighbors, ``Teardown`` to close a session. The route
agent turns them into ExaBGP commands and netlink requests, and
``testbed.bgp.simulate`` delivers them to other engines. ``kernel_target``
says what the kernel should hold for a best route.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from testbed.bgp.community import BLACKHOLE
from testbed.bgp.route import Route, frozen_slots, store_through_slots

__all__ = ["Action", "Announce", "InstallRoute", "RemoveRoute", "Teardown", "Withdraw", "kernel_target"]


@frozen_slots
class Announce:
    """Send ``route`` (as it goes on the wire) to the neighbor at ``neighbor``."""

    neighbor: str
    route: Route


@frozen_slots
class Withdraw:
    """Withdraw ``prefix`` from the neighbor at ``neighbor``."""

    neighbor: str
    prefix: str


@frozen_slots
class InstallRoute:
    """Program the kernel route to ``prefix`` via ``next_hop`` (add or
    replace); with ``blackhole`` a route that discards the traffic instead
    (RFC 7999)."""

    prefix: str
    next_hop: str
    blackhole: bool = False


@frozen_slots
class RemoveRoute:
    """Remove the kernel route to ``prefix``."""

    prefix: str


@dataclass(frozen=True)
class Teardown:
    """Close the session with ``neighbor``: a Cease NOTIFICATION, subcode
    ``subcode`` (1: a maximum-prefix limit was exceeded, and the engine
    keeps the session down; 6: a configuration change, and the session may
    come back at once)."""

    neighbor: str
    reason: str
    subcode: int = 1


Action = Union[Announce, Withdraw, InstallRoute, RemoveRoute, Teardown]

# one or two of them for every prefix a router takes in
for _kind in (Announce, Withdraw, InstallRoute, RemoveRoute):
    store_through_slots(_kind)



def kernel_target(route: Route | None) -> str | None:
    """What the kernel should hold for ``route`` as the best: its next hop,
    ``"blackhole"`` for a route carrying BLACKHOLE, ``None`` for none (no
    route, or a locally originated one)."""
    if route is None or route.neighbor is None:
        return None
    if route.communities and BLACKHOLE in route.communities:
        return "blackhole"
    return route.next_hop
