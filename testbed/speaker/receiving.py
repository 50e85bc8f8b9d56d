"""Cheaper reading of an UPDATE's path attributes: the part that repeats is
parsed once per session.

ExaBGP 5.0.15's ``Attributes.unpack`` keeps the last attribute block a
session parsed and reuses its result when the next UPDATE's block has the
same bytes, but not for a block holding MP_REACH_NLRI or MP_UNREACH_NLRI:
those carry prefixes. Between the lab's ExaBGP speakers an UPDATE carries
its IPv4 NLRI and its IPv6 prefixes in an MP_REACH_NLRI together
(``testbed.speaker.packing``), so the block differs in every UPDATE and
each one went through ExaBGP's generic parser attribute by attribute
(``Attributes._parse_one``): about 45 % of what a single-homed speaker
spends reading.

``make_unpack`` wraps the original: for a block that holds an MP attribute
(each at most once), no AS4_PATH or AS4_AGGREGATOR (which ``unpack``
reconciles with the others), every attribute header and length within the
block, and DEBUG logging off, it splits the block into the MP attributes
and the rest, and looks the rest's bytes up in a cache of the session
(kept on its ``Negotiated``, as the original's cache is; bounded by
``LIMIT``). On a miss it parses the rest with ExaBGP's own ``parse`` and
keeps it only if every attribute decoded cleanly (no treat-as-withdraw,
no discard, no error); on a hit it copies those attributes into a new
``Attributes`` and parses each MP attribute with ExaBGP's own
``_parse_one``, in wire order, so the result's items, their order and
every error raised or marked are what the original gives
(``tests/unit/test_receiving.py`` compares both on UPDATEs built with
ExaBGP's classes, malformed ones included). Anything else, and every
block the cache refuses, takes the original, whose own cache keeps
working as before. ``install`` applies it through
``testbed.speaker.compat`` (``attributes-unpack``) in a zygote speaker;
``TESTBED_RECEIVE_CACHE=0`` turns it off (for an A/B).
"""

from __future__ import annotations

import os

from testbed.speaker import compat

ENV = "TESTBED_RECEIVE_CACHE"
LIMIT = 4096            # attribute sets kept per session; then forgotten and parsed again
PATCHES = ("attributes-unpack", "attributes-parse", "attributes-parse-one")
MP_REACH, MP_UNREACH = 14, 15
AS4_PATH, AS4_AGGREGATOR = 17, 18
EXTENDED = 0x10         # attribute flag: two-octet length
REFUSED = ()            # a cached answer: this rest did not decode cleanly, take the original
stats = {"hits": 0, "misses": 0, "original": 0}
"""Blocks read from the cache, parsed into it, and left to the original, in this speaker."""


def enabled(environ=os.environ) -> bool:
    return environ.get(ENV, "1") != "0"


def split(data):
    """``(mp, rest, slots)`` of an attribute block: its MP attributes (each
    with its header) by position, the bytes of all the others, and the
    type code of each attribute in wire order; None if it cannot take the
    cache (no MP attribute, one twice, AS4_PATH or AS4_AGGREGATOR, or a
    header or length past the block's end)."""
    end = len(data)
    at = 0
    mp: list[tuple[int, bytes]] = []
    rest: list[bytes] = []
    codes: list[int] = []
    while at < end:
        if at + 3 > end:
            return None
        flag, code = data[at], data[at + 1]
        if flag & EXTENDED:
            if at + 4 > end:
                return None
            start = at + 4
            stop = start + (data[at + 2] << 8 | data[at + 3])
        else:
            start = at + 3
            stop = start + data[at + 2]
        if stop > end:
            return None
        if code == MP_REACH or code == MP_UNREACH:
            if code in codes:
                return None
            mp.append((len(codes), data[at:stop]))
        elif code == AS4_PATH or code == AS4_AGGREGATOR:
            return None
        else:
            rest.append(data[at:stop])
        codes.append(code)
        at = stop
    if not mp:
        return None
    return mp, b"".join(rest), codes


def make_unpack(original, attributes_class, debug_on, limit: int = LIMIT):
    """The replacement of ``Attributes.unpack`` (a function of ``cls, data,
    direction, negotiated``) around ``original`` (the original's function);
    ``debug_on()`` says whether ExaBGP logs DEBUG (then the original runs,
    for its parser's log lines)."""
    from exabgp.bgp.message.update.attribute.attribute import Attribute

    treat_as_withdraw = Attribute.CODE.INTERNAL_TREAT_AS_WITHDRAW
    internal = frozenset(code for code in Attribute.CODE.names if code > 0xFF) | {
        Attribute.CODE.INTERNAL_DISCARD, treat_as_withdraw}
    set_item, new_dict = dict.__setitem__, dict.__new__

    def parse_rest(cls, rest, codes, direction, negotiated):
        """The cache's entry for ``rest``: ``(code, attribute)`` of each
        attribute in the order ``parse`` adds them, with the position of the
        attribute that added it; ``REFUSED`` unless all decoded cleanly."""
        part = cls()
        try:
            part.parse(rest, direction, negotiated)
        except Exception:  # noqa: BLE001 - the original, run on the whole block, raises it
            return REFUSED
        found = []
        for code, attribute in dict.items(part):
            if code in internal or codes.count(code) != 1:
                return REFUSED
            found.append((codes.index(code), code, attribute))
        return tuple(found)

    def unpack(cls, data, direction, negotiated):
        if negotiated is None or cls is not attributes_class or debug_on():
            stats["original"] += 1
            return original(cls, data, direction, negotiated)
        if negotiated.cached_attributes is not None and data == negotiated.cached_wire:
            return negotiated.cached_attributes
        parts = split(data)
        if parts is None:
            stats["original"] += 1
            return original(cls, data, direction, negotiated)
        mp, rest, codes = parts
        cache = negotiated.__dict__.get("_testbed_attributes")
        if cache is None:
            cache = negotiated._testbed_attributes = {}
        key = (rest, direction)
        found = cache.get(key)
        if found is None:
            if len(cache) >= limit:
                cache.clear()
            found = cache[key] = parse_rest(cls, rest, [c for c in codes if c != MP_REACH and c != MP_UNREACH],
                                            direction, negotiated)
            stats["misses"] += 1
        else:
            stats["hits"] += 1
        if found is REFUSED:
            stats["original"] += 1
            return original(cls, data, direction, negotiated)
        # what Attributes.__init__ sets (its getenv() read aside: the
        # cache's entry was made by one, which set it for the process)
        new = new_dict(cls)
        new._str = ""
        new._idx = ""
        new._json = ""
        new._dict = {}
        new.cacheable = True
        # in wire order: the position of a cached attribute is among the
        # others, so count the MP attributes before it
        pending = iter(mp)
        position, attribute_bytes = next(pending)
        shift = 0
        for index, code, attribute in found:
            while position is not None and position <= index + shift:
                new._parse_one(attribute_bytes, direction, negotiated)
                shift += 1
                position, attribute_bytes = next(pending, (None, None))
            set_item(new, code, attribute)
        while position is not None:
            new._parse_one(attribute_bytes, direction, negotiated)
            position, attribute_bytes = next(pending, (None, None))
        if treat_as_withdraw in new:
            return new
        # reconcile_four_octet_as has nothing to do: no AS4_PATH, no AS4_AGGREGATOR
        negotiated.cached_wire = b""   # an MP attribute: what the original leaves
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
    unpack = make_unpack(original, Attributes, lambda: option.logit.get("DEBUG", False))
    compat.replace("attributes-unpack", Attributes, classmethod(unpack))
    return True
