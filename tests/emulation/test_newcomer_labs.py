"""Real labs for issue 15: topologies the property test accepted start,
converge to the model and carry traffic wherever the model has routes both
ways (item 9); reachability is compared per address family among the ASes
that have it (item 13)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from testbed import Topology
from testbed.lab.lab import Lab
from testbed.testing.assertions import assert_reachability
from testbed.testing.families import systems_with

pytestmark = pytest.mark.emulation
PROPERTY = Path(__file__).resolve().parents[1] / "unit" / "test_every_value_refused_or_working.py"
SAMPLE = 2  # labs started from accepted draws: ~2 s each


def _property_module():
    spec = importlib.util.spec_from_file_location("every_value_property", PROPERTY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_sample_of_accepted_topologies_starts_and_carries_traffic():
    module = _property_module()
    sample = module.accepted_sample(SAMPLE)
    assert len(sample) == SAMPLE
    for fields in sample:
        with Lab(module.build(fields), update_delay=False) as lab:  # start() waits for the model's routes
            for family in (4, 6):
                names = systems_with(lab, family)
                for src in names:
                    for dst in names:
                        if src == dst:
                            continue
                        there = lab.route(lab.plan.systems[src][0], dst, family)
                        back = lab.route(lab.plan.systems[dst][0], src, family)
                        if there is not None and back is not None:
                            assert lab.reachable(src, dst, family=family), (fields, src, dst, family)


def one_family_lab() -> Topology:
    topo = Topology("families", hold_time=3)
    topo.add_as(64500, "T")
    topo.add_as(64501, "A", ["192.0.2.0/24"])              # IPv4 only
    topo.add_as(64502, "S", ["2001:db8:5::/48"])           # IPv6 only
    topo.add_as(64503, "D")                                # both
    for customer in ("A", "S", "D"):
        topo.transit("T", customer)
    return topo


def test_reachability_is_compared_per_family_among_the_ases_that_have_it():
    with Lab(one_family_lab()) as lab:
        matrices = assert_reachability(lab)
        assert set(matrices) == {4, 6}
        assert {a for a, _ in matrices[4]} == {"T", "A", "D"}
        assert {a for a, _ in matrices[6]} == {"T", "S", "D"}
        assert all(matrices[4].values()) and all(matrices[6].values())
        assert set(assert_reachability(lab, family=6)) == set(matrices[6])
        lab.depeer("T", "S")
        with pytest.raises(AssertionError, match=r"IPv6 reachability differs .*S->T unreachable"):
            assert_reachability(lab)
