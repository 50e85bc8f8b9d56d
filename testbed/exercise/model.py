"""Exercises as files: what one is, how it is found, and its criteria.

An exercise is a directory (``exercises/<name>/``, or any directory given
by path) holding ``exercise.yaml`` (title, level, topic, story, the router
the participant configures, set-up events, typical wrong answers with the
criteria each must fail), ``instructions.md``, a topology (``topology.yaml``
or ``.py``), ``criteria.py`` (functions decorated with ``@criterion``,
written with ``testbed.assertions``), ``solution.yaml``, ``wrong/*.yaml``
and, optionally, other correct answers in ``alternatives/*.yaml``.
``load_exercise`` reads and checks the layout without starting anything;
``run_criteria`` runs the criteria against a lab and returns one
``Result`` per criterion, with what was seen (the assertion's message) and
the hint. Nothing here starts a lab.
"""

from __future__ import annotations

import importlib.util
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from testbed.errors import TestbedError
from testbed.model.yaml_loader import plain, read
from testbed.model.topology import Where

EXERCISE_DIR = Path(__file__).resolve().parents[2] / "exercises"
TOPICS = ("peering", "depeering", "IXPs", "agreements", "security")
LEVELS = ("beginner", "intermediate", "advanced")
KEYS = {"title", "level", "topic", "router", "teaches", "story", "setup", "wrong_answers",
        "answer_keys", "topology"}
SETUP_KEYS = {"announce", "withdraw", "depeer"}


class ExerciseError(TestbedError):
    """An exercise's files are missing or malformed, or a name is unknown."""


@dataclass
class Criterion:
    """One thing the lab must show once the answer is applied."""

    name: str
    description: str
    hint: str
    check: Callable
    takes_answer: bool = False

    def __call__(self, lab, answer) -> None:
        if self.takes_answer:
            self.check(lab, answer)
        else:
            self.check(lab)


def criterion(description: str, hint: str) -> Callable:
    """Decorate a check ``f(lab)`` or ``f(lab, answer)`` that raises
    ``AssertionError`` (the public assertions do) when the lab does not
    show what it should. ``description`` says what is checked; ``hint``
    is printed when it fails, after what was seen."""

    def wrap(function: Callable) -> Callable:
        takes_answer = len(inspect.signature(function).parameters) >= 2
        function.criterion = Criterion(function.__name__, description, hint, function, takes_answer)
        return function

    return wrap


def assert_crosses(lab, src: str, dst: str, expected: list[str], family: int = 4) -> None:
    """The packets from ``src`` to ``dst`` cross exactly the ASes
    ``expected``: ``assert_traceroute`` asked once (it asks again for a
    second while a link settles, which a criterion checked after
    convergence does not need, and which makes a failing check slow)."""
    actual = lab.as_traceroute(src, dst, family=family)
    if actual != list(expected):
        raise AssertionError(f"traffic {src} -> {dst} crossed ASes {actual}, expected {list(expected)}")


@dataclass
class WrongAnswer:
    """A typical mistake: its file, what is wrong with it, the criteria it
    must fail (whose hints are the intended ones)."""

    name: str
    path: Path
    why: str
    fails: list[str]


@dataclass
class Exercise:
    """An exercise's files and metadata (see the module docstring)."""

    name: str
    directory: Path
    title: str
    level: str
    topic: str
    router: str
    teaches: str
    story: str
    setup: list[dict]
    wrong_answers: list[WrongAnswer]
    answer_keys: list[str] = field(default_factory=list)
    topology_file: Path | None = None

    @property
    def instructions(self) -> Path:
        return self.directory / "instructions.md"

    @property
    def solution(self) -> Path:
        return self.directory / "solution.yaml"

    @property
    def alternatives(self) -> list[Path]:
        """Other correct answers (``alternatives/*.yaml``): they must pass too."""
        return sorted((self.directory / "alternatives").glob("*.yaml"))

    @property
    def hint_file(self) -> Path:
        return self.directory / "hint.md"

    def criteria(self) -> list[Criterion]:
        """The criteria of ``criteria.py``, in the order they are defined."""
        path = self.directory / "criteria.py"
        spec = importlib.util.spec_from_file_location(f"testbed_exercise_{self.name}", path)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise ExerciseError(f"{path}: importing it failed: {type(exc).__name__}: {exc}") from exc
        found = [value.criterion for value in vars(module).values() if hasattr(value, "criterion")]
        found.sort(key=lambda c: c.check.__code__.co_firstlineno)
        if not found:
            raise ExerciseError(f"{path}: no function decorated with @criterion")
        return found


def available(directory: Path = EXERCISE_DIR) -> list[str]:
    """Names of the exercises in ``directory``."""
    if not directory.is_dir():
        return []
    return sorted(p.name for p in directory.iterdir() if (p / "exercise.yaml").is_file())


def find(ref: str | Path) -> Path:
    """The directory of exercise ``ref`` (a name in ``exercises/`` or a path)."""
    path = Path(ref)
    if (path / "exercise.yaml").is_file():
        return path
    if (EXERCISE_DIR / str(ref) / "exercise.yaml").is_file():
        return EXERCISE_DIR / str(ref)
    raise ExerciseError(f"no exercise {str(ref)!r} (known: {', '.join(available()) or 'none'})")


def load_exercise(ref: str | Path) -> Exercise:
    """Read an exercise's ``exercise.yaml`` and check its layout."""
    directory = find(ref).resolve()
    path = directory / "exercise.yaml"
    try:
        root = read(path)
    except TestbedError as exc:
        raise ExerciseError(str(exc)) from None
    problems = []

    def at(key: str | None = None) -> str:
        line = root.lc.key(key)[0] + 1 if key and key in root else 1
        return f"{Where(str(path), line)}: "

    if not isinstance(root, dict):
        raise ExerciseError(f"{at()}exercise.yaml must be a mapping")
    data = plain(root)
    for key in data:
        if key not in KEYS:
            problems.append(f"{at(key)}unknown key {key!r} (known: {', '.join(sorted(KEYS))})")
    for key in ("title", "level", "topic", "router", "teaches", "story"):
        if not isinstance(data.get(key), str) or not data.get(key):
            problems.append(f"{at(key)}{key} must be a text")
    if data.get("level") not in LEVELS:
        problems.append(f"{at('level')}level {data.get('level')!r} is not one of {', '.join(LEVELS)}")
    if data.get("topic") not in TOPICS:
        problems.append(f"{at('topic')}topic {data.get('topic')!r} is not one of {', '.join(TOPICS)}")
    setup = data.get("setup") or []
    for index, event in enumerate(setup if isinstance(setup, list) else [setup]):
        if not (isinstance(event, dict) and len(event) == 1 and set(event) <= SETUP_KEYS):
            problems.append(f"{at('setup')}setup[{index}] must be one of "
                            f"{', '.join(sorted(SETUP_KEYS))}: {event!r}")
    wrong = []
    for name, entry in (data.get("wrong_answers") or {}).items():
        if not (isinstance(entry, dict) and isinstance(entry.get("why"), str)
                and isinstance(entry.get("fails"), list) and entry["fails"]):
            problems.append(f"{at('wrong_answers')}wrong answer {name!r} needs why (text) and fails "
                            f"(the criteria it must fail)")
            continue
        file = directory / "wrong" / f"{name}.yaml"
        if not file.is_file():
            problems.append(f"{at('wrong_answers')}wrong answer {name!r}: no file {file}")
        wrong.append(WrongAnswer(name, file, entry["why"], [str(c) for c in entry["fails"]]))
    if not wrong:
        problems.append(f"{at('wrong_answers')}an exercise needs at least one typical wrong answer")
    topology = directory / str(data.get("topology", "topology.yaml"))
    for needed in (directory / "instructions.md", directory / "criteria.py",
                   directory / "solution.yaml", topology):
        if not needed.is_file():
            problems.append(f"{at()}missing file {needed.name}")
    if problems:
        raise ExerciseError(f"exercise {directory.name} is malformed:\n" +
                            "\n".join(f"  - {p}" for p in problems))
    return Exercise(directory.name, directory, data["title"], data["level"], data["topic"],
                    data["router"], data["teaches"].strip(), data["story"].strip(),
                    setup if isinstance(setup, list) else [setup], wrong,
                    [str(k) for k in data.get("answer_keys") or []], topology)


@dataclass
class Result:
    """A criterion's outcome: passed, or failed with what was seen."""

    name: str
    description: str
    passed: bool
    seen: str = ""
    hint: str = ""

    def as_dict(self) -> dict:
        return {"name": self.name, "description": self.description, "passed": self.passed,
                "seen": self.seen, "hint": self.hint}


def run_criteria(lab, exercise: Exercise, answer) -> list[Result]:
    """Run every criterion of ``exercise`` against ``lab``; a criterion that
    raises anything but ``AssertionError`` fails with the error as seen."""
    results = []
    for item in exercise.criteria():
        try:
            item(lab, answer)
        except AssertionError as exc:
            results.append(Result(item.name, item.description, False, str(exc).strip(), item.hint))
        except TestbedError as exc:
            results.append(Result(item.name, item.description, False, f"{type(exc).__name__}: {exc}",
                                  item.hint))
        else:
            results.append(Result(item.name, item.description, True))
    return results
