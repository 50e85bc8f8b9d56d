"""The lab's start-up before routes flow, phase by phase, with its CPU.

``python -m testbed.bench.startup --size 100`` (as root) generates the
benchmark's Internet of that size, starts a lab with its routes held back
(the start-up update delay) and stops it once every session is up, before
a single route is released: the phases up to "waiting for sessions and
routes" are all it measures, so a 1,000-AS start costs minutes, not the
half hour of a converged one. For each phase it prints the wall time and
the CPU spent in it by the harness (this process, its threads and the
children it reaped, such as ``exabgp validate``) and by the lab's
processes by kind (zygote, speakers, node shells; read from ``/proc``
when each phase ends). The model's prediction is not computed (nothing
waits for it here) unless ``--predict``. ``--repeat N`` alternates
nothing: it repeats the same start N times and prints each.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

from testbed.bench.observe import CLOCK_TICKS, kind_of, lab_pids, leftovers
from testbed.linux.processes import proc_stat
from testbed.model.generate import internet

STOP_AT = "waiting for sessions and routes"


class _Enough(Exception):
    """Raised from the progress hook once sessions are up: start() stops the lab."""


def _harness_cpu() -> tuple[float, float]:
    """(user + system, system) seconds of this process and its reaped children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    system = own.ru_stime + reaped.ru_stime
    return own.ru_utime + reaped.ru_utime + system, system


def _lab_cpu(lab_id: str) -> dict[str, float]:
    by_kind: dict[str, float] = {}
    for pid in lab_pids(lab_id):
        fields = proc_stat(pid)
        if fields is not None:
            kind = kind_of(pid)
            by_kind[kind] = by_kind.get(kind, 0.0) + (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
            by_kind[kind + " sys"] = by_kind.get(kind + " sys", 0.0) + int(fields[12]) / CLOCK_TICKS
    return by_kind


def measure(size: int, seed: int = 1, predict: bool = False, timeout: float | None = None,
            log=lambda text: None) -> dict:
    """One start of a ``size``-AS lab up to its sessions; phase -> wall and CPU."""
    from testbed.lab.lab import Lab

    topology = internet(size, seed=seed)
    marks: list[tuple[str, float, float, dict[str, float]]] = []
    holder: dict = {}

    def progress(stage: str) -> None:
        lab = holder.get("lab")
        lab_id = lab.id if lab is not None else ""
        # Thousands of /proc reads at 1,000 ASes: neither phase's time nor CPU.
        at, harness = time.monotonic(), _harness_cpu()
        lab_cpu = _lab_cpu(lab_id) if lab_id else {}
        marks.append({"stage": stage.split(":")[0], "at": at, "harness": harness, "lab": lab_cpu,
                      "after": time.monotonic(), "harness_after": _harness_cpu()})
        log(f"  {time.strftime('%H:%M:%S')} {stage}")
        if stage == STOP_AT:
            raise _Enough()

    lab = Lab(topology, progress=progress)
    holder["lab"] = lab
    if not predict:
        lab._predict_in_background = lambda: None
    reached = False
    try:
        lab.start(timeout=timeout if timeout is not None else 60.0 + size)
    except _Enough:
        reached = True
    except Exception as exc:  # noqa: BLE001 - reported
        reached = isinstance(exc.__cause__, _Enough)
        if not reached:
            raise
    finally:
        lab.stop()
    phases = []
    previous_cpu: dict[str, float] = {}
    for mark, end in zip(marks, marks[1:]):
        phases.append({"phase": mark["stage"], "wall_s": round(end["at"] - mark["after"], 3),
                       "harness_cpu_s": round(end["harness"][0] - mark["harness_after"][0], 3),
                       "harness_sys_s": round(end["harness"][1] - mark["harness_after"][1], 3),
                       "lab_cpu_s": {k: round(v - previous_cpu.get(k, 0.0), 3) for k, v in end["lab"].items()}})
        previous_cpu = end["lab"]
    processes, workdir = leftovers(lab)
    return {"size": size, "seed": seed, "reached_sessions": reached,
            "to_sessions_s": round(sum(p["wall_s"] for p in phases), 3),
            "harness_cpu_s": round(sum(p["harness_cpu_s"] for p in phases), 3),
            "lab_cpu_s": {k: round(v, 3) for k, v in (marks[-1]["lab"] if marks else {}).items()},
            "stop_s": round(lab.timings.get("stop", 0.0), 3), "phases": phases,
            "leftover_processes": processes, "leftover_workdir": workdir}


def show(result: dict) -> str:
    lines = [f"{result['size']} ASes: {result['to_sessions_s']} s to sessions up (routes held back); "
             f"harness CPU {result['harness_cpu_s']} s, lab CPU "
             + ", ".join(f"{k} {v} s" for k, v in sorted(result["lab_cpu_s"].items()))
             + f"; stop {result['stop_s']} s; leftovers {result['leftover_processes']}"
             f"{' + workdir' if result['leftover_workdir'] else ''}"]
    for phase in result["phases"]:
        lab = ", ".join(f"{k} {v:.2f}" for k, v in sorted(phase["lab_cpu_s"].items()) if v >= 0.005)
        lines.append(f"  {phase['phase'][:48]:48} {phase['wall_s']:7.2f} s wall  "
                     f"harness {phase['harness_cpu_s']:5.2f} s CPU ({phase['harness_sys_s']:.2f} sys)  {lab}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testbed.bench.startup", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--predict", action="store_true", help="compute the model's prediction beside the start")
    parser.add_argument("--timeout", type=float, help="seconds the start may take (default 60 + size)")
    parser.add_argument("--verbose", action="store_true", help="print each phase as it begins")
    parser.add_argument("--json", action="store_true", help="also print each result as one JSON line")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("run as root: a lab makes network namespaces", file=sys.stderr)
        return 2
    for _ in range(args.repeat):
        result = measure(args.size, args.seed, args.predict, args.timeout,
                         log=(lambda text: print(text, flush=True)) if args.verbose else (lambda text: None))
        print(show(result), flush=True)
        if args.json:
            print("STARTUP " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
