"""The benchmark's CPU account as tables: "CPU by phase and kind".

``cpu_rows`` takes one result's ``cpu_split`` (``testbed.bench.
cpu_account.split``: phases, each with CPU seconds per bucket and the
machine's busy time) and lays it out with a row per kind (the speakers'
ExaBGP and agent threads, the zygote, the node shells, the commands they
ran, the benchmark's own process by thread, ksmd, the residue of the
machine's busy time in no process read, then the machine's busy, softirq
and idle time) and a column per phase of the start, then the whole start,
its user / system split, and CPU per route received in the routes phase.
``session_rows`` is the routes phase by speakers' number of sessions.
``cpu_tables`` renders both with rich, ``markdown`` as Markdown for
``docs/benchmark.md``: ``python -m testbed.bench.cpu_report out.json``
prints the Markdown of a benchmark's ``--json`` file. Pure: data in, text out.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from testbed.bench.cpu_account import BUCKETS, totals

LABELS = {"exabgp": "speakers: ExaBGP thread", "agent": "speakers: agent thread", "zygote": "zygote",
          "shells": "node shells", "commands": "commands they ran", "harness": "harness: main thread",
          "prediction": "harness: prediction", "harness threads": "harness: other threads",
          "account": "this account's snapshots", "ksmd": "ksmd (KSM)", "other": "machine: other (residue)"}
SHORT = {"before the first stage": "before", "starting the speaker zygote": "zygote",
         "building namespaces and links": "build", "configuring addresses": "addresses",
         "rendering and validating ExaBGP configurations": "configs", "starting BGP speakers": "speakers",
         "establishing sessions, routes held back": "sessions", "waiting for sessions and routes": "routes",
         "raised the host's neighbour-table limits": "neighbour limits",
         "started the kernel's page merging (KSM)": "KSM on"}


def short(phase: str) -> str:
    """A phase's column header: its short name, else its first three words."""
    for stage, name in SHORT.items():
        if phase.startswith(stage):
            return name
    return " ".join(phase.split()[:3])


def _buckets(split: dict) -> list[str]:
    """The buckets worth a row (above 5 ms over the start), in BUCKETS order."""
    total = totals(split["phases"])
    seen = [b for b in BUCKETS if b in total and abs(sum(total[b])) >= 0.005]
    return seen + sorted(set(total) - set(BUCKETS))


def cpu_rows(split: dict) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the kind-by-phase table, as text (CPU seconds)."""
    phases = [p for p in split["phases"] if p["wall_s"] >= 0.005]
    routes = split.get("routes_in")
    routes_phase = next((p for p in phases if p["phase"] == split.get("routes_phase")), None)
    per_route = bool(routes and routes_phase)
    header = ["kind", *[short(p["phase"]) for p in phases], "start → converged",
              "user / system", *(["µs per route (routes phase)"] if per_route else [])]
    total = totals(split["phases"])
    rows = [["wall time", *[f"{p['wall_s']:.2f}" for p in phases],
             f"{sum(p['wall_s'] for p in split['phases']):.2f}", "", *([""] if per_route else [])]]
    for bucket in _buckets(split):
        user, system = total.get(bucket, (0.0, 0.0))
        rows.append([LABELS.get(bucket, bucket), *[f"{sum(p['cpu'].get(bucket, (0, 0))):.2f}" for p in phases],
                     f"{user + system:.2f}", f"{user:.1f} / {system:.1f}",
                     *([f"{sum(routes_phase['cpu'].get(bucket, (0, 0))) / routes * 1e6:.0f}"] if per_route else [])])
    for key, label in (("busy", "machine: busy (all of the above)"), ("softirq", "  of which softirq"),
                       ("idle", "machine: idle"), ("steal", "machine: stolen (hypervisor)")):
        value = sum(p["machine"][key] for p in split["phases"])
        user_system = (f"{sum(p['machine']['user'] for p in split['phases']):.1f} / "
                       f"{sum(p['machine']['system'] for p in split['phases']):.1f}") if key == "busy" else ""
        rows.append([label, *[f"{p['machine'][key]:.2f}" for p in phases], f"{value:.2f}", user_system,
                     *([f"{routes_phase['machine'][key] / routes * 1e6:.0f}" if key == "busy" else ""]
                       if per_route else [])])
    return header, rows


def session_rows(split: dict) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the routes phase by the speakers' number of sessions."""
    header = ["sessions", "speakers", "routes received / sent", "ExaBGP s", "agent s", "ExaBGP µs/route in",
              "ExaBGP µs/route in or out", "agent µs/route in", "CPU per speaker s"]
    rows = []
    for group in split.get("by_sessions") or []:
        routes, out = max(1, group["routes_in"]), group.get("routes_out", 0)
        rows.append([group["sessions"], str(group["speakers"]), f"{group['routes_in']:,} / {out:,}",
                     f"{group['exabgp_s']:.2f}", f"{group['agent_s']:.2f}",
                     f"{group['exabgp_s'] / routes * 1e6:.0f}",
                     f"{group['exabgp_s'] / (routes + out) * 1e6:.0f}" if out else "-",
                     f"{group['agent_s'] / routes * 1e6:.0f}",
                     f"{(group['exabgp_s'] + group['agent_s']) / group['speakers']:.3f}"])
    return header, rows


def cpu_tables(split: dict, title: str):
    """The kind-by-phase table and the by-sessions table of one result (rich)."""
    from rich.table import Table

    tables = []
    for (header, rows), name in ((cpu_rows(split), f"CPU by phase and kind, seconds ({title})"),
                                 (session_rows(split), f"Routes phase by the speaker's number of sessions "
                                                       f"({title})")):
        if not rows:
            continue
        grid = Table(title=name)
        grid.add_column(header[0], no_wrap=True)
        for column in header[1:]:
            grid.add_column(column, justify="right")
        for row in rows:
            grid.add_row(*row)
        tables.append(grid)
    return tables


def markdown(split: dict) -> str:
    """Both tables as Markdown."""
    out = []
    for header, rows in (cpu_rows(split), session_rows(split)):
        if rows:
            out.append("| " + " | ".join(header) + " |")
            out.append("| " + " | ".join(["---"] * len(header)) + " |")
            out += ["| " + " | ".join(row) + " |" for row in rows]
            out.append("")
    return "\n".join(out)


def cost_line(split: dict) -> str:
    return (f"CPU account: {split['snapshots']} snapshots of {split['lab_processes']} processes, each at most "
            f"{split['snapshot_cpu_ms_max']:.1f} ms of CPU ({split['snapshot_wall_ms_max']:.1f} ms wall); "
            f"/proc counts in {split['tick_s'] * 1000:.0f} ms ticks")


def main(argv: list[str] | None = None) -> int:
    paths = argv if argv is not None else sys.argv[1:]
    if not paths:
        print("usage: python -m testbed.bench.cpu_report BENCHMARK.json ...", file=sys.stderr)
        return 2
    for path in paths:
        for result in json.loads(Path(path).read_text())["results"]:
            if result.get("cpu_split", {}).get("phases"):
                print(f"{result['size']} ASes, {result['model']} ({path})\n")
                print(markdown(result["cpu_split"]))
                print(cost_line(result["cpu_split"]) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
