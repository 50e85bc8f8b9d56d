"""Topology validation (testbed.model.validate through ``Topology.validate()``).

Each row of ``CASES`` starts from a small valid topology (AS65001 "A" peering
with AS65002 "B"), makes one mistake in a one-line lambda, and names the
text the problem must contain. Declarations record their caller, so the
lambda's own line is the file:line each problem must start with; a second
test over the same table checks that.
"""

from __future__ import annotations

import builtins
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from testbed.model.loader import available

from testbed import Topology
from testbed.errors import TopologyError
from testbed.model.loader import load
from testbed.model.validate import problems

FILE = Path(__file__).resolve()
LOCATION = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): ")
RUN_DIR = Path("/run/testbed")


def base() -> Topology:
    """The valid starting point of every row: A and B peer privately."""
    topo = Topology("t")
    topo.add_as(65001, "A")
    topo.add_as(65002, "B")
    topo.peering("A", "B")
    return topo


def three(topo: Topology) -> Topology:
    """Add C, D, E (AS65003-65005) to ``topo``, with no relationship yet."""
    for asn, name in ((65003, "C"), (65004, "D"), (65005, "E")):
        topo.add_as(asn, name)
    return topo


def two_linked(topo: Topology) -> Topology:
    """Give a fresh topology two valid linked ASes, so only its own setting is wrong."""
    topo.add_as(65001, "A")
    topo.add_as(65002, "B")
    topo.peering("A", "B")
    return topo


@dataclass
class Case:
    id: str
    build: Callable[[Topology], object]  # mutates the base topology, or returns another one
    fragment: str                        # text the problem must contain

    def topology(self) -> Topology:
        topo = base()
        result = self.build(topo)
        return result if isinstance(result, Topology) else topo

    @property
    def line(self) -> int:
        return self.build.__code__.co_firstlineno


CASES = [
    # -- ASNs --------------------------------------------------------------------------------
    Case("asn-duplicate", lambda t: t.add_as(65001, "C"), "AS 'C': ASN 65001 is already used by AS 'A'"),
    Case("asn-0", lambda t: t.add_as(0, "Z"), "AS 'Z': ASN 0 is reserved (RFC 7607)"),
    Case("asn-23456", lambda t: t.add_as(23456, "Z"), "AS 'Z': ASN 23456 is AS_TRANS (RFC 6793)"),
    Case("asn-65535", lambda t: t.add_as(65535, "Z"), "AS 'Z': ASN 65535 is reserved (RFC 7300)"),
    Case("asn-4294967295", lambda t: t.add_as(4294967295, "Z"), "AS 'Z': ASN 4294967295 is reserved"),
    Case("asn-65552", lambda t: t.add_as(65552, "Z"), "AS 'Z': ASN 65552 is reserved by IANA (65552-131071)"),
    Case("asn-100000", lambda t: t.add_as(100000, "Z"), "AS 'Z': ASN 100000 is reserved by IANA"),
    Case("asn-131071", lambda t: t.add_as(131071, "Z"), "AS 'Z': ASN 131071 is reserved by IANA"),
    Case("asn-negative", lambda t: t.add_as(-1, "Z"), "AS 'Z': ASN -1 is outside 1..4294967294"),
    Case("asn-too-big", lambda t: t.add_as(2**32, "Z"), "AS 'Z': ASN 4294967296 is outside"),
    Case("asn-text", lambda t: t.add_as("65003", "Z"), "AS 'Z': ASN '65003' is not a whole number"),
    Case("asn-float", lambda t: t.add_as(65003.0, "Z"), "AS 'Z': ASN 65003.0 is not a whole number"),
    Case("asn-bool", lambda t: t.add_as(True, "Z"), "AS 'Z': ASN True is not a whole number"),
    Case("asn-none", lambda t: t.add_as(None, "Z"), "AS 'Z': ASN None is not a whole number"),
    # -- AS names ----------------------------------------------------------------------------
    Case("name-duplicate", lambda t: t.add_as(65003, "A"), "AS name 'A' is already used"),
    Case("name-space", lambda t: t.add_as(65003, "my as"), "AS name 'my as' cannot become an interface name"),
    Case("name-slash", lambda t: t.add_as(65003, "a/b"), "AS name 'a/b' cannot become an interface name"),
    Case("name-semicolon", lambda t: t.add_as(65003, "a;reboot"), "AS name 'a;reboot' cannot become"),
    Case("name-dollar-paren", lambda t: t.add_as(65003, "$(id)"), "AS name '$(id)' cannot become"),
    Case("name-backtick", lambda t: t.add_as(65003, "`id`"), "AS name '`id`' cannot become"),
    Case("name-single-quote", lambda t: t.add_as(65003, "a'b"), "AS name \"a'b\" cannot become"),
    Case("name-double-quote", lambda t: t.add_as(65003, 'a"b'), "AS name 'a\"b' cannot become"),
    Case("name-13-chars", lambda t: t.add_as(65003, "ABCDEFGHIJKLM"), "AS name 'ABCDEFGHIJKLM' cannot become"),
    Case("name-leading-digit", lambda t: t.add_as(65003, "1A"), "AS name '1A' cannot become"),
    Case("name-empty", lambda t: t.add_as(65003, ""), "AS name '' cannot become"),
    Case("name-not-text", lambda t: t.add_as(65003, 7), "AS name 7 is not a string"),
    # -- prefixes ----------------------------------------------------------------------------
    Case("prefix-garbage", lambda t: t.add_as(65003, "C", ["not-a-prefix"]), "AS 'C': prefix 'not-a-prefix' is not a valid"),
    Case("prefix-length-33", lambda t: t.add_as(65003, "C", ["192.0.2.0/33"]), "AS 'C': prefix '192.0.2.0/33' is not a valid"),
    Case("prefix-host-bits", lambda t: t.add_as(65003, "C", ["192.0.2.1/24"]), "AS 'C': prefix '192.0.2.1/24' has host bits set (did you mean 192.0.2.0/24?)"),
    Case("prefix-host-bits-v6", lambda t: t.add_as(65003, "C", ["2001:db8::1/48"]), "prefix '2001:db8::1/48' has host bits set (did you mean 2001:db8::/48?)"),
    Case("prefix-not-text", lambda t: t.add_as(65003, "C", [3232235520]), "AS 'C': prefix 3232235520 is not a string"),
    Case("prefixes-a-string", lambda t: t.add_as(65003, "C", "192.0.2.0/24"), "AS 'C': prefixes must be a list of prefixes, not '192.0.2.0/24'"),
    Case("prefixes-empty", lambda t: t.add_as(65003, "C", []), "AS 'C': prefixes is empty"),
    Case("prefix-overlaps-other-as", lambda t: (t.add_as(65003, "C", ["192.0.2.0/24"]), t.add_as(65004, "D", ["192.0.2.128/25"])), "AS 'D': prefix 192.0.2.128/25 overlaps 192.0.2.0/24 of AS 'C'"),
    Case("prefix-overlaps-ixp-lan", lambda t: (t.add_as(65003, "C", ["192.0.2.0/24"]), t.add_ixp("ix", lan4="192.0.2.0/25")), "IXP 'ix' LAN: prefix 192.0.2.0/25 overlaps 192.0.2.0/24 of AS 'C'"),
    Case("prefix-in-link-pool", lambda t: t.add_as(65003, "C", ["10.0.7.0/24"]), "AS 'C': prefix 10.0.7.0/24 overlaps 10.0.0.0/16 of the lab's private-link pool"),
    Case("prefix-covers-link-pool", lambda t: t.add_as(65003, "C", ["10.0.0.0/8"]), "AS 'C': prefix 10.0.0.0/8 overlaps 10.0.0.0/16 of the lab's private-link pool"),
    Case("prefix-in-ixp-pool", lambda t: t.add_as(65003, "C", ["10.1.2.0/24"]), "AS 'C': prefix 10.1.2.0/24 overlaps 10.1.0.0/16 of the lab's IXP LAN pool"),
    Case("prefix-in-router-id-pool", lambda t: t.add_as(65003, "C", ["10.255.9.0/24"]), "AS 'C': prefix 10.255.9.0/24 overlaps 10.255.0.0/16 of the lab's router-id pool"),
    Case("prefix-in-link-pool-v6", lambda t: t.add_as(65003, "C", ["fd00:0:0:9::/64"]), "AS 'C': prefix fd00:0:0:9::/64 overlaps fd00::/48 of the lab's private-link pool"),
    Case("prefix-in-ixp-pool-v6", lambda t: t.add_as(65003, "C", ["fd00:1:0:1::/64"]), "AS 'C': prefix fd00:1:0:1::/64 overlaps fd00:1::/48 of the lab's IXP LAN pool"),
    Case("prefix-multicast", lambda t: t.add_as(65003, "C", ["224.1.0.0/16"]), "AS 'C': prefix 224.1.0.0/16 is multicast, loopback"),
    Case("prefix-multicast-v6", lambda t: t.add_as(65003, "C", ["ff05::/16"]), "AS 'C': prefix ff05::/16 is multicast, loopback"),
    Case("prefix-loopback", lambda t: t.add_as(65003, "C", ["127.0.0.0/8"]), "AS 'C': prefix 127.0.0.0/8 is multicast, loopback"),
    Case("prefix-loopback-v6", lambda t: t.add_as(65003, "C", ["::1/128"]), "AS 'C': prefix ::1/128 is multicast, loopback"),
    Case("prefix-link-local", lambda t: t.add_as(65003, "C", ["169.254.0.0/16"]), "AS 'C': prefix 169.254.0.0/16 is multicast, loopback, link-local"),
    Case("prefix-too-small-one-host", lambda t: t.add_as(65003, "C", ["192.0.2.0/29"]), "AS 'C': prefix 192.0.2.0/29 is too small for its LAN of 1 host(s): it needs at least 12 addresses"),
    Case("prefix-too-small-six-hosts", lambda t: t.add_as(65003, "C", ["192.0.2.0/28"], hosts=6), "AS 'C': prefix 192.0.2.0/28 is too small for its LAN of 6 host(s): it needs at least 17"),
    Case("prefix-too-small-v6", lambda t: t.add_as(65003, "C", ["2001:db8::/125"]), "AS 'C': prefix 2001:db8::/125 is too small"),
    # -- relationships -----------------------------------------------------------------------
    Case("rel-missing-as", lambda t: t.peering("A", "Nowhere"), "peering A -- Nowhere: no AS named 'Nowhere'"),
    Case("rel-missing-both", lambda t: t.transit("X", "Y"), "transit X -> Y: no AS named 'X'"),
    Case("rel-to-itself", lambda t: t.transit("A", "A"), "transit A -> A: an AS cannot be related to itself"),
    Case("rel-peer-to-itself", lambda t: t.peering("B", "B"), "peering B -- B: an AS cannot be related to itself"),
    Case("rel-transit-contradicts-peering", lambda t: t.transit("A", "B"), "transit A -> B: A and B are related in a way that contradicts 'peering A -- B'"),
    Case("rel-transit-both-ways", lambda t: (three(t), t.transit("C", "D"), t.transit("D", "C")), "transit D -> C: D and C are related in a way that contradicts 'transit C -> D'"),
    Case("rel-peering-twice", lambda t: t.peering("B", "A"), "peering B -- A: B and A are related again"),
    Case("rel-transit-twice", lambda t: (three(t), t.transit("C", "D"), t.transit("C", "D")), "transit C -> D: C and D are related again"),
    Case("rel-unknown-kind", lambda t: t.relate("customer", "A", "B"), "customer A -- B: unknown relationship kind 'customer' (known: transit, peering, paid-peering, partial-transit, route-server)"),
    Case("rel-kind-wrong-case", lambda t: t.relate("Transit", "A", "B"), "unknown relationship kind 'Transit'"),
    Case("rel-missing-ixp", lambda t: (three(t), t.peering("C", "D", via="nowhere")), "peering C -- D via nowhere: no IXP named 'nowhere'"),
    Case("rel-transit-cycle", lambda t: (three(t), t.transit("C", "D"), t.transit("D", "E"), t.transit("E", "C")), "transit relationships form a cycle (each a provider of the next): C -> D -> E -> C"),
    Case("as-without-link", lambda t: t.add_as(65003, "Lonely"), "AS 'Lonely' has no link: relate it to another AS"),
    # -- link shaping ------------------------------------------------------------------------
    Case("bandwidth-zero", lambda t: (three(t), t.transit("C", "D", bandwidth=0)), "transit C -> D: bandwidth 0 must be a number in (0, 100000]"),
    Case("bandwidth-negative", lambda t: (three(t), t.transit("C", "D", bandwidth=-10)), "transit C -> D: bandwidth -10 must be a number"),
    Case("bandwidth-text", lambda t: (three(t), t.transit("C", "D", bandwidth="100")), "transit C -> D: bandwidth '100' must be a number"),
    Case("bandwidth-bool", lambda t: (three(t), t.transit("C", "D", bandwidth=True)), "transit C -> D: bandwidth True must be a number"),
    Case("bandwidth-too-high", lambda t: (three(t), t.transit("C", "D", bandwidth=100_001)), "transit C -> D: bandwidth 100001 must be a number"),
    Case("loss-over-100", lambda t: (three(t), t.peering("C", "D", loss=150)), "peering C -- D: loss 150 must be a number in (0, 100]"),
    Case("delay-word", lambda t: (three(t), t.peering("C", "D", delay="fast")), "peering C -- D: delay 'fast' must look like '5ms'"),
    Case("delay-no-unit", lambda t: (three(t), t.peering("C", "D", delay="5")), "peering C -- D: delay '5' must look like '5ms'"),
    Case("delay-space", lambda t: (three(t), t.peering("C", "D", delay="5 ms")), "peering C -- D: delay '5 ms' must look like '5ms'"),
    Case("delay-number", lambda t: (three(t), t.peering("C", "D", delay=5)), "peering C -- D: delay 5 must look like '5ms'"),
    Case("shaping-across-ixp", lambda t: (three(t), t.add_ixp("ix"), t.peering("C", "D", via="ix", delay="5ms")), "peering C -- D via ix: bandwidth, delay and loss apply to private links"),
    # -- IXPs --------------------------------------------------------------------------------
    Case("ixp-unused", lambda t: t.add_ixp("ix"), "IXP 'ix' carries no session: peer two ASes via it"),
    Case("ixp-bad-name", lambda t: t.add_ixp("my ix"), "IXP name 'my ix' cannot become an interface name"),
    Case("ixp-duplicate", lambda t: (t.add_ixp("ix"), t.add_ixp("ix")), "IXP name 'ix' is already used"),
    Case("ixp-named-like-as", lambda t: t.add_ixp("A"), "IXP name 'A' is already the name of AS 'A'"),
    Case("ixp-lan4-is-v6", lambda t: t.add_ixp("ix", lan4="2001:db8:99::/64"), "IXP 'ix': lan4 2001:db8:99::/64 is not an IPv4 prefix"),
    Case("ixp-lan-too-small", lambda t: (three(t), t.add_ixp("ix", lan4="192.0.2.0/30"), t.peering("C", "D", via="ix"), t.peering("C", "E", via="ix"), t.peering("D", "E", via="ix")), "IXP 'ix': lan4 192.0.2.0/30 is too small for its 3 members"),
    Case("ixp-lan-host-bits", lambda t: t.add_ixp("ix", lan4="192.0.2.1/24"), "IXP 'ix': lan4: prefix '192.0.2.1/24' has host bits set"),
    # -- hosts -------------------------------------------------------------------------------
    Case("hosts-negative", lambda t: t.add_as(65003, "C", hosts=-1), "AS 'C': hosts=-1 is outside 0..64"),
    Case("hosts-too-many", lambda t: t.add_as(65003, "C", hosts=65), "AS 'C': hosts=65 is outside 0..64"),
    Case("hosts-too-many-names", lambda t: t.add_as(65003, "C", hosts=[f"h{i}" for i in range(65)]), "AS 'C': 65 hosts, more than 64"),
    Case("hosts-text", lambda t: t.add_as(65003, "C", hosts="3"), "AS 'C': hosts must be a count or a list of names, not '3'"),
    Case("hosts-bool", lambda t: t.add_as(65003, "C", hosts=True), "AS 'C': hosts must be a count or a list of names, not True"),
    Case("host-name-space", lambda t: t.add_as(65003, "C", hosts=["web 1"]), "AS 'C': host name 'web 1' must be 1-32 letters"),
    Case("host-name-shell", lambda t: t.add_as(65003, "C", hosts=["$(reboot)"]), "AS 'C': host name '$(reboot)' must be"),
    Case("host-name-digit", lambda t: t.add_as(65003, "C", hosts=["1web"]), "AS 'C': host name '1web' must be"),
    Case("host-name-not-text", lambda t: t.add_as(65003, "C", hosts=[None]), "AS 'C': host name None must be"),
    Case("host-named-like-as", lambda t: t.add_as(65003, "C", hosts=["A"]), "AS 'C': host name 'A' is already the name of AS 'A'"),
    Case("host-named-like-other-host", lambda t: t.add_as(65003, "C", hosts=["A-h1"]), "AS 'C': host name 'A-h1' is already the name of host 'A-h1' of AS 'A'"),
    Case("host-named-like-later-as", lambda t: (t.add_as(65003, "C", hosts=["D"]), t.add_as(65004, "D")), "AS 'C': host name 'D' is already the name of AS 'D'"),
    # -- the topology itself -----------------------------------------------------------------
    Case("topology-empty", lambda t: Topology("empty"), "the topology declares no AS"),
    Case("hold-time-1", lambda t: two_linked(Topology("h", hold_time=1)), "hold_time 1 must be 0 or 3..65535 seconds"),
    Case("hold-time-2", lambda t: two_linked(Topology("h", hold_time=2)), "hold_time 2 must be 0 or 3..65535 seconds"),
    Case("hold-time-text", lambda t: two_linked(Topology("h", hold_time="9")), "hold_time '9' must be 0 or 3..65535"),
    Case("topology-name", lambda t: two_linked(Topology("my lab")), "topology name 'my lab' must be 1-64 letters"),
    # -- session policy ----------------------------------------------------------------------
    Case("policy-for-other-as", lambda t: (three(t), t.peering("C", "D", policy={"E": {"med": 1}})), "peering C -- D: policy for 'E', which is not an end of this relationship ('C' or 'D')"),
    Case("policy-not-a-mapping", lambda t: (three(t), t.peering("C", "D", policy=["C"])), "peering C -- D: policy must map an AS name of the relationship to its policy, not ['C']"),
    Case("policy-unknown-key", lambda t: (three(t), t.transit("C", "D", policy={"C": {"weight": 1}})), "transit C -> D: policy of C: unknown key 'weight'"),
    Case("policy-bad-range", lambda t: (three(t), t.transit("C", "D", policy={"D": {"announce": ["192.0.2.0/24 le 8"]}})), "transit C -> D: policy of D.announce[0]: '192.0.2.0/24 le 8': lengths must satisfy 24 <= ge <= le <= 32"),
    Case("policy-bad-action", lambda t: (three(t), t.paid_peering("C", "D", policy={"C": {"import": [{"action": "drop"}]}})), "paid-peering C -> D: policy of C.import[0].action: 'drop' must be 'accept' or 'reject'"),
    Case("policy-bad-match", lambda t: (three(t), t.partial_transit("C", "D", policy={"C": {"export": [{"match": {"learned_from": ["transit"]}, "action": "reject"}]}})), "partial-transit C -> D: policy of C.export[0].match.learned_from[0]: 'transit' is not one of"),
    # -- route servers -----------------------------------------------------------------------
    Case("rs-related-by-transit", lambda t: (t.add_ixp("ix"), t.add_route_server(64700, "RS", "ix"), t.route_server_client("A", "RS"), t.transit("RS", "B")), "transit RS -> B: 'RS' is a route server: it only has route-server clients (route_server_client)"),
    Case("rs-peering", lambda t: (t.add_ixp("ix"), t.add_route_server(64700, "RS", "ix"), t.route_server_client("A", "RS"), t.peering("B", "RS", via="ix")), "peering B -- RS via ix: 'RS' is a route server"),
    Case("rs-client-of-non-rs", lambda t: t.route_server_client("A", "B"), "route-server client A of B: 'B' is not a route server (declare it with add_route_server)"),
    Case("rs-client-of-rs", lambda t: (t.add_ixp("ix"), t.add_route_server(64700, "RS", "ix"), t.add_route_server(64701, "RS2", "ix"), t.route_server_client("A", "RS"), t.route_server_client("RS2", "RS")), "route-server client RS2 of RS: a route server cannot be the client of another"),
    Case("rs-unknown-ixp", lambda t: (t.add_route_server(64700, "RS", "nowhere"), t.route_server_client("A", "RS")), "route server 'RS': no IXP named 'nowhere'"),
    # -- ROAs and the rov/otc flags ----------------------------------------------------------
    Case("roa-host-bits", lambda t: t.roa("192.0.2.1/24", 65001), "ROA.prefix: '192.0.2.1/24': 192.0.2.1/24 has host bits set"),
    Case("roa-prefix-number", lambda t: t.roa(3221225984, 65001), "ROA.prefix: 3221225984"),
    Case("roa-max-length-too-long", lambda t: t.roa("192.0.2.0/24", 65001, 33), "ROA.max_length: 33 must be a whole number in 24..32"),
    Case("roa-max-length-too-short", lambda t: t.roa("192.0.2.0/24", 65001, 23), "ROA.max_length: 23 must be a whole number in 24..32"),
    Case("roa-max-length-v6", lambda t: t.roa("2001:db8::/32", 65001, 129), "ROA.max_length: 129 must be a whole number in 32..128"),
    Case("roa-asn-negative", lambda t: t.roa("192.0.2.0/24", -1), "ROA.asn: -1 must be a whole number in 0..4294967294"),
    Case("roa-asn-text", lambda t: t.roa("192.0.2.0/24", "AS65001"), "ROA.asn: 'AS65001' must be a whole number"),
    Case("rov-not-bool", lambda t: t.add_as(65003, "C", rov="yes"), "AS 'C': rov must be True or False, not 'yes'"),
    Case("otc-not-bool", lambda t: t.add_as(65003, "C", otc=1), "AS 'C': otc must be True or False, not 1"),
    # -- PoPs and internal links (popped(t) adds C with PoPs w and e, linked, C-w peering with A) --
    Case("pop-unknown", lambda t: t.peering(popped(t).pop("x"), "B"), "peering C-x -- B: AS 'C' has no PoP 'x' (its PoPs: w, e)"),
    Case("pop-of-as-without-pops", lambda t: t.peering(t.system("A").pop("w"), "B"), "AS 'A' has no PoPs (declare pops=[...]) but the session is placed at 'w'"),
    Case("pop-router-name-too-long", lambda t: t.add_as(65003, "LongName", pops=["western"]), "AS 'LongName': router name 'LongName-western' (AS name, '-', PoP name) cannot become an interface name"),
    Case("pop-listed-twice", lambda t: t.add_as(65003, "C", pops=["w", "w"]), "AS 'C': PoP 'w' is listed twice"),
    Case("pop-bad-name", lambda t: t.add_as(65003, "C", pops=["1w"]), "AS 'C': PoP name '1w' must be letters, digits"),
    Case("pops-a-string", lambda t: t.add_as(65003, "C", pops="west"), "AS 'C': pops must be a non-empty list of PoP names, not 'west'"),
    Case("pops-empty", lambda t: t.add_as(65003, "C", pops=[]), "AS 'C': pops must be a non-empty list of PoP names, not []"),
    Case("pop-router-named-like-as", lambda t: (t.add_as(65003, "C-w"), t.add_as(65004, "C", pops=["w"])), "AS 'C': router name 'C-w' is already the name of AS 'C-w'"),
    Case("pops-on-route-server", lambda t: (t.add_ixp("ix"), setattr(t.add_route_server(64700, "RS", "ix"), "pops", ["a", "b"]), t.route_server_client("A", "RS")), "AS 'RS': a route server has one router: no pops"),
    Case("internal-link-unknown-pop", lambda t: (popped(t), t.internal_link("C", "w", "x")), "internal link C:w--x: AS 'C' has no PoP 'x' (its PoPs: w, e)"),
    Case("internal-link-as-without-pops", lambda t: t.internal_link("A", "w", "e"), "internal link A:w--e: AS 'A' has no PoP 'w' (its PoPs: none)"),
    Case("internal-link-unknown-as", lambda t: t.internal_link("Z", "w", "e"), "internal link Z:w--e: no AS named 'Z'"),
    Case("internal-link-same-pop", lambda t: (popped(t), t.internal_link("C", "w", "w")), "internal link C:w--w: a link needs two different PoPs"),
    Case("internal-link-cost-0", lambda t: (popped(t), t.internal_link("C", "e", "w", cost=0)), "internal link C:e--w: cost 0 must be a whole number in 1..65535"),
    Case("internal-link-cost-65536", lambda t: (popped(t), t.internal_link("C", "e", "w", cost=65536)), "internal link C:e--w: cost 65536 must be a whole number in 1..65535"),
    Case("internal-link-cost-float", lambda t: (popped(t), t.internal_link("C", "e", "w", cost=2.5)), "internal link C:e--w: cost 2.5 must be a whole number"),
    Case("internal-link-cost-bool", lambda t: (popped(t), t.internal_link("C", "e", "w", cost=True)), "internal link C:e--w: cost True must be a whole number"),
    Case("internal-link-twice", lambda t: (popped(t), t.internal_link("C", "e", "w")), "internal link C:e--w: PoPs e and w are linked twice"),
    Case("pops-not-connected", lambda t: t.peering(t.add_as(65003, "D", pops=["a", "b", "c"]).pop("a"), "A"), "AS 'D': its PoPs are not all joined by internal links (separate groups: a; b; c)"),
    Case("pops-partly-connected", lambda t: (t.add_as(65003, "D", pops=["a", "b", "c"]), t.internal_link("D", "a", "b"), t.peering("D", "A")), "AS 'D': its PoPs are not all joined by internal links (separate groups: a, b; c)"),
    Case("pops-kinds-contradict", lambda t: t.transit(popped(t).pop("e"), "A"), "transit C-e -> A: C and A are related in a way that contradicts 'peering C-w -- A'"),
    Case("pops-transit-reversed", lambda t: (popped(t), t.transit("A", t.system("C").pop("e")), t.transit(t.system("C").pop("w"), "A")), "C and A are related in a way that contradicts"),
    Case("pops-same-pop-twice", lambda t: t.peering(popped(t).pop("w"), "A"), "peering C-w -- A: C and A are related again"),
    Case("pops-first-pop-by-default", lambda t: t.peering(popped(t), "A"), "peering C -- A: C and A are related again"),
]


def popped(topo: Topology):
    """Add AS65003 "C" with PoPs w and e, linked, peering with A at w; return it.
    (Its declarations are valid, so a row's problem is the row's own.)"""
    c = topo.add_as(65003, "C", pops=["w", "e"])
    topo.internal_link(c, "w", "e")
    topo.peering(c.pop("w"), "A")
    return c


def location(problem: str) -> tuple[Path, int] | None:
    """The (resolved file, line) a problem starts with; None if it names none.
    (Python may record this file relative to the working directory.)"""
    match = LOCATION.match(problem)
    return (Path(match["file"]).resolve(), int(match["line"])) if match else None


def _matching(case: Case) -> tuple[TopologyError, list[str]]:
    topo = case.topology()
    with pytest.raises(TopologyError) as caught:
        topo.validate()
    found = [p for p in caught.value.problems if case.fragment in p]
    assert found, (f"no problem mentions {case.fragment!r}; problems were:\n  "
                   + "\n  ".join(caught.value.problems))
    return caught.value, found


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_refused_naming_the_value(case: Case):
    error, found = _matching(case)
    assert len(found) == 1, f"{case.fragment!r} reported {len(found)} times: {found}"
    assert case.fragment in str(error), "the exception text must list the problem too"


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_problem_starts_with_file_and_line(case: Case):
    _, found = _matching(case)
    assert location(found[0]) == (FILE, case.line), (
        f"expected the problem to start with {FILE}:{case.line}, got {found[0]!r}")


def test_the_table_is_broad():
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)
    # every row is one line, so its lambda's line is the declaration's line
    assert len({c.line for c in CASES}) == len(CASES)


def _line() -> int:
    """The line number of the caller."""
    return sys._getframe(1).f_lineno


def test_overlap_names_both_declarations():
    topo = base()
    topo.add_as(65003, "C", ["192.0.2.0/24"]); first = _line()  # noqa: E702
    topo.add_as(65004, "D", ["192.0.2.0/26"]); second = _line()  # noqa: E702
    found = [p for p in problems(topo) if "overlaps" in p]
    assert len(found) == 1, found
    assert location(found[0]) == (FILE, second)
    text = LOCATION.sub("", found[0])
    head, _, other = text.partition(" (")
    assert head == "AS 'D': prefix 192.0.2.0/26 overlaps 192.0.2.0/24 of AS 'C'"
    assert location(other.rstrip(")") + ": ") == (FILE, first)


def test_many_problems_are_reported_at_once():
    topo = Topology("many", hold_time=2)                      # 1: hold_time
    topo.add_as(65001, "A", ["192.0.2.1/24"])                 # 2: host bits
    topo.add_as(65001, "B")                                   # 3: ASN reused
    topo.add_as(0, "bad name")                                # 4: ASN 0, 5: name (nothing else checked)
    topo.add_as(65003, "C", hosts=-3)                         # 6: hosts
    topo.add_as(65004, "Lonely")                              # 7: no link
    topo.add_ixp("unused")                                    # 8: IXP without session
    topo.peering("A", "B", delay="soon")                      # 9: delay
    topo.transit("A", "B")                                    # 10: contradicts the peering
    topo.transit("C", "Ghost")                                # 11: no such AS
    topo.relate("sibling", "A", "C")                          # 12: unknown kind
    topo.transit("C", "A")                                    # (a valid transit, closing no cycle)
    with pytest.raises(TopologyError) as caught:
        topo.validate()
    expected = [
        "hold_time 2 must be 0 or 3..65535",
        "prefix '192.0.2.1/24' has host bits set",
        "AS 'B': ASN 65001 is already used by AS 'A'",
        "AS 'bad name': ASN 0 is reserved",
        "AS name 'bad name' cannot become an interface name",
        "AS 'C': hosts=-3 is outside 0..64",
        "AS 'Lonely' has no link",
        "IXP 'unused' carries no session",
        "peering A -- B: delay 'soon' must look like '5ms'",
        "transit A -> B: A and B are related in a way that contradicts 'peering A -- B'",
        "transit C -> Ghost: no AS named 'Ghost'",
        "sibling A -- C: unknown relationship kind 'sibling'",
    ]
    got = caught.value.problems
    unmatched = [p for p in got if not any(e in p for e in expected)]
    missing = [e for e in expected if not any(e in p for p in got)]
    assert not missing and not unmatched, f"missing {missing}; unexpected {unmatched}"
    assert len(got) == 12, "\n".join(got)
    assert str(caught.value).startswith("topology is invalid (12 problems):")


@pytest.mark.parametrize("name", ["triangle", "ixp", "tier1_partition"])
def test_shipped_topologies_are_valid(name):
    topo = load(name)
    assert problems(topo) == []
    assert topo.validate() is topo
    assert topo.source.endswith(f"topologies/{name}.py")


def test_valid_small_topology_has_no_problem():
    topo = Topology("small", hold_time=0)
    topo.add_as(4200000000, "Big", ["198.51.100.0/24", "2001:db8:100::/48"], hosts=["web", "dns"])
    topo.add_as(64512, "Small", hosts=0)
    ix = topo.add_ixp("ix", lan4="203.0.113.0/24")
    topo.add_as(65010, "Third", hosts=3)
    topo.transit("Big", "Small", bandwidth=100, delay="2.5ms", loss=0.5)
    topo.peering("Small", "Third", via=ix)
    topo.relate("transit", "Big", "Third")
    assert problems(topo) == []


def test_load_reports_the_file(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text("from testbed import Topology\n"
                    "topology = Topology('broken')\n"
                    "topology.add_as(65001, 'A')\n"
                    "topology.add_as(23456, 'B')\n"
                    "topology.peering('A', 'B')\n")
    with pytest.raises(TopologyError) as caught:
        load(path)
    assert caught.value.source == str(path)
    assert caught.value.problems == [f"{path}:4: AS 'B': ASN 23456 is AS_TRANS (RFC 6793)"]
    assert str(caught.value).startswith(f"topology in {path} is invalid (1 problem):")


def test_load_of_a_missing_topology_lists_the_known_ones():
    with pytest.raises(TopologyError) as caught:
        load("no_such_topology")
    assert f"known topologies: {', '.join(available())}" in caught.value.problems[0]


def test_cycle_names_every_transit_declaration():
    topo = three(Topology("t"))
    topo.transit("C", "D"); first = _line()  # noqa: E702
    topo.transit("D", "E"); second = _line()  # noqa: E702
    topo.transit("E", "C"); third = _line()  # noqa: E702
    topo.peering("C", "E")  # not part of any cycle, and a second relation of C and E
    found = [p for p in problems(topo) if "cycle" in p]
    assert len(found) == 1, found
    assert "C -> D -> E -> C" in found[0]
    places = {(Path(f).resolve(), int(n)) for f, n in re.findall(r"([^\s(,]+\.py):(\d+)", found[0])}
    assert {(FILE, first), (FILE, second), (FILE, third)} <= places, found[0]


def test_default_host_name_taken_by_a_later_as():
    """A's default host is "A-h1"; an AS declared later under that name
    collides with it, and the problem is A's (its host is the one to rename)."""
    topo = Topology("t")
    topo.add_as(65001, "A"); at = _line()  # noqa: E702
    topo.add_as(65002, "A-h1")
    topo.peering("A", "A-h1")
    found = problems(topo)
    assert [LOCATION.sub("", p) for p in found] == [
        "AS 'A': host name 'A-h1' is already the name of AS 'A-h1'"]
    assert location(found[0]) == (FILE, at)


def test_validation_creates_nothing(tmp_path, monkeypatch):
    before = sorted(os.listdir(RUN_DIR)) if RUN_DIR.exists() else None
    created = []

    def refuse(name):
        def call(*args, **kwargs):
            created.append((name, args))
            raise AssertionError(f"validation called {name}{args}")
        return call

    monkeypatch.chdir(tmp_path)
    for name in ("mkdir", "makedirs", "symlink", "mkfifo"):
        monkeypatch.setattr(os, name, refuse(f"os.{name}"))
    monkeypatch.setattr(subprocess, "Popen", refuse("subprocess.Popen"))
    real_open = builtins.open

    def read_only_open(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+"):
            return refuse("open")(file, mode)
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", read_only_open)
    for case in CASES:
        with pytest.raises(TopologyError):
            case.topology().validate()
    monkeypatch.undo()
    assert created == []
    assert list(tmp_path.iterdir()) == []
    # Other labs on the machine may come and go meanwhile: only a work
    # directory owned by this process would be ours.
    after = sorted(os.listdir(RUN_DIR)) if RUN_DIR.exists() else None
    new = sorted(set(after or ()) - set(before or ()))
    ours = [name for name in new if f'"owner_pid": {os.getpid()},' in _manifest(RUN_DIR / name)]
    assert ours == [], f"validation created lab directories: {ours}"


def _manifest(directory) -> str:
    try:
        return (directory / "manifest.json").read_text()
    except OSError:
        return ""
