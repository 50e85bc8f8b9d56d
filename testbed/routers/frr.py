"""An FRR router in a lab: zebra and bgpd with their own state directory, read through vtysh's JSON.

Several FRR instances on one machine must not share the packaged daemons'
paths (``/var/run/frr``, ``/etc/frr``): ``FrrRouter`` runs each router's
``zebra`` and ``bgpd`` (Debian's frr 8.4, ``/usr/lib/frr``) in the
foreground with every path given on the command line, all in the router's
work directory: the configuration (``-f``), pid files (``-i``), the
zebra API socket (``-z``), the vty sockets (``--vty_socket``), logs, and
no vty TCP port (``-P 0``); ``vtysh --vty_socket`` then talks to that
instance only. zebra writes bgpd's best routes to the namespace's kernel
(``proto bgp``). ``state()`` reads ``show bgp neighbors json``, ``show bgp
ipv4|ipv6 unicast json`` (every path, the best one marked) and each
neighbour's ``advertised-routes`` into the shapes the route agents answer
(``testbed.routers.bird`` describes them); ``set_admin`` is ``neighbor X
shutdown`` through vtysh.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

from testbed.errors import LabError
from testbed.model.plans import Plan, RouterPlan
from testbed.routers.configs import FRR_BIN, control, daemon_binary

__all__ = ["FrrRouter", "routes_from_json"]

_ORIGINS = {"IGP": "igp", "EGP": "egp", "incomplete": "incomplete", "?": "incomplete", "i": "igp"}


def _path_asns(path: dict) -> list[int]:
    text = (path.get("aspath") or {}).get("string", "") if isinstance(path.get("aspath"), dict) \
        else str(path.get("path", ""))
    return [int(x) for x in text.replace("{", " ").replace("}", " ").split() if x.isdigit()]


def _next_hop(path: dict) -> str | None:
    for hop in path.get("nexthops") or []:
        if hop.get("scope", "global") == "global" and hop.get("ip") not in (None, "0.0.0.0", "::"):
            return hop["ip"]
    return None


def routes_from_json(data: dict) -> list[dict]:
    """Every path of ``show bgp <afi> unicast json`` as a dict: prefix,
    best, as_path, next_hop, origin, med, local_pref, peer (the
    neighbour's address, None for a local route), communities."""
    routes = []
    for prefix, paths in (data.get("routes") or {}).items():
        for path in paths:
            peer = path.get("peerId")
            local = peer in (None, "(unspec)", "0.0.0.0", "::") or path.get("sourced")
            large = (path.get("largeCommunity") or {}).get("string", "")
            communities = (path.get("community") or {}).get("string", "")
            routes.append({
                "prefix": prefix, "best": bool(path.get("bestpath")),
                "as_path": _path_asns(path),
                "next_hop": None if local else _next_hop(path),
                "origin": _ORIGINS.get(path.get("origin"), str(path.get("origin", "igp")).lower()),
                "med": path.get("metric"), "local_pref": path.get("locPrf"),
                "peer": None if local else peer,
                "communities": communities.split() if communities else [],
                "large_communities": large.split() if large else [],
            })
    return routes


class FrrRouter:
    """One FRR router of a lab (see the module docstring)."""

    kind = "frr"
    config_name = "frr.conf"
    kernel_protocol = 186  # RTPROT_BGP: zebra marks bgpd's routes so

    def __init__(self, plan: Plan, router: RouterPlan, directory: Path):
        self.plan = plan
        self.router = router
        self.directory = directory
        self.config = directory / self.config_name
        self.log = directory / "frr.log"

    def prepare(self) -> None:
        (self.directory / "zebra.conf").write_text(f"hostname {self.router.name}\n")

    def argvs(self) -> list[list[str]]:
        d = self.directory
        common = ["-u", "root", "-g", "frrvty", "-P", "0", "--vty_socket", str(d), "-z", str(d / "zserv.api")]
        return [[daemon_binary(str(FRR_BIN / "zebra")), "-f", str(d / "zebra.conf"),
                 "-i", str(d / "zebra.pid"), *common],
                [daemon_binary(str(FRR_BIN / "bgpd")), "-f", str(self.config),
                 "-i", str(d / "bgpd.pid"), *common]]

    def started(self, argv: list[str]) -> None:
        """Wait for zebra's API socket before bgpd starts (bgpd would retry later)."""
        import time

        if argv[0].endswith("zebra"):
            deadline = time.monotonic() + 10
            while not (self.directory / "zserv.api").exists() and time.monotonic() < deadline:
                time.sleep(0.01)  # no event tells us another process made a socket

    def vtysh(self, command: str, timeout: float = 10.0) -> str:
        return control(self.router.name, [daemon_binary("vtysh"), "--vty_socket", str(self.directory),
                                          "-c", command], f"vtysh -c {command!r}", timeout)

    def json(self, command: str) -> dict:
        text = self.vtysh(command)
        try:
            return json.loads(text) if text.strip() else {}
        except ValueError:
            raise LabError(f"router {self.router.name}: vtysh -c {command!r} gave no JSON: {text[:200]}") from None

    def json_many(self, commands: list[str]) -> list[dict]:
        """The JSON answers of several commands, from one vtysh run (each
        vtysh start costs ~0.1 s of CPU, more than the answer)."""
        args = [daemon_binary("vtysh"), "--vty_socket", str(self.directory)]
        for command in commands:
            args += ["-c", command]
        text = control(self.router.name, args, "vtysh", 20.0)
        decoder = json.JSONDecoder()
        index, answers = 0, []
        while len(answers) < len(commands):
            while index < len(text) and text[index].isspace():
                index += 1
            if index >= len(text):
                answers.append({})
                continue
            value, index = decoder.raw_decode(text, index)
            answers.append(value)
        return answers

    def ready(self) -> bool:
        if not (self.directory / "bgpd.vty").exists():
            return False
        try:
            self.vtysh("show bgp summary json", timeout=2.0)
            return True
        except LabError:
            return False

    def sessions(self, data: dict | None = None) -> dict[str, dict]:
        data = self.json("show bgp neighbors json") if data is None else data
        out = {}
        for n in self.router.neighbors:
            info = data.get(n.address) or {}
            state = str(info.get("bgpState", "unconfigured")).lower()
            admin = info.get("adminShutDown") or "Admin" in str(info.get("lastResetDueTo", ""))
            shut = None
            if info.get("lastResetDueTo") and "prefix" in str(info.get("lastResetDueTo")).lower():
                shut = info["lastResetDueTo"]
            out[n.address] = {"name": n.name, "state": "established" if state == "established" else state,
                              "reason": info.get("lastResetDueTo") if state != "established" else None,
                              "asn": n.asn, "relationship": n.relationship, "shut": shut,
                              "admin_down": bool(admin)}
        return out

    def _route_json(self, route: dict) -> dict:
        neighbor = next((n for n in self.router.neighbors if n.address == route["peer"]), None)
        return {
            "prefix": route["prefix"], "next_hop": route["next_hop"], "as_path": route["as_path"],
            "origin": route["origin"], "med": route["med"], "local_pref": route["local_pref"],
            "neighbor": route["peer"],
            "neighbor_asn": neighbor.asn if neighbor else None,
            "neighbor_router_id": neighbor.router_id if neighbor else None,
            "relationship": neighbor.relationship if neighbor else None,
            "ebgp": neighbor is not None and neighbor.relationship != "internal",
            "rejected": None, "communities": route["communities"],
            "large_communities": route["large_communities"], "otc": None, "igp_cost": None,
        }

    def state(self, with_exports: bool = True) -> dict:
        commands = ["show bgp neighbors json", "show bgp ipv4 unicast json", "show bgp ipv6 unicast json"]
        if with_exports:
            commands += [f"show bgp {afi} unicast neighbors {n.address} advertised-routes json"
                         for n in self.router.neighbors for afi in ("ipv4", "ipv6")]
        answers = self.json_many(commands)
        sessions = self.sessions(answers[0])
        loc_rib, adj_in = {}, {n.address: {} for n in self.router.neighbors}
        for table in answers[1:3]:
            for route in routes_from_json(table):
                data = self._route_json(route)
                if route["peer"] in adj_in:
                    adj_in[route["peer"]][route["prefix"]] = data
                if route["best"]:
                    loc_rib[route["prefix"]] = data
        adj_out = {n.address: {} for n in self.router.neighbors}
        for i, n in enumerate(self.router.neighbors if with_exports else ()):
            if sessions[n.address]["state"] != "established":
                continue
            for data in answers[3 + 2 * i: 5 + 2 * i]:
                for prefix in (data.get("advertisedRoutes") or {}):
                    adj_out[n.address][prefix] = {"prefix": prefix}
        return {"router": self.router.name, "sessions": sessions, "loc_rib": loc_rib,
                "adj_rib_in": adj_in, "adj_rib_out": adj_out}

    def digest(self) -> str:
        """A hash of both route tables (every path, best marked), which
        change whenever a route or a session carrying routes does."""
        result = subprocess.run([daemon_binary("vtysh"), "--vty_socket", str(self.directory),
                                 "-c", "show bgp ipv4 unicast json", "-c", "show bgp ipv6 unicast json"],
                                capture_output=True, text=True, timeout=10)
        if result.returncode != 0:
            raise LabError(f"router {self.router.name}: vtysh: {(result.stderr or result.stdout).strip()}")
        return hashlib.sha256(result.stdout.encode()).hexdigest()

    def set_admin(self, address: str, down: bool) -> None:
        command = ["configure terminal", f"router bgp {self.router.asn}",
                   f"{'' if down else 'no '}neighbor {address} shutdown"]
        args = [daemon_binary("vtysh"), "--vty_socket", str(self.directory)]
        for c in command:
            args += ["-c", c]
        result = subprocess.run(args, capture_output=True, text=True, timeout=10)
        if result.returncode != 0:
            raise LabError(f"router {self.router.name}: vtysh {' '.join(command)}: "
                           f"{(result.stderr or result.stdout).strip()}")
