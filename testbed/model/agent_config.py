"""The configuration each router's route agent runs with, as plain data:
its AS, prefixes, ROAs, IGP and every neighbor with its relationship and
policy. Written as JSON beside the router's ExaBGP file, and read back by
the prediction (``testbed.model.prediction``), so that the model and the
agents build their engines from the very same data."""

from __future__ import annotations

from testbed.model.addressing import Plan, RouterPlan


def agent_config(plan: Plan, router: RouterPlan, socket_path: str, log_path: str) -> dict:
    """The route agent's configuration (written as JSON next to the ExaBGP file)."""
    return {
        "router": router.name,
        "asn": router.asn,
        "router_id": router.router_id,
        "prefixes": list(router.prefixes),
        "control_socket": socket_path,
        "log": log_path,
        "route_server": router.route_server,
        "roas": [dict(roa) for roa in plan.roas],
        # The IGP: the other routers of the AS by loopback, with the cost to
        # reach them and the first hop there (kernel routes must name a
        # directly connected next hop; iBGP next hops are loopbacks).
        "igp": {address: {"cost": hop.cost, "via": hop.via} for address, hop in router.igp_hops().items()},
        "neighbors": [
            {
                "name": n.name, "address": n.address, "address6": n.address6, "asn": n.asn,
                "relationship": n.relationship, "router_id": n.router_id,
                "local_address": n.local_address, "local_address6": n.local_address6,
                "policy": n.policy,
            }
            for n in router.neighbors
        ],
    }
