"""The policy language: what a router does on one BGP session, beyond its
business relationship.

A topology gives each side of a session a policy as plain data (a dict, so
that it travels in the agent's JSON configuration unchanged)::

    {"import": [  # terms, in order
         {"match": {"as_path": "_64666_"}, "action": "reject"},
         {"match": {"prefix": ["203.0.113.0/24 le 24"]},
          "set": {"local_pref": 150, "add_communities": ["64500:1"]}}],
     "export": [{"match": {"community": ["64500:666"]}, "action": "reject"}],
     "max_prefix": 100, "prepend": 2, "med": 10,
     "announce": ["198.51.100.0/24"], "blackhole": True}

``parse_policy`` checks it and builds a ``SessionPolicy``; every mistake is
a ``PolicyError`` naming the field (``import[1].match.prefix[0]``) and the
value. Terms run in order over a route: a term whose ``match`` matches
applies its ``set`` and, if it has an ``action``, decides (``accept`` or
``reject``); a term without ``action`` only modifies and goes on. When no
term decides, the relationship rules decide (Gao-Rexford: see
``testbed.bgp.policy``). On export, ``accept`` overrides the relationship
rules: that is how a route leak is configured on purpose.

``Roa`` and ``rpki_state`` are route origin validation (RFC 6811).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, replace
from functools import lru_cache

from testbed.bgp.community import community_set, large_set, parse_community, parse_large

__all__ = [
    "PolicyError", "PrefixRange", "Match", "Term", "SessionPolicy", "Roa",
    "parse_policy", "parse_range", "parse_roas", "rpki_state", "run_terms",
    "VALID", "INVALID", "NOT_FOUND",
]


class PolicyError(ValueError):
    """A policy that cannot be used; the message names the field and value."""


@dataclass(frozen=True)
class PrefixRange:
    """Prefixes inside ``network`` whose length is within ``ge``..``le``
    (``"10.0.0.0/8 le 24"``; a bare prefix matches only itself)."""

    network: object
    ge: int
    le: int
    text: str

    def contains(self, prefix: str) -> bool:
        net = _network(prefix)
        return (net.version == self.network.version and self.ge <= net.prefixlen <= self.le
                and net.subnet_of(self.network))


@lru_cache(maxsize=1 << 16)
def _network(prefix: str):
    return ipaddress.ip_network(prefix, strict=False)


def parse_range(text: object) -> PrefixRange:
    """A ``PrefixRange`` from ``"P"``, ``"P le N"``, ``"P ge N"`` or
    ``"P ge N le M"``. Raises ``PolicyError``."""
    if not isinstance(text, str):
        raise PolicyError(f"{text!r} is not a prefix like '203.0.113.0/24 le 32'")
    words = text.split()
    try:
        net = ipaddress.ip_network(words[0], strict=True) if words else None
    except ValueError as exc:
        raise PolicyError(f"{text!r}: {exc}") from None
    if net is None:
        raise PolicyError("empty prefix")
    ge = le = net.prefixlen
    rest = words[1:]
    bounds = {}
    while rest:
        if len(rest) < 2 or rest[0] not in ("ge", "le") or not rest[1].isdigit() or rest[0] in bounds:
            raise PolicyError(f"{text!r}: after the prefix expected 'ge N' and/or 'le N'")
        bounds[rest[0]] = int(rest[1])
        rest = rest[2:]
    if "ge" in bounds:
        ge = bounds["ge"]
        le = net.max_prefixlen
    if "le" in bounds:
        le = bounds["le"]
    if not net.prefixlen <= ge <= le <= net.max_prefixlen:
        raise PolicyError(f"{text!r}: lengths must satisfy {net.prefixlen} <= ge <= le <= "
                          f"{net.max_prefixlen}")
    return PrefixRange(net, ge, le, text)


def _path_regex(pattern: str):
    # '_' is the usual AS-path delimiter: the start, the end or a space.
    return re.compile(pattern.replace("_", r"(?:^|$|\s)"))


@dataclass(frozen=True)
class Match:
    """Conditions that must all hold; an empty ``Match`` matches every route.

    ``community``/``large_community`` match when the route carries any of
    the listed ones; ``origin_as`` is the last AS of the path; ``rpki`` is
    ``"valid"``, ``"invalid"`` or ``"not-found"``. ``as_path`` (a regular
    expression over the ASNs separated by spaces, ``_`` matching a boundary)
    and ``origin_as`` look at the path as the router holds it, so on export
    before the local AS is prepended; ``learned_from`` (the
    relationship of the neighbor the route was learned from, or
    ``"local"``) and ``from_asn`` (that neighbor's AS) look at the route as
    the router holds it, also on export.
    """

    prefix: tuple[PrefixRange, ...] | None = None
    as_path: str | None = None
    origin_as: tuple[int, ...] | None = None
    community: tuple[int, ...] | None = None
    large_community: tuple[tuple[int, int, int], ...] | None = None
    family: int | None = None
    rpki: str | None = None
    learned_from: tuple[str, ...] | None = None
    from_asn: tuple[int, ...] | None = None
    _path: object = field(default=None, repr=False, compare=False)

    def matches(self, route, rpki=None, source=None) -> bool:
        if source is None:
            source = route
        if self.learned_from is not None:
            learned = "local" if source.neighbor is None else source.relationship.value
            if learned not in self.learned_from:
                return False
        if self.from_asn is not None and source.neighbor_asn not in self.from_asn:
            return False
        if self.family is not None and route.family != self.family:
            return False
        if self.prefix is not None and not any(r.contains(route.prefix) for r in self.prefix):
            return False
        # The AS path as the router holds it: on export, before the local AS
        # is prepended, as on common routers.
        path = source.as_path
        if self._path is not None and not self._path.search(" ".join(map(str, path))):
            return False
        if self.origin_as is not None and (not path or path[-1] not in self.origin_as):
            return False
        if self.community is not None and not set(self.community) & set(route.communities):
            return False
        if self.large_community is not None and not set(self.large_community) & set(route.large_communities):
            return False
        if self.rpki is not None and (rpki is None or rpki(route) != self.rpki):
            return False
        return True


@dataclass(frozen=True)
class Term:
    """``match`` -> ``set`` -> ``action`` (``"accept"``, ``"reject"`` or
    ``None`` to go on to the next term)."""

    match: Match = Match()
    local_pref: int | None = None
    med: int | None = None
    prepend: int = 0
    add_communities: tuple[int, ...] = ()
    remove_communities: tuple[int, ...] | str = ()   # or "all"
    add_large_communities: tuple[tuple[int, int, int], ...] = ()
    remove_large_communities: tuple[tuple[int, int, int], ...] | str = ()
    action: str | None = None

    def modify(self, route, local_asn: int | None = None):
        changes: dict = {}
        if self.local_pref is not None:
            changes["local_pref"] = self.local_pref
        if self.med is not None:
            changes["med"] = self.med
        if self.prepend and local_asn is not None:
            changes["as_path"] = (local_asn,) * self.prepend + route.as_path
        if self.add_communities or self.remove_communities:
            kept = () if self.remove_communities == "all" else tuple(
                c for c in route.communities if c not in self.remove_communities)
            changes["communities"] = community_set(kept + self.add_communities)
        if self.add_large_communities or self.remove_large_communities:
            kept = () if self.remove_large_communities == "all" else tuple(
                c for c in route.large_communities if c not in self.remove_large_communities)
            changes["large_communities"] = large_set(kept + self.add_large_communities)
        return replace(route, **changes) if changes else route


def run_terms(terms, route, rpki=None, local_asn: int | None = None, source=None):
    """``(route as modified, "accept" | "reject" | None)`` after ``terms``;
    ``source`` is the route as the router holds it (for ``learned_from``)."""
    for term in terms:
        if term.match.matches(route, rpki, source):
            route = term.modify(route, local_asn)
            if term.action is not None:
                return route, term.action
    return route, None


@dataclass(frozen=True)
class SessionPolicy:
    """One router's policy on one session (see the module docstring).

    ``local_pref`` replaces the relationship's local_pref on import; ``med``
    and ``prepend`` (extra copies of the local AS) apply on export, ``med``
    ``"igp"`` sending the IGP cost to the route's next hop inside the AS
    (so that a neighbor honouring MEDs carries traffic to the exit nearest
    the destination: "cold potato");
    ``announce`` limits what is exported to routes inside these ranges
    (selective announcement); ``max_prefix`` tears the session down when the
    neighbor sends more accepted routes; ``blackhole`` honours the
    BLACKHOLE community (RFC 7999) from this neighbor; ``rov`` drops routes
    whose origin is RPKI-invalid (RFC 6811); ``otc`` applies the
    Only-to-Customer rules of RFC 9234 with roles taken from the
    relationship.
    """

    import_terms: tuple[Term, ...] = ()
    export_terms: tuple[Term, ...] = ()
    local_pref: int | None = None
    med: int | str | None = None
    prepend: int = 0
    announce: tuple[PrefixRange, ...] | None = None
    max_prefix: int | None = None
    blackhole: bool = False
    rov: bool = False
    otc: bool = False


DEFAULT_POLICY = SessionPolicy()

_POLICY_KEYS = {"import", "export", "local_pref", "med", "prepend", "announce", "max_prefix",
                "blackhole", "rov", "otc"}
_MATCH_KEYS = {"prefix", "as_path", "origin_as", "community", "large_community", "family", "rpki",
               "learned_from", "from_asn"}
LEARNED_FROM = ("local", "customer", "peer", "provider", "internal", "route-server", "rs-client")
_SET_KEYS = {"local_pref", "med", "prepend", "add_communities", "remove_communities",
             "add_large_communities", "remove_large_communities"}
_TERM_KEYS = {"match", "set", "action"}
MAX_PREPEND = 10


def _unknown(where: str, got, known) -> None:
    # repr as the key: keys read from data may be of any, mixed types.
    extra = sorted(set(got) - set(known), key=repr)
    if extra:
        raise PolicyError(f"{where}: unknown key {extra[0]!r} (known: {', '.join(sorted(known))})")


def _int(where: str, value, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise PolicyError(f"{where}: {value!r} must be a whole number in {low}..{high}")
    return value


def _list(where: str, value) -> list:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise PolicyError(f"{where}: {value!r} must be a list")
    return list(value)


def _each(where: str, value, parse) -> tuple:
    out = []
    for index, item in enumerate(_list(where, value)):
        try:
            out.append(parse(item))
        except ValueError as exc:
            raise PolicyError(f"{where}[{index}]: {exc}") from None
    return tuple(out)


def _match(where: str, data) -> Match:
    if data is None:
        return Match()
    if not isinstance(data, dict):
        raise PolicyError(f"{where}: {data!r} must be a dict of conditions")
    _unknown(where, data, _MATCH_KEYS)
    fields: dict = {}
    if "prefix" in data:
        fields["prefix"] = _each(f"{where}.prefix", data["prefix"], parse_range)
    if "as_path" in data:
        pattern = data["as_path"]
        if not isinstance(pattern, str):
            raise PolicyError(f"{where}.as_path: {pattern!r} must be a regular expression (text)")
        try:
            fields["_path"] = _path_regex(pattern)
        except re.error as exc:
            raise PolicyError(f"{where}.as_path: {pattern!r} is not a regular expression: {exc}") from None
        fields["as_path"] = pattern
    if "origin_as" in data:
        fields["origin_as"] = tuple(_int(f"{where}.origin_as[{i}]", a, 1, 4294967294)
                                    for i, a in enumerate(_list(f"{where}.origin_as", data["origin_as"])))
    if "community" in data:
        fields["community"] = _each(f"{where}.community", data["community"], parse_community)
    if "large_community" in data:
        fields["large_community"] = _each(f"{where}.large_community", data["large_community"], parse_large)
    if "family" in data:
        if data["family"] not in (4, 6) or isinstance(data["family"], bool):
            raise PolicyError(f"{where}.family: {data['family']!r} must be 4 or 6")
        fields["family"] = data["family"]
    if "learned_from" in data:
        kinds = _list(f"{where}.learned_from", data["learned_from"])
        for index, kind in enumerate(kinds):
            if kind not in LEARNED_FROM:
                raise PolicyError(f"{where}.learned_from[{index}]: {kind!r} is not one of "
                                  f"{', '.join(LEARNED_FROM)}")
        fields["learned_from"] = tuple(kinds)
    if "from_asn" in data:
        fields["from_asn"] = tuple(_int(f"{where}.from_asn[{i}]", a, 1, 4294967294)
                                   for i, a in enumerate(_list(f"{where}.from_asn", data["from_asn"])))
    if "rpki" in data:
        if data["rpki"] not in (VALID, INVALID, NOT_FOUND):
            raise PolicyError(f"{where}.rpki: {data['rpki']!r} must be 'valid', 'invalid' or 'not-found'")
        fields["rpki"] = data["rpki"]
    return Match(**fields)


def _removal(where: str, value, parse):
    if value == "all":
        return "all"
    return _each(where, value, parse)


def _term(where: str, data, direction: str) -> Term:
    if not isinstance(data, dict):
        raise PolicyError(f"{where}: {data!r} must be a dict with 'match', 'set' and/or 'action'")
    _unknown(where, data, _TERM_KEYS)
    fields: dict = {"match": _match(f"{where}.match", data.get("match"))}
    action = data.get("action")
    if action not in (None, "accept", "reject"):
        raise PolicyError(f"{where}.action: {action!r} must be 'accept' or 'reject'")
    fields["action"] = action
    changes = data.get("set") or {}
    if not isinstance(changes, dict):
        raise PolicyError(f"{where}.set: {changes!r} must be a dict of changes")
    _unknown(f"{where}.set", changes, _SET_KEYS)
    at = f"{where}.set"
    if "local_pref" in changes:
        if direction != "import":
            raise PolicyError(f"{at}.local_pref: local_pref is set on import (it never leaves the AS)")
        fields["local_pref"] = _int(f"{at}.local_pref", changes["local_pref"], 0, 4294967295)
    if "med" in changes:
        fields["med"] = _int(f"{at}.med", changes["med"], 0, 4294967295)
    if "prepend" in changes:
        if direction != "export":
            raise PolicyError(f"{at}.prepend: prepending applies to export terms")
        fields["prepend"] = _int(f"{at}.prepend", changes["prepend"], 0, MAX_PREPEND)
    if "add_communities" in changes:
        fields["add_communities"] = _each(f"{at}.add_communities", changes["add_communities"], parse_community)
    if "remove_communities" in changes:
        fields["remove_communities"] = _removal(f"{at}.remove_communities", changes["remove_communities"],
                                                parse_community)
    if "add_large_communities" in changes:
        fields["add_large_communities"] = _each(f"{at}.add_large_communities",
                                                changes["add_large_communities"], parse_large)
    if "remove_large_communities" in changes:
        fields["remove_large_communities"] = _removal(f"{at}.remove_large_communities",
                                                      changes["remove_large_communities"], parse_large)
    if action is None and len(fields) == 2 and not changes:
        raise PolicyError(f"{where}: the term neither changes the route nor decides (give 'set' or 'action')")
    return Term(**fields)


def _flag(where: str, value) -> bool:
    if not isinstance(value, bool):
        raise PolicyError(f"{where}: {value!r} must be True or False")
    return value


def parse_policy(data, where: str = "policy") -> SessionPolicy:
    """The ``SessionPolicy`` of ``data`` (``None`` is the default policy).
    Raises ``PolicyError`` naming ``where`` and the field at fault."""
    if data is None:
        return DEFAULT_POLICY
    if isinstance(data, SessionPolicy):
        return data
    if not isinstance(data, dict):
        raise PolicyError(f"{where}: {data!r} must be a dict (see the policy language in the README)")
    _unknown(where, data, _POLICY_KEYS)
    fields: dict = {}
    for direction in ("import", "export"):
        if direction in data:
            terms = _list(f"{where}.{direction}", data[direction])
            fields[f"{direction}_terms"] = tuple(_term(f"{where}.{direction}[{i}]", t, direction)
                                                 for i, t in enumerate(terms))
    if "local_pref" in data:
        fields["local_pref"] = _int(f"{where}.local_pref", data["local_pref"], 0, 4294967295)
    if "med" in data:
        fields["med"] = "igp" if data["med"] == "igp" else _int(f"{where}.med", data["med"], 0, 4294967295)
    if "prepend" in data:
        fields["prepend"] = _int(f"{where}.prepend", data["prepend"], 0, MAX_PREPEND)
    if "max_prefix" in data:
        fields["max_prefix"] = _int(f"{where}.max_prefix", data["max_prefix"], 1, 10_000_000)
    if "announce" in data:
        fields["announce"] = _each(f"{where}.announce", data["announce"], parse_range)
    for flag in ("blackhole", "rov", "otc"):
        if flag in data:
            fields[flag] = _flag(f"{where}.{flag}", data[flag])
    return SessionPolicy(**fields)


# -- route origin validation (RFC 6811) -----------------------------------------

VALID, INVALID, NOT_FOUND = "valid", "invalid", "not-found"


@dataclass(frozen=True)
class Roa:
    """A Route Origin Authorisation: ``asn`` may originate ``prefix`` and
    its more-specifics up to ``max_length``."""

    prefix: str
    asn: int
    max_length: int

    def __str__(self) -> str:
        return f"ROA {self.prefix}-{self.max_length} AS{self.asn}"


def parse_roas(data, where: str = "roas") -> tuple[Roa, ...]:
    """ROAs from ``[{"prefix": ..., "asn": ..., "max_length": ...}]``
    (``max_length`` defaults to the prefix length). Raises ``PolicyError``."""
    out = []
    for index, item in enumerate(_list(where, data)):
        at = f"{where}[{index}]"
        if not isinstance(item, dict):
            raise PolicyError(f"{at}: {item!r} must be a dict with prefix, asn and max_length")
        _unknown(at, item, {"prefix", "asn", "max_length"})
        try:
            if not isinstance(item.get("prefix"), str):
                # ip_network would take a number as a /32 host route
                raise TypeError("not a prefix like '203.0.113.0/24'")
            net = ipaddress.ip_network(item.get("prefix"), strict=True)
        except (TypeError, ValueError) as exc:
            raise PolicyError(f"{at}.prefix: {item.get('prefix')!r}: {exc}") from None
        asn = _int(f"{at}.asn", item.get("asn"), 0, 4294967294)
        max_length = item.get("max_length", net.prefixlen)
        max_length = _int(f"{at}.max_length", max_length, net.prefixlen, net.max_prefixlen)
        out.append(Roa(str(net), asn, max_length))
    return tuple(out)


def rpki_state(roas, prefix: str, origin_as: int | None) -> str:
    """RFC 6811: ``"valid"`` if a ROA covering ``prefix`` authorises
    ``origin_as`` at this length, ``"invalid"`` if ROAs cover it but none
    does, ``"not-found"`` if no ROA covers it. AS 0 ROAs authorise nobody."""
    net = _network(prefix)
    covered = False
    for roa in roas:
        roa_net = _network(roa.prefix)
        if roa_net.version != net.version or not net.subnet_of(roa_net):
            continue
        covered = True
        if roa.asn != 0 and roa.asn == origin_as and net.prefixlen <= roa.max_length:
            return VALID
    return INVALID if covered else NOT_FOUND
