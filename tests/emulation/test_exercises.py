"""Every shipped exercise, both ways, on one real lab each.

The lab as started must fail a criterion (it has a gap), the reference
solution must pass every criterion, and each typical wrong answer must
fail exactly the criteria it names (whose hints are the intended ones),
with a reset between answers (``testbed.exercise.verify``).
"""

from __future__ import annotations

import os

import pytest

from testbed.exercise.model import available, load_exercise
from testbed.exercise.verify import verify

pytestmark = pytest.mark.emulation


@pytest.mark.parametrize("name", available())
def test_exercise_both_ways(name, record_property):
    if os.geteuid() != 0:
        pytest.skip("emulation test: needs root")
    problems, seconds, seen = verify(load_exercise(name))
    record_property("seconds", round(seconds, 2))
    shown = "\n".join(f"{answer}: " + ", ".join(f"{r.name}={'pass' if r.passed else 'FAIL: ' + r.seen}"
                                               for r in results) for answer, results in seen.items())
    assert not problems, "\n".join(problems) + "\n" + shown
