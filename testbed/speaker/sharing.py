"""One set of path attributes per route, shared by every neighbor it is sent to.

A router exporting a route to N neighbors queues N ExaBGP ``Change``
objects whose ``Attributes`` differ only in the NEXT_HOP (each neighbor
gets the router's own address on their link). ``handover._inject``
built each of those with ``make_attributes`` (ExaBGP's ``Attributes()``
reads its environment on every construction, ``NextHop`` parses its
address) and ExaBGP then computed each one's text index
(``Attributes.index``: every attribute formatted as text) when it queued
the change: ~20 us per route and neighbor, a third of a Tier-1's ExaBGP
time in a 100-AS lab.

``AttributeMaker`` makes the same ``Attributes`` from a template: per
(origin, AS path, MED, local preference) once, per next hop once (the
``NextHop`` object and its text), and per (template, next hop) a copy of
the template's dict with that next hop, its index filled in from the
texts of its parts (what ``Attributes.index`` would compute, in the same
order). The result is equal to ``make_attributes``'s for every input
(``tests/unit/test_shared_attributes.py`` compares dict, index, text and
packed bytes). Sending them, ``testbed.speaker.packing`` packed each
one twice per session (with and without NEXT_HOP): ``forms`` packs a
template once per kind of session and puts each next hop's bytes in. The
caches are the speaker's, bounded (``LIMIT``).
``TESTBED_SHARED_ATTRIBUTES=0`` turns it off (for an A/B); it needs the
in-process transport (``handover``), whose ``_inject`` calls it.
"""

from __future__ import annotations

import os

from testbed.speaker import compat

ENV = "TESTBED_SHARED_ATTRIBUTES"
LIMIT = 8192          # templates and next hops kept, each; then forgotten and made again
NEXT_HOP = 3          # path attribute type code
_CODES_FIRST = {1, 2}  # ORIGIN, AS_PATH
PATCHES = ("attributes-init", "attributes-index", "attributes-text", "attributes-pack")


def enabled(environ=os.environ) -> bool:
    return environ.get(ENV, "1") != "0"


class AttributeMaker:
    """``make_attributes(next_hop, origin, as_path, med, local_pref)`` with
    the work shared between calls (see the module)."""

    def __init__(self, make_attributes, limit: int = LIMIT):
        compat.verify(PATCHES)
        from exabgp.bgp.message.update.attribute import Attributes

        self._make = make_attributes
        self._limit = limit
        self._attributes = Attributes
        self._templates: dict[tuple, tuple] = {}   # (origin, path, med, lp) -> (items, text before, after)
        self._hops: dict[str, tuple] = {}          # next hop text -> (NextHop, its text in the index, str)
        self._packed: dict[tuple, tuple] = {}      # (template, session kind) -> (template, packed, split)
        Attributes()  # what every Attributes() does first: Attribute.caching from the environment

    def _text(self, items) -> str:
        """``str()`` of an ``Attributes`` holding ``items`` (code, attribute)."""
        holder = self._attributes()
        for code, attribute in items:
            dict.__setitem__(holder, code, attribute)
        return "".join(holder._generate_text())

    def __call__(self, next_hop, origin, as_path, med, local_pref):
        if next_hop is None:
            return self._make(next_hop, origin, as_path, med, local_pref)
        key = (origin, as_path, med, local_pref)
        template = self._templates.get(key)
        hop = self._hops.get(next_hop)
        if template is None or hop is None:
            made = self._make(next_hop, origin, as_path, med, local_pref)
            if template is None:
                if len(self._templates) >= self._limit:
                    self._templates.clear()
                items = tuple((code, attribute) for code, attribute in made.items() if code != NEXT_HOP)
                template = self._templates[key] = (
                    items, self._text(i for i in items if i[0] < NEXT_HOP),
                    self._text(i for i in items if i[0] > NEXT_HOP))
            if hop is None:
                if len(self._hops) >= self._limit:
                    self._hops.clear()
                found = made[NEXT_HOP]
                hop = self._hops[next_hop] = (found, self._text(((NEXT_HOP, found),)), str(found))
            made._testbed_template = template
            return made
        items, before, after = template
        found, piece, name = hop
        new = dict.__new__(self._attributes)
        dict.__setitem__(new, NEXT_HOP, found)   # the order make_attributes adds them in
        for code, attribute in items:
            dict.__setitem__(new, code, attribute)
        # Attributes.__init__'s fields, then index() as it would compute it
        new._str = ""
        text = before + piece + after
        new._idx = f"{text} next-hop {name}" if name else text
        new._json = ""
        new._dict = {}
        new.cacheable = True
        new._testbed_template = template
        return new

    def forms(self, attributes, negotiated):
        """``packing._attribute_forms`` of ``attributes`` for a session:
        (packed with NEXT_HOP as ``Attributes.pack`` packs it, packed
        without), for an ``Attributes`` this maker made from a template;
        else None. The packing without NEXT_HOP is made once per template
        and kind of session (iBGP or eBGP, four-octet AS numbers or not:
        all that ``Attributes.pack`` reads of it here); the next hop's bytes go in after
        those of ORIGIN and AS_PATH, where ``pack`` puts them."""
        template = attributes.__dict__.get("_testbed_template")
        if template is None or len(attributes) != len(template[0]) + 1:   # not ours, or changed since
            return None
        # pack() reads the local and peer AS only to add defaults for a
        # missing ORIGIN or AS_PATH (never missing here) and to add or drop
        # LOCAL_PREF: whether they are equal (iBGP) is all that counts
        key = (id(template), negotiated.local_as == negotiated.peer_as, bool(negotiated.asn4))
        found = self._packed.get(key)
        if found is None:
            if len(self._packed) >= self._limit:
                self._packed.clear()
            if not _CODES_FIRST <= {code for code, _ in template[0]}:
                return None
            rest = self._attributes()
            for code, attribute in template[0]:
                dict.__setitem__(rest, code, attribute)
            base = rest.pack(negotiated)
            # Attributes.pack adds each attribute's pack() in order of code
            # (AS_PATH's may hold an AS4_PATH too); ORIGIN and AS_PATH are
            # always there (make_attributes), so no default comes before.
            split = sum(len(attribute.pack(negotiated)) for code, attribute in template[0] if code < NEXT_HOP)
            found = self._packed[key] = (template, base, split)  # the template kept: its id stays its own
        base, split = found[1], found[2]
        hop = attributes.get(NEXT_HOP)
        if hop is None or hop.ipv4() is not True:   # Attributes.pack leaves it out
            return base, base
        return base[:split] + hop.pack(negotiated) + base[split:], base

