"""The soak test's pure parts (testbed.bench.soak): which session each cycle
depeers (deterministic, every session covered, never the same one twice in a
row), the convergence-time figures and the memory growth it reports."""

from __future__ import annotations

from collections import Counter

import pytest

from testbed.model.addressing import plan
from testbed.model.generate import internet
from testbed.bench.soak_analysis import (MIB, distribution, growth, per_process_growth, percentile, rate, rates,
                                         rib_differences, schedule)

PAIRS = [("t1", "t2"), ("t1", "r1"), ("t2", "r2"), ("r1", "s1"), ("r2", "s2"), ("r1", "r2")]


def key(pair):
    return frozenset(pair)


def test_same_arguments_same_schedule():
    sessions = plan(internet(20, seed=1)).sessions
    assert schedule(sessions, 100, seed=1) == schedule(sessions, 100, seed=1)
    assert schedule(PAIRS, 37, seed=5) == schedule(list(reversed(PAIRS)), 37, seed=5)


def test_seed_changes_the_order():
    orders = {tuple(schedule(PAIRS, 6, seed)) for seed in range(10)}
    assert len(orders) > 1


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("cycles", [6, 7, 13, 100])
def test_every_session_is_exercised_evenly(seed, cycles):
    counts = Counter(key(p) for p in schedule(PAIRS, cycles, seed))
    assert set(counts) == {key(p) for p in PAIRS}
    assert max(counts.values()) - min(counts.values()) <= 1


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("pairs", [PAIRS, PAIRS[:2], PAIRS[:3]])
def test_no_two_consecutive_cycles_take_the_same_session(seed, pairs):
    cycles = schedule(pairs, 50, seed)
    assert len(cycles) == 50
    for before, after in zip(cycles, cycles[1:]):
        assert key(before) != key(after)


def test_the_default_soak_covers_the_20_as_lab():
    sessions = plan(internet(20, seed=1)).sessions
    cycles = schedule(sessions, 100, seed=1)
    assert len(cycles) == 100
    assert {key(p) for p in cycles} == {s.key for s in sessions}
    assert all(key(a) != key(b) for a, b in zip(cycles, cycles[1:]))
    # 100 cycles over 33 sessions: some sessions are shut down from each end
    assert any(p == (s.a, s.b) for p in cycles for s in sessions)
    assert any(p == (s.b, s.a) for p in cycles for s in sessions)


def test_both_sides_shut_each_session_down_over_two_rounds():
    cycles = schedule(PAIRS, 2 * len(PAIRS), seed=3)
    assert len(set(cycles)) == 2 * len(PAIRS)
    assert {tuple(reversed(p)) for p in cycles} == set(cycles)


def test_duplicates_count_once():
    assert schedule(PAIRS + [("t2", "t1")], 6, seed=1) == schedule(PAIRS, 6, seed=1)


def test_edge_cases():
    assert schedule(PAIRS, 0, seed=1) == []
    assert schedule([], 0, seed=1) == []
    assert schedule([("a", "b")], 3, seed=1) == [("a", "b"), ("b", "a"), ("a", "b")]
    with pytest.raises(ValueError):
        schedule([], 1, seed=1)
    with pytest.raises(ValueError):
        schedule(PAIRS, -1, seed=1)
    with pytest.raises(ValueError):
        schedule([("a", "a")], 1, seed=1)


def test_percentiles_by_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 95) == 95.0
    assert percentile(values, 50) == 50.0
    assert percentile([3.0], 95) == 3.0
    assert percentile([], 95) is None
    assert distribution([0.5, 0.1, 0.3]) == {"count": 3, "median": 0.3, "p95": 0.5, "max": 0.5}
    assert distribution([])["median"] is None


def test_memory_growth_by_kind_over_processes_present_at_both_ends():
    initial = {1: ("speaker", 10 * MIB, 20 * MIB), 2: ("speaker", 10 * MIB, 20 * MIB),
               3: ("shell", 1 * MIB, 2 * MIB), 4: ("shell", 1 * MIB, 2 * MIB)}
    final = {1: ("speaker", 11 * MIB, 21 * MIB), 2: ("speaker", 10 * MIB, 20 * MIB),
             3: ("shell", 1 * MIB, 2 * MIB), 5: ("shell", 50 * MIB, 50 * MIB)}
    g = growth(initial, final)
    assert list(g) == ["shell", "speaker", "total"]
    assert g["speaker"]["processes"] == 2
    assert g["speaker"]["pss_growth_mib"] == 1.0
    assert g["speaker"]["pss_growth_pct"] == 5.0
    assert g["shell"]["processes"] == 1 and g["shell"]["pss_growth_mib"] == 0.0
    assert g["total"]["initial_pss_mib"] == 21.0 and g["total"]["final_pss_mib"] == 22.0


def test_per_process_growth_names_the_router_and_its_cycles():
    initial = {1: ("speaker", 10 * MIB, 20 * MIB), 2: ("speaker", 10 * MIB, 20 * MIB),
               3: ("shell", 1 * MIB, 2 * MIB), 4: ("speaker", 10 * MIB, 20 * MIB)}
    final = {1: ("speaker", 10 * MIB, 20 * MIB), 2: ("speaker", 12 * MIB, 21 * MIB),
             3: ("shell", 9 * MIB, 9 * MIB)}
    rows = per_process_growth(initial, final, {1: "exabgp:A", 2: "exabgp:B", 3: "bash"}, {"B": 7})
    assert [(r["pid"], r["name"], r["cycles"], r["pss_growth_mib"], r["rss_growth_mib"]) for r in rows] == \
        [(2, "exabgp:B", 7, 2.0, 1.0), (1, "exabgp:A", 0, 0.0, 0.0)]


def test_rib_differences_name_router_and_prefix():
    before = {"10.0.1.0/24": {"as_path": [1], "next_hop": "10.0.0.1"},
              "10.0.2.0/24": {"as_path": [2], "next_hop": "10.0.0.2"}}
    after = {"10.0.1.0/24": {"as_path": [3, 1], "next_hop": "10.0.0.3"},
             "10.0.3.0/24": {"as_path": [3], "next_hop": "10.0.0.3"}}
    lines = rib_differences("A", before, after)
    assert len(lines) == 3
    assert lines[0].startswith("A Loc-RIB: 10.0.1.0/24 was AS path [1]")
    assert "10.0.2.0/24 is gone" in lines[1]
    assert "10.0.3.0/24 is new" in lines[2]
    assert rib_differences("A", before, dict(before)) == []
    assert rib_differences("A", {"p": "x"}, {"p": "y"}, "kernel") == ["A kernel: p was x, is y"]


def samples(values, every=10):
    return [{"cycle": i * every, "v": v} for i, v in enumerate(values)]


def test_rate_is_the_least_squares_slope_per_100_cycles():
    assert rate([(0, 100.0), (10, 101.0), (20, 102.0)]) == pytest.approx(10.0)
    assert rate([(0, 5.0), (50, 5.0), (100, 5.0)]) == pytest.approx(0.0)
    assert rate([(10, 1.0)]) is None and rate([(10, 1.0), (10, 2.0)]) is None


def test_a_leak_grows_as_fast_in_both_halves_and_fails_any_length_of_run():
    # 1 MiB every 10 cycles on 100 MiB, from the start: 10 MiB (10 %) per 100 cycles
    for cycles in (100, 300, 1000):
        r = rates(samples([100.0 + i for i in range(cycles // 10 + 1)]), lambda s: s["v"], warmup=30)
        assert r["from_cycle"] == 30 and r["baseline"] == 103.0
        assert r["per_100"] == pytest.approx(10.0)
        assert r["halves_per_100"] == [pytest.approx(10.0), pytest.approx(10.0)]
        assert r["pct_per_100"] == pytest.approx(100 * 10.0 / 103.0, rel=1e-3)


def test_growth_that_settles_is_measured_after_the_warm_up_and_slows_down():
    # steep during the warm-up, then ever slower (what an allocator settling looks like)
    values = [100.0, 104.0, 107.0, 109.0, 110.0, 110.6, 111.0, 111.3, 111.5, 111.6, 111.65]
    r = rates(samples(values), lambda s: s["v"], warmup=30)
    assert r["from_cycle"] == 30 and r["to_cycle"] == 100 and r["samples"] == 8
    first, second = r["halves_per_100"]
    assert first > 2 * second > 0
    assert r["pct_per_100"] < 100 * (values[-1] - values[0]) / values[0]


def test_the_baseline_is_the_last_sample_within_the_warm_up():
    r = rates(samples([1.0, 2.0, 3.0, 4.0, 5.0], every=7), lambda s: s["v"], warmup=10)
    assert r["from_cycle"] == 7 and r["baseline"] == 2.0 and r["samples"] == 4


def test_too_few_samples_after_the_warm_up_are_not_judged():
    assert rates(samples([1.0, 2.0, 3.0]), lambda s: s["v"], warmup=10) is None
    assert rates(samples([1.0, 2.0, 3.0]), lambda s: s["v"], warmup=0)["samples"] == 3
    assert rates([], lambda s: s["v"], warmup=0) is None


def verdict(anon, heap, warmup=30, **bounds):
    from testbed.bench.soak import Result, _memory_verdict

    result = Result(size=20, seed=1, cycles_planned=10 * (len(anon) - 1), warmup=warmup,
                    max_growth_pct=bounds.get("max_growth_pct", 5.0),
                    max_heap_growth_pct=bounds.get("max_heap_growth_pct", 1.0))
    result.memory_samples = [{"cycle": 10 * i, "pss_mib": 300.0, "rss_mib": 900.0,
                              "pss_by_kind_mib": {"speaker": 280.0, "shell": 20.0},
                              "speaker_agent_anon_mib": a, "heap_blocks": h}
                             for i, (a, h) in enumerate(zip(anon, heap))]
    procs = {1: ("speaker", 280 * MIB, 600 * MIB)}
    _memory_verdict(result, procs, procs)
    return result


def test_the_verdict_passes_memory_that_levels_off_and_a_flat_heap():
    anon = [600.0, 606.0, 610.0, 612.0, 613.0, 613.6, 614.0, 614.3, 614.5, 614.6, 614.65]
    heap = [4_100_000 + (3000 if i % 2 else -3000) for i in range(11)]
    result = verdict(anon, heap)
    assert result.memory_ok is True and result.failures == []
    assert result.memory_rates["speaker_agent_anon_mib"]["from_cycle"] == 30


def test_the_verdict_fails_a_steady_leak_of_either_kind_and_says_which():
    steady = [600.0 + 4.0 * i for i in range(11)]          # 40 MiB per 100 cycles on 612 at cycle 30: 6.5 %
    flat = [600.0] * 11
    heap_leak = [4_100_000 + 6000 * i for i in range(11)]  # 60,000 blocks per 100 cycles: 1.4 %
    heap_flat = [4_100_000] * 11
    anon = verdict(steady, heap_flat)
    assert anon.memory_ok is False
    assert [f["error"] for f in anon.failures] == [
        "the anonymous memory of speakers and agents grew +40.00 MiB per 100 cycles after cycle 30 "
        "(+6.54 %), more than 5 %"]
    heap = verdict(flat, heap_leak)
    assert heap.memory_ok is False and len(heap.failures) == 1
    assert heap.failures[0]["error"].startswith("the Python heap of speakers and agents grew +60000 blocks")
    assert verdict(flat, heap_leak, max_heap_growth_pct=2.0).memory_ok is True


def test_the_verdict_is_withheld_when_too_few_samples_follow_the_warm_up():
    result = verdict([600.0, 700.0, 800.0, 900.0], [1, 2, 3, 4], warmup=30)
    assert result.memory_ok is None and result.failures == []
