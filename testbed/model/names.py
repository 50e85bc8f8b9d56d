"""The words the topology model and the address plan share: relationship
kinds and router names.

``Kind`` names the business relationship between two ASes, as a topology
file declares it and as the plan, the validation and the generators read
it; ``router_name`` gives the name of an AS's router at a point of
presence. Both are plain values with no dependency, so every module of the
model can use them without importing the others.
"""

from __future__ import annotations

from enum import Enum


class Kind(str, Enum):
    """Business relationship between two ASes."""

    TRANSIT = "transit"  # a provider sells transit to a customer
    PEERING = "peering"  # settlement-free peering: each side's customers only
    PAID_PEERING = "paid-peering"  # peering routes, but a pays b for it
    PARTIAL_TRANSIT = "partial-transit"  # a gives b its peers' and customers' routes only
    ROUTE_SERVER = "route-server"  # a is a client of route server b at b's IXP


def router_name(system: str, pop: str | None) -> str:
    """The name of the router of AS ``system`` at ``pop`` (the AS's own name
    for an AS with a single router)."""
    return system if pop is None else f"{system}-{pop}"
