"""Reading a running lab: RIBs, sessions, best paths, kernel routes, counters.

``Queries`` asks the router backend for each router's tables and sessions
(``RouterBackend.snapshot`` and ``sessions``) and the kernel of a router's
namespace, over netlink, for its BGP routes and interface counters. It
turns ASNs into AS names and AS names into their prefixes, and writes
everything into a directory on request (``dump``). It changes nothing.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from testbed.errors import LabError
from testbed.lab.events import normal
from testbed.linux import netns
from testbed.model.addressing import Plan
from testbed.routers.base import RouterBackend


class Queries:
    """The read-only questions a lab answers."""

    def __init__(self, plan: Plan, backend: RouterBackend, nodes: dict):
        self.plan = plan
        self.backend = backend
        self.nodes = nodes
        self._as_names = {r.asn: r.as_name for r in plan.routers.values()}

    def snapshot(self, router: str) -> dict:
        """Everything the router knows: RIBs, sessions, kernel routes."""
        return self.backend.snapshot(router)

    def loc_rib(self, router: str) -> dict[str, dict]:
        """prefix -> best route at ``router``."""
        return self.snapshot(router)["loc_rib"]

    def sessions(self, router: str) -> dict[str, dict]:
        """peer AS name -> session state as the router sees it."""
        return {s["name"]: s for s in self.backend.sessions(router).values()}

    def prefix_of(self, target: str, family: int = 4) -> str:
        """The prefix of an AS name (its first of ``family``), or ``target``
        itself if it is a prefix."""
        if target in self.plan.routers or target in self.plan.systems:
            system = self.plan.system_of(target) if target in self.plan.routers else target
            for prefix in self.plan.prefixes_of(system):
                if (":" in prefix) == (family == 6):
                    return prefix
            raise LabError(f"AS {target} originates no IPv{family} prefix")
        return normal(target)

    def route(self, router: str, target: str, family: int = 4) -> dict | None:
        """The best route at ``router`` for an AS's prefix (or a prefix)."""
        return self.loc_rib(router).get(self.prefix_of(target, family))

    def as_path(self, router: str, target: str, family: int = 4) -> list[str] | None:
        """AS names along the best path at ``router`` towards ``target``
        (an AS name or prefix); [] if it is the router's own; None if no route."""
        route = self.route(router, target, family)
        return None if route is None else self.names(route["as_path"])

    def names(self, asns) -> list[str]:
        """AS names of ASNs (``AS<n>`` for unknown ones)."""
        by_asn = self._as_names
        return [by_asn.get(int(a), f"AS{a}") for a in asns]

    def kernel_routes(self, router: str) -> dict[str, str]:
        """prefix -> next hop of the BGP routes in the router's kernel table."""
        from testbed.linux.routes import read_bgp_routes

        # BIRD writes its routes with its own protocol number (its backend says).
        proto = getattr(self.backend, "kernel_protocol", lambda r: None)(router)
        with netns.iproute(self.nodes[router].pid) as ipr:
            return read_bgp_routes(ipr) if proto is None else read_bgp_routes(ipr, proto)

    def counters(self, router: str, neighbor: str) -> dict[str, int]:
        """Interface counters of ``router``'s port towards AS ``neighbor``:
        ``tx_bytes``, ``rx_bytes``, ``tx_packets``, ``rx_packets``. A
        session across an IXP shares the router's one port on the peering
        LAN with every other IXP session, as on a real exchange."""
        ifname = self.plan.routers[router].neighbor(neighbor).ifname
        with netns.iproute(self.nodes[router].pid) as ipr:
            link = ipr.get_links(ipr.link_lookup(ifname=ifname)[0])[0]
        stats = link.get_attr("IFLA_STATS64")
        return {key: int(stats[key]) for key in ("tx_bytes", "rx_bytes", "tx_packets", "rx_packets")}

    def dump(self, directory: Path | str, with_files: bool = True) -> Path:
        """Write every router's RIB snapshot and copy every log and
        configuration into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for router in self.plan.routers:
            try:
                data = self.snapshot(router)
                data["kernel_table"] = self.kernel_routes(router)
            except Exception as exc:
                data = {"error": str(exc)}
            (directory / f"{router}.rib.json").write_text(json.dumps(data, indent=2, sort_keys=True))
            if with_files:
                for source in self.backend.files(router):
                    if source.exists():
                        shutil.copy(source, directory / f"{router}.{source.name}")
        return directory
