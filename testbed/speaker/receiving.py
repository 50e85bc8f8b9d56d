"""Cheaper reading of an UPDATE's path attributes: an attribute seen before
on a session is not parsed again.

ExaBGP 5.0.15's ``Attributes.unpack`` keeps the last attribute block a
session parsed and reuses its result when the next UPDATE's block has the
same bytes, but not for a block holding MP_REACH_NLRI or MP_UNREACH_NLRI
(those carry prefixes), and in a generated Internet almost every UPDATE
has an AS path of its own anyway. Between the lab's ExaBGP speakers an
UPDATE carries its IPv4 NLRI and its IPv6 prefixes in an MP_REACH_NLRI
together (``testbed.speaker.packing``), so every block went through
ExaBGP's generic parser attribute by attribute (``Attributes._parse_one``):
about 45 % of what a single-homed speaker spends reading.

``make_unpack`` wraps the original. For a block whose attribute headers
and lengths all lie within it, without AS4_PATH or AS4_AGGREGATOR (which
``unpack`` reconciles with the others) and with DEBUG logging off, it
does what ``Attributes.parse`` does, attribute by attribute, in wire
order, except that: an attribute whose bytes (header included) this
session decoded before into one clean item of its own code (ORIGIN,
NEXT_HOP, MED, LOCAL_PREF, communities, a repeated AS path; never
treat-as-withdraw, discard or an error) is that item again; an AS_PATH of
the usual shape is decoded here (``make_aspath``), and so is an
MP_REACH_NLRI of IPv6 unicast with one next hop (``make_mp_reach``, its
prefixes read by ExaBGP's own ``NLRI.unpack_nlri``). Everything else goes
through ExaBGP's own ``_parse_one``, so the result's items, their order,
every error raised or marked (RFC 7606) and the session's own cache are
what the original gives (``tests/unit/test_receiving.py`` compares both on
blocks built with ExaBGP's classes, every cut and changed octet of them,
AS paths and MP_REACH_NLRI of every shape and length). The cache is the
session's (kept on its ``Negotiated``, as the original's is; bounded by
``LIMIT``). ``install`` applies it through ``testbed.speaker.compat``
(``attributes-unpack``; what it re-implements is registered there too)
in a zygote speaker; ``TESTBED_RECEIVE_CACHE=0`` turns it off (for an A/B).
"""

from __future__ import annotations

import os

from testbed.speaker import compat

ENV = "TESTBED_RECEIVE_CACHE"
LIMIT = 4096            # attributes kept per session; then forgotten and parsed again
PATCHES = ("attributes-unpack", "attributes-parse", "attributes-parse-one", "attributes-init", "mpreach-unpack",
           "aspath-new", "aspath-unpack")
AS_PATH, MP_REACH, MP_UNREACH = 2, 14, 15
AS4_PATH, AS4_AGGREGATOR = 17, 18
EXTENDED = 0x10         # attribute flag: two-octet length
stats = {"hits": 0, "misses": 0, "original": 0}
"""In this speaker: attributes taken from the cache, attributes parsed by
ExaBGP's ``_parse_one``, and blocks left to the original whole."""


def enabled(environ=os.environ) -> bool:
    return environ.get(ENV, "1") != "0"


def split(data):
    """``[(code, bytes)]`` of each attribute of a block in wire order, its
    header included; None if it cannot take the cache (AS4_PATH or
    AS4_AGGREGATOR, which ``unpack`` reconciles with the others, or a header
    or length past the block's end: the original's framing errors)."""
    end = len(data)
    at = 0
    found: list[tuple[int, bytes]] = []
    while at < end:
        if at + 3 > end:
            return None
        flag, code = data[at], data[at + 1]
        if flag & EXTENDED:
            if at + 4 > end:
                return None
            stop = at + 4 + (data[at + 2] << 8 | data[at + 3])
        else:
            stop = at + 3 + data[at + 2]
        if stop > end or code == AS4_PATH or code == AS4_AGGREGATOR:
            return None
        found.append((code, data[at:stop]))
        at = stop
    return found


def make_aspath():
    """``aspath(attribute, asn4)``: the ``ASPath`` that ExaBGP's ``_parse_one``
    makes of an AS_PATH attribute (``attribute``: its bytes, header
    included) on a session with ``asn4`` four-octet AS numbers, for the
    common case: flags 0x40 (well-known transitive, one-octet length),
    segments of known types, none empty, exactly filling the attribute.
    None for anything else (then ExaBGP's own parse runs)."""
    from struct import unpack_from

    from exabgp.bgp.message.open.asn import ASN
    from exabgp.bgp.message.update.attribute.aspath import ASPath
    from exabgp.bgp.message.update.attribute.attribute import Attribute

    kinds = dict(ASPath._DISPATCH)
    if not Attribute.registered(AS_PATH, 0x40):
        return lambda attribute, asn4: None
    formats = {(size, count): f"!{count}{'L' if size == 4 else 'H'}" for size in (2, 4) for count in range(256)}

    def aspath(attribute, asn4):
        if attribute[0] != 0x40 or (asn4 is not True and asn4 is not False):
            return None
        data = attribute[3:]
        size = 4 if asn4 else 2
        end, at, segments = len(data), 0, []
        if not end:
            return None
        while at < end:
            if at + 2 > end:
                return None
            kind, count = kinds.get(data[at]), data[at + 1]
            stop = at + 2 + count * size
            if kind is None or not count or stop > end:
                return None
            segment = kind()
            for number in unpack_from(formats[size, count], data, at + 2):
                segment.append(ASN(number))
            segments.append(segment)
            at = stop
        return ASPath(segments, data)

    return aspath


def make_mp_reach():
    """``mp_reach(attribute, direction, negotiated)``: the ``MPRNLRI`` that
    ExaBGP's ``_parse_one`` makes of an MP_REACH_NLRI attribute (its bytes,
    header included) for the lab's case: flags 0x80 or 0x90, IPv6 unicast
    negotiated, one 16-octet next hop, no extended next hop, no ADD-PATH,
    at least one prefix (each read by ExaBGP's own ``NLRI.unpack_nlri``,
    whose errors pass as they do through the original). None for anything
    else (then ExaBGP's own parse runs)."""
    from exabgp.bgp.message import Action
    from exabgp.bgp.message.direction import Direction
    from exabgp.bgp.message.update.attribute.attribute import Attribute
    from exabgp.bgp.message.update.attribute.mprnlri import MPRNLRI
    from exabgp.bgp.message.update.attribute.nexthop import NextHop
    from exabgp.bgp.message.update.nlri import NLRI
    from exabgp.protocol.family import AFI, SAFI, Family

    ipv6, unicast, announce, inbound = AFI.ipv6, SAFI.unicast, Action.ANNOUNCE, Direction.IN
    family = (ipv6, unicast)
    lengths, rd = Family.size.get(family, ((), 1))
    if (not Attribute.registered(MP_REACH, 0x80) or Attribute.klass(MP_REACH, 0x80) is not MPRNLRI
            or 16 not in lengths or rd):
        return lambda attribute, direction, negotiated: None
    start = bytes((0, 2, 1, 16))   # AFI 2, SAFI 1, next hop length 16

    def mp_reach(attribute, direction, negotiated):
        flag = attribute[0]
        offset = 3 if flag == 0x80 else 4 if flag == 0x90 else 0
        if (not offset or len(attribute) < offset + 22 or attribute[offset:offset + 4] != start
                or direction is not inbound or negotiated.nexthop or family not in negotiated.families):
            return None
        addpath = negotiated.addpath.receive(ipv6, unicast)
        if addpath:
            return None
        hop = attribute[offset + 4:offset + 20]
        data = attribute[offset + 21:]
        nlris = []
        while data:   # MPRNLRI.unpack's loop for one next hop
            nlri, left = NLRI.unpack_nlri(ipv6, unicast, data, announce, addpath)
            if nlri:
                nlri.nexthop = NextHop.unpack(hop)
                nlris.append(nlri)
            if left == data:
                raise RuntimeError("sub-calls should consume data")
            data = left
        return MPRNLRI(ipv6, unicast, nlris)

    return mp_reach


def make_unpack(original, attributes_class, option, limit: int = LIMIT):
    """The replacement of ``Attributes.unpack`` (a function of ``cls, data,
    direction, negotiated``) around ``original`` (the original's function);
    where ``option.logit`` says ExaBGP logs DEBUG, the original runs (for
    its parser's log lines)."""
    from exabgp.bgp.message.update.attribute.attribute import Attribute

    treat_as_withdraw = Attribute.CODE.INTERNAL_TREAT_AS_WITHDRAW
    aspath = make_aspath()
    mp_reach = make_mp_reach()
    uncached = {MP_REACH, MP_UNREACH}   # they carry prefixes: parsed every time
    set_item, new_dict, dict_len = dict.__setitem__, dict.__new__, dict.__len__

    def unpack(cls, data, direction, negotiated):
        if negotiated is None or cls is not attributes_class or option.logit.get("DEBUG", False):
            stats["original"] += 1
            return original(cls, data, direction, negotiated)
        if negotiated.cached_attributes is not None and data == negotiated.cached_wire:
            return negotiated.cached_attributes
        parts = split(data)
        if parts is None:
            stats["original"] += 1
            return original(cls, data, direction, negotiated)
        cache = negotiated.__dict__.get("_testbed_attributes")
        if cache is None or cache[0] is not direction:
            cache = negotiated._testbed_attributes = (direction, {})
        cache = cache[1]
        # what Attributes.__init__ sets (its getenv() read aside: it sets a
        # class attribute the same way every time, and the speaker made one)
        new = new_dict(cls)
        new._str = ""
        new._idx = ""
        new._json = ""
        new._dict = {}
        new.cacheable = True
        # Attributes.parse, attribute by attribute (framing checked above):
        # an attribute seen before in this session, decoded cleanly to one
        # item of its own code, is that item again unless its code is
        # already there (then the original's _parse_one skips it or raises)
        for code, attribute_bytes in parts:
            if code == MP_REACH and code not in new:
                decoded = mp_reach(attribute_bytes, direction, negotiated)
                if decoded is not None:
                    set_item(new, code, decoded)
                    continue
            found = cache.get(attribute_bytes)
            if found is not None and code not in new:
                set_item(new, code, found)
                stats["hits"] += 1
                continue
            if code == AS_PATH and code not in new:   # new each time, mostly: decoded here
                decoded = aspath(attribute_bytes, negotiated.asn4)
                if decoded is not None:
                    set_item(new, code, decoded)
                    if len(cache) >= limit:
                        cache.clear()
                    cache[attribute_bytes] = decoded
                    continue
            size = dict_len(new)
            new._parse_one(attribute_bytes, direction, negotiated)
            stats["misses"] += 1
            if found is None and code not in uncached and dict_len(new) == size + 1:
                decoded = new.get(code)
                if decoded is not None and decoded.ID == code:
                    if len(cache) >= limit:
                        cache.clear()
                    cache[attribute_bytes] = decoded
        if treat_as_withdraw in new:
            return new
        # reconcile_four_octet_as has nothing to do: no AS4_PATH, no AS4_AGGREGATOR
        if MP_REACH not in new and MP_UNREACH not in new:
            negotiated.cached_wire = data
            negotiated.cached_attributes = new
        else:
            negotiated.cached_wire = b""
            negotiated.cached_attributes = None
        return new

    return unpack


def install() -> bool:
    """Patch ``Attributes.unpack`` in this process (True); ``compat.CompatError``
    naming the patches, and nothing patched, if an original changed."""
    compat.verify(PATCHES)
    from exabgp.bgp.message.update.attribute.attributes import Attributes
    from exabgp.logger.option import option

    original = Attributes.unpack.__func__
    unpack = make_unpack(original, Attributes, option)
    compat.replace("attributes-unpack", Attributes, classmethod(unpack))
    return True
