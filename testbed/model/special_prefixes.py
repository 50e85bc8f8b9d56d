"""The special-purpose address registries (RFC 6890, as IANA keeps them)
and what a lab may do with each range.

``problem(prefix, allowed)`` takes a prefix (an ``ipaddress`` network) and
the kinds of special range a topology marks as allowed, and returns why the
prefix cannot be an AS's prefix, a ROA's or an IXP LAN, naming the range and
its RFC, or ``None``. Pure data and logic: validation calls it before
anything is created.

Three sorts of range:
- usable: routed like any other prefix in a lab (private-use, shared
  address space, unique-local, and the globally reachable anycast ranges);
- allowed only when the topology marks its kind (``Topology(...,
  allow_special=("documentation", "benchmarking"))``, the default, since
  the lab's default prefixes and every example are documentation ranges);
- refused: they cannot work as an AS's network (this network, loopback,
  link-local, reserved, limited broadcast, IPv4-mapped IPv6 ...). A kernel
  or ExaBGP accepts some of them and the lab then fails at its first packet.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

USABLE = "usable"
DOCUMENTATION = "documentation"
BENCHMARKING = "benchmarking"
REFUSED = "refused"
MARKABLE = (DOCUMENTATION, BENCHMARKING)


@dataclass(frozen=True)
class Special:
    network: object
    name: str
    rfc: str
    sort: str

    def __str__(self) -> str:
        return f"{self.network} ({self.name}, {self.rfc})"


def _entries(rows) -> tuple[Special, ...]:
    return tuple(Special(ipaddress.ip_network(net), name, rfc, sort) for net, name, rfc, sort in rows)


# The IANA IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890 and
# the RFCs that added to them), plus multicast, which has its own registry.
REGISTRY = _entries([
    ("0.0.0.0/8", '"This network"', "RFC 791", REFUSED),
    ("10.0.0.0/8", "Private-Use", "RFC 1918", USABLE),
    ("100.64.0.0/10", "Shared Address Space", "RFC 6598", USABLE),
    ("127.0.0.0/8", "Loopback", "RFC 1122", REFUSED),
    ("169.254.0.0/16", "Link Local", "RFC 3927", REFUSED),
    ("172.16.0.0/12", "Private-Use", "RFC 1918", USABLE),
    ("192.0.0.0/24", "IETF Protocol Assignments", "RFC 6890", REFUSED),
    ("192.0.2.0/24", "Documentation (TEST-NET-1)", "RFC 5737", DOCUMENTATION),
    ("192.31.196.0/24", "AS112-v4", "RFC 7535", USABLE),
    ("192.52.193.0/24", "AMT", "RFC 7450", USABLE),
    ("192.88.99.0/24", "Deprecated (6to4 Relay Anycast)", "RFC 7526", REFUSED),
    ("192.168.0.0/16", "Private-Use", "RFC 1918", USABLE),
    ("192.175.48.0/24", "Direct Delegation AS112 Service", "RFC 7534", USABLE),
    ("198.18.0.0/15", "Benchmarking", "RFC 2544", BENCHMARKING),
    ("198.51.100.0/24", "Documentation (TEST-NET-2)", "RFC 5737", DOCUMENTATION),
    ("203.0.113.0/24", "Documentation (TEST-NET-3)", "RFC 5737", DOCUMENTATION),
    ("224.0.0.0/4", "Multicast", "RFC 5771", REFUSED),
    ("240.0.0.0/4", "Reserved", "RFC 1112", REFUSED),
    ("255.255.255.255/32", "Limited Broadcast", "RFC 919", REFUSED),
    ("::/128", "Unspecified Address", "RFC 4291", REFUSED),
    ("::1/128", "Loopback Address", "RFC 4291", REFUSED),
    ("::ffff:0:0/96", "IPv4-mapped Address", "RFC 4291", REFUSED),
    ("64:ff9b::/96", "IPv4-IPv6 Translation", "RFC 6052", REFUSED),
    ("64:ff9b:1::/48", "IPv4-IPv6 Translation", "RFC 8215", REFUSED),
    ("100::/64", "Discard-Only Address Block", "RFC 6666", REFUSED),
    ("2001::/23", "IETF Protocol Assignments", "RFC 2928", REFUSED),
    ("2001:2::/48", "Benchmarking", "RFC 5180", BENCHMARKING),
    ("2001:db8::/32", "Documentation", "RFC 3849", DOCUMENTATION),
    ("2002::/16", "6to4", "RFC 3056", REFUSED),
    ("3fff::/20", "Documentation", "RFC 9637", DOCUMENTATION),
    ("5f00::/16", "Segment Routing (SRv6) SIDs", "RFC 9602", REFUSED),
    ("fc00::/7", "Unique-Local", "RFC 4193", USABLE),
    ("fe80::/10", "Link-Local Unicast", "RFC 4291", REFUSED),
    ("ff00::/8", "Multicast", "RFC 4291", REFUSED),
])


def _blocked(entry: Special, allowed) -> bool:
    return entry.sort == REFUSED or (entry.sort in MARKABLE and entry.sort not in allowed)


def _why(entry: Special) -> str:
    if entry.sort == REFUSED:
        return f"is special-purpose: {entry}"
    return (f"is a {entry.sort} range: {entry}; mark it allowed with "
            f"Topology(..., allow_special=(..., {entry.sort!r}))")


def problem(network, allowed=MARKABLE) -> str | None:
    """Why ``network`` cannot be used in a lab, or ``None``.

    The most specific registry entry that holds the prefix decides (a
    benchmarking /48 inside the IETF's 2001::/23); a prefix that holds a
    refused range is refused for it (``0.0.0.0/0`` holds ``0.0.0.0/8``)."""
    inside = [e for e in REGISTRY if e.network.version == network.version and network.subnet_of(e.network)]
    if inside:
        entry = max(inside, key=lambda e: e.network.prefixlen)
        return _why(entry) if _blocked(entry, allowed) else None
    for entry in REGISTRY:
        if entry.network.version == network.version and entry.network.subnet_of(network) \
                and _blocked(entry, allowed):
            return f"holds {entry.network}, which {_why(entry)}"
    return None


def unknown_kinds(allowed) -> list[str]:
    """Names in ``allowed`` that are not a kind a topology can allow."""
    if isinstance(allowed, str) or not isinstance(allowed, (list, tuple, set, frozenset)):
        return [repr(allowed)]
    return [repr(kind) for kind in allowed if kind not in MARKABLE]
