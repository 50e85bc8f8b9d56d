"""Mininet nodes of a lab and the netlink configuration inside them.

Every router, end host and IXP is a Mininet ``Host`` in its own network
namespace; links are veth pairs created directly between two namespaces,
and bridges (an AS's host LAN, an IXP's peering LAN) live inside a node's
namespace. So a lab creates nothing in the root namespace but processes,
and every process carries the lab's id in its environment
(``TESTBED_LAB``), which is how ``testbed clean`` finds what a killed lab
left. Addresses, bridges, sysctls and static routes are set through
pyroute2 from the harness process (see ``testbed.netns``), not through
one shell command each.
"""

from __future__ import annotations

import ipaddress
import os
import socket

from mininet.link import Intf, Link
from mininet.node import Host

from . import netns
from .cleanup import LAB_ENV
from .addressing import HOST_IFNAME, IXP_BRIDGE, LAN_BRIDGE, HostPlan, IXPPlan, RouterPlan

IFA_F_NODAD = 0x02


class LabNode(Host):
    """A Mininet host whose processes carry the lab id in their environment."""

    lab_id = ""

    def _popen(self, cmd, **params):
        env = dict(params.pop("env", None) or os.environ)
        env[LAB_ENV] = self.lab_id
        return super()._popen(cmd, env=env, **params)


def node_class(lab_id: str) -> type[LabNode]:
    """A ``LabNode`` subclass bound to one lab id."""
    return type(f"LabNode_{lab_id}", (LabNode,), {"lab_id": lab_id})


class PrebuiltIntf(Intf):
    """An interface ``create_veths`` made: Mininet only records it (its
    ``config`` would run three ``ifconfig`` commands in the node's shell)."""

    def config(self, **params):
        return {}


class PrebuiltLink(Link):
    """A Mininet link over a veth pair ``create_veths`` already made, so
    that ``Mininet`` (and its CLI) still knows every link and interface."""

    def __init__(self, node1, node2, **params):
        params["intf"] = PrebuiltIntf  # Mininet's addLink passes its default
        super().__init__(node1, node2, **params)

    @classmethod
    def makeIntfPair(cls, *args, **kwargs):  # noqa: N802 - Mininet's name
        pass


def create_veths(pairs, pids: dict[str, int]) -> None:
    """Create veth pairs straight between namespaces, both ends up.

    ``pairs``: (node1, ifname1, mac1, node2, ifname2, mac2). Each pair is
    made from inside node1's namespace with its peer placed in node2's in
    the same netlink request (as ``ip link add ... netns`` does), so no
    interface ever appears in the root namespace; one netlink socket per
    namespace instead of one ``ip`` and six ``ifconfig`` processes per link
    in the nodes' shells."""
    from pyroute2 import IPRoute

    sockets: dict[str, object] = {}

    def ipr(node: str):
        if node not in sockets:
            with netns.inside(pids[node]):
                sockets[node] = IPRoute()
        return sockets[node]

    try:
        ends: dict[str, list[str]] = {}
        for node1, ifname1, mac1, node2, ifname2, mac2 in pairs:
            ipr(node2)  # opened before it may be needed, and checked to exist
            ipr(node1).link("add", ifname=ifname1, address=mac1, kind="veth",
                            peer={"ifname": ifname2, "address": mac2, "net_ns_pid": pids[node2]})
            ends.setdefault(node1, []).append(ifname1)
            ends.setdefault(node2, []).append(ifname2)
        for node, names in ends.items():
            sock = sockets[node]
            index = {link.get_attr("IFLA_IFNAME"): link["index"] for link in sock.get_links()}
            for name in names:
                sock.link("set", index=index[name], state="up")
    finally:
        for sock in sockets.values():
            sock.close()


def _sysctls(pid: int, values: dict[str, object]) -> None:
    netns.write_sysctls(pid, values)
    # Interfaces exist already (Mininet made the links): "default" no
    # longer applies to them, and for DAD the kernel takes the larger of
    # "all" and the interface's own value. A tentative link-local
    # address blocks neighbour discovery for a second or more.
    with netns.inside(pid):
        for ifname in os.listdir("/proc/sys/net/ipv6/conf"):
            if ifname in ("all", "default"):
                continue
            for path, value in ((f"/proc/sys/net/ipv6/conf/{ifname}/accept_dad", 0),
                                (f"/proc/sys/net/ipv6/conf/{ifname}/keep_addr_on_down", 1),
                                (f"/proc/sys/net/ipv6/conf/{ifname}/accept_ra", 0),
                                # Re-resolve a neighbour after a link flap in 0.1 s, not 1 s.
                                (f"/proc/sys/net/ipv6/neigh/{ifname}/retrans_time_ms", 100),
                                (f"/proc/sys/net/ipv4/neigh/{ifname}/retrans_time_ms", 100)):
                try:
                    with open(path, "w") as handle:
                        handle.write(f"{value}\n")
                except OSError:
                    pass


def prepare_namespace(pid: int) -> None:
    """Settings a namespace needs before its interfaces are created."""
    _sysctls(pid, COMMON_SYSCTLS)


COMMON_SYSCTLS = {
    # No duplicate address detection: addresses are usable at once, and
    # nothing else lives on these links.
    "net.ipv6.conf.all.accept_dad": 0,
    "net.ipv6.conf.default.accept_dad": 0,
    "net.ipv6.conf.all.accept_ra": 0,
    "net.ipv6.conf.default.accept_ra": 0,
    # Linux deletes an interface's IPv6 addresses when its link goes down,
    # and a cut link that comes back would then carry no IPv6 at all.
    "net.ipv6.conf.all.keep_addr_on_down": 1,
    "net.ipv6.conf.default.keep_addr_on_down": 1,
}
ROUTER_SYSCTLS = {
    "net.ipv4.ip_forward": 1,
    "net.ipv6.conf.all.forwarding": 1,
    # Answer every traceroute probe: the default limits ICMP errors to one
    # per second per destination.
    "net.ipv4.icmp_ratelimit": 0,
    "net.ipv6.icmp.ratelimit": 0,
    # Links come and go (depeering); keep routes and neighbours honest.
    "net.ipv4.conf.all.rp_filter": 0,
    "net.ipv4.conf.default.rp_filter": 0,
}


class NamespaceConfig:
    """Netlink access to one node's namespace."""

    def __init__(self, pid: int):
        from pyroute2 import IPRoute

        self.pid = pid
        with netns.inside(pid):
            self.ipr = IPRoute()
        self._indexes: dict[str, int] = {}

    def index(self, ifname: str) -> int:
        # One dump of the namespace's links, again only for a name it lacked
        # (a bridge made since): pyroute2 dumps every link per lookup.
        if ifname not in self._indexes:
            self._indexes = {link.get_attr("IFLA_IFNAME"): link["index"] for link in self.ipr.get_links()}
        if ifname not in self._indexes:
            raise LookupError(f"no interface {ifname} in namespace of pid {self.pid}")
        return self._indexes[ifname]

    def add_address(self, ifname: str, address: str) -> None:
        iface = ipaddress.ip_interface(address)
        self.ipr.addr("add", index=self.index(ifname), address=str(iface.ip),
                      prefixlen=iface.network.prefixlen,
                      family=socket.AF_INET if iface.version == 4 else socket.AF_INET6,
                      flags=IFA_F_NODAD if iface.version == 6 else 0)

    def up(self, ifname: str) -> None:
        self.ipr.link("set", index=self.index(ifname), state="up")

    def bridge(self, name: str, ports: list[str]) -> None:
        # No multicast snooping: with it, the bridge forwards IPv6 neighbour
        # solicitations only to ports it has seen MLD reports from, and a
        # report sent before the port joined is never repeated (no querier),
        # so neighbour discovery across the LAN fails at random.
        self.ipr.link("add", ifname=name, kind="bridge", br_stp_state=0, br_forward_delay=0,
                      br_mcast_snooping=0)
        bridge = self.index(name)
        for port in ports:
            self.ipr.link("set", index=self.index(port), master=bridge)
            self.up(port)
        self.up(name)

    def route(self, dst: str, gateway: str | None = None, kind: str = "unicast") -> None:
        net = ipaddress.ip_network(dst)
        args = dict(dst=str(net), family=socket.AF_INET if net.version == 4 else socket.AF_INET6,
                    proto=4)  # RTPROT_STATIC
        if gateway:
            args["gateway"] = gateway
        if kind != "unicast":
            args["type"] = kind
        self.ipr.route("replace", **args)

    def close(self) -> None:
        self.ipr.close()


def configure_router(pid: int, router: RouterPlan) -> None:
    """Addresses, LAN bridge, sysctls and null routes of a router."""
    _sysctls(pid, {**COMMON_SYSCTLS, **ROUTER_SYSCTLS})
    cfg = NamespaceConfig(pid)
    try:
        cfg.up("lo")
        for address in router.loopbacks:
            cfg.add_address("lo", address)
        for port in router.ports:
            cfg.add_address(port.ifname, port.address4)
            cfg.add_address(port.ifname, port.address6)
            cfg.up(port.ifname)
        if router.host_ports:
            cfg.bridge(LAN_BRIDGE, list(router.host_ports))
            for address in (router.lan4, router.lan6):
                if address:
                    cfg.add_address(LAN_BRIDGE, address)
        # The IGP: routes to the other routers' loopbacks over the cheapest
        # internal path, computed from the plan's costs (a static IGP: it
        # does not react to a failed internal link).
        for route in router.igp:
            cfg.route(f"{route.loopback4}/32", route.via4)
            cfg.route(f"{route.loopback6}/128", route.via6)
        # Originated prefixes not covered by the LAN get a null route, as a
        # real network does for its aggregates: the router owns them.
        lans = {str(ipaddress.ip_interface(a).network) for a in (router.lan4, router.lan6) if a}
        for prefix in router.prefixes:
            if prefix not in lans:
                cfg.route(prefix, kind="blackhole")
    finally:
        cfg.close()


def configure_host(pid: int, host: HostPlan) -> None:
    """Address and default routes of an end host."""
    _sysctls(pid, COMMON_SYSCTLS)
    cfg = NamespaceConfig(pid)
    try:
        cfg.up("lo")
        for address in (host.address4, host.address6):
            if address:
                cfg.add_address(HOST_IFNAME, address)
        cfg.up(HOST_IFNAME)
        if host.gateway4:
            cfg.route("0.0.0.0/0", host.gateway4)
        if host.gateway6:
            cfg.route("::/0", host.gateway6)
    finally:
        cfg.close()


def configure_ixp(pid: int, ixp: IXPPlan) -> None:
    """The IXP's peering LAN: one bridge joining every member's port."""
    _sysctls(pid, COMMON_SYSCTLS)
    cfg = NamespaceConfig(pid)
    try:
        cfg.up("lo")
        cfg.bridge(IXP_BRIDGE, list(ixp.members))
    finally:
        cfg.close()
