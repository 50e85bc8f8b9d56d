"""Order-independent fingerprints of routing tables, kept up to date as they change.

"Converged" means every router's routing state equals the model's, and the
harness compares the two by fingerprint. A route's line is its prefix, AS
path, next hop and MED (and, in an Adj-RIB-In, whether import policy
rejected it); a table's fingerprint is the sum of its lines' 64-bit BLAKE2b
hashes, modulo 2**64. A sum does not depend on the order of the lines, so
a ``FingerprintedTable`` brings it up to date from the routes that changed
since it was last asked (the agents were spending most of their own CPU
recomputing it from scratch for every answer to the harness while a
100-AS lab converged), and a route that changed ten times between two
questions, or a table of 100,000 routes received while nobody asks, costs
no hash until the question. ``table_fingerprint`` gives the same number
for a table in JSON form (the model's prediction).
"""

from __future__ import annotations

import hashlib

MASK = (1 << 64) - 1


def route_line(prefix: str, as_path, next_hop, med, rejected=None, adj_in: bool = False) -> str:
    """The text of a route that its fingerprint hashes."""
    line = f"{prefix} {' '.join(map(str, as_path))} {next_hop} {med}"
    return f"{line} {bool(rejected)}" if adj_in else line


def line_hash(line: str) -> int:
    return int.from_bytes(hashlib.blake2b(line.encode(), digest_size=8).digest(), "big")


def route_hash(prefix: str, route, adj_in: bool) -> int:
    """The hash of a ``Route`` object's line."""
    return line_hash(route_line(prefix, route.as_path, route.next_hop, route.med, route.rejected, adj_in))


def table_fingerprint(table: dict[str, dict], adj_in: bool = False) -> int:
    """The fingerprint of a table of routes in JSON form (``Route.to_json``)."""
    total = 0
    for prefix, route in table.items():
        total += line_hash(route_line(prefix, route.get("as_path", ()), route.get("next_hop"),
                                      route.get("med"), route.get("rejected"), adj_in))
    return total & MASK


def state_fingerprint(loc_rib: int, adj_rib_in: dict[str, int]) -> str:
    """A router's state from its tables' fingerprints: the Loc-RIB's and
    each neighbor's Adj-RIB-In (by neighbor address)."""
    parts = [f"{loc_rib:016x}"] + [f"{neighbor}:{adj_rib_in[neighbor]:016x}" for neighbor in sorted(adj_rib_in)]
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:16]


class FingerprintedTable(dict):
    """A prefix -> ``Route`` dict that knows its fingerprint
    (``.fingerprint``). Only the mutations a routing table needs are
    allowed: item assignment, ``del``, ``pop`` and ``clear``.

    The sum is settled lazily: a change only records, the first time a
    prefix changes after a settlement, the route it had then (None: none),
    and ``fingerprint`` settles every recorded prefix, hashing the old and
    the current route once each whatever happened in between. The record
    holds at most one entry per prefix; it is settled early once it has
    more entries than the table plus ``SETTLE_SLACK``, so a table nobody
    asks about keeps no more than that (prefixes deleted since)."""

    __slots__ = ("adj_in", "_sum", "_changed")

    SETTLE_SLACK = 4096

    def __init__(self, adj_in: bool = False):
        super().__init__()
        self.adj_in = adj_in
        self._sum = 0
        self._changed: dict[str, object] = {}

    @property
    def fingerprint(self) -> int:
        if self._changed:
            self._settle()
        return self._sum & MASK

    def _settle(self) -> None:
        total, adj_in, get = self._sum, self.adj_in, self.get
        for prefix, old in self._changed.items():
            new = get(prefix)
            if new is old:
                continue
            if old is not None:
                total -= route_hash(prefix, old, adj_in)
            if new is not None:
                total += route_hash(prefix, new, adj_in)
        self._changed.clear()
        self._sum = total

    def _record(self, prefix: str, old) -> None:
        changed = self._changed
        if prefix not in changed:
            changed[prefix] = old
            if len(changed) > len(self) + self.SETTLE_SLACK:
                self._settle()

    def __setitem__(self, prefix: str, route) -> None:
        changed = self._changed  # _record, inline: this runs for every route received
        if prefix not in changed:
            changed[prefix] = dict.get(self, prefix)
            if len(changed) > len(self) + self.SETTLE_SLACK:
                self._settle()
        dict.__setitem__(self, prefix, route)

    def __delitem__(self, prefix: str) -> None:
        route = dict.__getitem__(self, prefix)
        dict.__delitem__(self, prefix)
        self._record(prefix, route)

    _MISSING = object()

    def pop(self, prefix: str, default=_MISSING):
        if prefix in self:
            route = dict.pop(self, prefix)
            self._record(prefix, route)
            return route
        if default is self._MISSING:
            raise KeyError(prefix)
        return default

    def clear(self) -> None:
        super().clear()
        self._changed.clear()
        self._sum = 0

    def _refuse(self, *args, **kwargs):
        raise TypeError("a FingerprintedTable changes by item assignment, del, pop and clear only")

    update = setdefault = popitem = __ior__ = _refuse

    def __reduce__(self):  # copies and pickles: the routes again, each counted once
        return (_table, (self.adj_in, list(self.items())))


def _table(adj_in: bool, items: list) -> FingerprintedTable:
    table = FingerprintedTable(adj_in)
    for prefix, route in items:
        table[prefix] = route
    return table
