"""The benchmark's output: tables of its results and its targets.

``table`` shows one row per lab measured (start, memory, CPU, depeering,
teardown), ``ratios`` the exec baseline against the zygote model size by
size, ``extras_table`` the fixed-size experiments (``testbed.bench.
experiments``), and ``targets`` compares the results with the performance
issue's targets (``targets_table`` shows them). All pure: results in,
rich tables out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from testbed.bench.native_report import spread
from testbed.bench.observe import MIB

if TYPE_CHECKING:
    from testbed.bench.benchmark import Result
    from testbed.bench.experiments import Extra

MB = 1_000_000


def _per_update(prefixes: int | None, updates: int | None) -> str:
    return "-" if prefixes is None or not updates else f"{prefixes / updates:.2f}"


def _fmt(value, spec: str = ".2f", unit: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{unit}"


KINDS = ("speaker", "agent", "shell", "zygote")


def _per_kind(r: Result, values: dict[str, float], spec: str, unit: str) -> str:
    """Mean per process of each kind."""
    if not values:
        return "-"
    return " / ".join(f"{values.get(k, 0.0) / max(1, r.process_kinds.get(k, 0)):{spec}}"
                      for k in KINDS) + unit


def table(results: list[Result]):
    from rich.table import Table

    grid = Table(title="Lab cost by size (generated Internet topologies)")
    grid.add_column("measure")
    for r in results:
        grid.add_column(f"{r.size} ASes\n{r.model}"
                        + (f"\nMRAI {r.mrai * 1000:g} ms" if r.mrai is not None else ""), justify="right")
    phase_names = list(dict.fromkeys(p for r in results for p in r.phases))
    rows = [
        ("relationships / sessions", lambda r: f"{r.relationships} / {r.sessions}"),
        ("model's prediction (during start)", lambda r: _fmt(r.model_s, ".2f", " s")),
        ("start → converged", lambda r: _fmt(r.start_s, ".2f", " s")),
        *[(f"  {name}", lambda r, n=name: _fmt(r.phases.get(n), ".2f", " s")) for name in phase_names],
        ("start → last session up / last route in place (BIRD's clocks)", lambda r: "-" if r.sessions_up_s is None
         else f"{r.sessions_up_s:.2f} / {_fmt(r.routes_placed_s, '.2f')} s"),
        ("last session up → every route in place", lambda r: _fmt(spread(r), ".2f", " s")),
        ("CPU of the lab, start → converged", lambda r: _fmt(r.converge_cpu_s, ".1f", " s")),
        ("  of which ksmd (KSM page merging)", lambda r: _fmt(r.ksmd_cpu_s, ".1f", " s")),
        ("routes received / needed", lambda r: "-" if r.routes_in is None else
         f"{r.routes_in:,} / {r.routes_needed:,} ({r.routes_in / max(1, r.routes_needed):.1f}×)"),
        ("UPDATEs received / routes sent", lambda r: "-" if r.updates_in is None else
         f"{r.updates_in:,} / {_fmt(r.announced_out, ',d')}"),
        ("prefixes per UPDATE received / sent", lambda r: f"{_per_update(r.prefixes_in, r.updates_in)} / "
         f"{_per_update(r.prefixes_out, r.updates_out)}"),
        ("queued changes superseded under other attributes (stock ExaBGP: sent last)",
         lambda r: "-" if r.superseded is None else f"{r.superseded:,} ({_fmt(r.misordered, ',d')})"),
        ("sessions dropped until converged (hold time)", lambda r: "-" if r.session_drops is None else
         f"{r.session_drops:,} ({_fmt(r.hold_time, 'd', ' s')})"),
        ("processes (speaker/agent/shell)",
         lambda r: "-" if r.processes is None else
         f"{r.processes} ({r.process_kinds.get('speaker', 0)}/{r.process_kinds.get('agent', 0)}/"
         f"{r.process_kinds.get('shell', 0)})"),
        ("PSS total, converged", lambda r: _fmt(r.pss_mib, ".0f", " MiB")),
        ("PSS per AS", lambda r: _fmt(r.pss_per_as_mib, ".1f", " MiB")),
        ("  per speaker / agent / shell / zygote", lambda r: _per_kind(r, r.pss_by_kind_mib, ".1f", " MiB")),
        ("PSS per AS, pages merged (KSM)", lambda r: "-" if r.merged_pss_mib is None else
         f"{r.merged_pss_mib / r.size:.1f} MiB ({r.merged_after_s:.0f} s after)"),
        ("RSS total, converged", lambda r: _fmt(r.rss_mib, ".0f", " MiB")),
        ("peak PSS / RSS (sampled)",
         lambda r: f"{_fmt(r.peak_pss_mib, '.0f')} / {_fmt(r.peak_rss_mib, '.0f')} MiB"),
        ("idle CPU per AS (% core)", lambda r: _fmt(r.idle_cpu_per_as, ".2f", " %")),
        ("idle CPU, whole lab", lambda r: _fmt(r.idle_cpu_total, ".1f", " %")),
        ("  speakers / agents / shells / zygote / ksmd", lambda r: "-" if not r.idle_cpu_by_kind else
         " / ".join(f"{r.idle_cpu_by_kind.get(k, 0.0):.1f}" for k in (*KINDS, "ksmd")) + " %"),
        ("depeered session", lambda r: r.depeer_session or "-"),
        ("depeer → converged", lambda r: _fmt(r.depeer_s, ".2f", " s")),
        ("repeer → converged", lambda r: _fmt(r.repeer_s, ".2f", " s")),
        ("stop()", lambda r: _fmt(r.stop_s, ".2f", " s")),
        ("leftover processes / workdir",
         lambda r: f"{_fmt(r.leftover_processes, 'd')} / {'yes' if r.leftover_workdir else 'no'}"),
        ("error", lambda r: (r.error or "").splitlines()[0] if r.error else "-"),
    ]
    for label, cell in rows:
        grid.add_row(label, *[cell(r) for r in results])
    return grid


RATIOS = (("start → converged", "start_s"), ("PSS per AS", "pss_per_as_mib"),
          ("peak PSS", "peak_pss_mib"),
          ("idle CPU per AS", "idle_cpu_per_as"), ("depeer → converged", "depeer_s"),
          ("stop()", "stop_s"))


def ratios(results: list[Result]):
    """The plain model (exec: two interpreters per router) divided by the
    zygote model, per size: how many times better the default is, measured
    in the same invocation on the same topology."""
    from rich.table import Table

    by = {(r.size, r.model): r for r in results}
    sizes = sorted({r.size for r in results if (r.size, "zygote") in by and (r.size, "exec") in by})
    if not sizes:
        return None
    grid = Table(title="exec (baseline) ÷ zygote (default): times better")
    grid.add_column("measure")
    for size in sizes:
        grid.add_column(f"{size} ASes", justify="right")
    for label, attr in RATIOS:
        cells = []
        for size in sizes:
            base, ours = getattr(by[(size, "exec")], attr), getattr(by[(size, "zygote")], attr)
            cells.append("-" if not base or not ours else f"{base / ours:.1f}×")
        grid.add_row(label, *cells)
    return grid


def targets_table(rows):
    from rich.table import Table

    grid = Table(title="Targets of the performance issue (default process model)")
    for column in ("metric", "target", "measured", "met"):
        grid.add_column(column)
    for metric, target, measured, met in rows:
        grid.add_row(metric, target, measured, "-" if met is None else ("yes" if met else "NO"))
    return grid


def extras_table(extras):
    from rich.table import Table

    grid = Table(title="Fixed-size experiments")
    grid.add_column("measure")
    for extra in extras:
        grid.add_column(extra.model, justify="right")
    by_model = {e.model: e for e in extras}
    compare = "zygote" in by_model and "exec" in by_model
    if compare:
        grid.add_column("exec ÷ zygote", justify="right")
    ring = next((e.ring_size for e in extras if e.ring_size), None)
    # (label, value, format, unit, whether more is better: None for no ratio)
    rows = [
        (f"{ring}-AS ring of peers: start → converged", lambda e: e.ring_start_s, ".2f", " s", False),
        ("  – starting speakers", lambda e: e.ring_phases.get("starting BGP speakers"), ".2f", " s", False),
        (f"{ring}-AS ring of peers: stop()", lambda e: e.ring_stop_s, ".2f", " s", False),
    ] if ring else []
    rows += [
        ("10-AS chain: depeer → every kernel", lambda e: e.path_depeer_kernel_s, ".3f", " s", False),
        ("10-AS chain: depeer → Loc-RIBs converged", lambda e: e.path_depeer_rib_s, ".3f", " s", False),
        ("ingest: prefixes into one kernel", lambda e: e.ingest_prefixes, ",d", "", None),
        ("ingest: time", lambda e: e.ingest_s, ".2f", " s", None),
        ("ingest: prefixes/s", lambda e: e.ingest_rate, ",.0f", "", True),
        ("traffic: streams", lambda e: e.traffic_streams, "d", "", None),
        ("traffic, neighbouring ASes: sent/s", lambda e: e.traffic_sent_pps, ",.0f", "", True),
        ("traffic, neighbouring ASes: counted/s", lambda e: e.traffic_received_pps, ",.0f", "", True),
        ("traffic across the chain: sent/s", lambda e: e.traffic_long_sent_pps, ",.0f", "", True),
        ("traffic across the chain: counted/s", lambda e: e.traffic_long_received_pps, ",.0f", "", True),
    ]
    for label, value, spec, unit, more_better in rows:
        cells = [_fmt(value(e), spec, unit) for e in extras]
        if compare:
            base, ours = value(by_model["exec"]), value(by_model["zygote"])
            cells.append("-" if more_better is None or not base or not ours
                         else f"{(ours / base if more_better else base / ours):.1f}×")
        grid.add_row(label, *cells)
    grid.add_row("errors", *["; ".join(e.errors) or "-" for e in extras], *([""] if compare else []))
    return grid


def targets(results: list, extras: list[Extra], model: str = "zygote") -> list[tuple[str, str, str, bool | None]]:
    """(metric, target, measured, met) for each target of the issue that the
    results cover, for ``model``; met is None when not measured."""
    by_size = {r.size: r for r in results if r.model == model and not r.error}
    extra = next((e for e in extras if e.model == model), None)
    rows: list[tuple[str, str, str, bool | None]] = []

    def add(metric, target, value, fmt, ok):
        rows.append((metric, target, "not measured" if value is None else fmt(value),
                     None if value is None else ok(value)))

    r100 = by_size.get(100)
    add("100 ASes: start to converged", "≤ 6 s", r100 and r100.start_s, lambda v: f"{v:.1f} s",
        lambda v: v <= 6.0)
    if extra and extra.ring_size == 100:  # the shape of the issue's figure for the naive build
        add("100-AS ring of peers: start to converged", "≤ 6 s", extra.ring_start_s,
            lambda v: f"{v:.1f} s", lambda v: v <= 6.0)
    r1000 = by_size.get(1000)
    add("1,000 ASes: converges, peak memory", "≤ 12 GB",
        r1000 and r1000.peak_pss_mib, lambda v: f"{v * MIB / 1e9:.1f} GB", lambda v: v * MIB <= 12e9)
    largest = max(by_size.values(), key=lambda r: r.size, default=None)
    add(f"PSS per AS ({largest.size if largest else '-'} ASes)", "≤ 12 MB",
        largest and largest.pss_per_as_mib, lambda v: f"{v * MIB / MB:.1f} MB", lambda v: v * MIB <= 12 * MB)
    add(f"idle CPU per AS ({largest.size if largest else '-'} ASes)", "≤ 0.3 %",
        largest and largest.idle_cpu_per_as, lambda v: f"{v:.2f} %", lambda v: v <= 0.3)
    add("depeering across a 10-AS path, all kernels", "≤ 1 s",
        extra and extra.path_depeer_kernel_s, lambda v: f"{v:.2f} s", lambda v: v <= 1.0)
    add("route ingest by one router", "≥ 50,000 prefixes/s",
        extra and extra.ingest_rate, lambda v: f"{v:,.0f} prefixes/s", lambda v: v >= 50_000)
    add("100,000-prefix table", "≤ 5 s",
        extra and extra.ingest_prefixes == 100_000 and extra.ingest_s or None,
        lambda v: f"{v:.1f} s", lambda v: v <= 5.0)
    add("traffic sent and counted (neighbouring ASes)", "≥ 100,000 packets/s",
        extra and extra.traffic_received_pps, lambda v: f"{v:,.0f} packets/s", lambda v: v >= 100_000)
    add("teardown of 100 ASes, nothing left", "≤ 2 s",
        r100 and (r100.stop_s if not r100.leftover_processes and not r100.leftover_workdir else None),
        lambda v: f"{v:.2f} s", lambda v: v <= 2.0)
    return rows
