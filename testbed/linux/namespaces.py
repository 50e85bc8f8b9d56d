"""The network configuration inside a lab's namespaces, through netlink.

Every router, end host and IXP of a lab is a node with its own network
namespace (``testbed.linux.nodes``). Its links are veth pairs made
straight between two namespaces (``create_veths``), and its addresses,
bridges (an AS's host LAN inside the router's namespace, an IXP's peering
LAN inside the IXP node's), sysctls and static routes are set from the
harness process (``configure_router``, ``configure_host``,
``configure_ixp``) with the address plan's ``RouterPlan``, ``HostPlan`` and
``IXPPlan`` as input: requests are queued on a ``NamespaceConfig`` per
namespace and sent in netlink batches (``testbed.linux.netlink``), every
acknowledgement checked, instead of one shell command each. Nothing is
created in the root namespace.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import socket
import struct

from testbed.linux import netns
from testbed.linux.netlink import (
    IFA_ADDRESS, IFA_F_NODAD, IFA_LOCAL, IFADDRMSG, IFF_UP, IFINFOMSG, IFLA_ADDRESS, IFLA_BR_FORWARD_DELAY,
    IFLA_BR_MCAST_SNOOPING, IFLA_BR_STP_STATE, IFLA_IFNAME, IFLA_INFO_DATA, IFLA_INFO_KIND, IFLA_LINKINFO,
    IFLA_MASTER, IFLA_NET_NS_PID, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST,
    RT_SCOPE_UNIVERSE, RT_TABLE_MAIN, RTA_DST, RTA_GATEWAY, RTA_TABLE, RTM_NEWADDR, RTM_NEWLINK, RTM_NEWROUTE,
    RTMSG, RTN_BLACKHOLE, RTN_UNICAST, RTPROT_STATIC, VETH_INFO_PEER, Channel, attribute, ip, mac, nested, request,
    text, u32)
from testbed.model.addressing import HOST_IFNAME, IXP_BRIDGE, LAN_BRIDGE, HostPlan, IXPPlan, RouterPlan

FIRST_VETH_INDEX = 100  # above lo and the few devices a namespace starts with
_SIOCGIFINDEX = 0x8933


def create_veths(pairs, pids: dict[str, int]) -> None:
    """Create veth pairs straight between namespaces, both ends up.

    ``pairs``: (node1, ifname1, mac1, node2, ifname2, mac2). Each pair is
    made from inside node1's namespace with its peer placed in node2's in
    the same request (as ``ip link add ... netns`` does), so no interface
    ever appears in the root namespace; the requests of each namespace go
    in netlink batches (``NamespaceConfig``) instead of one ``ip`` and six
    ``ifconfig`` processes per link in the nodes' shells.

    Each end gets an interface index of its own, different from its
    peer's (``FIRST_VETH_INDEX`` + 2 per pair). In fresh namespaces the
    kernel would give both ends the same lowest free index, and a veth
    whose index equals its peer's looks like a device without a lower
    link to the kernel's link watcher, which then reports its carrier
    only on its next run, up to a second later. Until then IPv6 sees no
    running link: no link-local address, so neighbour solicitations for
    forwarded packets are not sent, and a router drops traffic it
    forwards for that second (seen as an IPv6 ping lost right after a
    lab started)."""
    configs: dict[str, NamespaceConfig] = {}

    def config(node: str) -> NamespaceConfig:
        if node not in configs:
            configs[node] = NamespaceConfig(pids[node])
        return configs[node]

    try:
        ends: dict[str, list[str]] = {}
        for number, (node1, ifname1, mac1, node2, ifname2, mac2) in enumerate(pairs):
            config(node2)
            index = FIRST_VETH_INDEX + 2 * number
            config(node1).veth(ifname1, mac1, ifname2, mac2, pids[node2], index=index, peer_index=index + 1)
            ends.setdefault(node1, []).append(ifname1)
            ends.setdefault(node2, []).append(ifname2)
        for cfg in configs.values():
            cfg.commit()
        for node, names in ends.items():
            for name in names:
                configs[node].up(name)
            configs[node].commit()
    finally:
        for cfg in configs.values():
            cfg.close()


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


# -- the requests (type, flags, body); NamespaceConfig numbers and sends them ---------

def veth_request(ifname: str, mac_address: str, peer: str, peer_mac: str, peer_pid: int,
                 index: int = 0, peer_index: int = 0) -> tuple[int, int, bytes]:
    """``ip link add ifname address mac index N type veth peer name peer
    address peer_mac index M netns peer_pid``."""
    peer_info = (IFINFOMSG.pack(0, 0, peer_index, 0, 0) + attribute(IFLA_IFNAME, text(peer))
                 + attribute(IFLA_ADDRESS, mac(peer_mac)) + attribute(IFLA_NET_NS_PID, u32(peer_pid)))
    body = (IFINFOMSG.pack(0, 0, index, 0, 0) + attribute(IFLA_IFNAME, text(ifname))
            + attribute(IFLA_ADDRESS, mac(mac_address))
            + nested(IFLA_LINKINFO, attribute(IFLA_INFO_KIND, text("veth")),
                     nested(IFLA_INFO_DATA, attribute(VETH_INFO_PEER, peer_info))))
    return RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body


def address_request(index: int, address: str) -> tuple[int, int, bytes]:
    """``ip address add address dev <index>`` (IPv6 without DAD)."""
    iface = ipaddress.ip_interface(address)
    family = socket.AF_INET if iface.version == 4 else socket.AF_INET6
    body = (IFADDRMSG.pack(family, iface.network.prefixlen, IFA_F_NODAD if iface.version == 6 else 0, 0, index)
            + attribute(IFA_ADDRESS, ip(str(iface.ip))))
    if iface.version == 4:
        body += attribute(IFA_LOCAL, ip(str(iface.ip)))
    return RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body


def up_request(index: int, master: int | None = None) -> tuple[int, int, bytes]:
    """``ip link set <index> up [master <master>]``."""
    body = IFINFOMSG.pack(0, 0, index, IFF_UP, IFF_UP)
    if master is not None:
        body += attribute(IFLA_MASTER, u32(master))
    return RTM_NEWLINK, 0, body


def bridge_request(name: str) -> tuple[int, int, bytes]:
    """``ip link add name type bridge stp_state 0 forward_delay 0
    mcast_snooping 0``. No multicast snooping: with it, the bridge forwards
    IPv6 neighbour solicitations only to ports it has seen MLD reports
    from, and a report sent before the port joined is never repeated (no
    querier), so neighbour discovery across the LAN fails at random."""
    body = (IFINFOMSG.pack(0, 0, 0, 0, 0) + attribute(IFLA_IFNAME, text(name))
            + nested(IFLA_LINKINFO, attribute(IFLA_INFO_KIND, text("bridge")),
                     nested(IFLA_INFO_DATA, attribute(IFLA_BR_STP_STATE, u32(0)),
                            attribute(IFLA_BR_FORWARD_DELAY, u32(0)),
                            attribute(IFLA_BR_MCAST_SNOOPING, b"\0"))))
    return RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body


def route_request(dst: str, gateway: str | None = None, kind: str = "unicast") -> tuple[int, int, bytes]:
    """``ip route replace dst via gateway proto static`` (``kind``
    "blackhole": ``ip route replace blackhole dst proto static``)."""
    net = ipaddress.ip_network(dst)
    family = socket.AF_INET if net.version == 4 else socket.AF_INET6
    body = (RTMSG.pack(family, net.prefixlen, 0, 0, RT_TABLE_MAIN, RTPROT_STATIC, RT_SCOPE_UNIVERSE,
                       RTN_BLACKHOLE if kind == "blackhole" else RTN_UNICAST, 0)
            + attribute(RTA_TABLE, u32(RT_TABLE_MAIN)))
    if net.prefixlen:
        body += attribute(RTA_DST, ip(str(net.network_address)))
    if gateway:
        body += attribute(RTA_GATEWAY, ip(gateway))
    return RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, body


class NamespaceConfig:
    """Netlink configuration of one node's namespace, sent in batches.

    Requests are packed as they are queued (``testbed.linux.netlink``, a
    few microseconds each); ``commit()`` sends them over one netlink socket
    opened inside the namespace, ``BATCH`` per ``sendmsg``, and checks
    every acknowledgement. pyroute2's request API (``IPRoute``) builds and
    sends each request through its asyncio core, ~1 ms apiece here.
    Interface indexes come from ``SIOCGIFINDEX`` on a socket of the
    namespace, not from a dump."""

    BATCH = 128  # acknowledgements of one sendmsg must fit the receive buffer

    def __init__(self, pid: int):
        self.pid = pid
        with netns.inside(pid):
            self.netlink = Channel()
            self.ioctl = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.queued: list[tuple[int, bytes, str]] = []  # (sequence, message, what it does, for errors)

    def index(self, ifname: str) -> int:
        try:
            reply = fcntl.ioctl(self.ioctl, _SIOCGIFINDEX, struct.pack("16s16x", ifname.encode()))
        except OSError:
            raise LookupError(f"no interface {ifname} in namespace of pid {self.pid}") from None
        return struct.unpack_from("i", reply, 16)[0]

    def _queue(self, message: tuple[int, int, bytes], what: str) -> None:
        kind, flags, body = message
        seq = self.netlink.sequence()
        self.queued.append((seq, request(kind, NLM_F_REQUEST | NLM_F_ACK | flags, seq, body), what))

    def veth(self, ifname: str, mac_address: str, peer: str, peer_mac: str, peer_pid: int,
             index: int = 0, peer_index: int = 0) -> None:
        """A veth pair: ``ifname`` here, ``peer`` in the namespace of
        ``peer_pid``, with these interface indexes (0: the kernel's choice)."""
        self._queue(veth_request(ifname, mac_address, peer, peer_mac, peer_pid, index, peer_index),
                    f"veth {ifname} -- {peer}")

    def add_address(self, ifname: str, address: str) -> None:
        self._queue(address_request(self.index(ifname), address), f"address {address} on {ifname}")

    def up(self, ifname: str, master: int | None = None) -> None:
        self._queue(up_request(self.index(ifname), master), f"{ifname} up")

    def bridge(self, name: str, ports: list[str]) -> None:
        self._queue(bridge_request(name), f"bridge {name}")
        self.commit()  # its index is needed next
        bridge = self.index(name)
        for port in ports:
            self.up(port, master=bridge)
        self.up(name)

    def route(self, dst: str, gateway: str | None = None, kind: str = "unicast") -> None:
        self._queue(route_request(dst, gateway, kind), f"route {dst} via {gateway or kind}")

    def commit(self) -> None:
        """Send what is queued; raise ``OSError`` naming every request the
        kernel refused."""
        queued, self.queued = self.queued, []
        failed = []
        for start in range(0, len(queued), self.BATCH):
            chunk = queued[start:start + self.BATCH]
            data = b"".join(message for _, message, _ in chunk)
            for index, code in sorted(self.netlink.send(data, chunk[0][0], len(chunk), acked=True).items()):
                failed.append(f"{chunk[index][2]}: {os.strerror(code)}")
        if failed:
            raise OSError(f"netlink in the namespace of pid {self.pid}: " + "; ".join(failed))

    def close(self) -> None:
        self.netlink.close()
        self.ioctl.close()


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
        cfg.commit()
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
        cfg.commit()
    finally:
        cfg.close()


def configure_ixp(pid: int, ixp: IXPPlan) -> None:
    """The IXP's peering LAN: one bridge joining every member's port."""
    _sysctls(pid, COMMON_SYSCTLS)
    cfg = NamespaceConfig(pid)
    try:
        cfg.up("lo")
        cfg.bridge(IXP_BRIDGE, list(ixp.members))
        cfg.commit()
    finally:
        cfg.close()
