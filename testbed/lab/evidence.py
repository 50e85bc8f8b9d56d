"""Keeping the evidence of a lab that did not converge: logs, RIBs, the prediction and where they differ.

A lab that settles in a state other than the model's, or times out, is
stopped, and stopping removes its work directory and ends its agents: what
would explain it is gone. ``keep_evidence(lab, directory)`` sets the lab's
``Convergence.on_failure`` so that a failed wait (start, depeer, any event)
first writes, while the lab still runs: every file of the lab's work
directory (ExaBGP's and the agents' logs, configurations), every router's
tables as its agent reports them (``ribs.jsonl.gz``: the ``snapshot``
request of ``testbed.agent.control`` without the Adj-RIBs-Out), the
prediction (``prediction.jsonl.gz``), the routes that differ
(``diff.json`` and ``diff.txt``: router, table, neighbour, prefix,
expected and actual route with AS paths by name), every session's state
and flap count (``sessions.json``), the agents' counters (``stats.json``)
and the error with its ``outcome`` (``summary.json``). ``differences`` and
``outcome`` are pure, for tests.
"""

from __future__ import annotations

import datetime
import gzip
import json
import os
import shutil
import time
from pathlib import Path

from testbed.errors import ConvergenceTimeout, LabError, SettledWrong

__all__ = ["OUTCOMES", "Keeper", "differences", "keep_evidence", "outcome", "render", "session_rows", "write"]

OUTCOMES = ("converged", "settled wrong", "still converging", "error")


def outcome(error: BaseException | None) -> str:
    """What became of a wait: converged (no error), settled wrong (the lab
    went quiet in another state), still converging (at the timeout) or
    error (anything else: a crashed speaker, a lab that did not start)."""
    if error is None:
        return "converged"
    if isinstance(error, SettledWrong):
        return "settled wrong"
    if isinstance(error, ConvergenceTimeout):
        return "still converging"
    return "error"


# -- comparing (pure) ---------------------------------------------------------------

def _path(route: dict | None, as_names: dict[int, str]) -> list[str] | None:
    if route is None:
        return None
    return [as_names.get(int(asn), f"AS{asn}") for asn in route.get("as_path", ())]


def differences(router: str, snapshot: dict, expected_loc: dict, expected_adj: dict,
                neighbor_names: dict[str, str], as_names: dict[int, str]) -> list[dict]:
    """Every route of ``router`` that is not the predicted one: its
    Loc-RIB against ``expected_loc`` (prefix -> route, JSON form) and its
    Adj-RIB-In against ``expected_adj`` (neighbour address -> prefix ->
    route), as the agent reported them in ``snapshot``. One dict per
    route: router, table, from (the neighbour's name; None in the
    Loc-RIB), prefix, expected, got, and both AS paths by AS name."""
    found = []

    def compare(table: str, source: str | None, wanted: dict, actual: dict) -> None:
        for prefix in sorted(set(wanted) | set(actual)):
            want, have = wanted.get(prefix), actual.get(prefix)
            if want != have:
                found.append({"router": router, "table": table, "from": source, "prefix": prefix,
                              "expected": want, "got": have, "expected_path": _path(want, as_names),
                              "got_path": _path(have, as_names)})

    compare("loc_rib", None, expected_loc, snapshot.get("loc_rib") or {})
    received = snapshot.get("adj_rib_in") or {}
    for address in sorted(set(expected_adj) | set(received)):
        compare("adj_rib_in", neighbor_names.get(address, address), expected_adj.get(address, {}),
                received.get(address, {}))
    return found


def _route_text(route: dict | None, path: list[str] | None) -> str:
    if route is None:
        return "no route"
    if not path and route.get("neighbor") is None:
        return "local origin"
    text = f"AS path {path} via {route.get('next_hop')}"
    if route.get("rejected"):
        text += f" (rejected: {route['rejected']})"
    elif route.get("local_pref") is not None:
        text += f" local-pref {route['local_pref']}"
    return text


def render(entries: list[dict]) -> str:
    """``differences`` as lines a reader scans: router, where, prefix, expected, got."""
    lines = []
    for e in entries:
        where = "Loc-RIB" if e["table"] == "loc_rib" else f"Adj-RIB-In from {e['from']}"
        lines.append(f"router {e['router']}: {where}: {e['prefix']}: expected "
                     f"{_route_text(e['expected'], e['expected_path'])}, got {_route_text(e['got'], e['got_path'])}")
    return "\n".join(lines)


def session_rows(router: str, snapshot: dict, expected_up: dict[str, bool]) -> list[dict]:
    """The router's sessions as its agent reports them, with the state the
    model expects (``expected_up``: peer name -> whether Established)."""
    rows = []
    for address, s in sorted((snapshot.get("sessions") or {}).items()):
        want = expected_up.get(s.get("name"))
        rows.append({"router": router, "peer": s.get("name"), "address": address, "state": s.get("state"),
                     "expected": None if want is None else ("established" if want else "down"),
                     "as_expected": want is None or want == (s.get("state") == "established"),
                     "flaps": s.get("flaps"), "since": s.get("since"), "reason": s.get("reason"),
                     "admin_down": s.get("admin_down"), "shut": s.get("shut"),
                     "last_notification": s.get("last_notification")})
    return rows


# -- writing (the lab must still run) ---------------------------------------------

def _copy_files(workdir: Path | None, target: Path) -> int:
    """Copy the regular files of the lab's work directory (not its sockets)."""
    if workdir is None or not workdir.is_dir():
        return 0
    copied = 0
    for root, _dirs, files in os.walk(workdir):
        for name in files:
            source = Path(root) / name
            if not source.is_file() or source.is_symlink():
                continue
            destination = target / source.relative_to(workdir)
            destination.parent.mkdir(parents=True, exist_ok=True)
            try:
                shutil.copyfile(source, destination)
                copied += 1
            except OSError:
                pass  # a file removed meanwhile
    return copied


def write(lab, directory: Path | str, error: BaseException | None = None) -> Path:
    """Write the evidence of ``lab`` (running) into ``directory`` (made,
    with its parents); returns it. Router by router, so that the harness
    holds one router's tables at a time, also at a thousand ASes."""
    t0 = time.monotonic()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files = _copy_files(lab.workdir, directory / "workdir")
    plan, expect, backend = lab.plan, lab.expect, lab.backend
    as_names = {r.asn: r.as_name for r in plan.routers.values()}
    expected_loc, expected_adj = expect.loc_ribs(), expect.adj_ribs_in()
    diffs: list[dict] = []
    sessions: list[dict] = []
    stats: dict[str, dict] = {}
    problems: dict[str, str] = {}
    crashed = set(getattr(backend, "crashed", ()))
    with gzip.open(directory / "ribs.jsonl.gz", "wt", compresslevel=3) as ribs, \
            gzip.open(directory / "prediction.jsonl.gz", "wt", compresslevel=3) as prediction:
        for name, router in plan.routers.items():
            want_loc, want_adj = expected_loc[name], expected_adj[name]
            prediction.write(json.dumps({"router": name, "loc_rib": want_loc, "adj_rib_in": want_adj},
                                        sort_keys=True) + "\n")
            if name in crashed:
                problems[name] = "crashed on purpose"
                continue
            try:
                snapshot = backend.snapshot(name)
            except (LabError, OSError) as exc:
                problems[name] = f"no snapshot: {exc}"
                continue
            snapshot.pop("adj_rib_out", None)
            ribs.write(json.dumps(snapshot, sort_keys=True) + "\n")
            names = {n.address: n.name for n in router.neighbors}
            diffs += differences(name, snapshot, want_loc, want_adj, names, as_names)
            up = {n.name: expect.session_up(name, n.name) for n in router.neighbors}
            sessions += session_rows(name, snapshot, up)
            stats[name] = snapshot.get("stats") or {}
    (directory / "diff.json").write_text(json.dumps(diffs, indent=1) + "\n")
    (directory / "diff.txt").write_text(render(diffs) + "\n")
    (directory / "sessions.json").write_text(json.dumps(sessions, indent=1) + "\n")
    (directory / "stats.json").write_text(json.dumps(stats, indent=1, sort_keys=True) + "\n")
    summary = {
        "outcome": outcome(error), "error": None if error is None else f"{type(error).__name__}: {error}",
        "lab": lab.id, "topology": lab.topology.name, "routers": len(plan.routers),
        "written_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "routers_differing": sorted({d["router"] for d in diffs}),
        "prefixes_differing": sorted({d["prefix"] for d in diffs}),
        "routes_differing": len(diffs),
        "sessions_not_as_expected": [f"{s['router']}-{s['peer']}" for s in sessions if not s["as_expected"]],
        "session_flaps": sum(s["flaps"] or 0 for s in sessions) // 2,
        "prediction_model": expect.model, "routers_without_snapshot": problems,
        "files_copied": files, "seconds_to_write": round(time.monotonic() - t0, 2)}
    (directory / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return directory


class Keeper:
    """The ``on_failure`` of one lab: writes the evidence of each failed
    wait (the first into ``directory``, a later one into ``directory-2``,
    ...), never into a directory that already holds something."""

    def __init__(self, lab, directory: Path | str, log=lambda text: None):
        self.lab = lab
        self.directory = Path(directory)
        self.log = log
        self.written: list[Path] = []

    def __call__(self, error: BaseException) -> None:
        target, n = self.directory, 1
        while target.exists() and any(target.iterdir()):
            n += 1
            target = self.directory.with_name(f"{self.directory.name}-{n}")
        self.log(f"  keeping the evidence ({outcome(error)}) in {target}")
        self.written.append(write(self.lab, target, error))


def keep_evidence(lab, directory: Path | str, log=lambda text: None) -> Keeper:
    """Have ``lab`` keep its evidence in ``directory`` when a wait fails."""
    keeper = Keeper(lab, directory, log)
    lab.convergence.on_failure = keeper
    return keeper
