"""A BIRD 2 configuration for a router of the plan, with the ExaBGP routers' policy.

``render(router, hold_time)`` takes a ``RouterPlan`` (``testbed.model.plans``)
and returns the text of a ``bird.conf`` implementing the relationship
policy of ``testbed.bgp.policy`` and the decision of
``testbed.bgp.decision`` as far as BIRD can:

- import: own AS in the path is rejected (BIRD's default), over eBGP the
  first AS must be the neighbour's (not from a route server), local_pref
  200/100/50 by relationship (customer, peer or route server, provider) or
  the session's ``local_pref``; iBGP keeps the received local_pref; every
  route is marked with a large community ``(ASN, 1, code)`` saying where
  it was learned (1 customer, 2 peer, 3 provider, 4 route server), any
  such marker a neighbour sent being deleted first;
- export: valley-free (originated and customer-marked routes to everyone,
  the others only to customers and iBGP), NO_EXPORT/NO_ADVERTISE, the
  session's MED, prepending and ``announce`` list; the markers are deleted
  towards eBGP neighbours;
- decision: ``deterministic med`` (RFC 4271 9.1.2.2 (c), MEDs compared
  only within a neighbouring AS, whatever the arrival order), no ``prefer
  older``, so router id then neighbour address break the last ties;
- originated prefixes are static ``unreachable`` routes (the harness puts
  the kernel's null routes, BIRD never exports them to the kernel); the
  kernel protocol exports BGP routes only; an iBGP mesh over loopbacks
  resolves next hops through static routes carrying the IGP cost, so hot
  potato (``igp metric``) follows the plan's IGP.

An IXP route server (``router.route_server``) gets ``rs client`` sessions:
no own AS prepended, next hop and MED passed through, one best per client.

Session policies beyond local_pref, MED, prepend and announce (terms, ROV,
OTC, blackholing) raise ``Unsupported``: the generated config only stands
in for what it can mirror exactly. Pure: text in, text out.
"""

from __future__ import annotations

import ipaddress

from testbed.model.plans import NeighborPlan, RouterPlan

__all__ = ["MARKER", "Unsupported", "render", "protocol_name"]

# Relationship -> the third part of the (ASN, 1, code) marker.
MARKER = {"customer": 1, "peer": 2, "provider": 3, "route-server": 4, "rs-client": 1}
LOCAL_PREF = {"customer": 200, "peer": 100, "route-server": 100, "rs-client": 100, "provider": 50}
SUPPORTED_POLICY = {"local_pref", "med", "prepend", "announce", "blackhole"}


class Unsupported(ValueError):
    """A session policy the generated configuration cannot mirror."""


def protocol_name(neighbor: NeighborPlan) -> str:
    """The BIRD protocol name of the session with ``neighbor``: its router
    name made into a symbol (letters, digits, underscores)."""
    return "n_" + "".join(c if c.isalnum() else "_" for c in neighbor.name)


def _check_policy(router: RouterPlan, neighbor: NeighborPlan) -> dict:
    policy = neighbor.policy or {}
    extra = sorted(k for k, v in policy.items() if k not in SUPPORTED_POLICY and v not in (None, False, [], ()))
    if extra:
        raise Unsupported(f"router {router.name}: the session policy towards {neighbor.name} uses "
                          f"{', '.join(extra)}, which the generated BIRD configuration does not mirror")
    if policy.get("med") == "igp":
        raise Unsupported(f"router {router.name}: MED 'igp' towards {neighbor.name} is not mirrored")
    return policy


def _announce_set(announce) -> str:
    # rules' text form: "P", "P le N", "P ge N le M"; BIRD's: P{ge,le}.
    out = []
    for text in announce:
        words = str(text).split()
        network = ipaddress.ip_network(words[0], strict=False)
        ge = le = network.prefixlen
        for key, value in zip(words[1::2], words[2::2]):
            if key == "ge":
                ge = int(value)
            elif key == "le":
                le = int(value)
        if "le" in words and "ge" not in words:
            ge = network.prefixlen
        out.append(f"{network}{{{ge},{le}}}" if (ge, le) != (network.prefixlen,) * 2 else str(network))
    return "[ " + ", ".join(out) + " ]"


def _import_filter(router: RouterPlan, n: NeighborPlan, policy: dict) -> list[str]:
    name = protocol_name(n)
    lines = [f"filter import_{name[2:]} {{"]
    if n.relationship != "internal":
        if n.relationship != "route-server":
            lines.append(f"  if bgp_path.first != {n.asn} then reject \"first AS is not {n.asn}\";")
        if not policy.get("blackhole"):
            lines.append("  if (65535, 666) ~ bgp_community then reject \"BLACKHOLE not honoured\";")
        elif n.relationship != "rs-client":
            lines.append("  if (65535, 666) ~ bgp_community then bgp_community.add((65535, 65281));")
        lines.append("  bgp_large_community.delete([(LOCAL_AS, *, *)]);")
        pref = policy.get("local_pref")
        lines.append(f"  bgp_local_pref = {pref if pref is not None else LOCAL_PREF[n.relationship]};")
        lines.append(f"  bgp_large_community.add((LOCAL_AS, 1, {MARKER[n.relationship]}));")
    else:
        lines.append("  if !defined(bgp_local_pref) then bgp_local_pref = 100;")
    lines += ["  accept;", "}"]
    return lines


def _export_filter(router: RouterPlan, n: NeighborPlan, policy: dict) -> list[str]:
    name = protocol_name(n)
    lines = [f"filter export_{name[2:]} {{"]
    lines.append("  if (65535, 65282) ~ bgp_community then reject;  # NO_ADVERTISE")
    if n.relationship != "internal":
        lines.append("  if (65535, 65281) ~ bgp_community then reject;  # NO_EXPORT")
    if n.relationship == "rs-client":
        lines += ["  accept;", "}"]
        return lines
    announce = policy.get("announce")
    if announce is not None:
        lines.append(f"  if net !~ {_announce_set(announce)} then reject;")
    if n.relationship == "internal":
        # Everything the AS learned over eBGP or originates; never iBGP to iBGP.
        lines.append("  if source = RTS_BGP && bgp_large_community !~ [(LOCAL_AS, 1, *)] then reject;")
        lines.append("  if source = RTS_STATIC then {")
        lines.append("    bgp_local_pref = 100;")
        lines.append("    bgp_large_community.add((LOCAL_AS, 1, 0));  # originated by the AS")
        lines.append("  }")
        lines += ["  accept;", "}"]
        return lines
    if n.relationship != "customer":
        lines.append("  if source = RTS_BGP && bgp_large_community !~ [(LOCAL_AS, 1, 0..1)] then reject;")
    lines.append("  bgp_large_community.delete([(LOCAL_AS, *, *)]);")
    if policy.get("med") is not None:
        lines.append(f"  bgp_med = {int(policy['med'])};")
    for _ in range(int(policy.get("prepend") or 0)):
        lines.append("  bgp_path.prepend(LOCAL_AS);")
    lines += ["  accept;", "}"]
    return lines


def _session(router: RouterPlan, n: NeighborPlan, hold_time: int) -> list[str]:
    name = protocol_name(n)
    short = name[2:]
    internal = n.relationship == "internal"
    lines = [f"protocol bgp {name} {{",
             f"  description \"{n.peer_system} AS{n.asn} ({n.relationship})\";"]
    if internal:
        lines += [f"  local {router.router_id} as LOCAL_AS;",
                  f"  neighbor {n.address} as {n.asn};",
                  "  multihop;"]
    else:
        lines += [f"  local {n.local_address} as LOCAL_AS;",
                  f"  neighbor {n.address} as {n.asn};"]
    lines.append(f"  hold time {hold_time};")
    lines.append(f"  keepalive time {max(1, hold_time // 3)};")
    lines.append("  connect delay time 0;")
    lines.append("  connect retry time 1;")
    lines.append("  error wait time 1, 5;")
    if n.passive:
        lines.append("  passive on;")
    if n.password:
        lines.append(f"  password \"{n.password}\";")
    if n.relationship == "rs-client":
        lines.append("  rs client;")
    lines.append("  deterministic med on;")
    for family in (4, 6):
        options = [f"import filter import_{short};", f"export filter export_{short};"]
        if internal:
            options.append("next hop self;" if family == 4 else f"next hop self; next hop address {n.local_address6};")
            options.append("gateway recursive;")
            options.append(f"igp table igptab{family};")
        elif family == 6:
            options.append(f"next hop address {n.local_address6};")
        if n.relationship == "rs-client" and family == 6:
            options = [o for o in options if not o.startswith("next hop address")]
        lines.append(f"  ipv{family} {{ " + " ".join(options) + " };")
    lines.append("}")
    return lines


def render(router: RouterPlan, hold_time: int) -> str:
    """The ``bird.conf`` of ``router`` (see the module docstring)."""
    policies = {n.name: _check_policy(router, n) for n in router.neighbors}
    out = [f"# BIRD 2 configuration of {router.name} (AS{router.asn}), generated by the testbed",
           "# from the address plan with the relationship policy of its ExaBGP routers.",
           f"router id {router.router_id};",
           "log stderr all;",
           f"define LOCAL_AS = {router.asn};",
           "",
           "protocol device { scan time 10; }"]
    has_ibgp = any(n.relationship == "internal" for n in router.neighbors)
    if has_ibgp:
        out += ["ipv4 table igptab4;", "ipv6 table igptab6;"]
    if not router.route_server:
        for family in (4, 6):
            out.append(f"protocol kernel kernel{family} {{ ipv{family} {{ import none; "
                       "export where source = RTS_BGP; }; merge paths off; }")
    for family in (4, 6):
        mine = [p for p in router.prefixes if (":" in p) == (family == 6)]
        if mine:
            out.append(f"protocol static originate{family} {{")
            out.append(f"  ipv{family};")
            out += [f"  route {p} unreachable;" for p in mine]
            out.append("}")
    if has_ibgp:
        # The IGP as BIRD sees it: a route to every other router's loopbacks
        # with the plan's cost, for the iBGP next hops' resolution.
        for family in (4, 6):
            routes = []
            for igp in router.igp:
                target, gateway = ((igp.loopback4, igp.via4) if family == 4 else (igp.loopback6, igp.via6))
                if target and gateway:
                    length = 32 if family == 4 else 128
                    routes.append(f"  route {target}/{length} via {gateway} {{ igp_metric = {igp.cost}; }};")
            if routes:
                out += [f"protocol static igp{family} {{", f"  ipv{family} {{ table igptab{family}; }};",
                        *routes, "}"]
    for n in router.neighbors:
        out.append("")
        out += _import_filter(router, n, policies[n.name])
        out += _export_filter(router, n, policies[n.name])
        out += _session(router, n, hold_time)
    return "\n".join(out) + "\n"
