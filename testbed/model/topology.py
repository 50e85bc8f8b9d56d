"""The topology model: autonomous systems, their business relationships and
how each relationship is physically connected.

A topology module in ``topologies/`` builds a ``Topology`` and leaves it in a
module-level variable named ``topology`` (``testbed.model.loader`` loads
it by name or path). Building never raises for bad
values: every declaration is recorded with the file and line it came from,
and ``Topology.validate()`` (in ``testbed.model.validate``) reports every problem at
once. Nothing here touches the system; the lab layer reads the validated
model through the address plan (``testbed.model.addressing``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

from testbed.errors import TopologyError
from testbed.model.names import Kind, router_name

__all__ = ["IXP", "AutonomousSystem", "InternalLink", "Kind", "PopRef", "Relationship", "Topology", "Where",
           "router_name"]


@dataclass(frozen=True)
class Where:
    """The place in a topology file a declaration came from."""

    file: str
    line: int

    def __str__(self) -> str:
        # Relative to the working directory when under it: short and clickable.
        try:
            shown = Path(self.file).resolve().relative_to(Path.cwd())
        except ValueError:
            shown = Path(self.file)
        return f"{shown}:{self.line}"


def _caller(depth: int = 2) -> Where:
    frame = sys._getframe(depth)
    return Where(frame.f_code.co_filename, frame.f_lineno)


@dataclass(frozen=True)
class PopRef:
    """A point of presence of an AS: where one of its routers stands."""

    system: str
    pop: str


@dataclass
class AutonomousSystem:
    """An AS with its routers and end hosts standing for its customers.

    ``prefixes`` are the IPv4/IPv6 prefixes it originates; ``None`` means
    "give me one of each from the lab's default pools". The first prefix of
    each family holds the LAN of its end hosts.

    ``pops`` names its points of presence: one router each, named
    ``<AS>-<pop>``, joined by iBGP (a full mesh over loopbacks) and an IGP
    over the internal links (``Topology.internal_link``). ``None`` is a
    single router named like the AS. The end hosts hang off the first PoP,
    whose router originates the prefixes.
    """

    asn: object
    name: object
    prefixes: object = None
    hosts: object = 1
    description: str = ""
    where: Where | None = None
    # Whether its router drops RPKI-invalid routes (RFC 6811) and applies
    # the Only-to-Customer rules of RFC 9234 on every eBGP session.
    rov: object = False
    otc: object = False
    # The IXP this AS is the route server of (``add_route_server``).
    route_server: object = None
    pops: object = None
    # The router software ("exabgp", "bird", "frr") and the user's
    # configuration file or template (testbed.model.router_kinds).
    router: object = "exabgp"
    config: object = None

    def __str__(self) -> str:
        return f"AS{self.asn} '{self.name}'"

    def pop(self, name: str) -> PopRef:
        """This AS at its point of presence ``name``, to say where a
        relationship's session runs: ``t.peering(a.pop("west"), b)``."""
        return PopRef(self.name, name)

    @property
    def routers(self) -> list[str]:
        """The names of its routers, the first PoP's first."""
        if not isinstance(self.pops, (list, tuple)) or not self.pops:
            return [router_name(self.name, None)]
        return [router_name(self.name, pop) for pop in self.pops]


@dataclass
class InternalLink:
    """A link between two routers of one AS, with its IGP cost."""

    system: object
    a: object
    b: object
    cost: object = 10
    where: Where | None = None


@dataclass
class IXP:
    """An Internet exchange: a shared peering LAN on a Linux bridge.

    ``lan4``/``lan6`` default to a /24 and a /64 from the lab's IXP pools.
    """

    name: object
    lan4: object = None
    lan6: object = None
    where: Where | None = None


ASRef = Union[AutonomousSystem, str]


@dataclass
class Relationship:
    """A business relationship and the link that carries it.

    For ``TRANSIT``, ``a`` is the provider and ``b`` the customer; for
    ``PEERING`` the order does not matter. ``via`` names the IXP the BGP
    session crosses; ``None`` is a private interconnect (a direct link).
    ``bandwidth`` is in Mbit/s; ``delay`` (e.g. ``"5ms"``) and ``loss`` (%)
    need the netem qdisc. ``password`` protects the BGP session with TCP MD5
    (RFC 2385) on both sides. ``policy`` maps an end's AS name to the
    policy its router applies on this session (``testbed.bgp.rules``).
    """

    kind: object
    a: object
    b: object
    via: object = None
    bandwidth: object = None
    delay: object = None
    loss: object = None
    password: object = None
    where: Where | None = None
    policy: object = None
    # AS name -> the PoP of that AS where the session runs (ASes with pops).
    at: object = None

    def pop_of(self, system: str) -> str | None:
        return (self.at or {}).get(system)

    def describe(self) -> str:
        a, b = _ref_name(self.a), _ref_name(self.b)
        if self.at:
            a = router_name(a, self.pop_of(a)) if isinstance(a, str) else a
            b = router_name(b, self.pop_of(b)) if isinstance(b, str) else b
        if self.kind in (Kind.TRANSIT, Kind.PARTIAL_TRANSIT, Kind.PAID_PEERING):
            text = f"{self.kind.value} {a} -> {b}"
        elif self.kind == Kind.ROUTE_SERVER:
            text = f"route-server client {a} of {b}"
        else:
            text = f"{getattr(self.kind, 'value', self.kind)} {a} -- {b}"
        if self.via is not None:
            text += f" via {_ref_name(self.via)}"
        return text


def _ref_name(ref: object) -> object:
    if isinstance(ref, (AutonomousSystem, IXP)):
        return ref.name
    if isinstance(ref, PopRef):
        return ref.system
    return ref


def _at(*refs: object) -> dict | None:
    found = {ref.system: ref.pop for ref in refs if isinstance(ref, PopRef)}
    return found or None


@dataclass
class Topology:
    """A set of ASes, IXPs and relationships; see the module docstring."""

    name: str
    description: str = ""
    hold_time: int = 9
    systems: list[AutonomousSystem] = field(default_factory=list)
    ixps: list[IXP] = field(default_factory=list)
    relationships: list[Relationship] = field(default_factory=list)
    internal_links: list[InternalLink] = field(default_factory=list)
    roas: list = field(default_factory=list)
    # Special-purpose ranges (testbed.model.special_prefixes) this lab may use.
    allow_special: tuple = ("documentation", "benchmarking")
    source: str | None = None
    where: Where | None = None

    def __post_init__(self) -> None:
        if self.where is None:
            self.where = _caller(3)  # _caller <- __post_init__ <- __init__ <- the topology file

    # -- declaring ---------------------------------------------------------
    def add_as(self, asn: int, name: str, prefixes: list[str] | None = None,
               hosts: int | list[str] = 1, description: str = "", *, rov: bool = False,
               otc: bool = False, pops: list[str] | None = None, router: str = "exabgp",
               config: str | Path | None = None) -> AutonomousSystem:
        """Declare an AS. ``hosts`` is a count or a list of host names.
        ``rov``: its routers drop routes whose origin is RPKI-invalid
        against the topology's ROAs; ``otc``: they apply RFC 9234's
        Only-to-Customer rules (roles from the relationships). ``pops``:
        one router per point of presence (see ``AutonomousSystem``).
        ``router``: "exabgp", "bird" or "frr", ``config`` the user's file or
        Jinja2 template for it (``testbed.model.router_kinds``)."""
        system = AutonomousSystem(asn, name, prefixes, hosts, description, _caller(),
                                  rov=rov, otc=otc, pops=pops, router=router, config=config)
        self.systems.append(system)
        return system

    def internal_link(self, system: ASRef, a: str, b: str, cost: int = 10) -> InternalLink:
        """A link inside AS ``system`` between its PoPs ``a`` and ``b``, with
        IGP cost ``cost``: routers reach each other over the cheapest path,
        and prefer the BGP exit closest to them (hot potato)."""
        link = InternalLink(_ref_name(system), a, b, cost, _caller())
        self.internal_links.append(link)
        return link

    def add_route_server(self, asn: int, name: str, ixp: IXP | str, *,
                         otc: bool = False, router: str = "exabgp",
                         config: str | Path | None = None) -> AutonomousSystem:
        """Declare the route server of ``ixp``: a router on its peering LAN,
        in its own AS, that originates nothing and forwards no traffic
        (RFC 7947). Members connect with ``route_server_client``."""
        system = AutonomousSystem(asn, name, [], 0, f"route server of {_ref_name(ixp)}",
                                  _caller(), otc=otc, route_server=_ref_name(ixp),
                                  router=router, config=config)
        self.systems.append(system)
        return system

    def roa(self, prefix: str, asn: int, max_length: int | None = None) -> None:
        """Publish a ROA: ``asn`` may originate ``prefix`` and its
        more-specifics up to ``max_length`` (default: the prefix's own
        length). Routers with ``rov`` validate against every ROA."""
        entry = {"prefix": prefix, "asn": asn, "where": _caller()}
        if max_length is not None:
            entry["max_length"] = max_length
        self.roas.append(entry)

    def add_ixp(self, name: str, lan4: str | None = None,
                lan6: str | None = None) -> IXP:
        """Declare an IXP peering LAN."""
        ixp = IXP(name, lan4, lan6, _caller())
        self.ixps.append(ixp)
        return ixp

    def transit(self, provider: ASRef, customer: ASRef, *, via: IXP | str | None = None,
                bandwidth: float | None = None, delay: str | None = None,
                loss: float | None = None, password: str | None = None,
                policy: dict | None = None) -> Relationship:
        """``provider`` sells transit to ``customer``."""
        return self._relate(Kind.TRANSIT, provider, customer, via, bandwidth, delay, loss,
                            password, policy)

    def peering(self, a: ASRef, b: ASRef, *, via: IXP | str | None = None,
                bandwidth: float | None = None, delay: str | None = None,
                loss: float | None = None, password: str | None = None,
                policy: dict | None = None) -> Relationship:
        """``a`` and ``b`` peer settlement-free (each gives the other its
        own and its customers' routes)."""
        return self._relate(Kind.PEERING, a, b, via, bandwidth, delay, loss, password, policy)

    def paid_peering(self, payer: ASRef, payee: ASRef, *, via: IXP | str | None = None,
                     bandwidth: float | None = None, delay: str | None = None,
                     loss: float | None = None, password: str | None = None,
                     policy: dict | None = None) -> Relationship:
        """``payer`` pays ``payee`` for peering: routes are exchanged as in
        settlement-free peering (each side's own and customers' routes), but
        the payer prefers a free peer's route to it (local_pref 90 instead
        of 100, still above any transit route)."""
        return self._relate(Kind.PAID_PEERING, payer, payee, via, bandwidth, delay, loss,
                            password, policy)

    def partial_transit(self, provider: ASRef, customer: ASRef, *, via: IXP | str | None = None,
                        bandwidth: float | None = None, delay: str | None = None,
                        loss: float | None = None, password: str | None = None,
                        policy: dict | None = None) -> Relationship:
        """``provider`` sells ``customer`` partial transit: the routes of its
        peers and customers (not those of its own providers), and carries
        the customer's routes to its peers and customers only."""
        return self._relate(Kind.PARTIAL_TRANSIT, provider, customer, via, bandwidth, delay,
                            loss, password, policy)

    def route_server_client(self, member: ASRef, route_server: ASRef, *,
                            password: str | None = None,
                            policy: dict | None = None) -> Relationship:
        """``member`` peers multilaterally through ``route_server`` (declared
        with ``add_route_server``) on the route server's IXP."""
        rel = Relationship(Kind.ROUTE_SERVER, _ref_name(member), _ref_name(route_server),
                           None, None, None, None, password, _caller(2), policy,
                           _at(member, route_server))
        self.relationships.append(rel)
        return rel

    def _relate(self, kind, a, b, via, bandwidth, delay, loss, password, policy) -> Relationship:
        rel = Relationship(kind, _ref_name(a), _ref_name(b), _ref_name(via), bandwidth, delay,
                           loss, password, _caller(3), policy, _at(a, b))
        self.relationships.append(rel)
        return rel

    def relate(self, kind: str, a: ASRef, b: ASRef, **options) -> Relationship:
        """Declare a relationship by kind name (``"transit"``, ``"peering"``,
        ``"paid-peering"``, ``"partial-transit"``, ``"route-server"``);
        unknown kinds are reported by validation."""
        try:
            parsed: object = Kind(kind)
        except ValueError:
            parsed = kind
        rel = Relationship(parsed, _ref_name(a), _ref_name(b), where=_caller(), at=_at(a, b),
                           **options)
        self.relationships.append(rel)
        return rel

    # -- reading -----------------------------------------------------------
    def system(self, name: str) -> AutonomousSystem:
        """The AS named ``name``."""
        for system in self.systems:
            if system.name == name:
                return system
        raise KeyError(f"topology {self.name!r} has no AS named {name!r}")

    def validate(self) -> "Topology":
        """Raise ``TopologyError`` listing every problem; return self if none."""
        from testbed.model.validate import problems

        found = problems(self)
        if found:
            raise TopologyError(found, self.source)
        return self
