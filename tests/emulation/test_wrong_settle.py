"""Emulation tests of a wrong settle: a real lab whose prediction is made
wrong on purpose (the model believes a router rejects a route its real
configuration accepts) settles elsewhere; the wait says so well before its
timeout, the evidence (logs, RIB dumps, the diff naming the router and the
prefix) is kept while the lab still runs, and nothing of the lab is left.
Also through the benchmark's ``measure``, pinned to one CPU."""

from __future__ import annotations

import gzip
import json
import os
import time

import pytest
from test_lab_lifecycle import assert_gone, namespaces_of

from testbed.bench import runs
from testbed.bench.benchmark import measure
from testbed.bench.observe import lab_pids
from testbed.errors import SettledWrong
from testbed.lab import Lab
from testbed.lab import lab as lab_module
from testbed.lab.evidence import keep_evidence
from testbed.model.prediction import Expectation

pytestmark = pytest.mark.emulation

A_V4 = "192.0.2.0/25"
TIMEOUT = 60.0


@pytest.fixture(name="one_cpu")
def one_cpu_fixture():
    """This process (and so every lab it starts) pinned to one CPU, put back after."""
    before = os.sched_getaffinity(0)
    cpu = min(before)
    runs.pin([cpu])
    yield cpu
    runs.pin(sorted(before))


def test_a_wrong_settle_is_told_early_keeps_its_evidence_and_leaves_nothing(tmp_path, one_cpu):
    lab = Lab("triangle")
    # The model believes B rejects A's IPv4 prefix from A; the real B accepts it.
    lab.expect.set_policy("B", "A", {"import": [{"match": {"prefix": [A_V4]}, "action": "reject"}]})
    lab.convergence.settle = 2.0
    keeper = keep_evidence(lab, tmp_path / "evidence")
    seen = {}

    def keep(exc):  # what only the running lab can tell: its namespaces and its processes' CPUs
        seen["namespaces"] = namespaces_of(lab)
        seen["cpus"] = {pid: os.sched_getaffinity(pid) for pid in lab_pids(lab.id)}
        keeper(exc)

    lab.convergence.on_failure = keep
    t0 = time.monotonic()
    with pytest.raises(SettledWrong) as info:
        lab.start(timeout=TIMEOUT)
    assert time.monotonic() - t0 < TIMEOUT / 3, "the wrong settle was found only at the timeout"
    assert f"router B: {A_V4}: expected AS path ['T', 'A']" in str(info.value)
    assert seen["cpus"] and all(cpus == {one_cpu} for cpus in seen["cpus"].values()), seen["cpus"]

    out = keeper.written[0]
    for router in ("A", "B", "T"):
        for name in ("exabgp.log", "agent.log"):
            assert (out / "workdir" / router / name).stat().st_size > 0, (router, name)
    with gzip.open(out / "ribs.jsonl.gz", "rt") as handle:
        ribs = {item["router"]: item for item in map(json.loads, handle)}
    assert set(ribs) == {"A", "B", "T"}
    assert ribs["B"]["loc_rib"][A_V4]["as_path"] == [64501]  # what B really holds
    assert set(ribs["B"]["adj_rib_in"]) == {n.address for n in lab.plan.routers["B"].neighbors}
    diff = json.loads((out / "diff.json").read_text())
    assert {(d["router"], d["prefix"]) for d in diff} == {("B", A_V4)}
    assert {(d["table"], d["from"]) for d in diff} == {("loc_rib", None), ("adj_rib_in", "A")}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["outcome"] == "settled wrong" and summary["sessions_not_as_expected"] == []
    assert_gone(lab.id, seen["namespaces"], lab.workdir)


def test_the_benchmark_reports_a_wrong_settle_with_its_evidence(tmp_path, monkeypatch, one_cpu):
    wrong: dict = {}

    class WrongPrediction(Expectation):
        """The first session's second router rejects, in the model only, the first router's first prefix."""

        def __init__(self, plan):
            super().__init__(plan)
            session = plan.sessions[0]
            prefix = plan.routers[session.a].prefixes[0]
            wrong.update(router=session.b, prefix=prefix)
            self.set_policy(session.b, session.a, {"import": [{"match": {"prefix": [prefix]}, "action": "reject"}]})

    monkeypatch.setattr(lab_module, "Expectation", WrongPrediction)
    result = measure(5, seed=1, timeout=TIMEOUT, evidence=tmp_path / "ev", settle=2.0)
    assert result.outcome == "settled wrong", result.error
    assert result.failed_during == "start" and result.failed_after_s < TIMEOUT / 3
    assert result.cpus == [one_cpu]
    assert result.evidence == str(tmp_path / "ev")
    diff = json.loads((tmp_path / "ev" / "diff.json").read_text())
    assert (wrong["router"], wrong["prefix"]) in {(d["router"], d["prefix"]) for d in diff}
    assert result.leftover_processes == 0 and not result.leftover_workdir
