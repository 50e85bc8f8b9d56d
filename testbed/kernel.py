"""Kernel routes of one router, through netlink (pyroute2).

The route agent runs inside its router's network namespace and calls
``KernelTable`` to mirror its Loc-RIB into the kernel. Routes carry the
``bgp`` protocol number (186), so ``ip route`` shows ``proto bgp`` and
``routes()`` reads back exactly what the agent installed and nothing else.
"""

from __future__ import annotations

import ipaddress
import socket

RTPROT_BGP = 186


class KernelTable:
    """Add, replace and delete this namespace's BGP routes."""

    def __init__(self):
        from pyroute2 import IPRoute  # 0.2 s import: only where it is used

        self._ipr = IPRoute()

    def replace(self, prefix: str, next_hop: str) -> None:
        """Install or move the route for ``prefix`` via ``next_hop``."""
        net = ipaddress.ip_network(prefix)
        self._ipr.route("replace", dst=str(net), gateway=next_hop, proto=RTPROT_BGP,
                        family=socket.AF_INET if net.version == 4 else socket.AF_INET6)

    def delete(self, prefix: str) -> None:
        """Remove the BGP route for ``prefix`` if there is one."""
        from pyroute2.netlink.exceptions import NetlinkError

        net = ipaddress.ip_network(prefix)
        try:
            self._ipr.route("del", dst=str(net), proto=RTPROT_BGP,
                            family=socket.AF_INET if net.version == 4 else socket.AF_INET6)
        except NetlinkError as exc:
            if exc.code != 3:  # ESRCH: already gone
                raise

    def routes(self) -> dict[str, str]:
        """prefix -> next hop of every BGP route in this namespace."""
        return read_bgp_routes(self._ipr)

    def close(self) -> None:
        self._ipr.close()


def read_bgp_routes(ipr) -> dict[str, str]:
    """prefix -> next hop of the ``proto bgp`` routes visible through ``ipr``."""
    found: dict[str, str] = {}
    for family in (socket.AF_INET, socket.AF_INET6):
        for msg in ipr.get_routes(family=family, proto=RTPROT_BGP):
            dst = msg.get_attr("RTA_DST")
            length = msg["dst_len"]
            if dst is None:
                dst = "0.0.0.0" if family == socket.AF_INET else "::"
            found[f"{dst}/{length}"] = msg.get_attr("RTA_GATEWAY")
    return found
