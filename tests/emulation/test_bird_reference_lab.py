"""The benchmark's native reference on real BIRD daemons: ``measure(10,
model="bird")`` starts the generated 10-AS Internet with every AS on
BIRD 2, waits until every router's Loc-RIB and Adj-RIB-In equal the
prediction (``testbed.bench.native_watch``), measures it like the
testbed's own routers (the BIRD daemons counted as the lab's speakers),
depeers and re-peers the Tier-1s to converged again, and leaves nothing."""

import pytest

from testbed.bench import benchmark

pytestmark = pytest.mark.emulation


def test_the_bird_model_converges_exactly_and_leaves_nothing(monkeypatch, report):
    monkeypatch.setattr(benchmark, "IDLE_SETTLE", 0.0)  # the idle window is the benchmark's, not this test's
    monkeypatch.setattr(benchmark, "IDLE_WINDOW", 0.5)
    result = benchmark.measure(10, 1, timeout=60, model="bird")
    assert result.error is None, result.error
    assert result.model == "bird" and result.mrai is None and result.hold_time == 90
    assert result.process_kinds["speaker"] == 10  # one BIRD daemon per AS, tagged with the lab's id
    assert result.pss_by_kind_mib["speaker"] > 0 and result.converge_cpu_s is not None
    # The watch returned only once every digest matched: what BIRD holds is what the model needs.
    assert result.routes_needed == 298 and result.routes_in >= result.routes_needed
    assert 0 < result.sessions_up_s <= result.routes_placed_s < result.start_s
    assert result.spread_s == pytest.approx(result.routes_placed_s - result.sessions_up_s)
    assert result.depeer_session == "t1-t2" and result.depeer_s > 0 and result.repeer_s > 0
    assert result.updates_in is None and result.superseded is None  # nothing BIRD can say: "-"
    assert result.leftover_processes == 0 and result.leftover_workdir is False
    report("bird, 10 ASes: start → converged", f"{result.start_s:.2f} s")
    report("bird, 10 ASes: last session up → every route in place", f"{result.spread_s:.3f} s")
