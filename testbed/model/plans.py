"""The address plan as data: what a lab builds and its routers are told.

``testbed.model.addressing.plan`` fills these frozen dataclasses from a
validated topology; the lab builds nodes, links and namespaces from them,
the router configurations (``testbed.routers``) are rendered from each
``RouterPlan``, and the assertions read them to name what they check. A
``Plan`` answers lookups (the session between two routers, the AS that
owns an address, the prefixes of an AS); a ``RouterPlan`` says how an
iBGP next hop is reached (``kernel_next_hop``). Nothing here computes a
plan or touches the system.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from testbed.model.igp import IgpHop, IgpRoute, first_hops, igp_hops, kernel_next_hop

HOST_IFNAME = "eth0"
LAN_BRIDGE = "lan"
IXP_BRIDGE = "peering"


@dataclass(frozen=True)
class Port:
    """A router interface with its addresses (interface notation, a/len)."""

    ifname: str
    address4: str
    address6: str


@dataclass(frozen=True)
class NeighborPlan:
    """One BGP session as seen from one router."""

    name: str            # the peer router's name (its AS's name if it has one router)
    asn: int
    relationship: str    # what the peer is to us: customer, peer or provider
    address: str         # peer's IPv4 address: the session address
    address6: str        # peer's IPv6 address on the link: next hop of its IPv6 routes
    local_address: str
    local_address6: str
    router_id: str       # peer's BGP identifier
    ifname: str          # our interface towards the peer
    passive: bool        # we wait for the peer to connect
    via: str | None      # IXP name, or None for a private interconnect
    password: str | None = None   # TCP MD5 key of the session
    policy: dict | None = None    # our policy on the session (testbed.bgp.rules), as data
    system: str | None = None     # the peer's AS name (None: the same as ``name``)

    @property
    def peer_system(self) -> str:
        return self.system or self.name


@dataclass(frozen=True)
class RouterPlan:
    """One router of an AS (the border router of an AS with one router)."""

    name: str
    asn: int
    router_id: str
    prefixes: tuple[str, ...]           # originated
    lan4: str | None                    # router's address on the host LAN (a/len)
    lan6: str | None
    loopbacks: tuple[str, ...]          # addresses on lo: router id, extra prefixes
    ports: tuple[Port, ...]
    host_ports: tuple[str, ...]         # interfaces enslaved to the LAN bridge
    neighbors: tuple[NeighborPlan, ...]
    route_server: bool = False          # an IXP route server: no kernel routes
    system: str | None = None           # its AS's name (None: the same as ``name``)
    loopback6: str | None = None        # IPv6 loopback (routers of ASes with PoPs)
    igp: tuple[IgpRoute, ...] = ()      # routes to the other routers of the AS

    @property
    def as_name(self) -> str:
        return self.system or self.name

    def neighbor(self, name: str) -> NeighborPlan:
        for neighbor in self.neighbors:
            if neighbor.name == name:
                return neighbor
        raise KeyError(f"router {self.name} has no neighbor {name}")

    def igp_hops(self) -> dict[str, IgpHop]:
        """Each other router of the AS by loopback (IPv4 and IPv6): the IGP
        cost to it and the first hop there (``testbed.model.igp``)."""
        return igp_hops(self.igp)

    def kernel_next_hop(self, next_hop: str | None) -> str | None:
        """The address the kernel forwards to for a route with BGP next hop
        ``next_hop`` (``testbed.model.igp.kernel_next_hop``)."""
        return kernel_next_hop(first_hops(self.igp), next_hop)

    @property
    def addresses(self) -> list[str]:
        """Every address of the router (no prefix length)."""
        found = [self.router_id]
        for text in [self.lan4, self.lan6, *self.loopbacks]:
            if text:
                found.append(str(ipaddress.ip_interface(text).ip))
        for port in self.ports:
            found += [str(ipaddress.ip_interface(port.address4).ip),
                      str(ipaddress.ip_interface(port.address6).ip)]
        return list(dict.fromkeys(found))


@dataclass(frozen=True)
class HostPlan:
    """An end host on its AS's LAN."""

    name: str
    system: str
    address4: str | None   # a/len
    address6: str | None
    gateway4: str | None
    gateway6: str | None
    port: str              # the router interface it hangs off

    @property
    def ip4(self) -> str | None:
        return str(ipaddress.ip_interface(self.address4).ip) if self.address4 else None

    @property
    def ip6(self) -> str | None:
        return str(ipaddress.ip_interface(self.address6).ip) if self.address6 else None


@dataclass(frozen=True)
class IXPPlan:
    """An IXP: a node holding a bridge, one port per member."""

    name: str
    lan4: str
    lan6: str
    members: tuple[str, ...]   # router names, sorted by ASN


@dataclass(frozen=True)
class LinkPlan:
    """A veth pair between two nodes, with optional shaping."""

    node1: str
    ifname1: str
    node2: str
    ifname2: str
    kind: str                  # "private", "ixp" or "lan"
    bandwidth: float | None = None
    delay: str | None = None
    loss: float | None = None


@dataclass(frozen=True)
class SessionPlan:
    """A BGP session: router ``a`` reaches ``b`` at ``address_b`` and
    ``b`` reaches ``a`` at ``address_a``."""

    a: str
    address_a: str
    b: str
    address_b: str
    kind: str                  # "transit" or "peering"
    via: str | None

    @property
    def key(self) -> frozenset:
        return frozenset((self.a, self.b))


@dataclass(frozen=True)
class Plan:
    """Everything the lab builds, derived from a topology."""

    topology: str
    hold_time: int
    routers: dict[str, RouterPlan]
    hosts: dict[str, HostPlan]
    ixps: dict[str, IXPPlan]
    links: tuple[LinkPlan, ...]
    sessions: tuple[SessionPlan, ...]
    owners: dict[str, str] = field(default_factory=dict)   # address -> AS name
    roas: tuple[dict, ...] = ()        # {"prefix", "asn", "max_length"?}
    systems: dict[str, tuple[str, ...]] = field(default_factory=dict)  # AS name -> its routers
    router_owners: dict[str, str] = field(default_factory=dict)  # address -> router name

    def session(self, a: str, b: str) -> SessionPlan:
        """The session between routers ``a`` and ``b`` (AS names for ASes
        with a single router)."""
        for session in self.sessions:
            if session.key == frozenset((a, b)):
                return session
        raise KeyError(f"there is no BGP session between {a} and {b}")

    def system_of(self, router: str) -> str:
        """The AS name of router ``router``."""
        return self.routers[router].as_name

    def prefixes_of(self, system: str) -> tuple[str, ...]:
        """The prefixes AS ``system`` originates (from its first router)."""
        routers = self.systems.get(system) or ((system,) if system in self.routers else ())
        return tuple(p for r in routers for p in self.routers[r].prefixes)

    def router_of(self, address: str) -> str | None:
        """The router an address is configured on, or None."""
        return self.router_owners.get(address)

    def hosts_of(self, system: str) -> list[HostPlan]:
        return [h for h in self.hosts.values() if h.system == system]

    def owner_of(self, address: str) -> str | None:
        """The AS that an address belongs to: an interface of its router or a
        host in one of its prefixes."""
        if address in self.owners:
            return self.owners[address]
        ip = ipaddress.ip_address(address)
        best = None
        for router in self.routers.values():
            for prefix in router.prefixes:
                net = ipaddress.ip_network(prefix)
                if ip.version == net.version and ip in net and (best is None or net.prefixlen > best[0]):
                    best = (net.prefixlen, router.as_name)
        return best[1] if best else None
