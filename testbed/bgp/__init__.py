"""A pure BGP routing engine: routes, decision process, policy, RIBs.

``route`` holds the values (``Neighbor``, ``Route``), ``decision`` picks the
best route to a prefix, ``policy`` applies Gao-Rexford import and export
rules and the per-session knobs of ``rules`` (the policy language, route
origin validation), ``community`` reads and writes communities, ``engine`` keeps one router's
RIBs and turns events into ``actions`` (``route_server``: the IXP route
server's engine), and
``simulate`` runs many engines against each other to predict the converged
state of a lab. Nothing here does I/O: the route agent feeds the engine from
ExaBGP and carries its actions out, and tests run it directly.
"""

from testbed.bgp.decision import STEPS, best_route, effective_local_pref, explain
from testbed.bgp.community import BLACKHOLE, NO_ADVERTISE, NO_EXPORT, parse_community, parse_large
from testbed.bgp.actions import Action, Announce, InstallRoute, RemoveRoute, Teardown, Withdraw
from testbed.bgp.engine import RouterEngine
from testbed.bgp.route_server import RouteServerEngine
from testbed.bgp.policy import LOCAL_PREF, customer_class, export_route, import_route, may_export
from testbed.bgp.route import (
    Neighbor,
    Origin,
    Relationship,
    Route,
    address_sort_key,
    normalise_prefix,
    prefix_sort_key,
)
from testbed.bgp.rules import PolicyError, Roa, SessionPolicy, parse_policy, parse_roas, rpki_state
from testbed.bgp.simulate import Network, Session, SessionEnd, converge

__all__ = [
    "BLACKHOLE",
    "NO_ADVERTISE",
    "NO_EXPORT",
    "PolicyError",
    "Roa",
    "RouteServerEngine",
    "SessionPolicy",
    "Teardown",
    "parse_community",
    "parse_large",
    "parse_policy",
    "parse_roas",
    "rpki_state",
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
