"""The lab's BIRD and FRR routers ("bring your own router"), beside its ExaBGP ones.

``adapter_class(kind)`` is the adapter of a daemon (``testbed.routers.bird``,
``frr``); ``consistency_problems`` is what ``Lab.wait_converged`` checks in a lab with such
routers, since the model cannot predict a foreign policy: (1) every
session is in the state the lab expects (up unless depeered or cut), on
both sides; (2) for every session between a BYO router and an ExaBGP
router, the prefixes the BYO router exports to the ExaBGP router are
exactly those in that router's Adj-RIB-In from it, and the prefixes the
ExaBGP router's agent has in its Adj-RIB-Out towards the BYO router are
exactly those the BYO router holds from it, or fewer by those its import
filter rejected (BIRD keeps no rejected routes); (3) nothing changed (every
agent's state digest, every BYO router's sessions and routes) for
``QUIET`` seconds. Between two BYO routers only (1) and (3) apply.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["adapter_class", "consistency_problems"]


def adapter_class(kind: str):
    """The adapter class of a router kind ("bird" or "frr")."""
    if kind == "bird":
        from testbed.routers.bird import BirdRouter

        return BirdRouter
    from testbed.routers.frr import FrrRouter

    return FrrRouter


def consistency_problems(plan, expect, sessions: dict[str, dict], foreign_states: dict[str, dict],
                         foreign: set[str], crashed: set[str], snapshot: Callable[[str], dict]) -> list[str]:
    """What keeps a lab with BYO routers from being converged now:
    ``sessions`` (router -> its sessions) against ``expect``, and for each
    BYO router (``foreign_states``: its adapter's state) and each ExaBGP
    neighbour (read with ``snapshot``), its exports against what the
    neighbour holds from it and what it holds against what the neighbour sends."""
    out = []
    for router, table in sessions.items():
        for address, state in table.items():
            want = expect.session_up(router, state["name"])
            have = state["state"] == "established"
            if want != have:
                out.append(f"router {router}: session to {state['name']} ({address}) is {state['state']}"
                           f"{' (' + str(state.get('reason')) + ')' if state.get('reason') else ''}, "
                           f"expected {'established' if want else 'down'}")
    snapshots: dict[str, dict] = {}
    for name, state in foreign_states.items():
        for n in plan.routers[name].neighbors:
            peer = n.name
            if peer in foreign or peer in crashed or not expect.session_up(name, peer):
                continue
            if peer not in snapshots:
                snapshots[peer] = snapshot(peer)
            back = plan.routers[peer].neighbor(name).address
            received = set(snapshots[peer]["adj_rib_in"].get(back, {}))
            sent = set(state["adj_rib_out"].get(n.address, {}))
            if sent != received:
                out.append(f"router {name} exports {sorted(sent - received)} to {peer}, which has not "
                           f"received them; {peer} still holds {sorted(received - sent)} from it")
            offered = set(snapshots[peer]["adj_rib_out"].get(back, {}))
            held = {p for p, r in state["adj_rib_in"].get(n.address, {}).items() if not r.get("rejected")}
            if not held <= offered:
                out.append(f"router {name} still holds {sorted(held - offered)} from {peer}, "
                           "which no longer sends them")
    return out
