"""Synthetic AS graphs shaped like CAIDA's, for tests and the benchmark.

``synthetic(n, links, seed)`` builds an Internet-like AS graph without any
download: a clique of Tier-1s (the ASNs of the real 2020s clique, so that
scenarios can name AS3356 and AS174) that all peer, then ASes added one at
a time, each buying transit from one to four ASes added before it, chosen
with a probability that grows with their customer count (preferential
attachment: a few huge providers, a long tail of stubs, customer degrees
following a power law, and no transit cycle since providers are always
older), then settlement-free peerings between ASes picked by degree and at
random (the dense peering of IXPs) until the graph has ``links`` links. The
result is (transit pairs, peering pairs, clique) as ASNs, which
``testbed.internet.caida.write`` turns into a file in CAIDA's format.
Deterministic for a seed.
"""

from __future__ import annotations

import random

__all__ = ["CLIQUE", "synthetic", "write_synthetic"]

CLIQUE = (174, 209, 286, 701, 1239, 1299, 2828, 2914, 3257, 3320, 3356, 3491, 5511, 6453,
          6461, 6762, 6830, 7018, 12956)
"""The Tier-1 clique CAIDA inferred in the early 2020s."""

TRANSIT_SHARE = 0.16          # ASes that may sell transit (the rest are stubs)
PROVIDER_COUNTS = (1, 2, 3, 4)
PROVIDER_WEIGHTS = (0.45, 0.35, 0.15, 0.05)
P_PEER_AT_RANDOM = 0.35       # a peering endpoint picked uniformly, not by degree


def _asns(n: int, rng: random.Random) -> list[int]:
    """``n`` distinct public-looking ASNs, the clique's first."""
    taken = set(CLIQUE)
    pool = [a for a in range(1, 64496) if a not in taken and a != 23456]
    pool += range(131072, 131072 + max(0, n))       # 32-bit ASNs
    rest = rng.sample(pool, max(0, n - len(CLIQUE)))
    return list(CLIQUE[:n]) + rest


def synthetic(n: int = 75_000, links: int | None = None, seed: int = 1):
    """(transit, peering, clique): see the module docstring. ``links``
    defaults to about 6.6 per AS (CAIDA's ratio: ~500,000 for 75,000)."""
    if n < 3:
        raise ValueError(f"a synthetic Internet needs at least 3 ASes, not {n}")
    rng = random.Random(seed)
    links = links if links is not None else int(n * 6.6)
    asns = _asns(n, rng)
    clique_size = min(len(CLIQUE), max(2, n // 50))
    clique = asns[:clique_size]
    transit: list[tuple[int, int]] = []
    peering: list[tuple[int, int]] = []
    related: set[tuple[int, int]] = set()
    degree = [0] * n

    def relate(a: int, b: int) -> bool:
        key = (a, b) if a < b else (b, a)
        if a == b or key in related:
            return False
        related.add(key)
        degree[a] += 1
        degree[b] += 1
        return True

    for i in range(clique_size):
        for j in range(i + 1, clique_size):
            relate(i, j)
            peering.append((asns[i], asns[j]))
    capable = clique_size + int((n - clique_size) * TRANSIT_SHARE)
    # Each transit-capable AS appears once plus once per customer: a uniform
    # pick from this list is a pick by customer count.
    attach = list(range(clique_size)) * 3
    for i in range(clique_size, n):
        count = rng.choices(PROVIDER_COUNTS, PROVIDER_WEIGHTS)[0]
        chosen = set()
        for _ in range(count * 4):
            if len(chosen) == count:
                break
            chosen.add(rng.choice(attach))
        for p in sorted(chosen):
            if relate(p, i):
                transit.append((asns[p], asns[i]))
                attach.append(p)
        if i < capable:
            attach.append(i)
    ends: list[int] = []
    for node in range(n):
        ends.extend([node] * degree[node])
    attempts = 0
    while len(transit) + len(peering) < links and attempts < links * 20:
        attempts += 1
        a = rng.randrange(n) if rng.random() < P_PEER_AT_RANDOM else rng.choice(ends)
        b = rng.randrange(n) if rng.random() < P_PEER_AT_RANDOM else rng.choice(ends)
        if a < clique_size and b < clique_size:
            continue
        if relate(a, b):
            peering.append((asns[a], asns[b]))
    return transit, peering, clique


def write_synthetic(path, n: int = 75_000, links: int | None = None, seed: int = 1,
                    serial: int = 2) -> tuple[int, int]:
    """Write ``synthetic(n, links, seed)`` as a CAIDA file (bz2 when the
    name ends in ``.bz2``); return (ASes, links)."""
    from .caida import write

    transit, peering, clique = synthetic(n, links, seed)
    write(path, transit, peering, serial=serial, clique=clique,
          comment=f"synthetic AS relationships: testbed.internet.synthetic(n={n}, seed={seed})\n"
                  "not measured data: the shape of CAIDA's serial files, made up")
    return n, len(transit) + len(peering)
