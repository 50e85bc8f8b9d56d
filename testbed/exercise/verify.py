"""Checking an exercise both ways on one real lab.

``verify(exercise)`` starts the exercise's lab once and checks: the lab as
started (the gap) fails at least one criterion with an empty answer; the
reference solution and each alternative answer pass every criterion; each typical wrong answer fails
exactly the criteria it names, with their hints (a reset between answers,
as ``testbed exercise reset`` does). It returns the problems found (empty
when the exercise is sound) and the seconds it took. CI runs it for every
exercise; ``testbed exercise verify`` runs it for an instructor.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from testbed.exercise.model import Exercise
from testbed.exercise.workbench import Workbench


def verify(exercise: Exercise, **lab_options) -> tuple[list[str], float, dict]:
    """(problems, seconds, the results seen per answer)."""
    t0 = time.monotonic()
    problems: list[str] = []
    seen: dict = {}
    names = [c.name for c in exercise.criteria()]
    for wrong in exercise.wrong_answers:
        unknown = set(wrong.fails) - set(names)
        if unknown:
            problems.append(f"wrong answer {wrong.name}: names unknown criteria {sorted(unknown)}")
    bench = Workbench(exercise, **lab_options).start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            empty = Path(tmp) / "empty.yaml"
            empty.write_text("{}\n")
            results = bench.check(empty)
            seen["(empty answer)"] = results
            if all(r.passed for r in results):
                problems.append("the empty answer passes every criterion: the lab has no gap")
        for label, path in [*((f"alternative {p.stem}", p) for p in exercise.alternatives),
                            ("solution", exercise.solution)]:
            results = bench.check(path)
            seen[label] = results
            for r in results:
                if not r.passed:
                    problems.append(f"the {label} fails {r.name}: {r.seen}")
        for wrong in exercise.wrong_answers:
            results = bench.check(wrong.path)
            seen[wrong.name] = results
            failed = sorted(r.name for r in results if not r.passed)
            if failed != sorted(wrong.fails):
                problems.append(f"wrong answer {wrong.name} fails {failed or 'nothing'}, "
                                f"expected {sorted(wrong.fails)}")
    finally:
        bench.stop()
    return problems, time.monotonic() - t0, seen
