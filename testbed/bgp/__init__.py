"""A pure BGP routing engine: routes, decision process, policy, RIBs.

``route`` holds the values (``Neighbor``, ``Route``), ``decision`` picks the
best route to a prefix, ``policy`` applies Gao-Rexford import and export
rules, ``engine`` keeps one router's RIBs and turns events into actions, and
``simulate`` runs many engines against each other to predict the converged
state of a lab. Nothing here does I/O: the route agent feeds the engine from
ExaBGP and carries its actions out, and tests run it directly.
"""

from .decision import STEPS, best_route, effective_local_pref, explain
from .engine import Action, Announce, InstallRoute, RemoveRoute, RouterEngine, Withdraw
from .policy import LOCAL_PREF, customer_class, export_route, import_route, may_export
from .route import (
    Neighbor,
    Origin,
    Relationship,
    Route,
    address_sort_key,
    normalise_prefix,
    prefix_sort_key,
)
from .simulate import Network, Session, SessionEnd, converge

__all__ = [
    "Action",
    "Announce",
    "InstallRoute",
    "LOCAL_PREF",
    "Neighbor",
    "Network",
    "Origin",
    "Relationship",
    "RemoveRoute",
    "Route",
    "RouterEngine",
    "STEPS",
    "Session",
    "SessionEnd",
    "Withdraw",
    "address_sort_key",
    "best_route",
    "converge",
    "customer_class",
    "effective_local_pref",
    "explain",
    "export_route",
    "import_route",
    "may_export",
    "normalise_prefix",
    "prefix_sort_key",
]
