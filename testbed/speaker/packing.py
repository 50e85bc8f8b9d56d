"""Fewer, fuller UPDATEs: how a zygote speaker turns its queued route
changes into UPDATE messages.

ExaBGP 5.0.15 sends what its Adj-RIB-Out queued (``OutgoingRIB.updates``,
one ``Update`` per attribute set and family, and one per change for every
family but IPv4 unicast) through ``Update.messages``, which gives each of
IPv4 withdrawals, IPv4 announcements, MP_UNREACH_NLRI and MP_REACH_NLRI
its own UPDATEs. A dual-stack route (an IPv4 and an IPv6 prefix with the
same AS path, the lab's usual origin) therefore cost two UPDATEs per
neighbor, and every IPv6 prefix one of its own: the receiving speaker pays
its fixed cost per UPDATE (~140 us of ExaBGP, ~35 us of the agent) twice.

``install`` replaces ``Protocol.new_update`` (the session's send of one
drain of its Adj-RIB-Out) with one that takes the same drain and, in the
default mode ``mixed``, packs every queued change of equal path
attributes, ignoring the next hop, into as few UPDATEs as fit the
negotiated message size (4,096 bytes, or the extended size): IPv4 NLRI
(with the IPv4 NEXT_HOP attribute) and MP_REACH_NLRI (with the IPv6 next
hop) in one UPDATE, as RFC 4760 allows, withdrawals (IPv4 withdrawn
routes and MP_UNREACH_NLRI) filling the room left, towards the peers the
harness names as ExaBGP speakers of the lab (``peers_environment``): an
FRR 8.4 peer read such an UPDATE wrong. The families the session
negotiated still decide what it is sent. ``family`` packs within
each family only (one of the four fields per UPDATE, as RFC 7606 5.1
asks of a sender; IPv6 prefixes of equal attributes still share an
UPDATE), and is what any other peer gets; ``stock`` sends as ExaBGP does. ``TESTBED_UPDATE_PACKING``
chooses (read once, when a speaker installs its patches).

Order: a prefix appears at most once in a drain when every change went
through ``handover.queue_change`` (which drops a change still queued
under other attributes), so the UPDATEs of one drain may carry its
prefixes in any grouping; drains go out one after the other. A drain that
holds a prefix twice (text API commands can queue that), a route refresh,
an unexpected family or next hop, or ``group-updates false`` is sent
ExaBGP's way, unchanged. ``sent`` counts UPDATEs and prefixes sent, for
the agent's summary.
"""

from __future__ import annotations

import os
from struct import pack

from testbed.errors import TestbedError
from testbed.speaker import compat
from testbed.speaker.prefixes import PACKED

MODES = ("mixed", "family", "stock")
MODE_ENV = "TESTBED_UPDATE_PACKING"
WRITE_ENV = "TESTBED_COALESCE_WRITES"  # "0": one send(2) per UPDATE, as ExaBGP writes them
WRITE_SIZE = 65536            # octets of UPDATEs gathered before a write to the session's socket
PEERS_ENV = "TESTBED_MIXED_UPDATE_PEERS"   # set by the harness per speaker: peers that take mixed UPDATEs
PATCHES = ("protocol-new-update", "update-messages", "mpreach-pack", "rib-updates", "attributes-pack",
           "update-unpack", "protocol-send")
NEXT_HOP = 3                  # path attribute type code
HEADER = b"\xff" * 16         # BGP marker; then length (2 octets) and type 2 (UPDATE)
EXTENDED = 0x10               # attribute flag: two-octet length
OPTIONAL = 0x80

shared_forms = None
"""If set (``testbed.speaker.sharing.AttributeMaker.forms``): what ``_attribute_forms``
computes, for the ``Attributes`` it made, from packings shared between neighbors; None otherwise."""

sent = {"updates_out": 0, "prefixes_out": 0}
"""UPDATEs this speaker sent and the prefixes (announced and withdrawn) in them."""


class PackingError(TestbedError):
    """``TESTBED_UPDATE_PACKING`` names no packing mode."""


def mode(environ=os.environ) -> str:
    value = environ.get(MODE_ENV, "mixed") or "mixed"
    if value not in MODES:
        raise PackingError(f"{MODE_ENV}={value!r}: expected one of {', '.join(MODES)}")
    return value


def coalescing(environ=os.environ) -> bool:
    """Whether a drain's UPDATEs go to the socket in few writes (``WRITE_SIZE``)."""
    return environ.get(WRITE_ENV, "1") != "0"


def mixed_peers(environ=os.environ) -> frozenset[str]:
    return frozenset(environ.get(PEERS_ENV, "").split())


def peers_environment(router, own) -> dict[str, str]:
    """The environment that tells ``router``'s speaker which peers may be
    sent mixed UPDATEs: its neighbors whose routers are ExaBGP speakers of
    the lab (``own``: those routers by name), whose parser reads them as
    one. FRR 8.4 took the IPv6 next hop of MP_REACH_NLRI for the IPv4 NLRI
    beside it (a lab test of BIRD and FRR beside ExaBGP showed it), so any
    other peer, and one outside the lab, gets single-family UPDATEs."""
    return {PEERS_ENV: " ".join(n.address for n in router.neighbors if n.name in own)}


def session_mode(chosen: str, peer: str, peers: frozenset[str]) -> str:
    """The packing of a session with ``peer``: ``mixed`` only for the peers
    named in ``peers``, ``family`` for the others."""
    return "family" if chosen == "mixed" and peer not in peers else chosen


def sent_stats() -> dict:
    return dict(sent)


def _update_message(withdrawn: bytes, attributes: bytes, nlri: bytes) -> bytes:
    body = pack("!H", len(withdrawn)) + withdrawn + pack("!H", len(attributes)) + attributes + nlri
    return HEADER + pack("!HB", 19 + len(body), 2) + body


def _mp_attribute(code: int, payload: bytes) -> bytes:
    """An MP_REACH_NLRI (14) or MP_UNREACH_NLRI (15) path attribute (optional,
    non-transitive), as ExaBGP's ``Attribute._attribute`` writes it."""
    if len(payload) > 255:
        return bytes((OPTIONAL | EXTENDED, code)) + pack("!H", len(payload)) + payload
    return bytes((OPTIONAL, code, len(payload))) + payload


class _Group:
    """The announcements of one drain that share their path attributes but
    for the next hop: ``base`` is that attribute set packed without
    NEXT_HOP, ``v4`` the IPv4 prefixes by their attribute set packed with
    its NEXT_HOP, ``v6`` the IPv6 prefixes by their next hop (packed)."""

    __slots__ = ("base", "v4", "v6")

    def __init__(self, base: bytes):
        self.base = base
        self.v4: dict[bytes, list[bytes]] = {}
        self.v6: dict[bytes, list[bytes]] = {}


def _attribute_forms(attributes, negotiated, cache: dict) -> tuple[bytes, bytes]:
    """(packed as ExaBGP packs it for the IPv4 NLRI field, packed without
    NEXT_HOP) for one ExaBGP ``Attributes``, once per drain."""
    found = cache.get(id(attributes))
    if found is not None:
        return found[1]
    if shared_forms is not None:
        forms = shared_forms(attributes, negotiated)
        if forms is not None:
            cache[id(attributes)] = (attributes, forms)
            return forms
    full = attributes.pack(negotiated)
    hop = attributes.get(NEXT_HOP)
    if hop is None or hop.ipv4() is not True:   # Attributes.pack left it out already
        forms = full, full
    else:
        from exabgp.bgp.message.update.attribute import Attributes

        rest = Attributes()
        for code, attribute in attributes.items():
            if code != NEXT_HOP:
                dict.__setitem__(rest, code, attribute)
        forms = full, rest.pack(negotiated)
    cache[id(attributes)] = (attributes, forms)  # the object kept alive: its id stays its own
    return forms


def plan(updates, negotiated, include_withdraw: bool):
    """What the ExaBGP ``Update`` objects of one drain send: ``(groups,
    IPv4 withdrawals, IPv6 withdrawals)``, every prefix packed for this
    session; None when the drain must go ExaBGP's way (see the module)."""
    from exabgp.bgp.message import Action
    from exabgp.bgp.message.update import Update
    from exabgp.bgp.message.update.nlri.qualifier import PathInfo
    from exabgp.protocol.family import AFI, SAFI

    v4, v6 = (int(AFI.ipv4), int(SAFI.unicast)), (int(AFI.ipv6), int(SAFI.unicast))
    negotiated_families = {(int(afi), int(safi)) for afi, safi in negotiated.families}
    announce, withdraw = Action.ANNOUNCE, Action.WITHDRAW
    groups: dict[bytes, _Group] = {}
    withdrawn4: list[bytes] = []
    withdrawn6: list[bytes] = []
    seen: set = set()
    cache: dict = {}
    # Without ADD-PATH, an NLRI packs as its CIDR (INET.pack_nlri), which a
    # shared CIDR (testbed.speaker.prefixes) holds packed already; the
    # family and those bytes then say what its index says.
    addpath = negotiated.addpath
    plain = not addpath.send(AFI.ipv4, SAFI.unicast) and not addpath.send(AFI.ipv6, SAFI.unicast)
    nopath = PathInfo.NOPATH
    for update in updates:
        if type(update) is not Update:
            return None  # a route refresh's markers: ExaBGP's way
        attributes = update.attributes
        for nlri in update.nlris:
            family = (int(nlri.afi), int(nlri.safi))
            if family not in negotiated_families:
                continue
            if family != v4 and family != v6:
                return None
            packed = getattr(nlri.cidr, PACKED, None) if plain and nlri.path_info is nopath else None
            if packed is None:
                packed = nlri.pack(negotiated)
                index = nlri.index()
            else:
                index = (family, packed)
            if index in seen:
                return None  # queued twice, under two attribute sets: ExaBGP's order
            seen.add(index)
            action = nlri.action
            if action == withdraw:
                if include_withdraw:
                    (withdrawn4 if family == v4 else withdrawn6).append(packed)
                continue
            if action != announce:
                return None
            hop = nlri.nexthop
            if family == v4:
                if hop.afi != AFI.ipv4:
                    return None  # ExaBGP would send it in MP_REACH_NLRI
                full, base = _attribute_forms(attributes, negotiated, cache)
                group = groups.get(base)
                if group is None:
                    group = groups[base] = _Group(base)
                group.v4.setdefault(full, []).append(packed)
            else:
                if hop.afi != AFI.ipv6:
                    return None
                try:
                    packed_hop = hop.ton(negotiated, nlri.afi)
                except TypeError:
                    return None
                base = _attribute_forms(attributes, negotiated, cache)[1]
                group = groups.get(base)
                if group is None:
                    group = groups[base] = _Group(base)
                group.v6.setdefault(packed_hop, []).append(packed)
    return groups, withdrawn4, withdrawn6


class _Queue:
    """Packed prefixes taken from the front, as many as fit."""

    __slots__ = ("items", "at")

    def __init__(self, items: list[bytes]):
        self.items, self.at = items, 0

    def __bool__(self) -> bool:
        return self.at < len(self.items)

    def take(self, room: int) -> list[bytes]:
        items, start, size = self.items, self.at, 0
        end = start
        while end < len(items) and size + len(items[end]) <= room:
            size += len(items[end])
            end += 1
        self.at = end
        return items[start:end]

    def skip(self, what: str) -> None:
        """Leave out the next prefix: it does not fit an UPDATE (what
        ExaBGP's ``Update.messages`` does, logged as it logs it)."""
        from exabgp.logger import log

        self.at += 1
        log.critical(lambda: f"can not pack one NLRI in an UPDATE ({what}), not sending it", "parser")


V6 = b"\x00\x02\x01"              # AFI IPv6, SAFI unicast
UNREACH_OVERHEAD = 4 + len(V6)    # flags, code, length (at most two octets), AFI/SAFI


def reach_overhead(hop: bytes) -> int:
    """Octets of an IPv6 MP_REACH_NLRI around its prefixes."""
    return 4 + len(V6) + 1 + len(hop) + 1   # ..., next hop length, next hop, reserved


def _size(items: list[bytes]) -> int:
    return sum(map(len, items))


def _build(withdrawn4: list[bytes], withdrawn6: list[bytes], attributes: bytes, announced4: list[bytes],
           hop6: bytes, announced6: list[bytes]) -> tuple[bytes, int]:
    """One UPDATE and the number of prefixes in it. The MP attributes come
    first (RFC 7606 5.1); path attributes only with an announcement."""
    path = b""
    if withdrawn6:
        path += _mp_attribute(15, V6 + b"".join(withdrawn6))
    if announced6:
        path += _mp_attribute(14, V6 + bytes((len(hop6),)) + hop6 + b"\x00" + b"".join(announced6))
    if announced4 or announced6:
        path += attributes
    return (_update_message(b"".join(withdrawn4), path, b"".join(announced4)),
            len(withdrawn4) + len(withdrawn6) + len(announced4) + len(announced6))


def messages(groups, withdrawn4: list[bytes], withdrawn6: list[bytes], msg_size: int, mixed: bool):
    """The UPDATEs of a ``plan``: ``(message, prefixes in it)``, each at
    most ``msg_size`` octets. ``mixed``: the four fields of an UPDATE
    filled in one; else one field per UPDATE, withdrawals first."""
    budget = msg_size - 19 - 4   # header, withdrawn routes length, total path attribute length
    w4, w6 = _Queue(withdrawn4), _Queue(withdrawn6)
    if not mixed:
        yield from _by_family(groups, w4, w6, budget)
        return
    for group in groups.values():
        streams4 = [(full, _Queue(items)) for full, items in group.v4.items()]
        streams6 = [(hop, _Queue(items)) for hop, items in group.v6.items()]
        while streams4 or streams6:
            # One NEXT_HOP and one MP_REACH_NLRI next hop per UPDATE: the
            # first IPv4 attribute set (by next hop) beside the first IPv6 next hop.
            attributes = streams4[0][0] if streams4 else group.base
            room = budget - len(attributes)
            taken4 = streams4[0][1].take(room) if streams4 else []
            room -= _size(taken4)
            hop6 = streams6[0][0] if streams6 else b""
            taken6 = streams6[0][1].take(room - reach_overhead(hop6)) if streams6 else []
            if taken6:
                room -= reach_overhead(hop6) + _size(taken6)
            if not taken4 and not taken6:
                stream = streams4[0] if streams4 else streams6[0]
                stream[1].skip("attributes and prefix")
            else:
                if not taken4:
                    attributes = group.base
                taken4w = w4.take(room)
                room -= _size(taken4w)
                taken6w = w6.take(room - UNREACH_OVERHEAD)
                yield _build(taken4w, taken6w, attributes, taken4, hop6, taken6)
            if streams4 and not streams4[0][1]:
                streams4.pop(0)
            if streams6 and not streams6[0][1]:
                streams6.pop(0)
    while w4 or w6:   # the withdrawals that found no room beside announcements
        taken4w = w4.take(budget)
        taken6w = w6.take(budget - _size(taken4w) - UNREACH_OVERHEAD)
        if not taken4w and not taken6w:
            (w4 if w4 else w6).skip("withdrawal")
            continue
        yield _build(taken4w, taken6w, b"", [], b"", [])


def _by_family(groups, w4: _Queue, w6: _Queue, budget: int):
    """``messages`` with one of the four fields per UPDATE."""
    while w4:
        taken = w4.take(budget)
        if taken:
            yield _build(taken, [], b"", [], b"", [])
        else:
            w4.skip("withdrawal")
    while w6:
        taken = w6.take(budget - UNREACH_OVERHEAD)
        if taken:
            yield _build([], taken, b"", [], b"", [])
        else:
            w6.skip("withdrawal")
    for group in groups.values():
        for full, items in group.v4.items():
            queue = _Queue(items)
            while queue:
                taken = queue.take(budget - len(full))
                if taken:
                    yield _build([], [], full, taken, b"", [])
                else:
                    queue.skip("attributes and prefix")
        for hop, items in group.v6.items():
            queue = _Queue(items)
            while queue:
                taken = queue.take(budget - len(group.base) - reach_overhead(hop))
                if taken:
                    yield _build([], [], group.base, [], hop, taken)
                else:
                    queue.skip("attributes and prefix")


def _stock(updates, negotiated, include_withdraw: bool):
    """ExaBGP's own messages of a drain, with the prefixes each Update
    sends (counted once, on its first message)."""
    families = negotiated.families
    for update in updates:
        prefixes = 0
        if hasattr(update, "nlris"):
            from exabgp.bgp.message import Action

            prefixes = sum(1 for nlri in update.nlris if nlri.family().afi_safi() in families
                           and (include_withdraw or nlri.action != Action.WITHDRAW))
        for message in update.messages(negotiated, include_withdraw):
            yield message, prefixes
            prefixes = 0


def drain(outgoing, negotiated, grouped: bool, include_withdraw: bool, chosen: str):
    """``(message, prefixes)`` of everything ``outgoing`` (an ExaBGP
    ``OutgoingRIB``) has queued, packed as ``chosen`` says."""
    if chosen == "stock" or not grouped or outgoing._refresh_changes or outgoing._refresh_families:
        yield from _stock(outgoing.updates(grouped), negotiated, include_withdraw)
        return
    updates = list(outgoing.updates(grouped))
    planned = plan(updates, negotiated, include_withdraw)
    if planned is None:
        yield from _stock(updates, negotiated, include_withdraw)
        return
    yield from messages(*planned, negotiated.msg_size, chosen == "mixed")


def install(protocol_class, chosen: str | None = None) -> str:
    """Replace ``Protocol.new_update`` (ExaBGP's send of one drain of a
    session's Adj-RIB-Out) by ``drain`` in mode ``chosen`` (default: from
    ``TESTBED_UPDATE_PACKING``; ``mixed`` only towards the peers
    ``TESTBED_MIXED_UPDATE_PEERS`` names, ``family`` towards the others);
    the mode installed."""
    chosen = mode() if chosen is None else chosen
    peers = mixed_peers()
    coalesce = coalescing()
    compat.verify(PATCHES)
    from exabgp.bgp.message import _NOP, Message
    from exabgp.logger import log
    from exabgp.reactor.protocol import _UPDATE

    short = Message.CODE.short
    codes: dict[int, str] = {}

    def new_update(self, include_withdraw):
        number = 0
        neighbor = self.neighbor
        buffered: list[bytes] = []
        size = 0
        for message, prefixes in drain(neighbor.rib.outgoing, self.negotiated, neighbor["group-updates"],
                                       include_withdraw,
                                       session_mode(chosen, str(neighbor["peer-address"]), peers)):
            number += 1
            if message[18] == 2:  # not a route refresh's marker
                sent["updates_out"] += 1
                sent["prefixes_out"] += prefixes
            if coalesce:
                # Protocol.send's count, and its hand-over to the API when asked for
                code = codes.get(message[18]) or codes.setdefault(message[18], f"send-{short(message[18])}")
                if not neighbor.api.get(code, False):
                    self.peer.stats[code] += 1
                    buffered.append(message)
                    size += len(message)
                    if size >= WRITE_SIZE:
                        for _ in self.connection.writer(b"".join(buffered)):
                            yield _NOP  # the socket's buffer full, or a transient network error
                        buffered, size = [], 0
                    continue
                if buffered:
                    for _ in self.connection.writer(b"".join(buffered)):
                        yield _NOP
                    buffered, size = [], 0
            for _ in self.send(message):
                yield _NOP  # a transient network error, already logged
        if buffered:
            for _ in self.connection.writer(b"".join(buffered)):
                yield _NOP
        if number:
            log.debug(lambda: ">> %d UPDATE(s)" % number, self.connection.session())
        yield _UPDATE

    compat.replace("protocol-new-update", protocol_class, new_update)
    return chosen
