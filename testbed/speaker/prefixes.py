"""One set of NLRI parts per prefix, shared by every neighbor it is sent to.

A router exporting a route to N neighbors made N ExaBGP ``INET`` objects
for it (``handover.make_change``), each parsing the prefix's address and
mask again; ExaBGP then computed each ``Change``'s index (its family and
packed prefix, as text and bytes) when queuing it, and
``testbed.speaker.packing`` packed the prefix again for every session it
was sent on. ``PrefixParts`` keeps, per prefix text, what is equal for
every neighbor: the ``INET``'s AFI, SAFI and ``CIDR`` (one object, which
ExaBGP never changes after it is made), the ``Change`` index, and the
prefix as the NLRI field carries it without ADD-PATH (``packed``, read by
``packing.plan``). Only the next hop, the action and the attributes stay
per neighbor. The first change made for a prefix is made the usual way
and its parts are kept; the rest are equal to it
(``tests/unit/test_shared_prefixes.py`` compares objects, indexes and the
UPDATEs sent). Bounded (``LIMIT``: then forgotten and made again; ~380
bytes a prefix).
``TESTBED_SHARED_PREFIXES=0`` turns it off (for an A/B); it needs the
in-process transport (``handover``), whose ``_inject`` uses it.
"""

from __future__ import annotations

import os

from testbed.speaker import compat

ENV = "TESTBED_SHARED_PREFIXES"
LIMIT = 16384         # prefixes kept (~380 bytes each: at most ~6 MB); then forgotten and made again
PATCHES = ("change-index", "inet-init", "inet-index", "inet-pack", "cidr-pack")
PACKED = "_testbed_nlri"
"""The attribute of a shared ``CIDR`` holding its NLRI bytes (``pack_nlri()``)."""


def enabled(environ=os.environ) -> bool:
    return environ.get(ENV, "1") != "0"


class PrefixParts(dict):
    """prefix text -> (AFI, SAFI, CIDR, Change index): what
    ``handover.make_change`` reads (``get``) and fills (``keep``)."""

    def __init__(self, limit: int = LIMIT):
        super().__init__()
        compat.verify(PATCHES)
        self.limit = limit

    def keep(self, prefix: str, change) -> None:
        """Keep the parts of ``change`` (just made for ``prefix`` without
        ADD-PATH) for the next changes of the same prefix."""
        if len(self) >= self.limit:
            self.clear()
        nlri = change.nlri
        cidr = nlri.cidr
        setattr(cidr, PACKED, cidr.pack_nlri())
        self[prefix] = (nlri.afi, nlri.safi, cidr, change.index())
