"""Unit tests of a wrong settle: how a failed wait is classified (settled
wrong early, still converging at the timeout), the diff of a router's RIBs
against the prediction, the evidence writer, and the benchmark's runs
(CPUs, evidence directories, the outcome tables). Real predictions of the
triangle stand for the routers' tables; a fake backend plays the routers
where timing is tested (``test_lab_orchestration.FakeBackend``)."""

from __future__ import annotations

import gzip
import json
import os
import time
from types import SimpleNamespace

import pytest
from rich.console import Console
from test_lab_orchestration import FakeBackend, fake_lab_fixture  # noqa: F401 (the fixture)

from testbed.bench import runs
from testbed.bench.benchmark import Result
from testbed.errors import ConvergenceTimeout, LabError, SettledWrong, SpeakerCrashed
from testbed.lab.evidence import differences, keep_evidence, outcome, render, session_rows, write
from testbed.model.addressing import plan
from testbed.model.loader import load
from testbed.model.prediction import Expectation

A_V4 = "192.0.2.0/25"
REJECT_A = {"import": [{"match": {"prefix": [A_V4]}, "action": "reject"}]}


# -- the outcome of a wait ---------------------------------------------------------
def test_outcomes_are_told_apart_by_the_error():
    assert outcome(None) == "converged"
    assert outcome(SettledWrong("x")) == "settled wrong"
    assert outcome(ConvergenceTimeout("x")) == "still converging"
    assert outcome(SpeakerCrashed("x")) == "error"
    assert outcome(LabError("x")) == "error"


def test_a_quiet_lab_off_the_prediction_is_said_to_have_settled_wrong_early(fake_lab):
    fake = fake_lab.backend
    fake.report("wrong")  # every session up, every digest wrong, and nothing changes
    fake_lab.convergence.settle = 0.3
    t0 = time.monotonic()
    with pytest.raises(SettledWrong) as info:
        fake_lab.wait_converged(timeout=10)
    assert time.monotonic() - t0 < 2, "waited for the timeout instead of the quiet"
    assert "routing settled wrong after" in str(info.value)
    assert "the lab settled in a state other than the model's" in str(info.value)


def test_a_lab_still_changing_is_not_said_to_have_settled(fake_lab):
    fake = fake_lab.backend
    fake.report("wrong")
    fake_lab.convergence.settle = 0.3
    # A router changes something (still wrong) every 0.1 s until the timeout.
    fake.script += [lambda: (time.sleep(0.1), fake.report("still wrong", routers=["T"]))] * 100
    with pytest.raises(ConvergenceTimeout) as info:
        fake_lab.wait_converged(timeout=1.0)
    assert type(info.value) is ConvergenceTimeout, info.value
    assert outcome(info.value) == "still converging"
    assert "(still converging: a router changed something" in str(info.value)


def test_a_session_still_down_waits_out_the_timeout(fake_lab):
    # ExaBGP retries a connection every few seconds: quiet, but not settled.
    fake = fake_lab.backend
    fake.report("wrong", down={frozenset(("A", "B"))})
    fake_lab.convergence.settle = 0.2
    t0 = time.monotonic()
    with pytest.raises(ConvergenceTimeout) as info:
        fake_lab.wait_converged(timeout=1.0)
    assert time.monotonic() - t0 >= 1.0
    assert "router A: session to B" in str(info.value)


def test_the_failure_hook_runs_before_the_error_and_cannot_hide_it(fake_lab):
    fake = fake_lab.backend
    fake.report("wrong")
    fake_lab.convergence.settle = 0.2
    seen = []
    fake_lab.convergence.on_failure = seen.append
    with pytest.raises(SettledWrong) as info:
        fake_lab.wait_converged(timeout=5)
    assert seen == [info.value]

    def broken(exc):
        raise OSError("disk full")

    fake_lab.convergence.on_failure = broken
    with pytest.raises(SettledWrong) as info:
        fake_lab.wait_converged(timeout=5)
    assert "keeping the evidence failed: OSError: disk full" in str(info.value)


# -- the diff ----------------------------------------------------------------------
@pytest.fixture(name="tables", scope="module")
def tables_fixture():
    """The triangle's real tables (what its routers hold) and a prediction
    in which B rejects A's IPv4 prefix from A (which they do not)."""
    the_plan = plan(load("triangle"))
    real, wrong = Expectation(the_plan), Expectation(the_plan)
    wrong.set_policy("B", "A", REJECT_A)
    return the_plan, real, wrong


def _diff(tables, router):
    the_plan, real, wrong = tables
    snapshot = {"loc_rib": real.loc_ribs()[router], "adj_rib_in": real.adj_ribs_in()[router]}
    names = {n.address: n.name for n in the_plan.routers[router].neighbors}
    as_names = {r.asn: r.as_name for r in the_plan.routers.values()}
    return differences(router, snapshot, wrong.loc_ribs()[router], wrong.adj_ribs_in()[router], names, as_names)


def test_the_diff_names_the_router_the_table_the_prefix_and_both_paths(tables):
    found = _diff(tables, "B")
    assert [(d["table"], d["from"], d["prefix"]) for d in found] == [
        ("loc_rib", None, A_V4), ("adj_rib_in", "A", A_V4)]
    loc = found[0]
    assert loc["router"] == "B"
    assert loc["expected_path"] == ["T", "A"] and loc["got_path"] == ["A"]
    text = render(found)
    assert f"router B: Loc-RIB: {A_V4}: expected AS path ['T', 'A']" in text
    assert "got AS path ['A']" in text
    assert f"router B: Adj-RIB-In from A: {A_V4}: expected AS path ['A'] via" in text and "(rejected" in text


def test_routers_that_agree_have_no_diff_and_a_missing_route_is_named(tables):
    assert _diff(tables, "A") == [] and _diff(tables, "T") == []
    the_plan, real, _ = tables
    snapshot = {"loc_rib": {p: r for p, r in real.loc_ribs()["T"].items() if p != A_V4},
                "adj_rib_in": real.adj_ribs_in()["T"]}
    found = differences("T", snapshot, real.loc_ribs()["T"], real.adj_ribs_in()["T"], {}, {64501: "A"})
    assert [(d["prefix"], d["got"], d["expected_path"]) for d in found] == [(A_V4, None, ["A"])]
    assert render(found).endswith("got no route")


def test_session_rows_say_which_session_is_not_as_expected():
    snapshot = {"sessions": {"10.0.0.9": {"name": "A", "state": "idle", "flaps": 3},
                             "10.0.0.5": {"name": "T", "state": "established", "flaps": 0}}}
    rows = session_rows("B", snapshot, {"A": True, "T": True})
    assert [(r["peer"], r["expected"], r["as_expected"], r["flaps"]) for r in rows] == [
        ("T", "established", True, 0), ("A", "established", False, 3)]


# -- the writer ----------------------------------------------------------------------
def test_the_writer_keeps_files_ribs_prediction_diff_sessions_and_stats(tables, tmp_path):
    the_plan, real, wrong = tables
    workdir = tmp_path / "lab"
    (workdir / "B").mkdir(parents=True)
    (workdir / "B" / "exabgp.log").write_text("B's log\n")
    os.mkfifo(workdir / "B" / "not-a-file")  # sockets and pipes are not copied

    class Backend:
        crashed = set()

        def snapshot(self, router):
            if router == "T":
                raise LabError("router T: no answer")
            up = {n.address: {"name": n.name, "state": "established", "flaps": 1}
                  for n in the_plan.routers[router].neighbors}
            return {"router": router, "sessions": up, "stats": {"routes_in": 7},
                    "loc_rib": real.loc_ribs()[router], "adj_rib_in": real.adj_ribs_in()[router],
                    "adj_rib_out": {"big": {}}}

    lab = SimpleNamespace(plan=the_plan, expect=wrong, backend=Backend(), workdir=workdir, id="abc123",
                          topology=SimpleNamespace(name="triangle"))
    out = write(lab, tmp_path / "evidence", SettledWrong("quiet"))
    assert (out / "workdir" / "B" / "exabgp.log").read_text() == "B's log\n"
    assert not (out / "workdir" / "B" / "not-a-file").exists()
    with gzip.open(out / "ribs.jsonl.gz", "rt") as handle:
        ribs = {item["router"]: item for item in map(json.loads, handle)}
    assert set(ribs) == {"A", "B"} and "adj_rib_out" not in ribs["B"]
    assert ribs["B"]["loc_rib"][A_V4]["as_path"] == [64501]
    with gzip.open(out / "prediction.jsonl.gz", "rt") as handle:
        predicted = {item["router"]: item for item in map(json.loads, handle)}
    assert predicted["B"]["loc_rib"][A_V4]["as_path"] == [64500, 64501]
    assert [(d["router"], d["prefix"]) for d in json.loads((out / "diff.json").read_text())] == [
        ("B", A_V4), ("B", A_V4)]
    assert "router B: Loc-RIB: 192.0.2.0/25" in (out / "diff.txt").read_text()
    assert {(s["router"], s["flaps"]) for s in json.loads((out / "sessions.json").read_text())} == {
        ("A", 1), ("B", 1)}
    assert json.loads((out / "stats.json").read_text()) == {"A": {"routes_in": 7}, "B": {"routes_in": 7}}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["outcome"] == "settled wrong" and summary["routers_differing"] == ["B"]
    assert summary["prefixes_differing"] == [A_V4]
    assert summary["routers_without_snapshot"] == {"T": "no snapshot: router T: no answer"}
    assert summary["session_flaps"] == 2


def test_a_second_failure_never_writes_over_the_first(fake_lab, tmp_path):
    fake = fake_lab.backend
    fake.report("wrong")
    fake_lab.convergence.settle = 0.2
    keeper = keep_evidence(fake_lab, tmp_path / "ev")
    for _ in range(2):
        with pytest.raises(SettledWrong):
            fake_lab.wait_converged(timeout=5)
    assert keeper.written == [tmp_path / "ev", tmp_path / "ev-2"]
    assert all((path / "summary.json").exists() for path in keeper.written)


# -- the benchmark's runs ---------------------------------------------------------
def test_cpu_lists_are_parsed_and_checked():
    first = min(os.sched_getaffinity(0))
    assert runs.parse_cpus(str(first)) == [first]
    assert runs.parse_cpus(f"{first}-{first},{first}") == [first]
    with pytest.raises(ValueError, match="'x' is not a CPU number"):
        runs.parse_cpus("0,x")
    with pytest.raises(ValueError, match=r"CPU \[4096\] is not available here"):
        runs.parse_cpus("4096")


def test_evidence_directories_name_size_model_and_run(tmp_path):
    name = runs.evidence_dir(tmp_path, 300, "zygote", 3, 10).name
    assert name.endswith("-300-zygote-run3") and name[:8].isdigit()
    assert runs.evidence_dir(tmp_path, 5, "exec", 1, 1, mrai=0.02).name.endswith("-5-exec-mrai20")


def test_the_tables_count_every_outcome_and_spread_the_times():
    results = [Result(size=300, seed=1, run=1, outcome="converged", start_s=10.0, cpus=[0]),
               Result(size=300, seed=1, run=2, outcome="converged", start_s=30.0, cpus=[0]),
               Result(size=300, seed=1, run=3, outcome="converged", start_s=20.0, cpus=[0]),
               Result(size=300, seed=1, run=4, outcome="settled wrong", failed_during="start",
                      failed_after_s=41.5, evidence="bench-evidence/x-run4", cpus=[0])]
    console = Console(width=250, record=True)
    console.print(runs.summary_table(results))
    console.print(runs.runs_table(results))
    text = console.export_text()
    summary_row = next(line for line in text.splitlines() if "│ zygote" in line)
    cells = [c.strip() for c in summary_row.split("│")[1:-1]]
    assert cells[:7] == ["300", "zygote", "4", "3", "1", "0", "0"]
    assert cells[7] == "10.00 / 20.00 / 30.00"
    assert "settled wrong (start, 41.50 s)" in text and "bench-evidence/x-run4" in text
