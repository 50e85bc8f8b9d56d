"""The soak test's own code path on a small lab (``testbed.bench.soak.soak``):
every session depeered and re-peered, the final routes and kernel tables
compared with the initial ones, memory sampled (PSS and each agent's Python
heap), the lab stopped with nothing left. The full run (20 ASes, 100 cycles)
is ``python -m testbed.bench.soak``; see docs/guarantees.md."""

import pytest

from testbed.bench.soak import soak

pytestmark = pytest.mark.emulation

NEW_PREFIX = "198.18.7.0/24"


def test_a_short_soak_returns_every_router_to_its_initial_routes():
    result = soak(size=5, cycles=5, seed=3, warmup=1, sample_every=1,
                  # five cycles say nothing about memory growth per 100 cycles: not judged here
                  max_growth_pct=1e9, max_heap_growth_pct=1e9)
    assert result.failures == [] and result.ok, result.failures
    assert result.cycles_done == 5 and len(result.depeer_s) == len(result.repeer_s) == 5
    assert result.sessions == 5
    assert result.sessions_down == [] and result.loc_rib_differences == [] and result.kernel_differences == []
    assert [s["cycle"] for s in result.memory_samples] == [0, 1, 2, 3, 4, 5]
    assert all(s["heap_blocks"] > 0 and len(s["heap_blocks_by_router"]) == 5 for s in result.memory_samples)
    assert result.memory_rates["heap_blocks"]["from_cycle"] == 1
    assert result.memory_rates["speaker_agent_pss_mib"]["samples"] == 5
    assert all(s["speaker_agent_anon_mib"] > 0 for s in result.memory_samples)
    assert result.memory_rates["speaker_agent_anon_mib"]["from_cycle"] == 1
    assert result.memory_ok is True
    assert result.leftover_processes == 0 and result.leftover_workdir is False


def test_a_soak_whose_routes_do_not_come_back_fails_and_names_them():
    def announce_a_new_prefix(lab, cycle):
        if cycle == 2:
            lab.announce("s1", NEW_PREFIX)  # real: the agent originates it, every router learns it

    result = soak(size=5, cycles=3, seed=3, warmup=3, after_cycle=announce_a_new_prefix)
    assert not result.ok
    assert result.cycles_done == 3 and result.sessions_down == []
    assert result.memory_ok is None  # no sample after the warm-up: not judged, and said so
    # s1 originates it (no kernel route); each of the four others learned it over BGP
    assert any(line.startswith(f"s1 Loc-RIB: {NEW_PREFIX} is new") for line in result.loc_rib_differences)
    assert len([line for line in result.loc_rib_differences if NEW_PREFIX in line]) == 5
    assert len([line for line in result.kernel_differences if NEW_PREFIX in line]) == 4
    assert {f["phase"] for f in result.failures} == {"final check"}
    assert result.leftover_processes == 0
