"""Topology validation: every problem at once, before anything is created.

``problems(topology)`` walks the declarations recorded by
``testbed.model.topology`` and returns one message per problem, each starting with
the file and line of the declaration at fault. It never raises for bad
values and touches nothing outside the model, so it runs without root.
"""

from __future__ import annotations

import ipaddress
import re
from collections import defaultdict

import networkx as nx

from typing import TYPE_CHECKING

from testbed.bgp.rules import PolicyError, parse_policy, parse_roas
from testbed.model import addressing, special_prefixes
from testbed.model.names import Kind, router_name
from testbed.model.router_kinds import problems as router_problems
from testbed.model.reserved_names import reserved_name_problem

if TYPE_CHECKING:
    from testbed.model.topology import IXP, AutonomousSystem, Relationship, Topology

# Relationships in which ``a`` sells ``b`` transit of some kind: they must
# not form a cycle.
TRANSIT_KINDS = (Kind.TRANSIT, Kind.PARTIAL_TRANSIT)

# Interface and node names become kernel interface names ("to-<AS>",
# "ix-<IXP>"), so 15 - 3 characters, and nothing a shell or ip(8) treats
# specially.
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,11}$")
HOST_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")

# RFC 6996/7300/5398/7607: ASNs no real network may use in a session.
RESERVED_ASNS = {0: "reserved (RFC 7607)", 23456: "AS_TRANS (RFC 6793)",
                 65535: "reserved (RFC 7300)", 4294967295: "reserved (RFC 7300)"}
RESERVED_ASN_RANGES = [(65552, 131071, "reserved by IANA")]
PASSWORD_RE = re.compile(r"^[!#-&(-:<-\[\]-~]{1,80}$")  # printable, no space ' \" ; \\
MAX_HOSTS = 64
MAX_BANDWIDTH = 100_000  # Mbit/s; htb above this is meaningless on a veth


def _at(where) -> str:
    return f"{where}: " if where else ""


def _locate(where, exc: Exception):
    """The place of the field a policy error names, where the declaration
    can tell it (a YAML topology knows the line of each field)."""
    if hasattr(where, "locate_policy_error"):
        return where.locate_policy_error(str(exc))
    return where


def _asn_problem(asn: object) -> str | None:
    if isinstance(asn, bool) or not isinstance(asn, int):
        return f"ASN {asn!r} is not a whole number"
    if not 0 <= asn <= 4294967295:
        return f"ASN {asn} is outside 1..4294967294"
    if asn in RESERVED_ASNS:
        return f"ASN {asn} is {RESERVED_ASNS[asn]}"
    for low, high, why in RESERVED_ASN_RANGES:
        if low <= asn <= high:
            return f"ASN {asn} is {why} ({low}-{high})"
    return None


def _name_problem(kind: str, name: object) -> str | None:
    if not isinstance(name, str):
        return f"{kind} name {name!r} is not a string"
    if not NAME_RE.fullmatch(name):
        return (f"{kind} name {name!r} cannot become an interface name: use 1-12 "
                f"letters, digits, '-' or '_', starting with a letter")
    return None


def _prefix(text: object, allowed=special_prefixes.MARKABLE) -> tuple[object, str | None]:
    if not isinstance(text, str):
        return None, f"prefix {text!r} is not a string"
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        if "host bits set" in str(exc):
            return None, f"prefix {text!r} has host bits set (did you mean {ipaddress.ip_network(text, strict=False)}?)"
        return None, f"prefix {text!r} is not a valid IPv4 or IPv6 prefix"
    if net.is_multicast or net.is_loopback or net.is_link_local or net.is_unspecified:
        return None, f"prefix {text} is multicast, loopback, link-local or unspecified"
    special = special_prefixes.problem(net, allowed)
    if special:
        return None, f"prefix {text} {special}"
    return net, None


SYMMETRIC_KINDS = (Kind.PEERING,)
POP_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,10}$")


def _pop_problem(rel: Relationship, by_name: dict) -> str | None:
    at = rel.at or {}
    if not isinstance(at, dict):
        return f"at must map an AS name to one of its PoPs, not {at!r}"
    for system, pop in at.items():
        if system not in (rel.a, rel.b):
            return f"PoP given for {system!r}, which is not an end of this relationship"
        pops = by_name[system].pops
        if not isinstance(pops, (list, tuple)):
            return f"AS {system!r} has no PoPs (declare pops=[...]) but the session is placed at {pop!r}"
        if pop not in pops:
            return f"AS {system!r} has no PoP {pop!r} (its PoPs: {', '.join(map(str, pops))})"
    return None


def problems(topo: Topology) -> list[str]:
    """Every problem of ``topo``, as messages naming where it is."""
    out: list[str] = []
    here = _at(topo.where)
    if not isinstance(topo.name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", topo.name or ""):
        out.append(f"{here}topology name {topo.name!r} must be 1-64 letters, digits, '.', '-' or '_'")
    if not isinstance(topo.hold_time, int) or isinstance(topo.hold_time, bool) or not (
            topo.hold_time == 0 or 3 <= topo.hold_time <= 65535):
        out.append(f"{here}hold_time {topo.hold_time!r} must be 0 or 3..65535 seconds (RFC 4271)")
    if not topo.systems:
        out.append(f"{here}the topology declares no AS")
    allowed = getattr(topo, "allow_special", special_prefixes.MARKABLE)
    unknown = special_prefixes.unknown_kinds(allowed)
    if unknown:
        out.append(f"{here}allow_special: {', '.join(unknown)}: use a tuple of "
                   f"{', '.join(map(repr, special_prefixes.MARKABLE))}")
        allowed = ()
    # Every AS and IXP name, wherever declared, so that a host name can be
    # checked against names declared after it too.
    all_names = {s.name: f"AS {s.name!r}" for s in topo.systems if isinstance(s.name, str)}
    all_names.update({x.name: f"IXP {x.name!r}" for x in topo.ixps if isinstance(x.name, str)})

    by_name: dict[str, AutonomousSystem] = {}
    by_asn: dict[int, AutonomousSystem] = {}
    node_names: dict[str, str] = {}
    owned: list[tuple[object, str, object]] = []  # (network, owner, where)

    for system in topo.systems:
        at = _at(system.where)
        label = f"AS {system.name!r}"
        problem = _asn_problem(system.asn)
        if problem:
            out.append(f"{at}{label}: {problem}")
        elif system.asn in by_asn:
            other = by_asn[system.asn]
            out.append(f"{at}{label}: ASN {system.asn} is already used by AS {other.name!r} ({other.where})")
        else:
            by_asn[system.asn] = system
        problem = _name_problem("AS", system.name) or reserved_name_problem("AS", system.name)
        if problem:
            out.append(f"{at}{problem}")
            continue
        if system.name in by_name:
            out.append(f"{at}AS name {system.name!r} is already used ({by_name[system.name].where})")
            continue
        by_name[system.name] = system
        node_names[system.name] = label
        if system.pops is not None:
            pops = system.pops
            if isinstance(pops, str) or not isinstance(pops, (list, tuple)) or not pops:
                out.append(f"{at}{label}: pops must be a non-empty list of PoP names, not {pops!r}")
            elif system.route_server is not None:
                out.append(f"{at}{label}: a route server has one router: no pops")
            else:
                seen_pops: set = set()
                for pop in pops:
                    if not isinstance(pop, str) or not POP_RE.fullmatch(pop):
                        out.append(f"{at}{label}: PoP name {pop!r} must be letters, digits, '-' or '_', "
                                   "starting with a letter")
                    elif pop in seen_pops:
                        out.append(f"{at}{label}: PoP {pop!r} is listed twice")
                    else:
                        seen_pops.add(pop)
                        router = router_name(system.name, pop)
                        if not NAME_RE.fullmatch(router):
                            out.append(f"{at}{label}: router name {router!r} (AS name, '-', PoP name) "
                                       "cannot become an interface name: keep both short (12 "
                                       "characters in all)")
                        elif router in all_names or router in node_names:
                            out.append(f"{at}{label}: router name {router!r} is already the name of "
                                       f"{all_names.get(router) or node_names.get(router)}")
                        else:
                            node_names[router] = f"router {router!r} of {label}"
        for flag in ("rov", "otc"):
            if not isinstance(getattr(system, flag), bool):
                out.append(f"{at}{label}: {flag} must be True or False, not {getattr(system, flag)!r}")
        if system.route_server is not None:
            continue  # no prefixes, no hosts; its IXP is checked below

        hosts = system.hosts
        host_names: list[str] = []
        if isinstance(hosts, bool) or not isinstance(hosts, (int, list, tuple)):
            out.append(f"{at}{label}: hosts must be a count or a list of names, not {hosts!r}")
        elif isinstance(hosts, int):
            if not 0 <= hosts <= MAX_HOSTS:
                out.append(f"{at}{label}: hosts={hosts} is outside 0..{MAX_HOSTS}")
            else:
                host_names = addressing.default_host_names(system.name, hosts)
        else:
            for host in hosts:
                if not isinstance(host, str) or not HOST_RE.fullmatch(host):
                    out.append(f"{at}{label}: host name {host!r} must be 1-32 letters, digits, '-' or '_', starting with a letter")
                else:
                    host_names.append(host)
            if len(host_names) > MAX_HOSTS:
                out.append(f"{at}{label}: {len(host_names)} hosts, more than {MAX_HOSTS}")
        for host in host_names:
            if host in node_names:
                out.append(f"{at}{label}: host name {host!r} is already the name of {node_names[host]}")
            elif host in all_names:
                out.append(f"{at}{label}: host name {host!r} is already the name of {all_names[host]}")
            else:
                node_names[host] = f"host {host!r} of {label}"

        prefixes = system.prefixes
        if prefixes is None:
            continue
        if isinstance(prefixes, str) or not isinstance(prefixes, (list, tuple)):
            out.append(f"{at}{label}: prefixes must be a list of prefixes, not {prefixes!r}")
            continue
        if not prefixes:
            out.append(f"{at}{label}: prefixes is empty (leave it out to get default prefixes)")
        first_of_family: dict[int, object] = {}
        for text in prefixes:
            net, problem = _prefix(text, allowed)
            if problem:
                out.append(f"{at}{label}: {problem}")
                continue
            first_of_family.setdefault(net.version, net)
            owned.append((net, label, system.where))
        count = len(host_names)
        for version, net in first_of_family.items():
            needed = addressing.HOST_OFFSET + count + 1
            if count and net.num_addresses < needed:
                out.append(f"{at}{label}: prefix {net} is too small for its LAN of {count} host(s): "
                           f"it needs at least {needed} addresses")

    ixps: dict[str, IXP] = {}
    ixp_lans: dict[tuple[str, str], object] = {}  # (IXP, "lan4"/"lan6") -> declared network
    for ixp in topo.ixps:
        at = _at(ixp.where)
        problem = _name_problem("IXP", ixp.name)
        if problem:
            out.append(f"{at}{problem}")
            continue
        if ixp.name in ixps:
            out.append(f"{at}IXP name {ixp.name!r} is already used ({ixps[ixp.name].where})")
            continue
        if ixp.name in node_names:
            out.append(f"{at}IXP name {ixp.name!r} is already the name of {node_names[ixp.name]}")
        ixps[ixp.name] = ixp
        for attr, version in (("lan4", 4), ("lan6", 6)):
            text = getattr(ixp, attr)
            if text is None:
                continue
            net, problem = _prefix(text, allowed)
            if problem:
                out.append(f"{at}IXP {ixp.name!r}: {attr}: {problem}")
            elif net.version != version:
                out.append(f"{at}IXP {ixp.name!r}: {attr} {text} is not an IPv{version} prefix")
            else:
                owned.append((net, f"IXP {ixp.name!r} LAN", ixp.where))
                ixp_lans[(ixp.name, attr)] = net

    # Relationships -------------------------------------------------------
    pairs: dict[frozenset, Relationship] = {}
    kinds_between: dict[frozenset, Relationship] = {}  # AS pair -> its first relationship
    linked: set[str] = set()
    used_ixps: set[str] = set()
    ixp_members: dict[str, set[str]] = defaultdict(set)
    providers = nx.DiGraph()
    transit_at: dict[tuple, object] = {}
    for rel in topo.relationships:
        at = _at(rel.where)
        what = rel.describe()
        if not isinstance(rel.kind, Kind):
            kinds = ", ".join(k.value for k in Kind)
            out.append(f"{at}{what}: unknown relationship kind {rel.kind!r} (known: {kinds})")
            continue
        ok = True
        for end in (rel.a, rel.b):
            if not isinstance(end, str) or end not in by_name:
                out.append(f"{at}{what}: no AS named {end!r}")
                ok = False
        if ok:
            servers = [end for end in (rel.a, rel.b) if by_name[end].route_server is not None]
            if rel.kind == Kind.ROUTE_SERVER:
                if rel.via is not None:
                    out.append(f"{at}{what}: a route-server session runs on the route server's own "
                               f"IXP; leave via out (got {rel.via!r})")
                    ok = False
                elif by_name[rel.b].route_server is None:
                    out.append(f"{at}{what}: {rel.b!r} is not a route server (declare it with add_route_server)")
                    ok = False
                elif by_name[rel.a].route_server is not None:
                    out.append(f"{at}{what}: a route server cannot be the client of another")
                    ok = False
                else:
                    rel_via = by_name[rel.b].route_server
                    if isinstance(rel_via, str) and rel_via not in ixps:
                        ok = False  # reported with the route server
            elif servers:
                out.append(f"{at}{what}: {servers[0]!r} is a route server: it only has "
                           f"route-server clients (route_server_client)")
                ok = False
        if rel.policy is not None:
            if not isinstance(rel.policy, dict):
                out.append(f"{at}{what}: policy must map an AS name of the relationship to its "
                           f"policy, not {rel.policy!r}")
            else:
                for end, data in rel.policy.items():
                    if end not in (rel.a, rel.b):
                        out.append(f"{at}{what}: policy for {end!r}, which is not an end of this "
                                   f"relationship ({rel.a!r} or {rel.b!r})")
                        continue
                    try:
                        parse_policy(data, f"policy of {end}")
                    except PolicyError as exc:
                        out.append(f"{_at(_locate(rel.where, exc))}{what}: {exc}")
        if rel.via is not None:
            if not isinstance(rel.via, str) or rel.via not in ixps:
                out.append(f"{at}{what}: no IXP named {rel.via!r}")
                ok = False
        for attr, low, high in (("bandwidth", 0, MAX_BANDWIDTH), ("loss", 0, 100)):
            value = getattr(rel, attr)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low < value <= high:
                out.append(f"{at}{what}: {attr} {value!r} must be a number in ({low}, {high}]")
        if rel.delay is not None and not (isinstance(rel.delay, str) and re.fullmatch(r"\d+(\.\d+)?(us|ms|s)", rel.delay, re.ASCII)):
            out.append(f"{at}{what}: delay {rel.delay!r} must look like '5ms'")
        if rel.password is not None and not (isinstance(rel.password, str) and PASSWORD_RE.fullmatch(rel.password)):
            out.append(f"{at}{what}: password must be 1-80 printable characters without quotes, "
                       f"backslashes, ';' or spaces (TCP MD5 key), not {rel.password!r}")
        if rel.via is not None and any(v is not None for v in (rel.bandwidth, rel.delay, rel.loss)):
            out.append(f"{at}{what}: bandwidth, delay and loss apply to private links, not to a session across an IXP")
        if not ok:
            continue
        if rel.a == rel.b:
            out.append(f"{at}{what}: an AS cannot be related to itself")
            continue
        at_problem = _pop_problem(rel, by_name)
        if at_problem:
            out.append(f"{at}{what}: {at_problem}")
            continue
        # The routers the session joins: without a PoP, the AS's first one
        # (so "A" and a.pop(<its first PoP>) are the same place).
        key = frozenset(by_name[end].routers[0] if rel.pop_of(end) is None
                        else router_name(end, rel.pop_of(end)) for end in (rel.a, rel.b))
        pair = frozenset((rel.a, rel.b))
        first = pairs.get(key) or kinds_between.get(pair)
        if first is not None:
            same = first.kind == rel.kind and (rel.kind in SYMMETRIC_KINDS or (first.a, first.b) == (rel.a, rel.b))
            if key in pairs or not same:
                how = "again" if same else f"in a way that contradicts '{first.describe()}'"
                out.append(f"{at}{what}: {rel.a} and {rel.b} are related {how} ({first.where})")
                continue
        pairs[key] = rel
        kinds_between.setdefault(pair, rel)
        linked.update((rel.a, rel.b))
        via = by_name[rel.b].route_server if rel.kind == Kind.ROUTE_SERVER else rel.via
        if isinstance(via, str):  # else refused above (an IXP name that is not a string)
            used_ixps.add(via)
            ixp_members[via].update((rel.a, rel.b))
        if rel.kind in TRANSIT_KINDS:
            providers.add_edge(rel.a, rel.b)
            transit_at[(rel.a, rel.b)] = rel.where

    for name, system in by_name.items():
        if system.route_server is not None and (
                not isinstance(system.route_server, str) or system.route_server not in ixps):
            out.append(f"{_at(system.where)}route server {name!r}: no IXP named {system.route_server!r}")
        if name not in linked:
            out.append(f"{_at(system.where)}AS {name!r} has no link: relate it to another AS")
    for name, ixp in ixps.items():
        if name not in used_ixps:
            out.append(f"{_at(ixp.where)}IXP {name!r} carries no session: peer two ASes via it")
        elif len(ixp_members[name]) > addressing.MAX_IXP_MEMBERS:
            out.append(f"{_at(ixp.where)}IXP {name!r} has {len(ixp_members[name])} members, "
                       f"more than {addressing.MAX_IXP_MEMBERS}")
        else:
            for attr in ("lan4", "lan6"):
                net = ixp_lans.get((name, attr))
                if net is not None and net.num_addresses - 2 < len(ixp_members[name]):
                    out.append(f"{_at(ixp.where)}IXP {name!r}: {attr} {net} is too small for its "
                               f"{len(ixp_members[name])} members")
    try:
        cycle = nx.find_cycle(providers)
    except nx.NetworkXNoCycle:
        cycle = None
    if cycle:
        loop = " -> ".join([edge[0] for edge in cycle] + [cycle[0][0]])
        places = ", ".join(str(transit_at[edge]) for edge in cycle[1:])
        out.append(f"{_at(transit_at[cycle[0]])}transit relationships form a cycle (each a provider "
                   f"of the next): {loop} (see also {places})")

    # Internal links and the IGP ----------------------------------------------
    internal = defaultdict(lambda: nx.Graph())
    for link in topo.internal_links:
        at = _at(link.where)
        system = by_name.get(link.system) if isinstance(link.system, str) else None
        what = f"internal link {link.system}:{link.a}--{link.b}"
        if system is None:
            out.append(f"{at}{what}: no AS named {link.system!r}")
            continue
        pops = system.pops if isinstance(system.pops, (list, tuple)) else []
        bad = [p for p in (link.a, link.b) if p not in pops]
        if bad:
            out.append(f"{at}{what}: AS {system.name!r} has no PoP {bad[0]!r} (its PoPs: "
                       f"{', '.join(map(str, pops)) or 'none'})")
            continue
        if link.a == link.b:
            out.append(f"{at}{what}: a link needs two different PoPs")
            continue
        if isinstance(link.cost, bool) or not isinstance(link.cost, int) or not 1 <= link.cost <= 65535:
            out.append(f"{at}{what}: cost {link.cost!r} must be a whole number in 1..65535")
            continue
        if internal[system.name].has_edge(link.a, link.b):
            out.append(f"{at}{what}: PoPs {link.a} and {link.b} are linked twice")
            continue
        internal[system.name].add_edge(link.a, link.b)
    for name, system in by_name.items():
        pops = system.pops if isinstance(system.pops, (list, tuple)) else []
        if len(pops) > 1:
            graph = internal[name]
            graph.add_nodes_from(p for p in pops if isinstance(p, str))
            if not nx.is_connected(graph):
                parts = sorted(sorted(c) for c in nx.connected_components(graph))
                out.append(f"{_at(system.where)}AS {name!r}: its PoPs are not all joined by internal "
                           f"links (separate groups: {'; '.join(', '.join(p) for p in parts)}); "
                           "add Topology.internal_link")

    # ROAs ----------------------------------------------------------------
    for entry in topo.roas:
        data = {k: v for k, v in entry.items() if k != "where"}
        try:
            parse_roas([data], "roa")
        except PolicyError as exc:
            out.append(f"{_at(entry.get('where'))}{str(exc).replace('roa[0]', 'ROA', 1)}")
            continue
        problem = _asn_problem(data.get("asn"))
        if problem:
            out.append(f"{_at(entry.get('where'))}ROA for {data.get('prefix')}: {problem}")
        net, problem = _prefix(data.get("prefix"), allowed)
        if problem:
            out.append(f"{_at(entry.get('where'))}ROA: {problem}")

    # Address space -------------------------------------------------------
    infrastructure = [(net, f"the lab's {what}", None) for net, what in addressing.INFRASTRUCTURE]
    for index, (net, owner, where) in enumerate(owned):
        for other, other_owner, other_where in owned[:index] + infrastructure:
            if net.version == other.version and net.overlaps(other):
                seen = f" ({other_where})" if other_where else ""
                out.append(f"{_at(where)}{owner}: prefix {net} overlaps {other} of {other_owner}{seen}")
    if not out:  # the pools can only be checked on otherwise valid input
        try:
            addressing.assign_prefixes(topo)
        except addressing.PoolExhausted as exc:
            out.append(f"{_at(exc.system.where)}{exc}")
    routers = sum(len(s.routers) for s in topo.systems)
    if routers > addressing.MAX_SYSTEMS:
        out.append(f"{routers} routers: the address plan holds at most {addressing.MAX_SYSTEMS} router ids")
    links = len(topo.relationships) + len(topo.internal_links)
    if links > addressing.MAX_LINKS:
        out.append(f"{links} relationships and internal links: the address plan holds at most "
                   f"{addressing.MAX_LINKS} links")
    out += router_problems(topo)
    return out
