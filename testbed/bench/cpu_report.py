"""The benchmark's CPU account as tables: "CPU by phase and kind".

``cpu_tables`` takes one result's ``cpu_split`` (``testbed.bench.
cpu_account.split``: phases, each with CPU seconds per bucket and the
machine's busy time) and returns rich tables: a row per phase of the start
and a column per kind (the speakers' ExaBGP and agent threads, the zygote,
the node shells, the commands they ran, the benchmark's own process by
thread, ksmd, and the residue of the machine's busy time in no process
read), the whole start in user and system time, CPU per route received in
the routes phase; and the routes phase by speakers' number of sessions.
Pure: data in, tables out.
"""

from __future__ import annotations

from testbed.bench.cpu_account import BUCKETS, totals

LABELS = {"exabgp": "ExaBGP thread", "agent": "agent thread", "zygote": "zygote", "shells": "shells",
          "commands": "commands run", "harness": "harness main", "prediction": "prediction",
          "harness threads": "harness other", "account": "this account", "ksmd": "ksmd",
          "other": "machine other"}


def _buckets(split: dict) -> list[str]:
    """The buckets worth a column (any phase above 5 ms), in BUCKETS order."""
    total = totals(split["phases"])
    seen = [b for b in BUCKETS if b in total and abs(sum(total[b])) >= 0.005]
    return seen + sorted(set(total) - set(BUCKETS))


def cpu_rows(split: dict) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the phase-by-kind table, as text."""
    buckets = _buckets(split)
    header = ["phase", "wall s", *[LABELS.get(b, b) for b in buckets], "machine busy", "softirq", "idle"]
    rows = []
    for phase in split["phases"]:
        cpu, machine = phase["cpu"], phase["machine"]
        rows.append([phase["phase"], f"{phase['wall_s']:.2f}",
                     *[f"{sum(cpu.get(b, (0, 0))):.2f}" for b in buckets],
                     f"{machine['busy']:.2f}", f"{machine['softirq']:.2f}", f"{machine['idle']:.2f}"])
    total = totals(split["phases"])
    machine = {key: sum(p["machine"][key] for p in split["phases"]) for key in ("busy", "softirq", "idle")}
    wall = sum(p["wall_s"] for p in split["phases"])
    rows.append(["start → converged", f"{wall:.2f}", *[f"{sum(total.get(b, (0, 0))):.2f}" for b in buckets],
                 f"{machine['busy']:.2f}", f"{machine['softirq']:.2f}", f"{machine['idle']:.2f}"])
    rows.append(["  user / system", "",
                 *[f"{total.get(b, (0, 0))[0]:.1f} / {total.get(b, (0, 0))[1]:.1f}" for b in buckets],
                 f"{sum(p['machine']['user'] for p in split['phases']):.1f} / "
                 f"{sum(p['machine']['system'] for p in split['phases']):.1f}", "", ""])
    routes = split.get("routes_in")
    phase = next((p for p in split["phases"] if p["phase"] == split.get("routes_phase")), None)
    if routes and phase:
        cpu = phase["cpu"]
        rows.append([f"  µs per route received ({routes:,}), routes phase", "",
                     *[f"{sum(cpu.get(b, (0, 0))) / routes * 1e6:.0f}" for b in buckets],
                     f"{phase['machine']['busy'] / routes * 1e6:.0f}", "", ""])
    return header, rows


def cpu_tables(split: dict, title: str):
    """The phase-by-kind table and the by-sessions table of one result."""
    from rich.table import Table

    header, rows = cpu_rows(split)
    grid = Table(title=f"CPU by phase and kind, seconds ({title})")
    grid.add_column(header[0])
    for name in header[1:]:
        grid.add_column(name, justify="right")
    for row in rows:
        grid.add_row(*row)
    tables = [grid]
    if split.get("by_sessions"):
        sessions = Table(title=f"Routes phase by the speaker's number of sessions ({title})")
        for name in ("sessions", "speakers", "routes received", "ExaBGP s", "agent s",
                     "ExaBGP µs/route", "agent µs/route", "CPU per speaker s"):
            sessions.add_column(name, justify="right")
        for group in split["by_sessions"]:
            routes = max(1, group["routes_in"])
            sessions.add_row(group["sessions"], str(group["speakers"]), f"{group['routes_in']:,}",
                             f"{group['exabgp_s']:.2f}", f"{group['agent_s']:.2f}",
                             f"{group['exabgp_s'] / routes * 1e6:.0f}", f"{group['agent_s'] / routes * 1e6:.0f}",
                             f"{(group['exabgp_s'] + group['agent_s']) / group['speakers']:.3f}")
        tables.append(sessions)
    return tables


def cost_line(split: dict) -> str:
    return (f"CPU account: {split['snapshots']} snapshots of {split['lab_processes']} processes, each at most "
            f"{split['snapshot_cpu_ms_max']:.1f} ms of CPU ({split['snapshot_wall_ms_max']:.1f} ms wall); "
            f"/proc counts in {split['tick_s'] * 1000:.0f} ms ticks")
