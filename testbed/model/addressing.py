"""The address plan: where every address, router id and interface name comes from.

``plan(topology)`` turns a validated ``Topology`` into the plain frozen
dataclasses of ``testbed.model.plans`` (re-exported here) that the lab
layer builds from and the route agents are configured with. It is a pure
function of the topology: the same topology gives the same plan, run after
run (indexes come from sorted ASNs and declaration order, never from
global counters).

Address pools (AS prefixes must stay outside them):
  10.0.0.0/16      private interconnects, one /30 each
  10.1.0.0/16      IXP peering LANs, one /24 each (unless declared)
  10.255.0.0/16    router ids (also on each router's loopback)
  fd00:255::/64    IPv6 loopbacks of the routers of ASes with several PoPs
  fd00::/48        private interconnects, one /64 each
  fd00:1::/48      IXP peering LANs, one /64 each
  172.16.0.0/12, 2001:db8::/32   default AS prefixes (/24 and /48)
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

import networkx as nx

from testbed.model.igp import IgpRoute
from testbed.model.names import Kind, router_name
from testbed.model.plans import (HOST_IFNAME, IXP_BRIDGE, LAN_BRIDGE, HostPlan, IXPPlan, LinkPlan, NeighborPlan, Plan,
                                 Port, RouterPlan, SessionPlan)

if TYPE_CHECKING:
    from testbed.model.topology import Topology

__all__ = ["HOST_IFNAME", "IXP_BRIDGE", "LAN_BRIDGE", "HostPlan", "IXPPlan", "IgpRoute", "LinkPlan", "NeighborPlan",
           "Plan", "PoolExhausted", "Port", "RouterPlan", "SessionPlan", "assign_prefixes", "default_host_names",
           "plan"]

LINKS4 = ipaddress.ip_network("10.0.0.0/16")
IXPS4 = ipaddress.ip_network("10.1.0.0/16")
ROUTER_IDS = ipaddress.ip_network("10.255.0.0/16")
LOOPBACKS6 = ipaddress.ip_network("fd00:255::/64")
LINKS6 = ipaddress.ip_network("fd00::/48")
IXPS6 = ipaddress.ip_network("fd00:1::/48")
DEFAULT_PREFIXES4 = ipaddress.ip_network("172.16.0.0/12")
DEFAULT_PREFIXES6 = ipaddress.ip_network("2001:db8::/32")

INFRASTRUCTURE = [
    (LINKS4, "private-link pool"), (IXPS4, "IXP LAN pool"), (ROUTER_IDS, "router-id pool"),
    (LINKS6, "private-link pool"), (IXPS6, "IXP LAN pool"), (LOOPBACKS6, "loopback pool"),
]
MAX_SYSTEMS = ROUTER_IDS.num_addresses - 2
MAX_LINKS = LINKS4.num_addresses // 4
MAX_IXP_MEMBERS = 250
PAID_PEERING_LOCAL_PREF = 90
"""What the paying side of a paid peering gives its routes: below a free
peer's 100, above a provider's 50."""

HOST_OFFSET = 10  # hosts are .10, .11, ... of their AS LAN; the router is .1



def default_host_names(system: str, count: int) -> list[str]:
    """Names of ``count`` end hosts of AS ``system``: ``A-h1``, ``A-h2``..."""
    return [f"{system}-h{k}" for k in range(1, count + 1)]


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
    by_name = {s.name: s for s in systems}

    prefixes = assign_prefixes(topo)

    # Routers, in ASN order and then PoP order: their index gives the router id.
    routers_of: dict[str, list[str]] = {s.name: s.routers for s in systems}
    system_of: dict[str, str] = {r: s for s, names in routers_of.items() for r in names}
    order = [r for s in systems for r in routers_of[s.name]]
    index = {r: i for i, r in enumerate(order)}
    owners: dict[str, str] = {}
    router_owners: dict[str, str] = {}
    router_ids = {r: str(ROUTER_IDS.network_address + 1 + index[r]) for r in order}
    loopback6 = {r: str(LOOPBACKS6.network_address + 1 + index[r]) for s in systems
                 if len(routers_of[s.name]) > 1 for r in routers_of[s.name]}
    for router, rid in router_ids.items():
        owners[rid] = system_of[router]
        router_owners[rid] = router
    for router, address in loopback6.items():
        owners[address] = system_of[router]
        router_owners[address] = router

    def own(address: str, router: str) -> None:
        bare = address.split("/")[0]
        owners[bare] = system_of[router]
        router_owners[bare] = router

    def end(rel, system: str) -> str:
        """The router of ``system`` that carries relationship ``rel``."""
        pop = rel.pop_of(system)
        return router_name(system, pop) if pop is not None else routers_of[system][0]

    ports: dict[str, list[Port]] = {r: [] for r in order}
    neighbors: dict[str, list[NeighborPlan]] = {r: [] for r in order}
    links: list[LinkPlan] = []
    sessions: list[SessionPlan] = []

    ixps = sorted(topo.ixps, key=lambda x: x.name)
    ixp_members: dict[str, list[str]] = {x.name: [] for x in ixps}

    def via_of(rel) -> str | None:
        return by_name[rel.b].route_server if rel.kind == Kind.ROUTE_SERVER else rel.via

    for rel in topo.relationships:
        via = via_of(rel)
        if via is not None:
            for system in (rel.a, rel.b):
                router = end(rel, system)
                if router not in ixp_members[via]:
                    ixp_members[via].append(router)
    ixp_plans: dict[str, IXPPlan] = {}
    ixp_address: dict[tuple[str, str], tuple[str, str]] = {}
    for j, ixp in enumerate(ixps):
        lan4 = ipaddress.ip_network(ixp.lan4) if ixp.lan4 else _nth(IXPS4, 24, j)
        lan6 = ipaddress.ip_network(ixp.lan6) if ixp.lan6 else _nth(IXPS6, 64, j)
        members = sorted(ixp_members[ixp.name], key=lambda r: index[r])
        for k, member in enumerate(members):
            a4, a6 = _iface(lan4, k + 1), _iface(lan6, k + 1)
            ixp_address[(ixp.name, member)] = (a4, a6)
            ports[member].append(Port(f"ix-{ixp.name}", a4, a6))
            links.append(LinkPlan(member, f"ix-{ixp.name}", ixp.name, member, "ixp"))
            own(a4, member)
            own(a6, member)
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
        router = {low: end(rel, low), high: end(rel, high)}
        via = via_of(rel)
        if via is None:
            net4, net6 = _nth(LINKS4, 30, link_index), _nth(LINKS6, 64, link_index)
            link_index += 1
            addr = {low: (_iface(net4, 1), _iface(net6, 1)), high: (_iface(net4, 2), _iface(net6, 2))}
            ifname = {low: f"to-{router[high]}", high: f"to-{router[low]}"}
            for side in (low, high):
                ports[router[side]].append(Port(ifname[side], *addr[side]))
                for a in addr[side]:
                    own(a, router[side])
            links.append(LinkPlan(router[low], ifname[low], router[high], ifname[high], "private",
                                  rel.bandwidth, rel.delay, rel.loss))
        else:
            addr = {side: ixp_address[(via, router[side])] for side in (low, high)}
            ifname = {side: f"ix-{via}" for side in (low, high)}
        for me, other in ((low, high), (high, low)):
            if rel.kind in (Kind.PEERING, Kind.PAID_PEERING):
                role = "peer"
            elif rel.kind == Kind.ROUTE_SERVER:
                role = "route-server" if me == rel.a else "rs-client"
            else:
                role = "customer" if me == rel.a else "provider"
            neighbors[router[me]].append(NeighborPlan(
                name=router[other], asn=by_name[other].asn, relationship=role,
                address=addr[other][0].split("/")[0], address6=addr[other][1].split("/")[0],
                local_address=addr[me][0].split("/")[0], local_address6=addr[me][1].split("/")[0],
                router_id=router_ids[router[other]], ifname=ifname[me],
                passive=(me == high), via=via, password=rel.password,
                policy=session_policy(rel, me, role),
                system=None if router[other] == other else other))
        sessions.append(SessionPlan(router[low], addr[low][0].split("/")[0], router[high],
                                    addr[high][0].split("/")[0], rel.kind.value, via))

    # Inside ASes with several PoPs: internal links, the IGP, an iBGP mesh.
    igp: dict[str, list[IgpRoute]] = {r: [] for r in order}
    graphs: dict[str, nx.Graph] = {}
    for link in topo.internal_links:
        a, b = router_name(link.system, link.a), router_name(link.system, link.b)
        net4, net6 = _nth(LINKS4, 30, link_index), _nth(LINKS6, 64, link_index)
        link_index += 1
        addr = {a: (_iface(net4, 1), _iface(net6, 1)), b: (_iface(net4, 2), _iface(net6, 2))}
        for me, other in ((a, b), (b, a)):
            ports[me].append(Port(f"to-{other}", *addr[me]))
            for x in addr[me]:
                own(x, me)
        links.append(LinkPlan(a, f"to-{b}", b, f"to-{a}", "internal"))
        graph = graphs.setdefault(link.system, nx.Graph())
        graph.add_edge(a, b, cost=link.cost, via={a: addr[b], b: addr[a]})
    for system, graph in graphs.items():
        for source in sorted(graph.nodes, key=lambda r: index[r]):
            paths = nx.single_source_dijkstra_path(graph, source, weight="cost")
            costs = nx.single_source_dijkstra_path_length(graph, source, weight="cost")
            for target in sorted(paths, key=lambda r: index[r]):
                if target == source:
                    continue
                first = graph.edges[source, paths[target][1]]["via"][source]
                igp[source].append(IgpRoute(target, router_ids[target], loopback6[target],
                                            first[0].split("/")[0], first[1].split("/")[0],
                                            int(costs[target])))
    for s in systems:
        members = routers_of[s.name]
        for i, me in enumerate(members):
            for other in members:
                if other == me:
                    continue
                neighbors[me].append(NeighborPlan(
                    name=other, asn=s.asn, relationship="internal",
                    address=router_ids[other], address6=loopback6[other],
                    local_address=router_ids[me], local_address6=loopback6[me],
                    router_id=router_ids[other], ifname="lo", passive=index[me] > index[other],
                    via=None, system=s.name))
            for other in members[i + 1:]:
                sessions.append(SessionPlan(me, router_ids[me], other, router_ids[other],
                                            "internal", None))

    routers: dict[str, RouterPlan] = {}
    hosts: dict[str, HostPlan] = {}
    for system in systems:
        host_names = (default_host_names(system.name, system.hosts)
                      if isinstance(system.hosts, int) else list(system.hosts))
        nets = prefixes[system.name]
        first = {}
        for net in nets:
            first.setdefault(net.version, net)
        for position, name in enumerate(routers_of[system.name]):
            border = position == 0   # the first PoP: hosts, LAN, originated prefixes
            mine = nets if border else []
            lan4 = _iface(first[4], 1) if border and 4 in first and host_names else None
            lan6 = _iface(first[6], 1) if border and 6 in first and host_names else None
            loopbacks = [f"{router_ids[name]}/32"]
            if name in loopback6:
                loopbacks.append(f"{loopback6[name]}/128")
            for net in mine:
                if first.get(net.version) is not net or not host_names:
                    loopbacks.append(f"{net.network_address + 1}/{net.max_prefixlen}")
            for text in [lan4, lan6, *loopbacks]:
                if text:
                    own(text, name)
            host_ports = []
            if border:
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
                    links.append(LinkPlan(name, port, host, HOST_IFNAME, "lan"))
            routers[name] = RouterPlan(
                name=name, asn=system.asn, router_id=router_ids[name],
                prefixes=tuple(str(n) for n in mine), lan4=lan4, lan6=lan6,
                loopbacks=tuple(loopbacks), ports=tuple(ports[name]),
                host_ports=tuple(host_ports),
                neighbors=tuple(sorted(neighbors[name], key=lambda n: (n.asn, index[n.name]))),
                route_server=system.route_server is not None,
                system=None if name == system.name else system.name,
                loopback6=loopback6.get(name), igp=tuple(igp[name]))

    roas = tuple({k: v for k, v in entry.items() if k != "where"} for entry in topo.roas)
    return Plan(topology=topo.name, hold_time=topo.hold_time, routers=routers, hosts=hosts,
                ixps=ixp_plans, links=tuple(links), sessions=tuple(sessions), owners=owners,
                roas=roas, systems={s.name: tuple(routers_of[s.name]) for s in systems},
                router_owners=router_owners)
