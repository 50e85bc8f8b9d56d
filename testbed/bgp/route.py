"""The values the BGP engine works on: neighbors, routes and their attributes.

Everything here is an immutable value. A ``Route`` enters the engine as it was
received (prefix, next hop, AS path, origin, MED), leaves import policy
annotated with where it came from and how much it is preferred, and leaves
export policy as the route to send. ``to_json``/``from_json`` turn a route
into plain JSON data and back, for RIB dumps and for the route agent. The
small helpers at the end give prefixes and addresses a numeric sort order, so
that every listing the engine produces is ordered the same way on every run.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from dataclasses import MISSING, dataclass, field, fields
from enum import Enum, IntEnum
from functools import lru_cache

from testbed.bgp.community import community_name, community_set, community_text, large_set, large_text

__all__ = [
    "Relationship",
    "Origin",
    "Neighbor",
    "Route",
    "RouteGroup",
    "RouteGroups",
    "with_prefix",
    "normalise_prefix",
    "prefix_sort_key",
    "address_sort_key",
]


class Relationship(str, Enum):
    """What the *neighbor* is to the local router.

    ``INTERNAL`` is an iBGP neighbor: another router of the same AS.
    """

    CUSTOMER = "customer"
    PEER = "peer"
    PROVIDER = "provider"
    INTERNAL = "internal"
    # The neighbor is an IXP route server: treated as a peer, except that
    # the first AS of its routes is the announcing member's, not its own.
    ROUTE_SERVER = "route-server"
    # We are the route server and the neighbor is a member (a client).
    RS_CLIENT = "rs-client"


class Origin(IntEnum):
    """The ORIGIN attribute; lower is preferred by the decision process."""

    IGP = 0
    EGP = 1
    INCOMPLETE = 2

    @classmethod
    def parse(cls, text: str | int | Origin) -> Origin:
        """The origin named ``text``: ``"igp"``, ``"egp"``, ``"incomplete"``
        or ``"?"`` (any case), or an ``Origin``/its number.

        Raises ``ValueError`` for anything else.
        """
        if isinstance(text, int):
            return cls(text)
        try:
            return _ORIGIN_NAMES[str(text).strip().lower()]
        except KeyError:
            raise ValueError(
                f"unknown BGP origin {text!r}: expected igp, egp, incomplete or ?"
            ) from None

    @property
    def text(self) -> str:
        """The lower-case name used in JSON: ``"igp"``, ``"egp"``, ``"incomplete"``."""
        return self.name.lower()


_ORIGIN_NAMES = {
    "igp": Origin.IGP,
    "i": Origin.IGP,
    "egp": Origin.EGP,
    "e": Origin.EGP,
    "incomplete": Origin.INCOMPLETE,
    "?": Origin.INCOMPLETE,
}


def normalise_prefix(text: str) -> str:
    """The canonical text of network ``text`` (``"10.1.0.0/16"``,
    ``"2001:db8::/32"``).

    Host bits must be zero, as on the wire. Raises ``ValueError`` naming the
    bad input otherwise.
    """
    if type(text) is str and text in _SORT_KEYS:
        return text
    if not isinstance(text, str):
        raise ValueError(f"invalid prefix {text!r}: not text")
    fast = _fast_ipv4(text)
    if fast is not None:
        normal, key = text, (4, fast[0], fast[1], "")
    elif (fast := _fast_ipv6(text)) is not None:
        normal, key = text, (6, fast[0], fast[1], "")
    else:
        try:
            net = ipaddress.ip_network(text.strip(), strict=True)
        except ValueError as exc:
            raise ValueError(f"invalid prefix {text!r}: {exc}") from None
        normal, key = str(net), (net.version, int(net.network_address), net.prefixlen, "")
    _remember(normal, key)
    return normal


def prefix_sort_key(prefix: str) -> tuple:
    """A key that orders prefixes numerically: IPv4 before IPv6, then by
    network address, then by length. Text that is not a prefix sorts last,
    by its characters."""
    key = _SORT_KEYS.get(prefix)
    if key is not None:
        return key
    fast = _fast_ipv4(prefix)
    if fast is not None:
        key = (4, fast[0], fast[1], "")
        _remember(prefix, key)
        return key
    try:
        net = ipaddress.ip_network(prefix, strict=False)
    except ValueError:
        return (9, 0, 0, prefix)
    key = (net.version, int(net.network_address), net.prefixlen, "")
    if str(net) == prefix:
        _remember(prefix, key)
    return key


# Canonical prefix texts already seen, with their sort keys: a router gets
# the same prefixes again and again (from each neighbor, on every change),
# and checks and sorts each of them, so one parse serves both for good.
_SORT_KEYS: dict[str, tuple] = {}
_SORT_KEYS_MAX = 1 << 20


def _remember(prefix: str, key: tuple) -> None:
    if len(_SORT_KEYS) >= _SORT_KEYS_MAX:
        _SORT_KEYS.clear()
    _SORT_KEYS[prefix] = key


_LENGTHS = {str(bits): bits for bits in range(33)}  # canonical prefix lengths: no sign, no leading zero
_aton, _ntoa = socket.inet_aton, socket.inet_ntoa


def _fast_ipv4(text: str) -> tuple[int, int] | None:
    """(network as a number, length) if ``text`` is an IPv4 prefix already
    in canonical form with no host bits; ``None`` if it is anything else,
    for ``ipaddress`` to judge."""
    # ipaddress takes ~10 us a prefix; full tables are mostly canonical IPv4
    # prefixes, and this check costs 0.7 us. inet_aton also takes forms
    # that are not canonical ("10.1", "010.0.0.1"): what it parsed must
    # print back as the same text.
    address, _, length = text.partition("/")
    bits = _LENGTHS.get(length)
    if bits is None:
        return None
    try:
        packed = _aton(address)
    except OSError:
        return None
    if _ntoa(packed) != address:
        return None
    value = int.from_bytes(packed, "big")
    if value & ((1 << (32 - bits)) - 1):
        return None
    return value, bits


_LENGTHS6 = {str(bits): bits for bits in range(129)}
_AF_INET6 = socket.AF_INET6


def _fast_ipv6(text: str) -> tuple[int, int] | None:
    """``_fast_ipv4`` for IPv6: ``ipaddress`` takes ~15 us a prefix, and
    every speaker's agent meets each IPv6 prefix of the lab at least once.
    Canonical means what ``str(ipaddress.ip_network(text))`` gives, which
    is what ``inet_ntop`` prints (RFC 5952: lower case, the longest run of
    two or more zero groups compressed, the first of equal runs) except
    for the dotted forms ``inet_ntop`` gives some addresses: any text with
    a dot is left to ``ipaddress``."""
    address, _, length = text.partition("/")
    bits = _LENGTHS6.get(length)
    if bits is None or "." in address:
        return None
    try:
        packed = socket.inet_pton(_AF_INET6, address)
    except OSError:
        return None
    if socket.inet_ntop(_AF_INET6, packed) != address:
        return None
    value = int.from_bytes(packed, "big")
    if value & ((1 << (128 - bits)) - 1):
        return None
    return value, bits


@lru_cache(maxsize=4096)
def address_sort_key(address: str | None) -> tuple:
    """A key that orders IP addresses numerically (IPv4 before IPv6);
    ``None`` sorts first and text that is not an address last."""
    if address is None:
        return (0, -1, "")
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return (9, 0, address)
    return (ip.version, int(ip), "")


def frozen_slots(cls):
    """``@dataclass(frozen=True, slots=True)``, also on Python 3.9, which
    lacks ``slots=`` (PyPy 3.9 runs the speakers of the ``zygote-pypy``
    process model, ``testbed.speaker.pypy``): there the class is made
    again with ``__slots__`` of its fields, as 3.10 does."""
    if sys.version_info >= (3, 10):
        return dataclass(frozen=True, slots=True)(cls)
    return _slotted(dataclass(frozen=True)(cls))


def _slotted(cls):
    """The frozen dataclass ``cls`` made again with ``__slots__`` of its
    fields and no ``__dict__``."""
    names = tuple(f.name for f in fields(cls))
    namespace = {k: v for k, v in cls.__dict__.items() if k not in names + ("__dict__", "__weakref__")}
    namespace["__slots__"] = names
    slotted = type(cls)(cls.__name__, cls.__bases__, namespace)
    slotted.__qualname__ = cls.__qualname__
    return slotted


@dataclass(frozen=True)
class Neighbor:
    """A BGP neighbor as the local router sees it.

    ``address`` (the peer's session address) is the neighbor's key
    everywhere. ``local_address``/``local_address6`` are our own addresses on
    the link: the next hop of the IPv4/IPv6 routes we send it. With
    ``local_address6`` ``None`` no IPv6 route is sent to this neighbor.
    ``ibgp`` (derived) says whether the relationship is ``INTERNAL``.
    """

    address: str
    asn: int
    relationship: Relationship
    router_id: str
    local_address: str
    local_address6: str | None = None
    # What the local router's policy does on this session (the knobs of
    # ``testbed.bgp.rules.SessionPolicy``); ``None`` is the plain
    # relationship policy.
    policy: object = None

    # Whether this is an iBGP neighbor (same AS). Derived from
    # ``relationship``; kept as a field rather than a property because policy
    # reads it for every route of every update.
    ibgp: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if type(self.relationship) is not Relationship:
            object.__setattr__(self, "relationship", Relationship(self.relationship))
        object.__setattr__(self, "ibgp", self.relationship is Relationship.INTERNAL)


@frozen_slots
class Route:
    """A route to ``prefix`` with its path attributes.

    The same type serves three places: as received (only prefix, next hop,
    AS path, origin, MED and, over iBGP, local_pref are meaningful), in the
    Adj-RIB-In/Loc-RIB (annotated by import policy with the neighbor it came
    from, its relationship and local_pref, and ``rejected`` when import
    policy refused it), and as sent (neighbor fields ``None``). A locally
    originated route has ``next_hop`` and ``neighbor`` ``None``.
    """

    prefix: str
    next_hop: str | None
    as_path: tuple[int, ...] = ()
    origin: Origin = Origin.IGP
    med: int | None = None
    local_pref: int | None = None
    neighbor: str | None = None
    neighbor_asn: int | None = None
    neighbor_router_id: str | None = None
    relationship: Relationship | None = None
    ebgp: bool = True
    rejected: str | None = None
    # Standard communities as sorted 32-bit numbers, large ones as sorted
    # triples (``testbed.bgp.community``); ``otc`` is the Only-to-Customer
    # attribute of RFC 9234 (an ASN), ``None`` when absent.
    communities: tuple[int, ...] = ()
    large_communities: tuple[tuple[int, int, int], ...] = ()
    otc: int | None = None
    # IGP cost from this router to the next hop (iBGP routes only).
    igp_cost: int | None = None

    def __post_init__(self) -> None:
        # Callers parsing JSON hand over lists and strings; coerce them here so
        # that equal routes compare equal and routes stay hashable.
        if type(self.as_path) is not tuple:
            object.__setattr__(self, "as_path", tuple(int(a) for a in self.as_path))
        if self.communities:
            object.__setattr__(self, "communities", community_set(self.communities))
        if self.large_communities:
            object.__setattr__(self, "large_communities", large_set(self.large_communities))
        if type(self.origin) is not Origin:
            object.__setattr__(self, "origin", Origin.parse(self.origin))
        if self.relationship is not None and type(self.relationship) is not Relationship:
            object.__setattr__(self, "relationship", Relationship(self.relationship))

    @property
    def family(self) -> int:
        """4 or 6: the address family of the prefix."""
        return 6 if ":" in self.prefix else 4

    @property
    def local(self) -> bool:
        """Whether the route is originated by the local router."""
        return self.neighbor is None

    def to_json(self) -> dict:
        """The route as JSON-ready data: ints, strings, lists, ``None``."""
        return {
            "prefix": self.prefix,
            "next_hop": self.next_hop,
            "as_path": list(self.as_path),
            "origin": self.origin.text,
            "med": self.med,
            "local_pref": self.local_pref,
            "neighbor": self.neighbor,
            "neighbor_asn": self.neighbor_asn,
            "neighbor_router_id": self.neighbor_router_id,
            "relationship": None if self.relationship is None else self.relationship.value,
            "ebgp": self.ebgp,
            "rejected": self.rejected,
            "communities": [community_text(c) for c in self.communities],
            "large_communities": [large_text(c) for c in self.large_communities],
            "otc": self.otc,
            "igp_cost": self.igp_cost,
        }

    @classmethod
    def from_json(cls, data: dict) -> Route:
        """The route ``to_json`` gave ``data`` for; missing keys take their
        defaults, so a bare ``{"prefix": ..., "next_hop": ...}`` is enough."""
        relationship = data.get("relationship")
        return cls(
            prefix=data["prefix"],
            next_hop=data.get("next_hop"),
            as_path=tuple(int(a) for a in data.get("as_path") or ()),
            origin=Origin.parse(data.get("origin", "igp")),
            med=data.get("med"),
            local_pref=data.get("local_pref"),
            neighbor=data.get("neighbor"),
            neighbor_asn=data.get("neighbor_asn"),
            neighbor_router_id=data.get("neighbor_router_id"),
            relationship=None if relationship is None else Relationship(relationship),
            ebgp=bool(data.get("ebgp", True)),
            rejected=data.get("rejected"),
            communities=tuple(data.get("communities") or ()),
            large_communities=tuple(data.get("large_communities") or ()),
            otc=data.get("otc"),
            igp_cost=data.get("igp_cost"),
        )

    def __str__(self) -> str:
        path = " ".join(str(a) for a in self.as_path)
        if self.local:
            where = "locally originated"
        else:
            rel = self.relationship.value if self.relationship else "?"
            where = (f"from {self.neighbor} (AS{self.neighbor_asn}, {rel}, "
                     f"{'eBGP' if self.ebgp else 'iBGP'}) next hop {self.next_hop}")
        text = f"{self.prefix} {where} path [{path}] origin {self.origin.text}"
        if self.local_pref is not None:
            text += f" local_pref {self.local_pref}"
        if self.med is not None:
            text += f" med {self.med}"
        if self.communities:
            text += " communities " + " ".join(community_name(c) for c in self.communities)
        if self.large_communities:
            text += " large " + " ".join(large_text(c) for c in self.large_communities)
        if self.otc is not None:
            text += f" otc {self.otc}"
        if self.igp_cost is not None:
            text += f" igp cost {self.igp_cost}"
        if self.rejected is not None:
            text += f" REJECTED: {self.rejected}"
        return text


def store_through_slots(cls, coerce_when: str = "", **context):
    """Give the frozen, slotted dataclass ``cls`` an ``__init__`` that
    stores each field through its slot's descriptor, and runs
    ``__post_init__`` only when ``coerce_when`` (a condition on the
    parameters, which may use the names in ``context``) holds: the same signature and result as
    the generated one, which goes through ``object.__setattr__`` by name for
    every field and costs 2.5 times as much. A router builds a route and
    an action or two for every prefix it receives, so building them was a
    tenth of its work when it took in a full table. Returns ``cls``."""
    field_names = [f.name for f in fields(cls)]
    defaults = {f"_d_{f.name}": f.default for f in fields(cls) if f.default is not MISSING}
    params = ", ".join(f"{name}=_d_{name}" if f"_d_{name}" in defaults else name for name in field_names)
    body = "".join(f"    _s_{name}(self, {name})\n" for name in field_names)
    if coerce_when:
        body += f"    if {coerce_when}:\n        self.__post_init__()\n"
    namespace = {**defaults, **_setters(cls), **context}
    exec(f"def __init__(self, {params}):\n{body}", namespace)  # as dataclasses makes its own
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    cls.__init__ = init
    return cls


def _setters(cls) -> dict:
    return {f"_s_{f.name}": cls.__dict__[f.name].__set__ for f in fields(cls)}


store_through_slots(
    Route, "(type(as_path) is not tuple or communities or large_communities or type(origin) is not _Origin"
           " or relationship is not None and type(relationship) is not _Relationship)",
    _Origin=Origin, _Relationship=Relationship)


def _make_with_prefix(cls):
    namespace = {**_setters(cls), "_new": object.__new__, "_cls": cls}
    exec("def with_prefix(route, prefix):\n    new = _new(_cls)\n    _s_prefix(new, prefix)\n"
         + "".join(f"    _s_{f.name}(new, route.{f.name})\n" for f in fields(cls) if f.name != "prefix")
         + "    return new\n", namespace)
    return namespace["with_prefix"]


_with_prefix = _make_with_prefix(Route)


def with_prefix(route: Route, prefix: str) -> Route:
    """``route`` with ``prefix`` instead of its own (``prefix`` as given,
    not normalised): ``dataclasses.replace(route, prefix=prefix)``, at a
    third of the cost."""
    return _with_prefix(route, prefix)


class RouteGroup:
    """Routes that differ only in their prefix, as one UPDATE carries them:
    ``template``'s attributes with each of ``prefixes``. It iterates and
    counts as those routes; ``RouterEngine.receive`` imports the attributes
    once for the whole group where import policy cannot depend on the
    prefix."""

    __slots__ = ("template", "prefixes")

    def __init__(self, template: Route, prefixes: list[str]):
        self.template = template
        self.prefixes = prefixes

    def __iter__(self):
        template = self.template
        return (_with_prefix(template, prefix) for prefix in self.prefixes)

    def __len__(self) -> int:
        return len(self.prefixes)

    def __repr__(self) -> str:
        return f"RouteGroup({self.template!r}, {len(self.prefixes)} prefixes)"


class RouteGroups:
    """The routes of one UPDATE that carries several ``RouteGroup`` (an
    IPv4 and an IPv6 next hop beside each other): it iterates and counts
    as all their routes; ``RouterEngine.receive`` imports each group as a
    group."""

    __slots__ = ("groups",)

    def __init__(self, groups: list[RouteGroup]):
        self.groups = groups

    def __iter__(self):
        return (route for group in self.groups for route in group)

    def __len__(self) -> int:
        return sum(len(group) for group in self.groups)

    def __repr__(self) -> str:
        return f"RouteGroups({self.groups!r})"
