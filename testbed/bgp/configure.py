"""A router's engine built from its configuration.

``engine_from_config`` reads the JSON configuration the lab writes for each
router's route agent (``testbed.routers.exabgp_config.agent_config``: ASN,
router id, neighbors with relationship and session policy, ROAs, IGP costs)
and returns the ``RouterEngine`` (a ``RouteServerEngine`` for a route
server) that decides for that router. The route agent runs the engine it
returns; the prediction (``testbed.model.prediction``) builds its model
with the same function, so lab and model never disagree. Pure: no I/O.
"""

from __future__ import annotations

from testbed.bgp.engine import RouterEngine
from testbed.bgp.route_server import RouteServerEngine
from testbed.bgp.route import Neighbor, Relationship
from testbed.bgp.rules import parse_policy, parse_roas


def engine_from_config(config: dict) -> RouterEngine:
    """The engine of the router an agent configuration describes (a route
    server's for ``route_server``): its neighbors with their relationship
    and session policy, its ROA table."""
    neighbors = [Neighbor(address=n["address"], asn=n["asn"],
                          relationship=Relationship(n["relationship"]),
                          router_id=n["router_id"], local_address=n["local_address"],
                          local_address6=n.get("local_address6"),
                          policy=parse_policy(n.get("policy"), f"policy towards {n['name']}")
                          if n.get("policy") else None)
                 for n in config["neighbors"]]
    roas = parse_roas(config.get("roas") or [])
    if config.get("route_server"):
        return RouteServerEngine(config["asn"], config["router_id"], neighbors, roas)
    igp = {address: entry["cost"] for address, entry in (config.get("igp") or {}).items()}
    return RouterEngine(config["asn"], config["router_id"], neighbors, roas, igp)
