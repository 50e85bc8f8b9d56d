"""The address plan: where every address, router id and interface name comes from.

``plan(topology)`` turns a validated ``Topology`` into plain frozen
dataclasses that the lab layer builds from and the route agents are
configured with. It is a pure function of the topology: the same topology
gives the same plan, run after run (indexes come from sorted ASNs and
declaration order, never from global counters).

Address pools (AS prefixes must stay outside them):
  10.0.0.0/16      private interconnects, one /30 each
  10.1.0.0/16      IXP peering LANs, one /24 each (unless declared)
  10.255.0.0/16    router ids (also on each router's loopback)
  fd00::/48        private interconnects, one /64 each
  fd00:1::/48      IXP peering LANs, one /64 each
  172.16.0.0/12, 2001:db8::/32   default AS prefixes (/24 and /48)
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from .topology import Kind, Topology

LINKS4 = ipaddress.ip_network("10.0.0.0/16")
IXPS4 = ipaddress.ip_network("10.1.0.0/16")
ROUTER_IDS = ipaddress.ip_network("10.255.0.0/16")
LINKS6 = ipaddress.ip_network("fd00::/48")
IXPS6 = ipaddress.ip_network("fd00:1::/48")
DEFAULT_PREFIXES4 = ipaddress.ip_network("172.16.0.0/12")
DEFAULT_PREFIXES6 = ipaddress.ip_network("2001:db8::/32")

INFRASTRUCTURE = [
    (LINKS4, "private-link pool"), (IXPS4, "IXP LAN pool"), (ROUTER_IDS, "router-id pool"),
    (LINKS6, "private-link pool"), (IXPS6, "IXP LAN pool"),
]
MAX_SYSTEMS = ROUTER_IDS.num_addresses - 2
MAX_LINKS = LINKS4.num_addresses // 4
MAX_IXP_MEMBERS = 250
PAID_PEERING_LOCAL_PREF = 90
"""What the paying side of a paid peering gives its routes: below a free
peer's 100, above a provider's 50."""

HOST_OFFSET = 10  # hosts are .10, .11, ... of their AS LAN; the router is .1

HOST_IFNAME = "eth0"
LAN_BRIDGE = "lan"
IXP_BRIDGE = "peering"


def default_host_names(system: str, count: int) -> list[str]:
    """Names of ``count`` end hosts of AS ``system``: ``A-h1``, ``A-h2``..."""
    return [f"{system}-h{k}" for k in range(1, count + 1)]


@dataclass(frozen=True)
class Port:
    """A router interface with its addresses (interface notation, a/len)."""

    ifname: str
    address4: str
    address6: str


@dataclass(frozen=True)
class NeighborPlan:
    """One BGP session as seen from one router."""

    name: str            # the peer AS's name
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


@dataclass(frozen=True)
class RouterPlan:
    """The border router of one AS."""

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

    def neighbor(self, name: str) -> NeighborPlan:
        for neighbor in self.neighbors:
            if neighbor.name == name:
                return neighbor
        raise KeyError(f"router {self.name} has no neighbor {name}")

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
    members: tuple[str, ...]   # AS names, sorted by ASN


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

    def session(self, a: str, b: str) -> SessionPlan:
        """The session between ASes ``a`` and ``b``."""
        for session in self.sessions:
            if session.key == frozenset((a, b)):
                return session
        raise KeyError(f"there is no BGP session between {a} and {b}")

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
                    best = (net.prefixlen, router.name)
        return best[1] if best else None


def _nth(pool, prefixlen: int, index: int):
    return next(iter(pool.subnets(new_prefix=prefixlen))) if index == 0 else \
        ipaddress.ip_network((int(pool.network_address) + index * (1 << (pool.max_prefixlen - prefixlen)),
                              prefixlen))


def _iface(net, offset: int) -> str:
    return f"{net.network_address + offset}/{net.prefixlen}"


class PoolExhausted(ValueError):
    """A default prefix pool has no room left for ``system``."""

    def __init__(self, system, pool):
        self.system, self.pool = system, pool
        super().__init__(f"AS {system.name!r} asks for default prefixes, but the pool {pool} "
                         "has none left that avoids the declared prefixes and IXP LANs: declare its prefixes")


def assign_prefixes(topo: Topology) -> dict[str, list]:
    """AS name -> its prefixes, filling in defaults from the pools that avoid
    every declared AS prefix and IXP LAN. Raises ``PoolExhausted``."""
    systems = sorted(topo.systems, key=lambda s: s.asn)
    declared = [ipaddress.ip_network(p) for s in systems for p in (s.prefixes or [])]
    declared += [ipaddress.ip_network(lan) for x in topo.ixps for lan in (x.lan4, x.lan6) if lan]
    prefixes: dict[str, list] = {}
    cursor = {4: 0, 6: 0}
    for system in systems:
        if system.prefixes is not None:
            prefixes[system.name] = [ipaddress.ip_network(p) for p in system.prefixes]
            continue
        chosen = []
        for version, pool, length in ((4, DEFAULT_PREFIXES4, 24), (6, DEFAULT_PREFIXES6, 48)):
            capacity = 1 << (length - pool.prefixlen)
            while True:
                if cursor[version] >= capacity:
                    raise PoolExhausted(system, pool)
                candidate = _nth(pool, length, cursor[version])
                cursor[version] += 1
                if not any(candidate.overlaps(d) for d in declared if d.version == version):
                    chosen.append(candidate)
                    break
        prefixes[system.name] = chosen
    return prefixes


def plan(topo: Topology) -> Plan:
    """The address plan of a validated topology."""
    systems = sorted(topo.systems, key=lambda s: s.asn)
    index = {s.name: i for i, s in enumerate(systems)}
    by_name = {s.name: s for s in systems}

    prefixes = assign_prefixes(topo)

    owners: dict[str, str] = {}
    router_ids = {s.name: str(ROUTER_IDS.network_address + 1 + index[s.name]) for s in systems}
    for name, rid in router_ids.items():
        owners[rid] = name

    ports: dict[str, list[Port]] = {s.name: [] for s in systems}
    neighbors: dict[str, list[NeighborPlan]] = {s.name: [] for s in systems}
    links: list[LinkPlan] = []
    sessions: list[SessionPlan] = []

    ixps = sorted(topo.ixps, key=lambda x: x.name)
    ixp_members: dict[str, list[str]] = {x.name: [] for x in ixps}

    def via_of(rel) -> str | None:
        return by_name[rel.b].route_server if rel.kind == Kind.ROUTE_SERVER else rel.via

    for rel in topo.relationships:
        via = via_of(rel)
        if via is not None:
            for end in (rel.a, rel.b):
                if end not in ixp_members[via]:
                    ixp_members[via].append(end)
    ixp_plans: dict[str, IXPPlan] = {}
    ixp_address: dict[tuple[str, str], tuple[str, str]] = {}
    for j, ixp in enumerate(ixps):
        lan4 = ipaddress.ip_network(ixp.lan4) if ixp.lan4 else _nth(IXPS4, 24, j)
        lan6 = ipaddress.ip_network(ixp.lan6) if ixp.lan6 else _nth(IXPS6, 64, j)
        members = sorted(ixp_members[ixp.name], key=lambda n: by_name[n].asn)
        for k, member in enumerate(members):
            a4, a6 = _iface(lan4, k + 1), _iface(lan6, k + 1)
            ixp_address[(ixp.name, member)] = (a4, a6)
            ports[member].append(Port(f"ix-{ixp.name}", a4, a6))
            links.append(LinkPlan(member, f"ix-{ixp.name}", ixp.name, member, "ixp"))
            owners[a4.split("/")[0]] = member
            owners[a6.split("/")[0]] = member
        ixp_plans[ixp.name] = IXPPlan(ixp.name, str(lan4), str(lan6), tuple(members))

    def ordered(rel):
        a, b = by_name[rel.a], by_name[rel.b]
        return (min(a.asn, b.asn), max(a.asn, b.asn))

    # Partial transit: the provider keeps its providers' routes from the
    # customer, and the customer's routes from its providers.
    partial: dict[str, list[int]] = {}
    for rel in topo.relationships:
        if rel.kind == Kind.PARTIAL_TRANSIT:
            partial.setdefault(rel.a, []).append(by_name[rel.b].asn)

    def session_policy(rel, me: str, role: str) -> dict | None:
        data = dict((rel.policy or {}).get(me) or {})
        system = by_name[me]
        for flag in ("rov", "otc"):
            if getattr(system, flag):
                data.setdefault(flag, True)
        extra: list[dict] = []
        if rel.kind == Kind.PAID_PEERING and me == rel.a:
            data.setdefault("local_pref", PAID_PEERING_LOCAL_PREF)
        if rel.kind == Kind.PARTIAL_TRANSIT and me == rel.a:
            extra.append({"match": {"learned_from": ["provider"]}, "action": "reject"})
        if role == "provider" and me in partial:
            extra.append({"match": {"from_asn": sorted(partial[me])}, "action": "reject"})
        if role == "rs-client":
            data.setdefault("blackhole", True)  # a route server passes blackholes on
        if extra:
            data["export"] = extra + list(data.get("export") or [])
        return data or None

    link_index = 0
    for rel in sorted(topo.relationships, key=ordered):
        low, high = sorted((rel.a, rel.b), key=lambda n: by_name[n].asn)
        via = via_of(rel)
        if via is None:
            net4, net6 = _nth(LINKS4, 30, link_index), _nth(LINKS6, 64, link_index)
            link_index += 1
            addr = {low: (_iface(net4, 1), _iface(net6, 1)), high: (_iface(net4, 2), _iface(net6, 2))}
            ifname = {low: f"to-{high}", high: f"to-{low}"}
            for end in (low, high):
                ports[end].append(Port(ifname[end], *addr[end]))
                for a in addr[end]:
                    owners[a.split("/")[0]] = end
            links.append(LinkPlan(low, ifname[low], high, ifname[high], "private",
                                  rel.bandwidth, rel.delay, rel.loss))
        else:
            addr = {end: ixp_address[(via, end)] for end in (low, high)}
            ifname = {end: f"ix-{via}" for end in (low, high)}
        for me, other in ((low, high), (high, low)):
            if rel.kind in (Kind.PEERING, Kind.PAID_PEERING):
                role = "peer"
            elif rel.kind == Kind.ROUTE_SERVER:
                role = "route-server" if me == rel.a else "rs-client"
            else:
                role = "customer" if me == rel.a else "provider"
            neighbors[me].append(NeighborPlan(
                name=other, asn=by_name[other].asn, relationship=role,
                address=addr[other][0].split("/")[0], address6=addr[other][1].split("/")[0],
                local_address=addr[me][0].split("/")[0], local_address6=addr[me][1].split("/")[0],
                router_id=router_ids[other], ifname=ifname[me],
                passive=(me == high), via=via, password=rel.password,
                policy=session_policy(rel, me, role)))
        sessions.append(SessionPlan(low, addr[low][0].split("/")[0], high, addr[high][0].split("/")[0],
                                    rel.kind.value, via))

    routers: dict[str, RouterPlan] = {}
    hosts: dict[str, HostPlan] = {}
    for system in systems:
        host_names = (default_host_names(system.name, system.hosts)
                      if isinstance(system.hosts, int) else list(system.hosts))
        nets = prefixes[system.name]
        first = {}
        for net in nets:
            first.setdefault(net.version, net)
        lan4 = _iface(first[4], 1) if 4 in first else None
        lan6 = _iface(first[6], 1) if 6 in first else None
        loopbacks = [f"{router_ids[system.name]}/32"]
        for net in nets:
            if first.get(net.version) is not net or not host_names:
                loopbacks.append(f"{net.network_address + 1}/{net.max_prefixlen}")
        if not host_names:
            lan4 = lan6 = None
        for text in [lan4, lan6, *loopbacks]:
            if text:
                owners[text.split("/")[0]] = system.name
        host_ports = []
        for k, host in enumerate(host_names):
            port = f"h{k + 1}"
            host_ports.append(port)
            hosts[host] = HostPlan(
                name=host, system=system.name,
                address4=_iface(first[4], HOST_OFFSET + k) if 4 in first else None,
                address6=_iface(first[6], HOST_OFFSET + k) if 6 in first else None,
                gateway4=str(first[4].network_address + 1) if 4 in first else None,
                gateway6=str(first[6].network_address + 1) if 6 in first else None,
                port=port)
            links.append(LinkPlan(system.name, port, host, HOST_IFNAME, "lan"))
        routers[system.name] = RouterPlan(
            name=system.name, asn=system.asn, router_id=router_ids[system.name],
            prefixes=tuple(str(n) for n in nets), lan4=lan4, lan6=lan6,
            loopbacks=tuple(loopbacks), ports=tuple(ports[system.name]),
            host_ports=tuple(host_ports),
            neighbors=tuple(sorted(neighbors[system.name], key=lambda n: by_name[n.name].asn)),
            route_server=system.route_server is not None)

    roas = tuple({k: v for k, v in entry.items() if k != "where"} for entry in topo.roas)
    return Plan(topology=topo.name, hold_time=topo.hold_time, routers=routers, hosts=hosts,
                ixps=ixp_plans, links=tuple(links), sessions=tuple(sessions), owners=owners,
                roas=roas)
