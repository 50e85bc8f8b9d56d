"""How a scenario test's ``lab_state`` marker becomes the keywords of
``bring_to`` (testbed.testing.baseline.declared); ``bring_to`` itself runs
on a real lab in tests/emulation/test_lab_state.py."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from testbed.testing.baseline import declared


def request_with(mark: pytest.MarkDecorator | None):
    node = SimpleNamespace(nodeid="scenarios/test_x.py::test_y",
                           get_closest_marker=lambda name: mark.mark if mark and name == "lab_state" else None)
    return SimpleNamespace(node=node)


def test_no_marker_is_the_baseline():
    assert declared(request_with(None), lab=None) == {}


def test_keywords_are_passed_on():
    mark = pytest.mark.lab_state(down=[("A", "B")], policies={("A", "B"): None})
    assert declared(request_with(mark), lab=None) == {"down": [("A", "B")], "policies": {("A", "B"): None}}


def test_a_state_function_reads_the_lab_and_the_keywords_add_to_it():
    def blackholed(lab):
        return {"announced": [("V", lab.victim, ["blackhole"])]}

    mark = pytest.mark.lab_state(state=blackholed, down=[("A", "B")])
    lab = SimpleNamespace(victim="10.0.0.1/32")
    assert declared(request_with(mark), lab) == {"announced": [("V", "10.0.0.1/32", ["blackhole"])],
                                                 "down": [("A", "B")]}


def test_positional_arguments_are_refused():
    # pytest takes a lone function given to a marker as the thing it marks,
    # so only keywords are accepted: a positional one is a mistake.
    mark = pytest.mark.lab_state.with_args(lambda lab: {})
    with pytest.raises(pytest.UsageError, match="test_x.py::test_y: lab_state takes keywords only"):
        declared(request_with(mark), lab=None)
