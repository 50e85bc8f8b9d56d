"""Repeated benchmark runs: where each one's evidence goes, which CPUs it ran on, and how they all ended.

The benchmark (``testbed.bench.benchmark``) runs each size and model
``--repeat`` times, each on a fresh lab, optionally pinned to ``--cpus``.
``pin`` sets the harness's CPU affinity before any lab starts, so that
every process the lab forks inherits it; ``cpus_of`` reads back the CPUs
the lab's processes were allowed. ``evidence_dir`` names the directory a
run that fails keeps its evidence in (``testbed.lab.evidence``).
``runs_table`` shows every run's outcome and times, ``summary_table`` the
count of each outcome and min/median/max of the times per size and model.
Results (``benchmark.Result``) in, rich tables out.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING

from testbed.lab.evidence import OUTCOMES

if TYPE_CHECKING:
    from testbed.bench.benchmark import Result

__all__ = ["cpus_of", "evidence_dir", "parse_cpus", "pin", "runs_table", "summary_table"]


def parse_cpus(text: str) -> list[int]:
    """``"0"``, ``"0,1"`` or ``"0-3"`` (and mixes) -> sorted CPU numbers;
    ValueError naming what is wrong, also for a CPU this process may not use."""
    cpus: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part:
                low, high = (int(x) for x in part.split("-", 1))
                if low > high:
                    raise ValueError
                cpus.update(range(low, high + 1))
            else:
                cpus.add(int(part))
        except ValueError:
            raise ValueError(f"--cpus {text!r}: {part!r} is not a CPU number or range (0, 0,1, 0-3)") from None
    allowed = os.sched_getaffinity(0)
    if not cpus <= allowed:
        raise ValueError(f"--cpus {text!r}: CPU {sorted(cpus - allowed)} is not available here "
                         f"(this process may use {sorted(allowed)})")
    return sorted(cpus)


def pin(cpus: list[int]) -> None:
    """Pin this process (every thread of it) to ``cpus``: whatever it
    starts afterwards inherits the affinity. Kernel threads (ksmd, which
    merges the speakers' pages) are not this process's and stay unpinned."""
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), cpus)
        except ProcessLookupError:
            pass  # a thread that ended meanwhile


def cpus_of(pids) -> list[int]:
    """The CPUs any of ``pids`` (and this process) may run on."""
    found = set(os.sched_getaffinity(0))
    for pid in pids:
        try:
            found |= os.sched_getaffinity(pid)
        except OSError:
            pass  # ended meanwhile
    return sorted(found)


def evidence_dir(root: Path, size: int, model: str, run: int, runs: int, mrai: float | None = None) -> Path:
    """``root/<UTC date and time>-<size>-<model>[-mrai<ms>][-run<k>]``."""
    name = f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{size}-{model}"
    if mrai is not None:
        name += f"-mrai{mrai * 1000:g}"
    if runs > 1:
        name += f"-run{run}"
    return root / name


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def runs_table(results: list[Result]):
    """One row per run: outcome (and in which phase), times, CPUs, evidence."""
    from rich.table import Table

    grid = Table(title="Every run")
    for name in ("ASes", "model", "run", "outcome", "start s", "depeer s", "repeer s", "CPUs", "evidence"):
        grid.add_column(name, justify="right" if name.endswith(" s") or name in ("ASes", "run") else "left",
                        overflow="fold")
    for r in results:
        what = r.outcome or "-"
        if r.failed_during and r.outcome != "converged":
            what += f" ({r.failed_during}, {_s(r.failed_after_s)} s)"
        grid.add_row(str(r.size), r.model + (f" MRAI {r.mrai * 1000:g} ms" if r.mrai is not None else ""),
                     str(r.run), what, _s(r.start_s), _s(r.depeer_s), _s(r.repeer_s),
                     ",".join(map(str, r.cpus)) or "-", r.evidence or "-")
    return grid


def _spread(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f}"


def summary_table(results: list[Result]):
    """Per size and model: how many runs ended each way, and min / median /
    max of the start, depeering and re-peering times of the runs that got there."""
    from rich.table import Table

    groups: dict[tuple, list] = {}
    for r in results:
        groups.setdefault((r.size, r.model, r.mrai), []).append(r)
    grid = Table(title="Outcomes of the runs (times: min / median / max, s)")
    for name in ("ASes", "model", "runs", *OUTCOMES, "start", "depeer", "repeer", "CPUs"):
        grid.add_column(name, justify="left" if name == "model" else "right")
    for (size, model, mrai), rs in groups.items():
        counts = [str(sum(1 for r in rs if r.outcome == o)) for o in OUTCOMES]
        cpus = sorted({",".join(map(str, r.cpus)) for r in rs if r.cpus})
        grid.add_row(str(size), model + (f" MRAI {mrai * 1000:g} ms" if mrai is not None else ""), str(len(rs)),
                     *counts, _spread([r.start_s for r in rs if r.start_s is not None]),
                     _spread([r.depeer_s for r in rs if r.depeer_s is not None]),
                     _spread([r.repeer_s for r in rs if r.repeer_s is not None]), " | ".join(cpus) or "-")
    return grid
