"""Grading many participants' answers, each against a fresh lab.

``grade(exercise, answers, jobs)`` runs one worker process per answer file
(``python -m testbed.exercise.grade EXERCISE ANSWER``: start the
exercise's lab, apply the answer, run the criteria, stop), ``jobs`` at a
time, and returns one ``Grade`` per participant (named after the answer
file's stem). A worker prints its results as one JSON object; an invalid
answer fails every criterion with the refusal as what was seen. The
summary table is written by ``testbed.exercise.report``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from testbed.exercise.model import Exercise, Result


@dataclass
class Grade:
    """One participant's results (or the error that kept them from a lab)."""

    participant: str
    answer: str
    results: list[Result]
    seconds: float
    error: str = ""

    @property
    def passed(self) -> int:
        return sum(r.passed for r in self.results)


def default_jobs() -> int:
    """As many labs at once as cores, and no more than memory allows (a
    small exercise lab takes well under 300 MB)."""
    cores = os.cpu_count() or 1
    try:
        with open("/proc/meminfo") as handle:
            free = next(int(line.split()[1]) for line in handle if line.startswith("MemAvailable:"))
        by_memory = max(1, free // (300 * 1024))
    except (OSError, StopIteration, ValueError):
        by_memory = cores
    return max(1, min(cores, by_memory))


def grade_one(exercise: Exercise, answer: Path) -> Grade:
    """Grade ``answer`` in a worker process (a fresh lab of its own)."""
    t0 = time.monotonic()
    participant = Path(answer).stem
    result = subprocess.run([sys.executable, "-m", "testbed.exercise.grade", str(exercise.directory),
                             str(answer)], capture_output=True, text=True, timeout=600)
    seconds = time.monotonic() - t0
    try:
        data = json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return Grade(participant, str(answer), [], seconds, f"the grading lab failed: {tail}")
    if "error" in data:
        return Grade(participant, str(answer), [], seconds, data["error"])
    results = [Result(**r) for r in data["results"]]
    return Grade(participant, str(answer), results, seconds)


def grade(exercise: Exercise, answers: list[Path], jobs: int | None = None,
          progress=lambda grade: None) -> list[Grade]:
    """Grade every answer file, ``jobs`` labs at a time, in the given order."""
    jobs = jobs or default_jobs()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(grade_one, exercise, Path(a)) for a in answers]
        grades = []
        for future in futures:
            grades.append(future.result())
            progress(grades[-1])
    return grades


def _worker(exercise_ref: str, answer: str) -> int:
    from testbed.errors import TestbedError
    from testbed.exercise.answer import AnswerError
    from testbed.exercise.model import load_exercise, run_criteria
    from testbed.exercise.workbench import Workbench

    try:
        exercise = load_exercise(exercise_ref)
        criteria = exercise.criteria()
        bench = Workbench(exercise)
        try:
            answer_data = bench.parse(answer)
        except AnswerError as exc:
            seen = "the answer file was refused: " + "; ".join(exc.problems)
            print(json.dumps({"results": [Result(c.name, c.description, False, seen, c.hint).as_dict()
                                          for c in criteria]}))
            return 0
        bench.start()
        try:
            bench.apply(answer_data)
            results = run_criteria(bench.lab, exercise, answer_data)
        finally:
            bench.stop()
    except TestbedError as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        return 1
    print(json.dumps({"results": [r.as_dict() for r in results]}))
    return 0


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1], sys.argv[2]))
