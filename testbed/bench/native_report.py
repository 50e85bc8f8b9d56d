"""The benchmark's figures as ratios to the native reference: ours ÷ BIRD, baseline ÷ BIRD.

The issue's yardstick is a native BGP daemon measured minutes apart on the
same machine (``testbed.bench.native``): every figure of each other model
divided by BIRD's on the same topology. ``FIGURES`` names them (start to
converged, start to every route in place, last session up to every route
in place, CPU, CPU per route,
path exploration, memory, idle CPU, depeering, re-peering, stop);
``compare(results)`` gives the ratios as data (for the JSON), size by
size, and ``table(results)`` as a rich table beside BIRD's own values. A
ratio above 1 is how many times more the other model takes (time, CPU,
memory). A figure either side lacks, or that BIRD measured as zero, has
no ratio. Pure: results in, data and tables out.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["FIGURES", "REFERENCE", "compare", "label", "spread", "table"]

REFERENCE = "bird"
ROUTES_RELEASED = "waiting for sessions and routes"  # the phase after the update delay: every session up


def spread(r) -> float | None:
    """Last session up → every route in place: BIRD's, from its own clocks;
    ours, the phase from the release of the routes held back until every
    session was up (the update delay) to converged. None where the
    models' start had no such phase."""
    if r.spread_s is not None:
        return r.spread_s
    if any(name.startswith("establishing sessions") for name in r.phases):
        return r.phases.get(ROUTES_RELEASED)
    return None


def _placed(r) -> float | None:
    """Start → every route in place: BIRD's from its own clocks (its
    start → converged also holds the watching's last rounds); ours is its
    start → converged, which its agents report as it happens."""
    return r.routes_placed_s if r.model == REFERENCE else r.start_s


def _per_route(r) -> float | None:
    return r.converge_cpu_s * 1000 / r.routes_in if r.converge_cpu_s is not None and r.routes_in else None


def _exploration(r) -> float | None:
    return r.routes_in / r.routes_needed if r.routes_in is not None and r.routes_needed else None


# (key, label, value of a result, format of the value)
FIGURES: list[tuple[str, str, Callable, str]] = [
    ("start_s", "start → converged", lambda r: r.start_s, "{:.2f} s"),
    ("placed_s", "start → every route in place (BIRD: its clocks)", _placed, "{:.2f} s"),
    ("spread_s", "last session up → every route in place", spread, "{:.2f} s"),
    ("converge_cpu_s", "CPU of the lab, start → converged", lambda r: r.converge_cpu_s, "{:.2f} s"),
    ("cpu_per_route_ms", "CPU per route received", _per_route, "{:.3f} ms"),
    ("exploration", "routes received ÷ needed", _exploration, "{:.2f}×"),
    ("pss_per_as_mib", "PSS per AS", lambda r: r.pss_per_as_mib, "{:.1f} MiB"),
    ("peak_pss_mib", "peak PSS", lambda r: r.peak_pss_mib, "{:.0f} MiB"),
    ("idle_cpu_per_as", "idle CPU per AS", lambda r: r.idle_cpu_per_as, "{:.3f} %"),
    ("depeer_s", "depeer → converged", lambda r: r.depeer_s, "{:.2f} s"),
    ("repeer_s", "repeer → converged", lambda r: r.repeer_s, "{:.2f} s"),
    ("stop_s", "stop()", lambda r: r.stop_s, "{:.2f} s"),
]


def label(r) -> str:
    """A model's name, with its MRAI where one was set."""
    return r.model + (f", MRAI {r.mrai * 1000:g} ms" if r.mrai is not None and r.model != REFERENCE else "")


def _ratio(value, reference) -> float | None:
    if value is None or not reference:
        return None
    return value / reference


def compare(results: list) -> dict[str, dict[str, dict[str, float | None]]]:
    """size (as text) -> model label -> figure key -> the model's figure ÷
    BIRD's, for every size that has a BIRD result without error (its first)."""
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    for size in sorted({r.size for r in results}):
        reference = next((r for r in results if r.size == size and r.model == REFERENCE and not r.error), None)
        if reference is None:
            continue
        others = [r for r in results if r.size == size and r.model != REFERENCE]
        out[str(size)] = {label(r): {key: _ratio(value(r), value(reference)) for key, _, value, _ in FIGURES}
                          for r in others}
    return out


def table(results: list):
    """BIRD's figures and every other model's ÷ BIRD's, size by size; None
    without a BIRD result to compare with."""
    from rich.table import Table

    ratios = compare(results)
    if not ratios:
        return None
    grid = Table(title="Against the native reference: BIRD 2's figures, and each model's ÷ BIRD's "
                       "(more than 1: that many times more)")
    grid.add_column("measure")
    columns = []
    for size, models in ratios.items():
        reference = next(r for r in results if r.size == int(size) and r.model == REFERENCE and not r.error)
        grid.add_column(f"{size} ASes\nbird", justify="right")
        columns.append((None, reference))
        for name in models:
            grid.add_column(f"{size} ASes\n{name} ÷ bird", justify="right")
            columns.append((models[name], None))
    for key, text, value, fmt in FIGURES:
        cells = []
        for ratio, reference in columns:
            if reference is not None:
                shown = value(reference)
                cells.append("-" if shown is None else fmt.format(shown))
            else:
                shown = ratio[key]
                cells.append("-" if shown is None else f"{shown:.1f}×" if shown >= 10 else f"{shown:.2f}×")
        grid.add_row(text, *cells)
    return grid
