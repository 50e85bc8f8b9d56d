"""Where a speaker's CPU goes, per process model: a fixed cost per speaker and
a cost per route received, fitted over the speakers of one lab; with them,
where PyPy's speakers (``zygote-pypy``) would start to pay for their memory.

``python -m testbed.bench.speaker_cost --size 100 --models zygote zygote-pypy zygote zygote-pypy``
starts a generated Internet once per model given (repeat them to alternate:
the machine is shared), and once converged reads, for every speaker (one
process each: ExaBGP with its agent as a thread), its CPU seconds
(``/proc/<pid>/stat``) and the routes and UPDATEs its agent received; a
least-squares line through those points, CPU = fixed + per_route x routes,
splits start-up (and, on PyPy, the JIT's compiling in each child) from the
work per route. PSS per AS is read at the same moment (before the kernel's
page merging settles; the benchmark measures that). ``--ingest N`` then
has one router take N prefixes from one neighbor in a two-AS lab and
reads the CPU of both speakers over it: the cost per route once a
speaker has seen many (where a JIT is warm). ``model:rounds`` runs the
PyPy model with that many JIT warm-up rounds (``zygote-pypy:3000``; none
by default).
Prints a table and one ``SPEAKER_COST {...}`` JSON line; the figures are in
docs/benchmark.md. Data in: the command line; out: stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field

from testbed.bench.observe import CLOCK_TICKS, MIB, cpu_ticks, lab_pids, memory
from testbed.model.generate import internet

HOLD_TIME = 90


@dataclass
class Fit:
    """CPU seconds = fixed_s + per_route_us / 1e6 x routes, over ``points`` speakers."""

    fixed_s: float
    per_route_us: float
    points: int
    r2: float


def fit(points: list[tuple[float, float]]) -> Fit:
    """Least squares through (routes, CPU seconds); ValueError for fewer than
    two distinct route counts."""
    xs = [float(x) for x, _ in points]
    ys = [float(y) for _, y in points]
    if len(set(xs)) < 2:
        raise ValueError(f"a line needs speakers with at least two different route counts, not {sorted(set(xs))}")
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    intercept = my - slope * mx
    total = sum((y - my) ** 2 for y in ys)
    residual = sum((y - intercept - slope * x) ** 2 for x, y in zip(xs, ys))
    return Fit(intercept, slope * 1e6, len(points), 1.0 - residual / total if total else 1.0)


def crossover(ours: Fit, other: Fit) -> float | None:
    """Routes received per speaker above which ``other`` costs less CPU than
    ``ours`` (lines cross there); None if it never does (not cheaper per
    route), 0.0 if it always does."""
    saved_per_route = (ours.per_route_us - other.per_route_us) / 1e6
    if saved_per_route <= 0:
        return None
    return max(0.0, (other.fixed_s - ours.fixed_s) / saved_per_route)


@dataclass
class Run:
    model: str
    warm: int | None = None          # PyPy warm-up rounds (None: the model's default)
    size: int = 0
    start_s: float | None = None
    cpu_s: float | None = None       # every process of the lab, start to converged
    speaker_cpu_s: float | None = None
    zygote_cpu_s: float | None = None
    routes_in: int = 0
    per_route_us: float | None = None  # the lab's CPU / routes received
    pss_per_as_mib: float | None = None
    speaker_pss_mib: float | None = None  # median of the speakers
    zygote_pss_mib: float | None = None
    fit: Fit | None = None
    speakers: list[tuple[int, float]] = field(default_factory=list)  # (routes in, CPU s)
    ingest_prefixes: int | None = None
    ingest_receiver_us: float | None = None  # receiving speaker's CPU per prefix
    ingest_sender_us: float | None = None
    error: str | None = None


def _cpu(pid: int) -> float:
    return (cpu_ticks(pid) or 0) / CLOCK_TICKS


def measure(model: str, size: int, seed: int, log=lambda text: None) -> Run:
    from testbed.lab.lab import Lab

    name, _, warm = model.partition(":")
    run = Run(model=name, warm=int(warm) if warm else None, size=size)
    saved = os.environ.get("TESTBED_PYPY_WARM")
    if warm:
        os.environ["TESTBED_PYPY_WARM"] = warm
    lab = Lab(internet(size, seed=seed, hold_time=HOLD_TIME), process_model=name)
    try:
        t0 = time.monotonic()
        lab.start(timeout=120.0 + size)
        run.start_s = time.monotonic() - t0
        pids = lab_pids(lab.id)
        run.cpu_s = sum(_cpu(pid) for pid in pids)
        zygote = lab.zygote.info["pid"] if lab.zygote is not None else None
        if zygote is not None:
            run.zygote_cpu_s = _cpu(zygote)
            run.zygote_pss_mib = memory(zygote)[0] / MIB
        pss = []
        for router in lab.plan.routers:
            pid = lab.speakers[router].pid
            stats = lab.clients[router].request("summary").get("stats") or {}
            run.speakers.append((int(stats.get("routes_in", 0)), _cpu(pid)))
            pss.append(memory(pid)[0] / MIB)
        run.speaker_cpu_s = sum(cpu for _, cpu in run.speakers)
        run.routes_in = sum(routes for routes, _ in run.speakers)
        run.per_route_us = run.cpu_s / run.routes_in * 1e6 if run.routes_in else None
        run.speaker_pss_mib = statistics.median(pss)
        run.pss_per_as_mib = sum(memory(pid)[0] for pid in pids) / MIB / size
        run.fit = fit(run.speakers)
        log(f"  {model}: {run.start_s:.1f} s, {run.cpu_s:.1f} s CPU, {run.per_route_us:.0f} us/route, "
            f"{run.pss_per_as_mib:.1f} MiB/AS; fit {run.fit.fixed_s:.3f} s + {run.fit.per_route_us:.0f} us/route")
    except Exception as exc:  # a failed run is reported, the others go on
        run.error = f"{type(exc).__name__}: {exc}"
        log(f"  {model}: {run.error}")
    finally:
        lab.stop()
        if warm:
            if saved is None:
                os.environ.pop("TESTBED_PYPY_WARM", None)
            else:
                os.environ["TESTBED_PYPY_WARM"] = saved
    return run


def ingest(model: str, count: int, run: Run, log=lambda text: None) -> None:
    """CPU per prefix of the receiving and the sending speaker while one
    router takes ``count`` prefixes (``testbed.bench.experiments``' ingest)."""
    from testbed.bench.experiments import ingest_lab, ingest_prepared, ingest_sent

    lab = ingest_lab(model.partition(":")[0])
    try:
        lab.start(timeout=60.0)
        lines, before = ingest_prepared(lab, count)
        p, r = lab.speakers["P"].pid, lab.speakers["R"].pid
        cpu_p, cpu_r = _cpu(p), _cpu(r)
        ingest_sent(lab, lines, count, before, request_timeout=120.0, patience=600.0, poll=0.05)
        run.ingest_prefixes = count
        run.ingest_receiver_us = (_cpu(r) - cpu_r) / count * 1e6
        run.ingest_sender_us = (_cpu(p) - cpu_p) / count * 1e6
        log(f"  {model} ingest of {count}: receiver {run.ingest_receiver_us:.0f} us/prefix, "
            f"sender {run.ingest_sender_us:.0f} us/prefix")
    except Exception as exc:
        run.error = (run.error or "") + f" ingest: {type(exc).__name__}: {exc}"
        log(f"  {model} ingest: {type(exc).__name__}: {exc}")
    finally:
        lab.stop()


def table(runs: list[Run]) -> str:
    head = (f"{'model':16} {'start s':>8} {'CPU s':>7} {'routes':>7} {'us/route':>9} {'fixed s':>8} "
            f"{'us/route (fit)':>15} {'R2':>5} {'MiB/AS':>7} {'speaker':>8} {'zygote':>7} {'ingest rx/tx us':>16}")
    rows = [head]
    for r in runs:
        if r.fit is None and r.ingest_receiver_us is not None:
            rows.append(f"{r.model:16} ingest of {r.ingest_prefixes}: receiver {r.ingest_receiver_us:.0f} us/prefix, "
                        f"sender {r.ingest_sender_us:.0f} us/prefix")
            continue
        if r.error and r.fit is None:
            rows.append(f"{r.model:16} {r.error}")
            continue
        label = r.model + (f":{r.warm}" if r.warm is not None else "")
        ingest_text = (f"{r.ingest_receiver_us:.0f}/{r.ingest_sender_us:.0f}"
                       if r.ingest_receiver_us is not None else "-")
        rows.append(f"{label:16} {r.start_s:8.1f} {r.cpu_s:7.1f} {r.routes_in:7d} {r.per_route_us:9.0f} "
                    f"{r.fit.fixed_s:8.3f} {r.fit.per_route_us:15.0f} {r.fit.r2:5.2f} {r.pss_per_as_mib:7.1f} "
                    f"{r.speaker_pss_mib:8.1f} {r.zygote_pss_mib or 0:7.1f} {ingest_text:>16}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testbed.bench.speaker_cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=100,
                        help="ASes of the generated Internet (default 100; 0: only the ingest)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--models", nargs="+", default=["zygote", "zygote-pypy"], metavar="MODEL[:ROUNDS]",
                        help="process models in the order to run them (repeat to alternate)")
    parser.add_argument("--ingest", type=int, default=0, metavar="N",
                        help="also have one router take N prefixes, once per model given (0: skip)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("a lab needs root (network namespaces): run it with sudo", file=sys.stderr)
        return 2
    log = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    runs: list[Run] = []
    for model in args.models:
        log(f"{args.size} ASes, {model} (load {os.getloadavg()[0]:.1f})")
        runs.append(measure(model, args.size, args.seed, log) if args.size else
                    Run(model=model.partition(":")[0], warm=int(model.partition(":")[2]) if ":" in model else None))
        if args.ingest:
            ingest(model, args.ingest, runs[-1], log)
    print(table(runs))
    print("SPEAKER_COST " + json.dumps([asdict(r) for r in runs], separators=(",", ":")), flush=True)
    return 1 if any(r.error for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
