"""Mininet nodes of a lab and the netlink configuration inside them.

Every router, end host and IXP is a Mininet ``Host`` in its own network
namespace; links are veth pairs created directly between two namespaces,
and bridges (an AS's host LAN, an IXP's peering LAN) live inside a node's
namespace. So a lab creates nothing in the root namespace but processes,
and every process carries the lab's id in its environment
(``TESTBED_LAB``), which is how ``testbed clean`` finds what a killed lab
left. Addresses, bridges, sysctls and static routes are set through
pyroute2 from the harness process (see ``testbed.linux.netns``), not through
one shell command each.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import socket
import struct

from mininet.link import Intf, Link
from mininet.node import Host

from testbed.linux import netns
from testbed.lab.cleanup import LAB_ENV
from testbed.model.addressing import HOST_IFNAME, IXP_BRIDGE, LAN_BRIDGE, HostPlan, IXPPlan, RouterPlan

from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

IFA_F_NODAD = 0x02
FIRST_VETH_INDEX = 100  # above lo and the few devices a namespace starts with
IFF_UP = 0x1
RTM_NEWLINK, RTM_NEWADDR, RTM_NEWROUTE = 16, 20, 24
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE = 0x100, 0x200, 0x400
RT_TABLE_MAIN, RTPROT_STATIC, RT_SCOPE_UNIVERSE = 254, 4, 0
RTN_UNICAST, RTN_BLACKHOLE = 1, 6
_SIOCGIFINDEX = 0x8933
SHELL_MNEXEC_OPTIONS = "-d"  # Mininet's "-cd" without closing descriptors in mnexec ("n" is added)


class LabNode(Host):
    """A Mininet host whose processes carry the lab id in their environment.

    Its shell starts without ``mnexec -c``, which closes every descriptor
    number up to the open-files limit one ``close()`` at a time (~3.5 ms of
    CPU per node at a limit of 20,000, a third of the CPU of building a
    lab's namespaces); Python closes the inherited ones instead, with one
    ``close_range()``, before ``mnexec`` runs. Its prompt comes from the
    environment rather than through ``env``."""

    lab_id = ""

    def startShell(self, mnopts=None):  # noqa: N802 - Mininet's name
        return super().startShell(mnopts=SHELL_MNEXEC_OPTIONS if mnopts is None else mnopts)

    def _popen(self, cmd, **params):
        env = dict(params.pop("env", None) or os.environ)
        env[LAB_ENV] = self.lab_id
        if cmd[:1] == ["mnexec"] and cmd[1] in (SHELL_MNEXEC_OPTIONS, SHELL_MNEXEC_OPTIONS + "n"):
            params["close_fds"] = True  # what mnexec -c did (the shell's pty is its stdio)
            if cmd[2] == "env" and cmd[3].startswith("PS1=") and cmd[4] == "bash":
                # bash takes its prompt from the environment: one exec (env) less per node
                env["PS1"] = cmd[3][len("PS1="):]
                cmd = cmd[:2] + cmd[4:]
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


class NamespaceConfig:
    """Netlink configuration of one node's namespace, sent in batches.

    Requests are encoded by pyroute2's message classes (``ifinfmsg``,
    ``ifaddrmsg``, ``rtmsg``) and queued; ``commit()`` sends them over one
    netlink socket opened inside the namespace, ``BATCH`` per ``sendmsg``,
    and checks every acknowledgement. pyroute2's request API (``IPRoute``)
    builds and sends each request through its asyncio core, ~1 ms apiece
    here; a message class encodes one in ~50 µs. Interface indexes come
    from ``SIOCGIFINDEX`` on a socket of the namespace, not from a dump."""

    BATCH = 128  # acknowledgements of one sendmsg must fit the receive buffer

    def __init__(self, pid: int):
        self.pid = pid
        with netns.inside(pid):
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)  # NETLINK_ROUTE
            self.ioctl = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((0, 0))
        self.queued: list[tuple[object, str]] = []  # (message, what it does, for errors)
        self._seq = 0

    def index(self, ifname: str) -> int:
        try:
            reply = fcntl.ioctl(self.ioctl, _SIOCGIFINDEX, struct.pack("16s16x", ifname.encode()))
        except OSError:
            raise LookupError(f"no interface {ifname} in namespace of pid {self.pid}") from None
        return struct.unpack_from("i", reply, 16)[0]

    def _queue(self, msg, kind: int, flags: int, what: str) -> None:
        msg["header"]["type"] = kind
        msg["header"]["flags"] = NLM_F_REQUEST | NLM_F_ACK | flags
        self.queued.append((msg, what))

    def veth(self, ifname: str, mac: str, peer: str, peer_mac: str, peer_pid: int,
             index: int = 0, peer_index: int = 0) -> None:
        """A veth pair: ``ifname`` here, ``peer`` in the namespace of
        ``peer_pid``, with these interface indexes (0: the kernel's choice)."""
        msg = ifinfmsg()
        msg["index"] = index
        msg["attrs"] = [("IFLA_IFNAME", ifname), ("IFLA_ADDRESS", mac),
                        ("IFLA_LINKINFO", {"attrs": [
                            ("IFLA_INFO_KIND", "veth"),
                            ("IFLA_INFO_DATA", {"attrs": [("VETH_INFO_PEER", {"index": peer_index, "attrs": [
                                ("IFLA_IFNAME", peer), ("IFLA_ADDRESS", peer_mac),
                                ("IFLA_NET_NS_PID", peer_pid)]})]})]})]
        self._queue(msg, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, f"veth {ifname} -- {peer}")

    def add_address(self, ifname: str, address: str) -> None:
        iface = ipaddress.ip_interface(address)
        msg = ifaddrmsg()
        msg["family"] = socket.AF_INET if iface.version == 4 else socket.AF_INET6
        msg["prefixlen"] = iface.network.prefixlen
        msg["index"] = self.index(ifname)
        msg["flags"] = IFA_F_NODAD if iface.version == 6 else 0
        attrs = [("IFA_ADDRESS", str(iface.ip))]
        if iface.version == 4:
            attrs.append(("IFA_LOCAL", str(iface.ip)))
        msg["attrs"] = attrs
        self._queue(msg, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, f"address {address} on {ifname}")

    def up(self, ifname: str, master: int | None = None) -> None:
        msg = ifinfmsg()
        msg["index"] = self.index(ifname)
        msg["flags"] = msg["change"] = IFF_UP
        if master is not None:
            msg["attrs"] = [("IFLA_MASTER", master)]
        self._queue(msg, RTM_NEWLINK, 0, f"{ifname} up")

    def bridge(self, name: str, ports: list[str]) -> None:
        # No multicast snooping: with it, the bridge forwards IPv6 neighbour
        # solicitations only to ports it has seen MLD reports from, and a
        # report sent before the port joined is never repeated (no querier),
        # so neighbour discovery across the LAN fails at random.
        msg = ifinfmsg()
        msg["attrs"] = [("IFLA_IFNAME", name),
                        ("IFLA_LINKINFO", {"attrs": [
                            ("IFLA_INFO_KIND", "bridge"),
                            ("IFLA_INFO_DATA", {"attrs": [("IFLA_BR_STP_STATE", 0),
                                                          ("IFLA_BR_FORWARD_DELAY", 0),
                                                          ("IFLA_BR_MCAST_SNOOPING", 0)]})]})]
        self._queue(msg, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, f"bridge {name}")
        self.commit()  # its index is needed next
        bridge = self.index(name)
        for port in ports:
            self.up(port, master=bridge)
        self.up(name)

    def route(self, dst: str, gateway: str | None = None, kind: str = "unicast") -> None:
        net = ipaddress.ip_network(dst)
        msg = rtmsg()
        msg["family"] = socket.AF_INET if net.version == 4 else socket.AF_INET6
        msg["dst_len"] = net.prefixlen
        msg["table"] = RT_TABLE_MAIN
        msg["proto"] = RTPROT_STATIC
        msg["scope"] = RT_SCOPE_UNIVERSE
        msg["type"] = RTN_BLACKHOLE if kind == "blackhole" else RTN_UNICAST
        attrs = [("RTA_TABLE", RT_TABLE_MAIN)]
        if net.prefixlen:
            attrs.append(("RTA_DST", str(net.network_address)))
        if gateway:
            attrs.append(("RTA_GATEWAY", gateway))
        msg["attrs"] = attrs
        self._queue(msg, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, f"route {dst} via {gateway or kind}")

    def commit(self) -> None:
        """Send what is queued; raise ``OSError`` naming every request the
        kernel refused."""
        from testbed.linux.routes import read_acks

        queued, self.queued = self.queued, []
        failed = []
        for start in range(0, len(queued), self.BATCH):
            chunk = queued[start:start + self.BATCH]
            first = self._seq + 1
            data = bytearray()
            for offset, (msg, _) in enumerate(chunk):
                msg["header"]["sequence_number"] = first + offset
                msg.encode()
                data += msg.data
            self._seq += len(chunk)
            self.sock.sendall(data)
            for seq, code in read_acks(self.sock, first, len(chunk)):
                if code:
                    failed.append(f"{chunk[seq - first][1]}: {os.strerror(code)}")
        if failed:
            raise OSError(f"netlink in the namespace of pid {self.pid}: " + "; ".join(failed))

    def close(self) -> None:
        self.sock.close()
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
