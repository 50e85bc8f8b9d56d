"""Order-independent fingerprints of routing tables, kept up to date as they change.

"Converged" means every router's routing state equals the model's, and the
harness compares the two by fingerprint. A route's line is its prefix, AS
path, next hop and MED (and, in an Adj-RIB-In, whether import policy
rejected it); a table's fingerprint is the sum of its lines' 64-bit BLAKE2b
hashes, modulo 2**64. A sum does not depend on the order of the lines, so
a ``FingerprintedTable`` keeps it current as routes come and go, one hash
per change, and answering "what is your state?" costs one line per
neighbor instead of one per route (the agents were spending most of their
own CPU recomputing it from scratch for every answer to the harness while
a 100-AS lab converged). ``table_fingerprint`` gives the same number for a
table in JSON form (the model's prediction).
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
    (``.fingerprint``) at all times. Only the mutations a routing table
    needs are allowed: item assignment, ``del``, ``pop`` and ``clear``."""

    __slots__ = ("adj_in", "_sum")

    def __init__(self, adj_in: bool = False):
        super().__init__()
        self.adj_in = adj_in
        self._sum = 0

    @property
    def fingerprint(self) -> int:
        return self._sum & MASK

    # The hash of a route leaving the table is computed again rather than
    # kept: a second dict beside every table would cost ~100 bytes a route.
    def __setitem__(self, prefix: str, route) -> None:
        old = dict.get(self, prefix)
        if old is not None:
            self._sum -= route_hash(prefix, old, self.adj_in)
        self._sum += route_hash(prefix, route, self.adj_in)
        super().__setitem__(prefix, route)

    def __delitem__(self, prefix: str) -> None:
        route = dict.__getitem__(self, prefix)
        super().__delitem__(prefix)
        self._sum -= route_hash(prefix, route, self.adj_in)

    _MISSING = object()

    def pop(self, prefix: str, default=_MISSING):
        if prefix in self:
            route = super().pop(prefix)
            self._sum -= route_hash(prefix, route, self.adj_in)
            return route
        if default is self._MISSING:
            raise KeyError(prefix)
        return default

    def clear(self) -> None:
        super().clear()
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
