"""``bring_to`` (testbed.testing.baseline) on a real lab: it undoes every
kind of change a scenario makes, does nothing when nothing changed, takes
the lab to a declared state and back, and refuses a lab with a crashed
router."""

import pytest

from testbed.errors import LabError
from testbed.testing.baseline import bring_to

TOPOLOGY = "triangle"
EXTRA = "192.0.2.0/24"
QUIET = {"export": [{"action": "reject"}]}


def tables(lab) -> dict:
    return {router: lab.loc_rib(router) for router in lab.plan.routers}


def test_a_lab_at_its_baseline_is_left_alone(lab):
    assert bring_to(lab) == []


def test_every_kind_of_change_is_undone(lab):
    baseline = tables(lab)
    own = lab.prefix_of("B")
    lab.depeer("A", "B", wait=False)
    lab.set_policy("T", "A", QUIET, wait=False)
    lab.announce("A", EXTRA, wait=False, communities=["65000:1"])
    lab.withdraw("B", own)
    assert tables(lab) != baseline
    done = bring_to(lab)
    assert sorted(done) == sorted([f"policy of T towards A set to None", "A -- B re-peered",
                                   f"A withdrew {EXTRA}", f"B announced {own}"])
    assert tables(lab) == baseline
    assert bring_to(lab) == []


def test_a_declared_state_is_reached_and_left(lab):
    baseline = tables(lab)
    state = {"down": [("A", "B")], "policies": {("B", "T"): QUIET},
             "announced": [("A", EXTRA, ["65000:1"])]}
    assert len(bring_to(lab, **state)) == 3
    assert lab.sessions("A")["B"]["state"] != "established"
    assert lab.as_path("A", "B") is None                     # B sends T nothing to pass on
    assert "65000:1" in lab.route("T", EXTRA)["communities"]
    assert bring_to(lab, **state) == []                      # already there
    # The same announcement with other communities is announced again.
    assert bring_to(lab, **{**state, "announced": [("A", EXTRA, ["65000:2"])]}) == [f"A announced {EXTRA}"]
    assert bring_to(lab)                                     # and back
    assert tables(lab) == baseline


def test_a_crashed_router_is_named(lab):
    lab.crash("T")
    with pytest.raises(LabError, match=r"router\(s\) T crashed"):
        bring_to(lab)
