"""ExaBGP's API, read and written: the JSON events ExaBGP sends its API
process and the text commands it reads back.

In: ``parse_update`` turns the ``update`` message of a JSON event into
``Route`` objects and withdrawn prefixes (``parse_as_path`` its AS path).
Out: ``command_for`` writes the command of an engine action (Announce,
Withdraw, Teardown). ``RouteChange`` is one route command as values (no
text), what ``route_change`` makes of an action and what ``parse_command``
and ``parse_line`` read back from command text (the grammar ``command_for``
writes, and ExaBGP's ``announce attributes ... nlri``): the in-process
transport (``testbed.speaker.inprocess``) hands these over instead of text.
Pure: no I/O.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from testbed.bgp import Announce, Origin, Route, Teardown, Withdraw
from testbed.bgp.community import community_text, large_text


def parse_as_path(attribute: object) -> tuple[int, ...]:
    """ExaBGP's JSON AS path (``{"0": {"element": "as-sequence", "value":
    [...]}}`` or a plain list) as a flat tuple of ASNs."""
    if isinstance(attribute, list):
        return tuple(int(a) for a in attribute)
    path: list[int] = []
    if isinstance(attribute, dict):
        for key in sorted(attribute, key=int):
            path.extend(int(a) for a in attribute[key].get("value", []))
    return tuple(path)


OTC_CODE = 35
"""The Only-to-Customer path attribute of RFC 9234: optional transitive,
four octets, an ASN. ExaBGP 5.0.15 has no support for it, so it travels as
a generic attribute: sent with ``attribute [ 0x23 0xc0 0x<asn> ]`` and
reported back as ``"attribute-0x23-0xC0": "0x<asn>"``."""


def _community(item) -> int:
    if isinstance(item, (list, tuple)):
        return int(item[0]) << 16 | int(item[1])
    high, low = str(item).split(":")
    return int(high) << 16 | int(low)


def _otc(attributes: dict) -> int | None:
    for key, value in attributes.items():
        if key.startswith(f"attribute-0x{OTC_CODE:02X}-"):
            return int(str(value), 16)
    return None


def parse_update(message: dict) -> tuple[list[Route], list[str]]:
    """Routes announced and prefixes withdrawn in one ExaBGP ``update`` event."""
    update = message.get("update", {})
    attributes = update.get("attribute", {})
    path = parse_as_path(attributes.get("as-path", {}))
    origin = Origin.parse(attributes.get("origin", "igp"))
    med = attributes.get("med")
    local_pref = attributes.get("local-preference")
    communities = tuple(_community(c) for c in attributes.get("community") or ())
    large = tuple(tuple(int(x) for x in c) if isinstance(c, (list, tuple)) else c
                  for c in attributes.get("large-community") or ())
    otc = _otc(attributes)
    announced: list[Route] = []
    for family, by_next_hop in update.get("announce", {}).items():
        if family not in ("ipv4 unicast", "ipv6 unicast"):
            continue
        for next_hop, entries in by_next_hop.items():
            for entry in entries:
                announced.append(Route(prefix=entry["nlri"], next_hop=next_hop, as_path=path,
                                       origin=origin, med=med, local_pref=local_pref,
                                       communities=communities, large_communities=large, otc=otc))
    withdrawn = [entry["nlri"] for family, entries in update.get("withdraw", {}).items()
                 if family in ("ipv4 unicast", "ipv6 unicast") for entry in entries]
    return announced, withdrawn


def command_for(action, announced: Route | None = None) -> str:
    """The ExaBGP API command of an Announce, Withdraw or Teardown action.

    A withdrawal carries the attributes of the route last announced to that
    neighbor (``announced``) when there is one: ExaBGP 5.0.15 queues pending
    changes by attribute set, and a bare withdrawal that follows an
    announcement of the same prefix within one burst can be sent before it,
    leaving the peer with the announced route (reproduced in a two-speaker
    lab while ExaBGP kept its own Adj-RIB-Out; with the same attributes both
    land in one queue, in order). A teardown is a Cease with the action's
    subcode (RFC 4486)."""
    if isinstance(action, Teardown):
        return f"neighbor {action.neighbor} teardown {action.subcode}"
    if isinstance(action, Withdraw):
        if announced is None:
            return f"neighbor {action.neighbor} withdraw route {action.prefix}"
        return command_for(Announce(action.neighbor, announced)).replace(" announce route ", " withdraw route ", 1)
    route = action.route
    text = (f"neighbor {action.neighbor} announce route {route.prefix} next-hop {route.next_hop} "
            f"origin {Origin(route.origin).name.lower()} as-path [ {' '.join(map(str, route.as_path))} ]")
    if route.med is not None:
        text += f" med {route.med}"
    if route.local_pref is not None:
        text += f" local-preference {route.local_pref}"
    if route.communities:
        text += f" community [ {' '.join(community_text(c) for c in route.communities)} ]"
    if route.large_communities:
        text += f" large-community [ {' '.join(large_text(c) for c in route.large_communities)} ]"
    if route.otc is not None:
        text += f" attribute [ 0x{OTC_CODE:02x} 0xc0 0x{route.otc:08x} ]"
    return text


class RouteChange(NamedTuple):
    """One ``announce route`` / ``withdraw route`` command as values: the
    attributes the plain grammar carries (a withdrawal without the route
    last announced has no next hop and no attributes)."""

    neighbor: str
    announce: bool
    prefix: str
    next_hop: str | None
    origin: str | None       # "igp", "egp" or "incomplete"
    as_path: tuple | None
    med: int | None
    local_pref: int | None


ORIGIN_NAMES = {origin: origin.name.lower() for origin in Origin}  # IntEnum: ints find them too


def plain(route: Route) -> bool:
    """Whether ``command_for`` writes this route in the grammar
    ``parse_command`` reads back (no communities or OTC, a next hop of the
    prefix's family)."""
    return (not route.communities and not route.large_communities and route.otc is None
            and (":" in route.next_hop) == (":" in route.prefix))


def route_change(action, announced: Route | None = None) -> RouteChange | None:
    """What ``parse_command`` reads from ``command_for(action, announced)``,
    made without the text; None when that command is outside the plain
    grammar (communities, OTC, an IPv4 next hop for an IPv6 prefix, a
    teardown)."""
    if isinstance(action, Announce):
        route = action.route
        if plain(route):
            return RouteChange(action.neighbor, True, route.prefix, route.next_hop, ORIGIN_NAMES[route.origin],
                               tuple(route.as_path), route.med, route.local_pref)
    elif isinstance(action, Withdraw):
        if announced is None:
            return RouteChange(action.neighbor, False, action.prefix, None, None, None, None, None)
        if plain(announced):
            return RouteChange(action.neighbor, False, action.prefix, announced.next_hop,
                               ORIGIN_NAMES[announced.origin], tuple(announced.as_path), announced.med,
                               announced.local_pref)
    return None


# What command_for writes, and nothing more.
_COMMAND = re.compile(
    r"neighbor (\S+) (announce|withdraw) route (\S+)"
    r"(?: next-hop (\S+) origin (igp|egp|incomplete) as-path \[([\d ]*)\]"
    r"(?: med (\d+))?(?: local-preference (\d+))?)?$")

# ``announce attributes ... nlri P1 P2 ...``: one route per prefix, the same attributes.
_ATTRIBUTES = re.compile(
    r"neighbor (\S+) announce attributes next-hop (\S+) origin (igp|egp|incomplete) as-path \[([\d ]*)\]"
    r"(?: med (\d+))?(?: local-preference (\d+))? nlri ([0-9a-fA-F.:/ ]+)$")


def parse_command(line: str) -> RouteChange | None:
    """The ``RouteChange`` of a route command, or None for anything else."""
    match = _COMMAND.match(line)
    if match is None:
        return None
    neighbor, action, prefix, next_hop, origin, path, med, local_pref = match.groups()
    announce = action == "announce"
    if next_hop is None:
        if announce:
            return None
    elif (":" in next_hop) != (":" in prefix):
        return None  # ExaBGP maps an IPv4 next hop into IPv6: leave that to its parser
    return RouteChange(neighbor, announce, prefix, next_hop, origin,
                       None if path is None else tuple(int(a) for a in path.split()),
                       None if med is None else int(med), None if local_pref is None else int(local_pref))


def parse_line(line: str) -> list[RouteChange] | None:
    """The routes of a route command (``parse_command``) or of an
    ``announce attributes ... nlri`` command with the same attributes; None
    for anything else."""
    parsed = parse_command(line)
    if parsed is not None:
        return [parsed]
    match = _ATTRIBUTES.match(line)
    if match is None:
        return None
    neighbor, next_hop, origin, path, med, local_pref, prefixes = match.groups()
    prefixes = prefixes.split()
    if not prefixes or any("/" not in p or (":" in p) != (":" in next_hop) for p in prefixes):
        return None
    as_path = tuple(int(a) for a in path.split())
    med = None if med is None else int(med)
    local_pref = None if local_pref is None else int(local_pref)
    return [RouteChange(neighbor, True, prefix, next_hop, origin, as_path, med, local_pref) for prefix in prefixes]
