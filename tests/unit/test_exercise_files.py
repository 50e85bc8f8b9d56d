"""Exercises as files (testbed.exercise.model, answer, report), without a lab.

Every shipped exercise must load (layout, metadata, criteria, topology),
its solution and wrong answers must be valid answer files, and the topics
of the issue must be covered. Answer files with one mistake each are
refused with the line and field path of the mistake. The grading reports
are checked from fixed grades.
"""

from __future__ import annotations

import csv
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from testbed.model.addressing import plan
from testbed.exercise.answer import AnswerError, parse_answer
from testbed.exercise.grade import Grade
from testbed.exercise.model import ExerciseError, Result, available, load_exercise
from testbed.exercise.report import render_html, render_junit, write_reports
from testbed.model.loader import load
from testbed.report.browser import CHROMIUM_FLAGS

EXERCISES = available()


def test_at_least_ten_exercises_cover_the_topics():
    assert len(EXERCISES) >= 10, EXERCISES
    topics = {load_exercise(name).topic for name in EXERCISES}
    assert topics == {"peering", "depeering", "IXPs", "agreements", "security"}


@pytest.mark.parametrize("name", EXERCISES)
def test_each_exercise_is_complete_and_its_answers_valid(name):
    exercise = load_exercise(name)
    criteria = exercise.criteria()
    assert len(criteria) >= 2
    assert all(c.hint and c.description for c in criteria)
    p = plan(load(exercise.topology_file))
    assert exercise.router in p.routers
    for answer in [exercise.solution, *exercise.alternatives]:
        parse_answer(answer, p, exercise.router, exercise.answer_keys)
    assert exercise.wrong_answers
    names = {c.name for c in criteria}
    for wrong in exercise.wrong_answers:
        assert set(wrong.fails) <= names, (wrong.name, wrong.fails)
        parse_answer(wrong.path, p, exercise.router, exercise.answer_keys)
    assert len(exercise.story) > 200, "the story says what it teaches and the practice behind it"


@pytest.fixture(scope="module")
def no_transit():
    exercise = load_exercise("no_transit")
    return exercise, plan(load(exercise.topology_file))


ANSWERS = [
    ("unknown key", "policies: {}\n", 1, "policies: unknown key"),
    ("no such neighbor", "policy:\n  P3: {}\n", 2, "You has no session with 'P3'"),
    ("policy field", "policy:\n  P1:\n    export:\n      - action: reject\n      - match:\n"
                     "          learned_from: provider\n        action: reject\n", 6,
     "policy.P1.export[1].match.learned_from: 'provider' must be a list"),
    ("policy unknown key", "policy:\n  P1:\n    exports: []\n", 3, "policy.P1: unknown key 'exports'"),
    ("foreign prefix", "announce:\n  - prefix: 192.0.2.0/24\n", 2, "192.0.2.0/24 is not inside your prefixes"),
    ("host bits", "announce:\n  - {prefix: 198.51.100.1/24}\n", 2, "has host bits set"),
    ("bad community", "announce:\n  - prefix: 198.51.100.0/25\n    communities: ['65536:1']\n", 3, "65536"),
    ("depeer stranger", "depeer: [P1, Zed]\n", 1, "depeer[1]: You has no session with 'Zed'"),
    ("syntax", "policy:\n  P1: {export: [\n", 3, "YAML syntax"),
]


@pytest.mark.parametrize("text,line,fragment", [a[1:] for a in ANSWERS], ids=[a[0] for a in ANSWERS])
def test_an_invalid_answer_names_its_line_and_field(tmp_path, no_transit, text, line, fragment):
    exercise, p = no_transit
    path = tmp_path / "answer.yaml"
    path.write_text(text)
    with pytest.raises(AnswerError) as caught:
        parse_answer(path, p, exercise.router)
    found = [x for x in caught.value.problems if fragment in x]
    assert found, caught.value.problems
    match = re.match(r"^(.+):(\d+): ", found[0])
    assert match and int(match.group(2)) == line, (found[0], line)
    assert "the lab is left as it was" in str(caught.value)


def test_a_valid_answer_is_plain_data(tmp_path, no_transit):
    exercise, p = no_transit
    path = tmp_path / "answer.yaml"
    path.write_text("policy:\n  P1: {export: [{match: {learned_from: [provider]}, action: reject}]}\n"
                    "announce: [198.51.100.0/25]\ndepeer: [P2]\n")
    answer = parse_answer(path, p, exercise.router)
    assert answer.policy == {"P1": {"export": [{"match": {"learned_from": ["provider"]}, "action": "reject"}]}}
    assert type(answer.policy["P1"]) is dict and type(answer.policy["P1"]["export"]) is list
    assert answer.announce == [{"prefix": "198.51.100.0/25", "communities": [], "large_communities": []}]
    assert answer.depeer == ["P2"]


def test_a_malformed_exercise_is_reported(tmp_path):
    (tmp_path / "exercise.yaml").write_text("title: x\nlevel: expert\ntopic: peering\ncolour: red\n")
    with pytest.raises(ExerciseError) as caught:
        load_exercise(tmp_path)
    text = str(caught.value)
    assert "level 'expert' is not one of" in text and ":2:" in text
    assert "unknown key 'colour'" in text and ":4:" in text
    assert "missing file criteria.py" in text and "at least one typical wrong answer" in text


def _grades():
    return [Grade("alice", "alice.yaml", [Result("p2_not_through_you", "P2 reaches P1 directly", True),
                                          Result("p1_not_through_you", "P1 reaches P2 directly", True),
                                          Result("providers_carry_you", "providers carry you", True)], 3.0),
            Grade("bob <b>", "bob.yaml", [Result("p2_not_through_you", "P2 reaches P1 directly", True),
                                          Result("p1_not_through_you", "P1 reaches P2 directly", False,
                                                 "at router P1, the AS path is ['You', 'P2']", "filter P1"),
                                          Result("providers_carry_you", "providers carry you", True)], 4.0),
            Grade("carol", "carol.yaml", [], 1.0, "the grading lab failed: boom")]


def test_reports_have_a_row_per_participant_and_a_column_per_criterion(tmp_path):
    exercise = load_exercise("no_transit")
    paths = write_reports(exercise, _grades(), tmp_path)
    rows = list(csv.reader(paths["csv"].open()))
    assert rows[0] == ["participant", "p2_not_through_you", "p1_not_through_you", "providers_carry_you",
                       "passed", "of", "error"]
    assert rows[1][:6] == ["alice", "1", "1", "1", "3", "3"]
    assert rows[2][:6] == ["bob <b>", "1", "0", "1", "2", "3"]
    assert rows[3][0] == "carol" and rows[3][-1] == "the grading lab failed: boom"
    suites = ET.parse(paths["junit"]).getroot()
    assert [s.get("name") for s in suites] == ["alice", "bob <b>", "carol"]
    bob = suites[1]
    failure = bob.find("testcase[@name='p1_not_through_you']/failure")
    assert failure is not None and "hint: filter P1" in failure.text
    assert suites[2].get("errors") == "1"


def test_html_is_self_contained_and_escaped():
    page = render_html(load_exercise("no_transit"), _grades())
    assert "bob &lt;b&gt;" in page and "<b>" not in page.replace("<body>", "")
    assert not re.search(r"<(script|link|img)\b", page) and "http" not in page
    assert page.count("<tr>") == 4  # the head and three participants
    assert page.count('class="fail"') == 1 and page.count('class="none"') == 3
    assert "2/3" in page and "3/3" in page
    assert render_junit(load_exercise("no_transit"), _grades()).startswith("<?xml")




def test_html_summary_renders_in_chromium(tmp_path):
    import shutil
    import subprocess

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed")
    page = tmp_path / "grades.html"
    page.write_text(render_html(load_exercise("no_transit"), _grades()))
    flags = [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([chromium, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=60).stdout
    assert dom.count("<tr>") == 4 and "bob &lt;b&gt;" in dom and "2/3" in dom
    artifacts = Path(__file__).resolve().parents[2] / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    shot = artifacts / "exercise-grades.png"
    shot.unlink(missing_ok=True)
    subprocess.run([chromium, *flags, "--window-size=900,700", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=60)
    assert shot.is_file() and shot.stat().st_size > 5000


def test_hint_and_solution_need_no_lab(capsys):
    from testbed.cli import main

    assert main(["exercise", "hint", "no_transit"]) == 0
    assert "learned_from" in capsys.readouterr().out
    assert main(["exercise", "solution", "no_transit"]) == 0
    assert capsys.readouterr().out.startswith("# Export to a provider only what is yours")
    assert main(["exercise", "list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in EXERCISES) and "intermediate" in listed
