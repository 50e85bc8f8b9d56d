"""Golden files: the address plan and every router's ExaBGP and agent
configuration of every shipped topology, as rendered now, against the
copies kept under ``golden/<topology>/`` (what they hold and how to write
them again: ``regen_golden.py``). A change to addressing or rendering shows
up here as a diff per file, to be checked and then regenerated."""

from __future__ import annotations

import difflib
import sys

import pytest

from regen_golden import GOLDEN, rendered, stored
from testbed.model.loader import available

MAX_DIFF_LINES = 60  # per file: enough to see what changed, not a whole plan


def _diff(name: str, relative: str, expected: str, actual: str) -> str:
    lines = list(difflib.unified_diff(expected.splitlines(keepends=True), actual.splitlines(keepends=True),
                                      fromfile=f"golden/{name}/{relative}", tofile="rendered now"))
    cut = lines[:MAX_DIFF_LINES]
    if len(lines) > MAX_DIFF_LINES:
        cut.append(f"... ({len(lines) - MAX_DIFF_LINES} more diff lines)\n")
    return "".join(cut)


@pytest.mark.parametrize("name", available())
def test_rendered_files_match_the_golden_files(name):
    expected, actual = stored(name), rendered(name)
    assert expected, f"no golden files for topology {name} under {GOLDEN / name}: run tests/unit/regen_golden.py"
    problems = []
    for relative in sorted(expected.keys() | actual.keys()):
        if relative not in expected:
            problems.append(f"golden/{name}/{relative}: rendered now but has no golden file")
        elif relative not in actual:
            problems.append(f"golden/{name}/{relative}: golden file of something no longer rendered")
        elif expected[relative] != actual[relative]:
            problems.append(_diff(name, relative, expected[relative], actual[relative]))
    if problems:
        pytest.fail(f"topology {name}: {len(problems)} file(s) differ from the golden files (check the "
                    "change, then run: .venv/bin/python tests/unit/regen_golden.py)\n" + "\n".join(problems))


def test_every_golden_folder_is_a_shipped_topology():
    folders = sorted(p.name for p in GOLDEN.iterdir() if p.is_dir())
    assert folders == sorted(available())


def test_golden_files_name_no_machine_path():
    """The stand-ins replaced the interpreter and the work directory."""
    for name in available():
        for relative, text in stored(name).items():
            assert sys.executable not in text, f"golden/{name}/{relative} names {sys.executable}"
            assert str(GOLDEN.parents[2]) not in text, f"golden/{name}/{relative} names the checkout"
