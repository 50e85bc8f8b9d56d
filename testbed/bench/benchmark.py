"""What a lab costs, by size: ``python -m testbed.bench.benchmark --sizes 5 20 50``.

For each size it generates an Internet-like topology (``testbed.model.generate``),
starts a ``Lab`` on it, with the testbed's routers in each process model
and once with every AS on BIRD 2 (``bird``, the native reference:
``testbed.bench.native``; every figure is also shown as a ratio to it,
``testbed.bench.native_report``), and measures: the wall time to convergence and its
phases, the lab's processes, their memory (proportional set size and
resident size, from ``/proc/<pid>/smaps_rollup``; the peak is the largest
total sampled every half second from start to stop), their CPU use once
idle (``/proc/<pid>/stat`` over a window), how long a depeering and a
re-peering take to converge, and how long ``stop()`` takes and whether any
process of the lab outlives it; where the start's CPU went, by phase and
kind (``testbed.bench.cpu_account``). Processes are the lab's own, found by its
id (``testbed.linux.processes.tagged_processes``). Output: a table (rich), one final
machine-readable line, and optionally a JSON file. This is a measuring
command, not a test: it needs root, and it always stops its lab.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from testbed.bench import cpu_account, experiments, native, native_report, runs
from testbed.bench.chart import chart_svg
from testbed.bench.cpu_report import cost_line, cpu_tables
from testbed.bench.observe import (CLOCK_TICKS, MIB, PROBE_LOOPS, MemorySampler, cpu_ticks, idle_cpu, kind_of,
                                   ksmd_ticks, lab_pids, leftovers, machine_probe, memory, phases, wait_merged)
from testbed.bench.report import extras_table, ratios, table, targets, targets_table
from testbed.errors import TestbedError
from testbed.lab.evidence import keep_evidence, outcome
from testbed.model.addressing import plan
from testbed.model.generate import describe, internet, roles
from testbed.model.topology import Kind, Topology
from testbed.routers.exabgp import PROCESS_MODELS

__all__ = ["HOLD_TIME", "Result", "baseline_fits", "depeer_target", "exploration", "machine_probe", "main",
           "measure"]
# Idle CPU: measured over IDLE_WINDOW seconds once IDLE_SETTLE seconds have
# passed since convergence. In the first second the speakers still send
# their last held announcements and keepalives before their loops go to
# sleep (10 ASes: 0.43 % per AS in that second, 0.03 % after it), and CPU
# is counted in 10 ms ticks per process: a 3 s window cannot show less
# than 0.33 % for a speaker that ran at all.
IDLE_SETTLE = 1.0
IDLE_WINDOW = 5.0


@dataclass
class Result:
    """Everything measured for one size; times in seconds, memory in MiB."""

    size: int
    seed: int
    model: str = "zygote"
    mrai: float | None = None             # the agents' announcement hold, seconds
    topology: str = ""
    relationships: int = 0
    sessions: int = 0
    model_s: float | None = None          # predicted Loc-RIBs, computed in a thread during start()
    start_s: float | None = None          # Lab.start() call to converged
    phases: dict[str, float] = field(default_factory=dict)  # progress stage -> seconds
    timings: dict[str, float] = field(default_factory=dict)  # lab.timings
    processes: int | None = None
    process_kinds: dict[str, int] = field(default_factory=dict)
    pss_by_kind_mib: dict[str, float] = field(default_factory=dict)
    pss_mib: float | None = None          # converged lab, total
    rss_mib: float | None = None
    pss_per_as_mib: float | None = None
    peak_pss_mib: float | None = None     # largest sampled total, start to stop
    peak_rss_mib: float | None = None
    converge_cpu_s: float | None = None   # CPU seconds of the lab's processes, start to converged
    routes_in: int | None = None          # routes the agents received until converged
    routes_needed: int | None = None      # routes in the predicted Adj-RIBs-In (no exploration)
    updates_in: int | None = None         # UPDATE events the agents handled until converged
    prefixes_in: int | None = None        # routes and withdrawals in those UPDATEs
    updates_out: int | None = None        # UPDATE messages the speakers sent (None: not counted, exec model)
    prefixes_out: int | None = None       # prefixes (announced and withdrawn) in them (speaker.packing)
    superseded: int | None = None         # queued changes replaced under other attributes (inprocess.queue_change)
    misordered: int | None = None         # of those, the ones stock ExaBGP would have sent last
    announced_out: int | None = None      # announcements + withdrawals the agents sent
    hold_time: int | None = None          # the sessions' hold time, seconds
    session_drops: int | None = None      # established sessions that went down until converged
    idle_cpu_per_as: float | None = None  # % of one core per AS
    idle_cpu_total: float | None = None   # % of one core, whole lab
    idle_cpu_by_kind: dict[str, float] = field(default_factory=dict)
    merge_pages: bool | None = None       # whether the speakers' pages were offered to KSM
    ksmd_cpu_s: float | None = None       # ksmd's CPU seconds, start to converged (in converge_cpu_s)
    merged_pss_mib: float | None = None   # total once merging settled (KSM; None without it)
    merged_after_s: float | None = None   # seconds after convergence that took
    sessions_up_s: float | None = None    # bird: start → last session up, on BIRD's clocks
    routes_placed_s: float | None = None  # bird: start → last route put in place, on BIRD's clocks
    spread_s: float | None = None         # bird: last session up → every route in place
    depeer_session: str | None = None
    depeer_s: float | None = None
    repeer_s: float | None = None
    stop_s: float | None = None
    leftover_processes: int | None = None
    leftover_workdir: bool | None = None
    cpu_split: dict = field(default_factory=dict)  # start's CPU by phase and kind (cpu_account.split)
    error: str | None = None
    run: int = 1                          # which of --repeat runs
    outcome: str | None = None            # testbed.lab.evidence.OUTCOMES
    failed_during: str | None = None      # start, depeer or repeer
    failed_after_s: float | None = None   # seconds into that phase
    evidence: str | None = None           # where a failed run kept its logs and RIBs
    cpus: list[int] = field(default_factory=list)  # CPUs the lab's processes were allowed


# -- one size ------------------------------------------------------------------

def depeer_target(topology: Topology) -> tuple[str, str] | None:
    """A Tier-1–Tier-1 peering, else a private regional peering, else any
    private peering."""
    role = roles(topology)
    peerings = [r for r in topology.relationships if r.kind == Kind.PEERING and r.via is None]
    for wanted in ("tier1", "transit"):
        for rel in peerings:
            if role[rel.a] == role[rel.b] == wanted:
                return rel.a, rel.b
    return (peerings[0].a, peerings[0].b) if peerings else None


SETTLE = 5.0
"""Seconds of a quiet lab (no router received or changed anything, every
session up as expected) after which the benchmark calls a run settled
wrong instead of waiting out its timeout (``Convergence.settle``). The
agents hold an announcement for 20 ms, so a lab still converging changes
something far more often: at 100 ASes, under a load of 20-50 on the 2
cores, the longest gap between two change reports was 0.72 s while the
start converged, 0.98 s in the depeering and 0.84 s in the re-peering."""

HOLD_TIME = 90
"""The benchmark's BGP hold time, RFC 4271's suggested value. A lab's CPU
is what it is: at 1,000 ASes the start's routing keeps both cores busy
for many minutes, and with the 9 s hold time of small labs a Tier-1
speaker, one of ~150 runnable processes, did not get to send a keepalive
in time. Its sessions dropped (30,834 drops in 25 minutes), each drop
withdrew and explored again what it carried, and the lab never
converged. The benchmark depeers administratively, so nothing it
measures waits for a hold timer."""


def measure(size: int, seed: int, timeout: float | None = None,
            log=lambda text: None, model: str = "zygote", mrai: float | None = None,
            hold_time: int = HOLD_TIME, evidence: Path | None = None, settle: float | None = None,
            run: int = 1, merge_wait: bool = True) -> Result:
    """Start a lab of ``size`` generated ASes and measure it; always stops
    it. A start, depeering or re-peering that does not converge keeps its
    evidence in ``evidence`` (``testbed.lab.evidence``); ``settle``: seconds
    of quiet after which a lab is said to have settled wrong. ``model``: a
    process model of the testbed's routers, or ``bird``; ``merge_wait``:
    whether to wait for KSM's merging to settle (up to 3 minutes)."""
    from testbed.lab.lab import Lab

    result = Result(size=size, seed=seed, run=run)
    result.model = model
    result.hold_time = hold_time
    topology = internet(size, seed=seed, hold_time=hold_time)
    result.topology = topology.name
    result.relationships = len(topology.relationships)
    log(describe(topology))

    addresses = plan(topology)
    result.sessions = len(addresses.sessions)

    stages: list[tuple[str, float]] = []
    account = cpu_account.CpuAccount(lambda: lab.id)

    def progress(stage: str) -> None:
        stages.append((stage, time.monotonic()))
        account.mark(stage)
        log(f"  {stage}")

    lab = (native.lab(topology, progress) if model == native.MODEL
           else Lab(topology, progress=progress, process_model=model, mrai=mrai))
    result.mrai = lab.mrai if model != native.MODEL else None
    result.merge_pages = lab.merge_pages
    lab.convergence.settle = settle
    keeper = keep_evidence(lab, evidence, log) if evidence is not None else None
    phase = ["start", time.monotonic()]
    timeout = timeout if timeout is not None else 60.0 + size
    try:
        with MemorySampler(lab) as sampler:
            try:
                ksmd_before = ksmd_ticks() if lab.merge_pages else None
                account.mark(cpu_account.START)
                start, started = time.monotonic(), time.time()
                lab.start(timeout=timeout)
                converged = time.monotonic()
                account.mark(cpu_account.END)
                result.start_s = converged - start
                result.phases = phases(stages, converged)

                pids = lab_pids(lab.id)
                result.cpus = runs.cpus_of(pids)
                result.converge_cpu_s = sum(cpu_ticks(pid) or 0 for pid in pids) / CLOCK_TICKS
                if ksmd_before is not None:  # the kernel's merging for this lab is its CPU too
                    result.ksmd_cpu_s = ((ksmd_ticks() or ksmd_before) - ksmd_before) / CLOCK_TICKS
                    result.converge_cpu_s += result.ksmd_cpu_s
                if model == native.MODEL:
                    native.figures(lab, result, started)
                else:
                    exploration(lab, result)
                result.cpu_split = cpu_account.lab_split(account, lab)
                result.processes = len(pids)
                for pid in pids:
                    kind = kind_of(pid)
                    result.process_kinds[kind] = result.process_kinds.get(kind, 0) + 1
                    result.pss_by_kind_mib[kind] = (result.pss_by_kind_mib.get(kind, 0.0)
                                                    + memory(pid)[0] / MIB)
                pss, rss, _ = sampler.sample()
                result.pss_mib, result.rss_mib = pss / MIB, rss / MIB
                result.pss_per_as_mib = pss / MIB / size

                log(f"  idle CPU over {IDLE_WINDOW:.0f} s, {IDLE_SETTLE:.0f} s after convergence")
                time.sleep(IDLE_SETTLE)
                result.idle_cpu_by_kind = idle_cpu(lab.id, IDLE_WINDOW, ksmd=lab.merge_pages)
                total = sum(result.idle_cpu_by_kind.values())
                result.idle_cpu_total, result.idle_cpu_per_as = total, total / size
                if lab.merge_pages and merge_wait:
                    log("  waiting for KSM to merge the speakers' pages")
                    result.merged_after_s = time.monotonic() - converged + wait_merged(log)
                    result.merged_pss_mib = sampler.sample()[0] / MIB

                target = depeer_target(topology)
                if target:
                    a, b = target
                    result.depeer_session = f"{a}-{b}"
                    log(f"  depeering {a} and {b}")
                    phase[:] = ["depeer", time.monotonic()]
                    result.depeer_s = lab.depeer(a, b, timeout=timeout)
                    log(f"  re-peering {a} and {b}")
                    phase[:] = ["repeer", time.monotonic()]
                    result.repeer_s = lab.repeer(a, b, timeout=timeout)
                sampler.sample()
            except TestbedError as exc:
                result.error = f"{type(exc).__name__}: {exc}"
                result.outcome, result.failed_during = outcome(exc), phase[0]
                result.failed_after_s = round(time.monotonic() - phase[1], 2)
                if sampler.exhausted:
                    result.error = f"stopped for memory: {sampler.exhausted}"
                log(result.error)
            finally:
                result.peak_pss_mib = sampler.peak_pss / MIB if sampler.samples else None
                result.peak_rss_mib = sampler.peak_rss / MIB if sampler.samples else None
                log("  stopping")
                stopped_by_start = lab.stopped  # a failed start() stops the lab itself
                t1 = time.monotonic()
                lab.stop()
                result.stop_s = (lab.timings.get("stop") if stopped_by_start
                                 else time.monotonic() - t1)
    finally:
        lab.stop()  # idempotent; here for an exception in the sampler itself
    result.timings = {k: round(v, 3) for k, v in lab.timings.items()}
    result.model_s = lab.timings.get("model")  # computed during start(), beside the lab
    result.leftover_processes, result.leftover_workdir = leftovers(lab)
    result.outcome = result.outcome or ("converged" if result.error is None else "error")
    result.cpus = result.cpus or runs.cpus_of(())
    if keeper is not None and keeper.written:
        result.evidence = str(keeper.written[0])
    return result


def exploration(lab, result: Result) -> None:
    """What the agents received and sent until convergence, against what
    the prediction says they had to receive (each route of every converged
    Adj-RIB-In once): routes_in / routes_needed is the path exploration."""
    totals: dict[str, int] = {}
    drops = 0
    for name in lab.plan.routers:
        summary = lab.clients[name].request("summary")
        for key, value in (summary.get("stats") or {}).items():
            totals[key] = totals.get(key, 0) + value
        drops += sum(session.get("flaps", 0) for session in summary.get("sessions", {}).values())
    result.session_drops = drops // 2  # each drop is seen at both ends
    result.routes_in = totals.get("routes_in")
    result.updates_in = totals.get("updates_in")
    if result.updates_in is not None:
        result.prefixes_in = totals.get("routes_in", 0) + totals.get("withdrawn_in", 0)
    result.updates_out, result.prefixes_out = totals.get("updates_out"), totals.get("prefixes_out")
    result.superseded = totals.get("superseded_in_queue")  # None: stock ExaBGP (exec model)
    result.misordered = totals.get("misordered_in_queue")
    result.announced_out = (totals.get("announced_out", 0) + totals.get("withdrawn_out", 0)) or None
    result.routes_needed = lab.expect.adj_rib_in_size()


BASELINE_INGEST = 10_000  # prefixes the baseline ingests (its rate is what is compared)
BASELINE_MIB_PER_AS = 48  # PSS of one AS in the exec model, measured, with a margin


def baseline_fits(size: int) -> bool:
    """Whether the exec baseline of ``size`` ASes fits in the memory
    available now (it needs ~43 MiB per AS; 1,000 ASes would need 45 GB)."""
    try:
        with open("/proc/meminfo") as handle:
            available = next(int(line.split()[1]) * 1024 for line in handle
                             if line.startswith("MemAvailable:"))
    except (OSError, StopIteration):
        return True
    return size * BASELINE_MIB_PER_AS * MIB < 0.8 * available


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testbed.bench.benchmark", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10, 100],
                        help="numbers of ASes (the issue's: 10 100 300 1000); none, with --include, "
                             "shows (and charts) earlier results without running anything")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds each lab may take to converge (default 60 + size)")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--chart", type=Path, help="write an SVG chart of time and memory by size")
    parser.add_argument("--include", type=Path, nargs="+", default=[], metavar="JSON",
                        help="results of earlier invocations (their --json files) to show and chart "
                             "with this one's")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument("--models", nargs="+", default=None, choices=[*PROCESS_MODELS, native.MODEL],
                        help="process models to measure, in this order (repeat them to alternate: "
                             "zygote zygote-pypy zygote zygote-pypy); exec is the plain baseline, "
                             "zygote-pypy the zygote on PyPy, bird the native reference (every AS on "
                             "BIRD 2; every figure is also shown as a ratio to it) (default: zygote exec "
                             "bird, bird only where it is installed)")
    parser.add_argument("--mrai", type=float, nargs="+", default=[None], metavar="SECONDS",
                        help="the agents' announcement hold (testbed.agent.agent.MRAI_DEFAULT if not "
                             "given); several values are measured one after the other, for an A/B")
    parser.add_argument("--hold-time", type=int, default=HOLD_TIME, metavar="SECONDS",
                        help=f"the sessions' BGP hold time (default {HOLD_TIME}, RFC 4271's; "
                             "generated topologies otherwise have 9)")
    parser.add_argument("--ingest", type=int, default=100_000, metavar="N",
                        help="prefixes for the ingest experiment (0: skip it)")
    parser.add_argument("--ring", type=int, default=100, metavar="N",
                        help="ASes in the ring of peers started cold (the shape of the issue's "
                             "figure for the naive build; 0: skip it)")
    parser.add_argument("--no-path", action="store_true",
                        help="skip the 10-AS chain (depeering to every kernel, traffic)")
    parser.add_argument("--no-merge-wait", action="store_true",
                        help="do not wait for KSM's merging to settle after convergence (it takes 1-3 "
                             "minutes a run; the merged PSS is then not measured)")
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="run each size and model N times, a fresh lab each time; every run's "
                             "outcome is shown and kept in the JSON")
    parser.add_argument("--evidence", type=Path, default=Path("bench-evidence"), metavar="DIR",
                        help="where a run that does not converge keeps its logs, RIB dumps, the "
                             "prediction and their diff (DIR/<date>-<size>-<model>[-run<k>]; "
                             "default ./bench-evidence)")
    parser.add_argument("--settle", type=float, default=SETTLE, metavar="SECONDS",
                        help=f"seconds without any router receiving or changing anything, every "
                             f"session as expected, after which a lab not at the prediction has "
                             f"settled wrong and the run ends (default {SETTLE:g}; 0: wait for "
                             f"the timeout)")
    parser.add_argument("--cpus", type=str, default=None, metavar="LIST",
                        help="pin the harness and so the whole lab (every process inherits it) to "
                             "these CPUs (0, 0,1, 0-3), as taskset would; ksmd, the kernel thread "
                             "that merges the speakers' pages, is not a process of the lab and is "
                             "not pinned")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat {args.repeat}: give 1 or more")
    if args.cpus is not None:
        try:
            runs.pin(runs.parse_cpus(args.cpus))  # before anything starts, so that all of it inherits
        except ValueError as exc:
            parser.error(str(exc))

    from rich.console import Console

    console = Console(stderr=True)
    out = Console(width=None if sys.stdout.isatty() else 160)
    log = (lambda text: None) if args.quiet else (lambda text: console.print(text, highlight=False))
    if not args.sizes and not args.include:
        console.print("nothing to do: give --sizes, or --include to show earlier results")
        return 2
    if args.sizes and os.geteuid() != 0:
        console.print("a lab needs root (network namespaces): run it with sudo")
        return 2
    results: list[Result] = []
    extras: list = []
    skipped: list[str] = []
    if args.models is None:
        args.models = ["zygote", "exec", native.MODEL]
        if args.sizes and native.missing():
            args.models.remove(native.MODEL)
            skipped.append(f"bird (the native reference): skipped, {native.missing()}")
    elif native.MODEL in args.models and args.sizes and native.missing():
        console.print(native.missing())
        return 2
    expected = 0
    probes = [machine_probe()] if args.sizes else []
    try:
        for model in (args.models if args.sizes else []):
            if model == native.MODEL:  # the fixed-size experiments drive the testbed's own routers
                continue
            extra = experiments.Extra(model=model)
            if args.ring:
                log(f"[bold]{args.ring}-AS ring of peers, {model} model[/bold]")
                experiments.measure_ring(model, args.ring, log=log, extra=extra)
            if not args.no_path:
                log(f"[bold]10-AS chain, {model} model[/bold]")
                experiments.measure_path(model, log=log, extra=extra)
            if args.ingest:
                # The baseline takes ~1,000 commands a second: a rate, not a table, in bounded time.
                count = args.ingest if model != "exec" else min(args.ingest, BASELINE_INGEST)
                log(f"[bold]ingest of {count} prefixes, {model} model[/bold]")
                experiments.measure_ingest(model, count, log=log, extra=extra)
            if args.ring or not args.no_path or args.ingest:
                extras.append(extra)
        for size in args.sizes:
            for model in args.models:
                if model == "exec" and not baseline_fits(size):
                    skipped.append(f"{size} ASes, exec: skipped, it would need about "
                                   f"{size * BASELINE_MIB_PER_AS / 1024:.0f} GiB")
                    log(skipped[-1])
                    continue
                for mrai in (args.mrai if model != native.MODEL else [None]):  # BIRD has no MRAI
                    for run in range(1, args.repeat + 1):
                        expected += 1
                        log(f"[bold]{size} ASes, {model} model"
                            + (f", MRAI {mrai * 1000:g} ms" if mrai is not None else "")
                            + (f", run {run} of {args.repeat}" if args.repeat > 1 else "") + "[/bold]")
                        results.append(measure(
                            size, args.seed, args.timeout, log, model, mrai, args.hold_time,
                            evidence=runs.evidence_dir(args.evidence, size, model, run, args.repeat, mrai),
                            settle=args.settle or None, run=run, merge_wait=not args.no_merge_wait))
    except KeyboardInterrupt:
        console.print("interrupted; the lab was stopped")
    if probes:
        probes.append(machine_probe())
    fields = set(Result.__dataclass_fields__)
    included = [json.loads(path.read_text()) for path in args.include]
    earlier = [Result(**{k: v for k, v in item.items() if k in fields})
               for data in included for item in data["results"]]
    results = sorted(earlier, key=lambda r: (r.size, r.model)) + results
    if not extras:  # nothing run here: the fixed-size experiments of the included runs, first of each model
        extra_fields = set(experiments.Extra.__dataclass_fields__)
        for data in included:
            for item in data.get("extras", []):
                if item.get("model") not in {e.model for e in extras}:
                    extras.append(experiments.Extra(**{k: v for k, v in item.items() if k in extra_fields}))
    for r in results:
        if r.error:
            console.print(f"[red]{r.size} ASes failed:[/red] {r.error}", highlight=False)
    if results:
        out.print(table(results))
        compared = ratios(results)
        if compared is not None:
            out.print(compared)
        against = native_report.table(results)
        if against is not None:
            out.print(against)
    if results and (args.repeat > 1 or any(r.outcome not in (None, "converged") for r in results)):
        out.print(runs.runs_table(results))
        out.print(runs.summary_table(results))
    for r in results:
        if r.cpu_split.get("phases"):
            for grid in cpu_tables(r.cpu_split, f"{r.size} ASes, {r.model}"):
                out.print(grid)
            out.print(cost_line(r.cpu_split))
    if extras:
        out.print(extras_table(extras))
    for line in skipped:
        out.print(line)
    if probes:
        out.print(f"machine probe (a pure-Python loop of {PROBE_LOOPS:,}, best of 3): "
                  + " ms at the start, ".join(f"{p:.0f}" for p in probes) + " ms at the end")
    out.print(targets_table(targets(results, extras)))
    if args.chart and results:
        args.chart.write_text(chart_svg(
            results, f"seed {args.seed}, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores"))
        out.print(f"chart written to {args.chart}")
    data = {"results": [asdict(r) for r in results], "extras": [asdict(e) for e in extras],
            "skipped": skipped, "machine_probe_ms": [round(p, 1) for p in probes],
            "ratios_to_bird": native_report.compare(results)}
    if args.json:
        args.json.write_text(json.dumps(data, indent=2) + "\n")
    print("BENCHMARK " + json.dumps(data, separators=(",", ":")), flush=True)
    failed = any(r.error or r.leftover_processes for r in results) or len(results) < expected or \
        any(e.errors for e in extras)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
