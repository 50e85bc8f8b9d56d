"""Soak test: a lab through many depeer / re-peer cycles, ``python -m testbed.bench.soak``.

It generates an Internet-like topology (``testbed.model.generate``, 20 ASes by
default), starts a ``Lab`` on it and records every router's Loc-RIB and
kernel routes and the memory (PSS and RSS, ``/proc/<pid>/smaps_rollup``) of
every process of the lab. Then, cycle after cycle, one session is shut down
administratively and brought back (``Lab.depeer`` then ``Lab.repeer``, each
waiting until every session is in its expected state and every RIB equals
the model's prediction); ``schedule`` picks a different session each cycle.
Every ``--sample-every`` cycles the memory is sampled again (PSS and RSS of
every process, the anonymous memory of speakers and agents, and the live
Python heap each route agent's process reports after a full collection,
``{"op": "memory"}``) and every speaker and agent is checked to still run. At the end: every session must be established on both
sides, every Loc-RIB and kernel table equal to the initial one, and once the
lab is stopped none of its processes may be left.

Memory is judged after a warm-up (``--warmup`` cycles), by the rate of
growth from then on: the least-squares slope of the samples, per 100 cycles
and in percent of the warm-up value. A leak grows by the same amount every
cycle, so it shows at that rate however long the run; what the allocator
and copy-on-write do (pages first touched, fragmentation settling, pages
un-shared from the zygote) slows down as the run goes on, which the report
shows by comparing the two halves of the measured part. Two bounds: the
anonymous memory of speakers and agents (``--max-growth``, % per 100
cycles) catches growth of any kind; their Python heap
(``--max-heap-growth``) is far less noisy and catches a leak of some
twenty small Python objects (a KiB or two) per router and cycle. PSS is reported but
not judged: it also moves when other processes on the machine map the
same files, and as speakers un-share pages of the zygote (bounded). Output: progress on stderr, a table (rich), a final
``SOAK {json}`` line and optionally a JSON file; exit 0 only if every check
held, 1 otherwise, 2 without root. The lab is always stopped (exceptions,
Ctrl-C, SIGTERM).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from testbed.bench.observe import MIB, kind_of, memory
from testbed.bench.soak_analysis import (SPEAKER_KINDS, distribution, growth, per_process_growth, rates,
                                         rib_differences, schedule)
from testbed.errors import TestbedError
from testbed.linux.processes import tagged_processes
from testbed.model.generate import describe, internet

__all__ = ["Result", "main", "soak"]


# -- the run -------------------------------------------------------------------

@dataclass
class Result:
    """Everything a soak run measured and found; times in seconds."""

    size: int
    seed: int
    cycles_planned: int
    topology: str = ""
    lab_id: str = ""
    sessions: int = 0
    max_growth_pct: float = 0.0       # their anonymous memory, % per 100 cycles after warm-up
    max_heap_growth_pct: float = 0.0  # their Python heap (blocks), % per 100 cycles after warm-up
    warmup: int = 0                   # cycles before the memory baseline
    start_s: float | None = None
    cycles_done: int = 0
    depeer_s: list[float] = field(default_factory=list)
    repeer_s: list[float] = field(default_factory=list)
    depeer: dict = field(default_factory=dict)   # count, median, p95, max
    repeer: dict = field(default_factory=dict)
    process_kinds: dict[str, int] = field(default_factory=dict)
    memory_samples: list[dict] = field(default_factory=list)  # cycle, PSS/RSS total and by kind (MiB), heap
    memory_growth: dict = field(default_factory=dict)  # kind -> see growth(); start to end
    memory_growth_after_warmup: dict = field(default_factory=dict)  # warm-up sample to end
    memory_rates: dict = field(default_factory=dict)  # measure -> see rates(); after warm-up
    process_growth: list[dict] = field(default_factory=list)  # speakers/agents, largest PSS growth first
    process_changes: list[str] = field(default_factory=list)
    sessions_down: list[str] | None = None      # None: not checked (an earlier failure)
    loc_rib_differences: list[str] | None = None
    kernel_differences: list[str] | None = None
    memory_ok: bool | None = None
    failures: list[dict] = field(default_factory=list)  # cycle, pair, phase, error
    stop_s: float | None = None
    leftover_processes: int | None = None
    leftover_workdir: bool | None = None
    ok: bool = False

    def fail(self, cycle: int | None, phase: str, error: str, pair: tuple[str, str] | None = None) -> None:
        self.failures.append({"cycle": cycle, "pair": "-".join(pair) if pair else None,
                              "phase": phase, "error": error})


def _snapshot_memory(lab_id: str) -> dict[int, tuple[str, int, int]]:
    """pid -> (kind, PSS, RSS) of every process of the lab."""
    found = {}
    for pid in tagged_processes().get(lab_id, []):
        pss, rss = memory(pid)
        found[pid] = (kind_of(pid), pss, rss)
    return found


def anonymous(pid: int) -> int:
    """Resident anonymous memory of ``pid`` in bytes (its heaps, stacks and
    private pages, counted whole even while shared with the zygote); 0 if
    it is gone. Unlike PSS it does not move when other processes map the
    same files (libpython) or when a child un-shares a zygote page."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Anonymous:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as handle:
            return handle.read().strip()
    except OSError:
        return "?"


def _memory_sample(cycle: int, procs: dict[int, tuple[str, int, int]], heaps: dict[str, dict]) -> dict:
    by_kind: dict[str, float] = {}
    for kind, pss, _ in procs.values():
        by_kind[kind] = by_kind.get(kind, 0.0) + pss
    return {"cycle": cycle, "processes": len(procs),
            "pss_mib": round(sum(p for _, p, _ in procs.values()) / MIB, 2),
            "rss_mib": round(sum(r for _, _, r in procs.values()) / MIB, 2),
            "pss_by_kind_mib": {k: round(v / MIB, 2) for k, v in sorted(by_kind.items())},
            "speaker_agent_anon_mib": round(sum(anonymous(pid) for pid, (kind, _, _) in procs.items()
                                                if kind in SPEAKER_KINDS) / MIB, 2),
            "heap_blocks": sum(h["blocks"] for h in heaps.values()),
            "heap_objects": sum(h["objects"] for h in heaps.values()),
            "heap_blocks_by_router": {r: h["blocks"] for r, h in sorted(heaps.items())}}


def _heaps(lab, routers) -> dict[str, dict]:
    """router -> the live Python heap of the process running its agent (in
    the zygote model the speaker itself, ExaBGP included)."""
    return {r: lab._client(r).request("memory", limit=0)["heap"] for r in routers}


def _speaker_pss(sample: dict) -> float:
    return sum(v for k, v in sample["pss_by_kind_mib"].items() if k in SPEAKER_KINDS)


def _final_checks(lab, result: Result, sessions, loc_ribs: dict, kernels: dict) -> None:
    down = []
    for session in sessions:
        for x, y in ((session.a, session.b), (session.b, session.a)):
            state = lab.sessions(x).get(y)
            if state is None or state.get("state") != "established":
                seen = "no such session" if state is None else state.get("state")
                down.append(f"{x} -> {y}: {seen}")
    result.sessions_down = down
    rib_diffs, kernel_diffs = [], []
    for router in loc_ribs:
        rib_diffs += rib_differences(router, loc_ribs[router], lab.loc_rib(router))
        kernel_diffs += rib_differences(router, kernels[router], lab.kernel_routes(router), "kernel")
    result.loc_rib_differences = rib_diffs
    result.kernel_differences = kernel_diffs
    for line in down + rib_diffs + kernel_diffs:
        result.fail(None, "final check", line)


def soak(size: int = 20, cycles: int = 100, seed: int = 1, *, timeout: float = 30.0,
         sample_every: int = 10, warmup: int = 30, max_growth_pct: float = 5.0,
         max_heap_growth_pct: float = 1.0, log=lambda text: None, after_cycle=None) -> Result:
    """Run the soak test (see the module docstring); always stops its lab.
    Failures are recorded in the result, not raised; Ctrl-C ends the cycles
    early and is recorded as a failure of the cycle it interrupted.
    ``after_cycle(lab, cycle)``, if given, runs after each cycle (the tests
    use it to change the lab's routing for real and watch the soak say so)."""
    from testbed.lab.lab import Lab

    topology = internet(size, seed=seed)
    result = Result(size=size, seed=seed, cycles_planned=cycles, topology=topology.name,
                    max_growth_pct=max_growth_pct, max_heap_growth_pct=max_heap_growth_pct,
                    warmup=warmup)
    log(describe(topology))
    lab = Lab(topology, progress=lambda stage: log(f"  {stage}"))
    sessions = list(lab.plan.sessions)
    result.sessions = len(sessions)
    plan = schedule(sessions, cycles, seed)
    cycle, pair, phase = None, None, "start"
    try:
        t0 = time.monotonic()
        lab.start(timeout=60.0 + size)
        result.start_s = round(time.monotonic() - t0, 3)
        result.lab_id = lab.id
        phase = "initial state"
        routers = sorted(lab.plan.routers)
        loc_ribs = {r: lab.loc_rib(r) for r in routers}
        kernels = {r: lab.kernel_routes(r) for r in routers}
        initial = _snapshot_memory(lab.id)
        names = {pid: _comm(pid) for pid in initial}
        for kind, _, _ in initial.values():
            result.process_kinds[kind] = result.process_kinds.get(kind, 0) + 1
        result.memory_samples.append(_memory_sample(0, initial, _heaps(lab, routers)))
        log(f"  lab {lab.id} converged in {result.start_s:.1f} s; {len(initial)} processes, "
            f"{result.memory_samples[0]['pss_mib']:.0f} MiB PSS")
        latest = warm = initial
        for cycle, pair in enumerate(plan, start=1):
            a, b = pair
            phase = "depeer"
            result.depeer_s.append(lab.depeer(a, b, how="admin", timeout=timeout))
            phase = "repeer"
            result.repeer_s.append(lab.repeer(a, b, timeout=timeout))
            result.cycles_done = cycle
            if after_cycle is not None:
                phase = "after cycle"
                after_cycle(lab, cycle)
            log(f"  cycle {cycle}/{cycles} {a}-{b}: depeer {result.depeer_s[-1]:.2f} s, "
                f"repeer {result.repeer_s[-1]:.2f} s")
            if cycle % sample_every == 0 or cycle == len(plan) or cycle == warmup:
                phase = "health check"
                lab.check_alive()
                latest = _snapshot_memory(lab.id)
                result.memory_samples.append(_memory_sample(cycle, latest, _heaps(lab, routers)))
                if cycle <= warmup:
                    warm = latest
                log(f"  memory after cycle {cycle}: {result.memory_samples[-1]['pss_mib']:.1f} MiB PSS, "
                    f"Python heap {result.memory_samples[-1]['heap_blocks']} blocks")
        cycle, pair, phase = None, None, "final check"
        lab.check_alive()
        _final_checks(lab, result, sessions, loc_ribs, kernels)
        if warm is not initial:
            result.memory_growth_after_warmup = growth(warm, latest)
        _memory_verdict(result, initial, latest)
        touched: dict[str, int] = {}
        for a, b in plan[:result.cycles_done]:
            touched[a] = touched.get(a, 0) + 1
            touched[b] = touched.get(b, 0) + 1
        result.process_growth = per_process_growth(initial, latest, names, touched)
    except TestbedError as exc:
        result.fail(cycle, phase, f"{type(exc).__name__}: {exc}", pair)
        log(f"[red]{phase} failed[/red]" + (f" at cycle {cycle} ({'-'.join(pair)})" if pair else "")
            + f": {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    except (KeyboardInterrupt, SystemExit) as exc:  # the lab turns SIGTERM into SystemExit
        why = "interrupted (Ctrl-C)" if isinstance(exc, KeyboardInterrupt) else "terminated (SIGTERM)"
        result.fail(cycle, phase, why, pair)
        log(f"{why}; stopping the lab")
    finally:
        log("  stopping")
        t1 = time.monotonic()
        try:
            lab.stop()
        except KeyboardInterrupt:  # a second Ctrl-C: stop() finished, re-raised it
            result.fail(None, "stop", "interrupted (Ctrl-C) during stop")
        result.stop_s = round(time.monotonic() - t1, 3)
        result.leftover_processes = len(tagged_processes().get(lab.id, [])) if lab.id else 0
        # TESTBED_KEEP asks for the work directory (logs) to stay: not a leak.
        result.leftover_workdir = bool(lab.workdir and lab.workdir.exists() and not lab.keep_workdir)
        if result.leftover_processes:
            result.fail(None, "stop", f"{result.leftover_processes} processes of lab {lab.id} are left")
        if result.leftover_workdir:
            result.fail(None, "stop", f"the work directory {lab.workdir} is left")
    result.depeer = distribution(result.depeer_s)
    result.repeer = distribution(result.repeer_s)
    # memory_ok is None only when the run is too short to judge memory
    # (fewer than three samples after the warm-up): the table says so.
    result.ok = (not result.failures and result.cycles_done == cycles and result.memory_ok is not False
                 and result.sessions_down is not None)
    return result


def _memory_verdict(result: Result, initial, final) -> None:
    gone = sorted(set(initial) - set(final))
    new = sorted(set(final) - set(initial))
    if gone:
        result.process_changes.append(f"gone since start: {', '.join(f'{p} ({initial[p][0]})' for p in gone)}")
    if new:
        result.process_changes.append(f"new since start: {', '.join(f'{p} ({final[p][0]})' for p in new)}")
    for line in result.process_changes:
        result.fail(None, "final check", f"lab processes changed: {line}")
    result.memory_growth = growth(initial, final)
    samples = result.memory_samples
    result.memory_rates = {
        "speaker_agent_anon_mib": rates(samples, lambda s: s["speaker_agent_anon_mib"], result.warmup),
        "speaker_agent_pss_mib": rates(samples, _speaker_pss, result.warmup),
        "total_pss_mib": rates(samples, lambda s: s["pss_mib"], result.warmup),
        "total_rss_mib": rates(samples, lambda s: s["rss_mib"], result.warmup),
        "heap_blocks": rates(samples, lambda s: s["heap_blocks"], result.warmup),
    }
    anon, heap = result.memory_rates["speaker_agent_anon_mib"], result.memory_rates["heap_blocks"]
    if anon is None or heap is None:
        result.memory_ok = None  # too few samples after the warm-up
        return
    grown = []
    if anon["pct_per_100"] > result.max_growth_pct:
        grown.append(f"the anonymous memory of speakers and agents grew {anon['per_100']:+.2f} MiB per 100 "
                     f"cycles after cycle {anon['from_cycle']} ({anon['pct_per_100']:+.2f} %), more than "
                     f"{result.max_growth_pct:g} %")
    if heap["pct_per_100"] > result.max_heap_growth_pct:
        grown.append(f"the Python heap of speakers and agents grew {heap['per_100']:+.0f} blocks per 100 "
                     f"cycles after cycle {heap['from_cycle']} ({heap['pct_per_100']:+.2f} %), more than "
                     f"{result.max_heap_growth_pct:g} %")
    result.memory_ok = not grown
    for line in grown:
        result.fail(None, "final check", line)


# -- output --------------------------------------------------------------------

def _seconds(d: dict) -> str:
    if not d or not d.get("count"):
        return "-"
    return f"{d['median']:.2f} / {d['p95']:.2f} / {d['max']:.2f} s"


def _signed(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:+.0f} {unit}" if unit == "blocks" else f"{value:+.2f} {unit}"


def _check(found: list[str] | None) -> str:
    return "not checked" if found is None else ("yes" if not found else f"NO ({len(found)})")


def table(r: Result):
    from rich.table import Table

    grid = Table(title=f"Soak: {r.size} ASes ({r.topology}), {r.cycles_planned} depeer / re-peer cycles")
    grid.add_column("measure")
    grid.add_column("value", justify="right")
    rows = [
        ("sessions", str(r.sessions)),
        ("start → converged", "-" if r.start_s is None else f"{r.start_s:.2f} s"),
        ("cycles done", f"{r.cycles_done} / {r.cycles_planned}"),
        ("depeer → converged (median/p95/max)", _seconds(r.depeer)),
        ("repeer → converged (median/p95/max)", _seconds(r.repeer)),
        ("sessions established (both sides)", _check(r.sessions_down)),
        ("Loc-RIBs as initially", _check(r.loc_rib_differences)),
        ("kernel routes as initially", _check(r.kernel_differences)),
    ]
    for kind, g in r.memory_growth.items():
        rows.append((f"PSS {kind} ({g['processes']})",
                     f"{g['initial_pss_mib']:.1f} → {g['final_pss_mib']:.1f} MiB "
                     f"({g['pss_growth_mib']:+.2f} MiB, {g['pss_growth_pct']:+.2f} %)"))
    for label, key, unit in (("anonymous memory, speakers+agents", "speaker_agent_anon_mib", "MiB"),
                             ("PSS speakers+agents", "speaker_agent_pss_mib", "MiB"),
                             ("RSS total", "total_rss_mib", "MiB"),
                             ("Python heap", "heap_blocks", "blocks")):
        g = r.memory_rates.get(key)
        if g:
            first, second = (_signed(h, unit) for h in g["halves_per_100"])
            rows.append((f"{label} per 100 cycles after cycle {g['from_cycle']} (halves)",
                         f"{_signed(g['per_100'], unit)} ({g['pct_per_100']:+.2f} %) ({first}, {second})"))
    if "total" in r.memory_growth:
        g = r.memory_growth["total"]
        rows.append(("RSS total", f"{g['initial_rss_mib']:.1f} → {g['final_rss_mib']:.1f} MiB "
                                  f"({g['rss_growth_mib']:+.2f} MiB, {g['rss_growth_pct']:+.2f} %)"))
    if r.process_growth:
        top = r.process_growth[0]
        rows.append(("largest growth of one process", f"{top['name']} {top['pss_growth_mib']:+.2f} MiB "
                                                       f"({top['cycles']} cycles)"))
    rows += [
        (f"growth per 100 cycles ≤ {r.max_growth_pct:g} % (anonymous), ≤ {r.max_heap_growth_pct:g} % (heap)",
         ("not judged: too few samples after the warm-up" if r.memory_ok is None
          else ("yes" if r.memory_ok else "NO"))),
        ("stop()", "-" if r.stop_s is None else f"{r.stop_s:.2f} s"),
        ("leftover processes / workdir",
         f"{'-' if r.leftover_processes is None else r.leftover_processes} / "
         f"{'yes' if r.leftover_workdir else 'no'}"),
        ("failures", str(len(r.failures))),
        ("verdict", "[green]PASS[/green]" if r.ok else "[red]FAIL[/red]"),
    ]
    for label, value in rows:
        grid.add_row(label, value)
    return grid


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testbed.bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=20, help="number of ASes (default 20)")
    parser.add_argument("--cycles", type=int, default=100, help="depeer / re-peer cycles (default 100)")
    parser.add_argument("--seed", type=int, default=1, help="topology and schedule seed (default 1)")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds each depeering or re-peering may take to converge (default 30)")
    parser.add_argument("--sample-every", type=int, default=10, metavar="N",
                        help="sample memory and check every process every N cycles (default 10)")
    parser.add_argument("--warmup", type=int, default=30, metavar="N",
                        help="cycles before memory is measured from (default 30)")
    parser.add_argument("--max-growth", type=float, default=5.0, metavar="PCT",
                        help="largest growth of the anonymous memory of speakers and agents after the "
                             "warm-up counted as noise, in %% per 100 cycles (default 5)")
    parser.add_argument("--max-heap-growth", type=float, default=1.0, metavar="PCT",
                        help="largest growth of their live Python heap after the warm-up, in %% per 100 "
                             "cycles (default 1)")
    parser.add_argument("--json", type=Path, help="also write the result to this file")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    if args.size < 2 or args.cycles < 0 or args.sample_every < 1 or args.warmup < 0:
        parser.error("--size must be 2 or more, --cycles 0 or more, --sample-every 1 or more, "
                     "--warmup 0 or more")

    from rich.console import Console

    console = Console(stderr=True)
    log = (lambda text: None) if args.quiet else (lambda text: console.print(text, highlight=False))
    if os.geteuid() != 0:
        console.print("a lab needs root (network namespaces): run it with sudo")
        return 2
    result = soak(args.size, args.cycles, args.seed, timeout=args.timeout,
                  sample_every=args.sample_every, warmup=args.warmup, max_growth_pct=args.max_growth,
                  max_heap_growth_pct=args.max_heap_growth, log=log)
    for failure in result.failures:
        where = f"cycle {failure['cycle']} " if failure["cycle"] is not None else ""
        pair = f"({failure['pair']}) " if failure["pair"] else ""
        console.print(f"[red]{where}{pair}{failure['phase']}:[/red] {failure['error']}", highlight=False)
    Console().print(table(result))
    data = asdict(result)
    if args.json:
        args.json.write_text(json.dumps(data, indent=2) + "\n")
    print("SOAK " + json.dumps(data, separators=(",", ":")), flush=True)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
