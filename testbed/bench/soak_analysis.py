"""The soak test's pure parts: its plan and the figures it judges by.

``schedule`` picks the session each cycle depeers (deterministic for a
seed, every session covered, never the same one twice in a row);
``percentile`` and ``distribution`` summarise the cycles' convergence
times; ``growth``, ``rate``, ``rates`` and ``per_process_growth`` turn the
memory samples into growth after the warm-up; ``rib_differences`` names
every route that differs between two tables. Data in, data out: the run
itself is ``testbed.bench.soak``.
"""

from __future__ import annotations

import math
import random
import statistics

from testbed.bench.observe import MIB

SPEAKER_KINDS = ("speaker", "agent")  # the processes whose memory must not grow


def _pair(session) -> tuple[str, str]:
    """(a, b) of a ``SessionPlan`` or of a 2-tuple."""
    if hasattr(session, "a") and hasattr(session, "b"):
        return session.a, session.b
    a, b = session
    return a, b


def schedule(sessions, cycles: int, seed: int) -> list[tuple[str, str]]:
    """The session to depeer and re-peer at each of ``cycles`` cycles.

    ``sessions``: ``SessionPlan``s or ``(a, b)`` pairs (duplicates, in either
    order, count once). Round-robin over one shuffle of all sessions made by
    ``random.Random(seed)``: every session is exercised once per round, and
    two consecutive cycles never take the same session when there are two or
    more. The first side of each pair is the one that shuts the session down;
    odd rounds swap the sides, so both ends of a session get to do it.
    Deterministic, and independent of the order ``sessions`` come in.
    """
    if cycles < 0:
        raise ValueError(f"cycles must be 0 or more, not {cycles}")
    unique: dict[frozenset, tuple[str, str]] = {}
    for session in sessions:
        a, b = _pair(session)
        if a == b:
            raise ValueError(f"a session joins two different ASes, not {a} with itself")
        unique.setdefault(frozenset((a, b)), tuple(sorted((a, b))))
    order = sorted(unique.values())
    if cycles and not order:
        raise ValueError("no session to depeer")
    random.Random(seed).shuffle(order)
    plan = []
    for cycle in range(cycles):
        a, b = order[cycle % len(order)]
        plan.append((b, a) if (cycle // len(order)) % 2 else (a, b))
    return plan


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile (0 < q <= 100) by the nearest-rank method;
    None for no values."""
    if not values:
        return None
    ranked = sorted(values)
    return ranked[max(0, math.ceil(q / 100 * len(ranked)) - 1)]


def distribution(values: list[float]) -> dict[str, float | int | None]:
    """count, median, p95 and max of ``values`` (seconds, rounded to ms)."""
    if not values:
        return {"count": 0, "median": None, "p95": None, "max": None}
    return {"count": len(values), "median": round(statistics.median(values), 3),
            "p95": round(percentile(values, 95), 3), "max": round(max(values), 3)}


def growth(initial: dict[int, tuple[str, int, int]],
           final: dict[int, tuple[str, int, int]]) -> dict[str, dict[str, float]]:
    """Memory growth by process kind and in total, over the processes present
    at both ends. ``initial``/``final``: pid -> (kind, PSS, RSS) in bytes.
    Result: kind -> processes, initial/final PSS and RSS in MiB, PSS and
    RSS growth in MiB and in percent."""
    sums: dict[str, list[int]] = {}
    for pid, (kind, pss0, rss0) in initial.items():
        if pid not in final:
            continue
        _, pss1, rss1 = final[pid]
        for key in (kind, "total"):
            acc = sums.setdefault(key, [0, 0, 0, 0, 0])
            acc[0] += 1
            acc[1] += pss0
            acc[2] += pss1
            acc[3] += rss0
            acc[4] += rss1
    out = {}
    for kind in sorted(sums, key=lambda k: (k == "total", k)):
        n, pss0, pss1, rss0, rss1 = sums[kind]
        out[kind] = {
            "processes": n,
            "initial_pss_mib": round(pss0 / MIB, 2), "final_pss_mib": round(pss1 / MIB, 2),
            "pss_growth_mib": round((pss1 - pss0) / MIB, 2),
            "pss_growth_pct": round(100.0 * (pss1 - pss0) / pss0, 2) if pss0 else 0.0,
            "initial_rss_mib": round(rss0 / MIB, 2), "final_rss_mib": round(rss1 / MIB, 2),
            "rss_growth_mib": round((rss1 - rss0) / MIB, 2),
            "rss_growth_pct": round(100.0 * (rss1 - rss0) / rss0, 2) if rss0 else 0.0,
        }
    return out


def rate(points: list[tuple[int, float]]) -> float | None:
    """Growth per 100 cycles of ``(cycle, value)`` points: 100 times the
    least-squares slope; None for fewer than two distinct cycles."""
    if len({c for c, _ in points}) < 2:
        return None
    return 100.0 * statistics.linear_regression([c for c, _ in points], [v for _, v in points]).slope


def rates(samples: list[dict], key, warmup: int) -> dict | None:
    """How fast ``key(sample)`` grows after cycle ``warmup``.

    ``samples``: memory samples (``cycle`` and whatever ``key`` reads).
    Result: the baseline (the value at the last sample at or before the
    warm-up), the final value, the growth per 100 cycles over every sample
    from the baseline on (``per_100``, and in percent of the baseline,
    ``pct_per_100``) and in each half of that stretch (``halves``: a leak
    grows as fast in both, an allocator settling slows down). None when
    fewer than three samples are left to judge by."""
    start = [s for s in samples if s["cycle"] <= warmup]
    if not start:
        return None
    base = start[-1]
    points = [(s["cycle"], float(key(s))) for s in samples if s["cycle"] >= base["cycle"]]
    if len(points) < 3:
        return None
    slope = rate(points)
    middle = (points[0][0] + points[-1][0]) / 2
    halves = [rate([p for p in points if p[0] <= middle]), rate([p for p in points if p[0] >= middle])]
    value = points[0][1]
    return {"from_cycle": base["cycle"], "to_cycle": points[-1][0], "samples": len(points),
            "baseline": round(value, 2), "final": round(points[-1][1], 2),
            "per_100": round(slope, 3),
            "pct_per_100": round(100.0 * slope / value, 3) if value else 0.0,
            "halves_per_100": [None if h is None else round(h, 3) for h in halves]}


def rib_differences(router: str, before: dict[str, dict], after: dict[str, dict],
                    what: str = "Loc-RIB") -> list[str]:
    """One line per prefix that differs between two tables of ``router``."""
    lines = []
    for prefix in sorted(set(before) | set(after)):
        old, new = before.get(prefix), after.get(prefix)
        if old == new:
            continue
        if new is None:
            lines.append(f"{router} {what}: {prefix} is gone (was {_brief(old)})")
        elif old is None:
            lines.append(f"{router} {what}: {prefix} is new ({_brief(new)})")
        else:
            lines.append(f"{router} {what}: {prefix} was {_brief(old)}, is {_brief(new)}")
    return lines


def _brief(route) -> str:
    if isinstance(route, dict):
        return f"AS path {route.get('as_path')} via {route.get('next_hop')}"
    return str(route)


def per_process_growth(initial, final, names: dict[int, str], touched: dict[str, int]) -> list[dict]:
    """Speakers and agents present at both ends, largest PSS growth first:
    pid, name (``exabgp:<router>``), how many cycles depeered a session of
    that router, PSS and RSS growth in MiB."""
    rows = []
    for pid, (kind, pss0, rss0) in initial.items():
        if kind not in SPEAKER_KINDS or pid not in final:
            continue
        name = names.get(pid, "?")
        router = name.split(":", 1)[1] if ":" in name else None
        rows.append({"pid": pid, "name": name, "cycles": touched.get(router, 0),
                     "pss_growth_mib": round((final[pid][1] - pss0) / MIB, 3),
                     "rss_growth_mib": round((final[pid][2] - rss0) / MIB, 3)})
    return sorted(rows, key=lambda row: -row["pss_growth_mib"])
