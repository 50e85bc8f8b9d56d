"""A BIRD 2 router in a lab: its daemon, its control socket, and its state in the lab's shapes.

``BirdRouter(plan, router, directory)`` gives the argv that starts ``bird``
in the foreground with the router's configuration and its own control
socket in the router's work directory (the lab runs it in the router's
namespace with its tag); ``birdc`` talks to that socket from the host.
``state()`` reads ``show protocols all`` and ``show route all`` (master4,
master6), plus ``show route export`` per session, and returns the shapes a
route agent answers for an ExaBGP router: ``sessions`` (neighbour address
-> name, state, asn, relationship), ``loc_rib`` (prefix -> best route as
``Route.to_json`` gives it), ``adj_rib_in`` (neighbour address -> prefix
-> route: what its import filter accepted, and, where the channel has
``import keep filtered``, what it rejected, marked ``rejected``), ``adj_rib_out`` (what its export
filter lets out, as BIRD holds it before its own path prepending), so
the lab's queries and assertions read a BIRD router as any other.
``set_admin`` is ``birdc disable``/``enable``. The parsers are pure
functions of birdc's text.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

from testbed.errors import LabError
from testbed.model.plans import Plan, RouterPlan
from testbed.routers.bird_control import protocol_sections
from testbed.routers.configs import control, daemon_binary

__all__ = ["BirdRouter", "parse_protocols", "parse_routes"]

_ROUTE = re.compile(r"^(?P<prefix>\S+)?\s+(?P<kind>unicast|unreachable|blackhole|prohibited)\s+"
                    r"\[(?P<proto>\S+) [^\]]*\]\s*(?P<best>\*)?")
_TIME = re.compile(r"\d\d:\d\d:\d\d(\.\d+)?")
_ORIGINS = {"IGP": "igp", "EGP": "egp", "Incomplete": "incomplete"}


def parse_protocols(text: str) -> dict[str, dict]:
    """Protocol name -> {"proto", "state", "info", "neighbor", "asn",
    "neighbor_id", "bgp_state", "last_error"} (the last five where BIRD
    says them) from ``birdc show protocols all``."""
    found: dict[str, dict] = {}
    for head, items in protocol_sections(text):
        words = head.split()
        if head.startswith(("BIRD ", "Name ", "Access restricted")) or len(words) < 4:
            continue
        current = found[words[0]] = {"proto": words[1], "state": words[3],
                                     "info": " ".join(words[5:]) if len(words) > 5 else ""}
        for key, value in items:
            if key in _PROTOCOL_KEYS:
                current[_PROTOCOL_KEYS[key]] = int(value) if key == "Neighbor AS" else value
    return found


_PROTOCOL_KEYS = {"Neighbor address": "neighbor", "Neighbor AS": "asn", "Neighbor ID": "neighbor_id",
                  "BGP state": "bgp_state", "Last error": "last_error"}


def _ints(text: str) -> list[int]:
    return [int(x) for x in re.findall(r"\d+", text)]


def parse_routes(text: str) -> list[dict]:
    """Every route of ``birdc show route all`` as a dict: prefix, proto,
    best, kind, and the BGP attributes (as_path, next_hop, origin, med,
    local_pref, communities, large_communities)."""
    routes: list[dict] = []
    prefix = None
    current = None
    for line in text.splitlines():
        if not line.strip() or line.startswith(("BIRD ", "Table ", "Access restricted", "No ")):
            continue
        found = _ROUTE.match(line)
        if found and not line.startswith("\t"):
            prefix = found["prefix"] or prefix
            current = {"prefix": prefix, "proto": found["proto"], "best": bool(found["best"]),
                       "kind": found["kind"], "as_path": [], "communities": [], "large_communities": []}
            routes.append(current)
            continue
        if current is None:
            continue
        stripped = line.strip()
        if stripped.startswith("via "):
            current.setdefault("gateway", stripped.split()[1])
            continue
        key, _, value = stripped.partition(": ")
        value = value.strip()
        if key == "BGP.as_path":
            current["as_path"] = _ints(value)
        elif key == "BGP.next_hop":
            hops = value.split()
            # An IPv6 next hop may come with its link-local address: the first is global.
            current["next_hop"] = hops[0] if hops else None
        elif key == "BGP.origin":
            current["origin"] = _ORIGINS.get(value, value.lower())
        elif key == "BGP.med":
            current["med"] = int(value)
        elif key == "BGP.local_pref":
            current["local_pref"] = int(value)
        elif key == "BGP.community":
            current["communities"] = [f"{a}:{b}" for a, b in re.findall(r"\((\d+),\s*(\d+)\)", value)]
        elif key == "BGP.large_community":
            current["large_communities"] = [f"{a}:{b}:{c}" for a, b, c in
                                            re.findall(r"\((\d+),\s*(\d+),\s*(\d+)\)", value)]
        elif key == "Type":
            current["type"] = value.split()[0]
    return routes


class BirdRouter:
    """One BIRD router of a lab (see the module docstring)."""

    kind = "bird"
    config_name = "bird.conf"
    kernel_protocol = 12  # RTPROT_BIRD: the routes BIRD's kernel protocol writes

    def __init__(self, plan: Plan, router: RouterPlan, directory: Path):
        self.plan = plan
        self.router = router
        self.directory = directory
        self.socket = directory / "bird.ctl"
        self.config = directory / self.config_name
        self.log = directory / "bird.log"
        self._protocols: dict[str, str] = {}  # neighbour address -> protocol name

    def argv(self) -> list[str]:
        """The command that runs the daemon in the foreground."""
        return [daemon_binary("bird"), "-f", "-c", str(self.config), "-s", str(self.socket)]

    def argvs(self) -> list[list[str]]:
        return [self.argv()]

    def prepare(self) -> None:
        """Nothing to prepare beyond the configuration file."""

    def started(self, argv: list[str]) -> None:
        """Nothing to do after each daemon starts."""

    def birdc(self, *command: str, timeout: float = 10.0) -> str:
        """The text of one birdc command."""
        return control(self.router.name, [daemon_binary("birdc"), "-s", str(self.socket), *command],
                       f"birdc {' '.join(command)}", timeout)

    def ready(self) -> bool:
        """Whether its control socket answers."""
        if not self.socket.exists():
            return False
        try:
            self.birdc("show", "status", timeout=2.0)
            return True
        except LabError:
            return False

    # -- reading --------------------------------------------------------------
    def protocols(self) -> dict[str, dict]:
        found = parse_protocols(self.birdc("show", "protocols", "all"))
        self._protocols = {p["neighbor"]: name for name, p in found.items() if p.get("neighbor")}
        return found

    def sessions(self, protocols: dict[str, dict] | None = None) -> dict[str, dict]:
        """Neighbour address -> the session as the agents describe theirs."""
        protocols = protocols if protocols is not None else self.protocols()
        by_address = {p["neighbor"]: (name, p) for name, p in protocols.items() if p.get("neighbor")}
        out = {}
        for n in self.router.neighbors:
            shut = None
            name, proto = by_address.get(n.address, (None, None))
            if proto is None:
                state, reason = "unconfigured", "no BIRD protocol has this neighbour address"
            elif proto["state"] == "down":
                state, reason = "down", proto.get("last_error") or proto.get("info")
                if "limit" in (reason or "").lower():
                    shut = reason
            else:
                bgp = (proto.get("bgp_state") or proto.get("info") or "").lower()
                state, reason = ("established" if bgp.startswith("established") else bgp or "idle"), None
            out[n.address] = {"name": n.name, "state": state, "reason": reason, "asn": n.asn,
                              "relationship": n.relationship, "protocol": name, "shut": shut}
        return out

    def _route_json(self, route: dict, neighbors: dict) -> dict:
        neighbor = neighbors.get(route["proto"])
        learned = route.get("type") == "BGP" or "origin" in route
        relationship = neighbor.relationship if neighbor is not None else None
        return {
            "prefix": route["prefix"],
            "next_hop": route.get("next_hop") if learned else None,
            "as_path": route["as_path"],
            "origin": route.get("origin", "igp"),
            "med": route.get("med"),
            "local_pref": route.get("local_pref"),
            "neighbor": neighbor.address if neighbor is not None else None,
            "neighbor_asn": neighbor.asn if neighbor is not None else None,
            "neighbor_router_id": neighbor.router_id if neighbor is not None else None,
            "relationship": relationship,
            "ebgp": (relationship != "internal") if neighbor is not None else False,
            "rejected": None,
            "communities": route["communities"],
            "large_communities": route["large_communities"],
            "otc": None,
            "igp_cost": None,
            "protocol": route["proto"],
        }

    def _tables(self, *command: str) -> list[dict]:
        routes = []
        for table in ("master4", "master6"):
            routes += parse_routes(self.birdc("show", "route", *command, "table", table, "all"))
        return routes

    def state(self, with_exports: bool = True) -> dict:
        """sessions, loc_rib, adj_rib_in, adj_rib_out (see the module docstring)."""
        protocols = self.protocols()
        sessions = self.sessions(protocols)
        by_address = {n.address: n for n in self.router.neighbors}
        neighbors = {name: by_address[p["neighbor"]] for name, p in protocols.items()
                     if p.get("neighbor") in by_address}
        loc_rib: dict[str, dict] = {}
        adj_in: dict[str, dict] = {n.address: {} for n in self.router.neighbors}
        for route in self._tables():
            if route["kind"] != "unicast" and route["proto"] in neighbors:
                continue
            data = self._route_json(route, neighbors)
            prefix = str(ipaddress.ip_network(route["prefix"], strict=False))
            data["prefix"] = prefix
            if route["proto"] in neighbors:
                adj_in[neighbors[route["proto"]].address][prefix] = data
            elif route.get("type") not in ("static", "BGP") and route["kind"] == "unicast":
                continue  # device or kernel routes: not BGP's
            if route["best"] and (route["proto"] in neighbors or route.get("type") == "static"):
                loc_rib[prefix] = data
        # Routes an import filter rejected, where the channel keeps them
        # (``import keep filtered``): in the Adj-RIB-In, marked rejected.
        for route in self._tables("filtered") if with_exports else ():
            if route["proto"] in neighbors:
                data = self._route_json(route, neighbors)
                prefix = str(ipaddress.ip_network(route["prefix"], strict=False))
                data.update(prefix=prefix, rejected="rejected by the import filter")
                adj_in[neighbors[route["proto"]].address].setdefault(prefix, data)
        adj_out: dict[str, dict] = {n.address: {} for n in self.router.neighbors}
        if with_exports:
            for name, neighbor in neighbors.items():
                if sessions[neighbor.address]["state"] != "established":
                    continue
                for route in self._tables("export", name):
                    prefix = str(ipaddress.ip_network(route["prefix"], strict=False))
                    adj_out[neighbor.address][prefix] = self._route_json(route, neighbors)
        return {"router": self.router.name, "sessions": sessions, "loc_rib": loc_rib,
                "adj_rib_in": adj_in, "adj_rib_out": adj_out}

    def digest(self) -> str:
        """A text that changes whenever its routes or sessions do (times
        left out: an identical route sent again is no change)."""
        text = (self.birdc("show", "protocols") + self.birdc("show", "route", "table", "master4", "all")
                + self.birdc("show", "route", "table", "master6", "all"))
        return _TIME.sub("", text)

    # -- events ---------------------------------------------------------------
    def set_admin(self, address: str, down: bool) -> None:
        """Shut the session with the neighbour at ``address`` (or open it again)."""
        if address not in self._protocols:
            self.protocols()
        name = self._protocols.get(address)
        if name is None:
            raise LabError(f"router {self.router.name}: no BIRD protocol has neighbour {address}")
        self.birdc("disable" if down else "enable", name)
