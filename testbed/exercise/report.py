"""The grading summary: CSV, a self-contained HTML table, JUnit XML.

``write_reports(exercise, grades, directory)`` writes ``grades.csv`` (one
row per participant, one column per criterion: 1 or 0, then the total),
``grades.html`` (the same table, each failed cell carrying what was seen
and the hint as its tooltip and in a details list below; inline CSS, no
script, no external resource) and ``grades.xml`` (JUnit: one test suite per
participant, one test case per criterion, a failure with what was seen and
the hint). Pure: it reads ``Grade`` objects and writes files.
"""

from __future__ import annotations

import csv
import html
from pathlib import Path
from xml.etree import ElementTree as ET

from testbed.exercise.grade import Grade
from testbed.exercise.model import Exercise


def criteria_names(exercise: Exercise, grades: list[Grade]) -> list[tuple[str, str]]:
    """(name, description) of every criterion, in the exercise's order."""
    try:
        return [(c.name, c.description) for c in exercise.criteria()]
    except Exception:
        seen: dict[str, str] = {}
        for g in grades:
            for r in g.results:
                seen.setdefault(r.name, r.description)
        return list(seen.items())


def write_csv(path: Path, exercise: Exercise, grades: list[Grade]) -> None:
    names = [n for n, _ in criteria_names(exercise, grades)]
    with open(path, "w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["participant", *names, "passed", "of", "error"])
        for g in grades:
            by = {r.name: r for r in g.results}
            out.writerow([g.participant, *[int(by[n].passed) if n in by else "" for n in names],
                          g.passed, len(names), g.error])


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; }
th, td { border: 1px solid #bbb; padding: .35em .6em; text-align: center; }
th.criterion { writing-mode: vertical-rl; transform: rotate(180deg); text-align: left;
               max-height: 16em; font-weight: normal; }
td.who { text-align: left; font-weight: bold; }
td.pass { background: #d8f0d8; } td.fail { background: #f6d2d2; } td.none { background: #eee; }
td.total { font-weight: bold; }
.details dt { font-weight: bold; margin-top: .8em; }
.details dd { margin-left: 1.5em; white-space: pre-wrap; font-family: monospace; font-size: .9em; }
"""


def render_html(exercise: Exercise, grades: list[Grade]) -> str:
    names = criteria_names(exercise, grades)
    esc = html.escape
    rows, details = [], []
    for g in grades:
        by = {r.name: r for r in g.results}
        cells = [f'<td class="who">{esc(g.participant)}</td>']
        for name, _ in names:
            r = by.get(name)
            if r is None:
                cells.append('<td class="none" title="not graded">–</td>')
            elif r.passed:
                cells.append('<td class="pass" title="passed">✔</td>')
            else:
                cells.append(f'<td class="fail" title="{esc(r.seen)}&#10;hint: {esc(r.hint)}">✘</td>')
                details.append(f"<dt>{esc(g.participant)}: {esc(r.description)}</dt>"
                               f"<dd>seen: {esc(r.seen)}\nhint: {esc(r.hint)}</dd>")
        if g.error:
            details.append(f"<dt>{esc(g.participant)}: not graded</dt><dd>{esc(g.error)}</dd>")
        cells.append(f'<td class="total">{g.passed}/{len(names)}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    head = "".join(f'<th class="criterion" title="{esc(n)}">{esc(d)}</th>' for n, d in names)
    passed_all = sum(g.passed == len(names) and not g.error for g in grades)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Grades: {esc(exercise.title)}</title><style>{STYLE}</style></head>
<body>
<h1>{esc(exercise.title)}</h1>
<p>Exercise <code>{esc(exercise.name)}</code> ({esc(exercise.level)}, {esc(exercise.topic)}):
{len(grades)} participants, {passed_all} passed every criterion.</p>
<table>
<thead><tr><th>participant</th>{head}<th>total</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table>
<h2>What was seen where a criterion failed</h2>
<dl class="details">{''.join(details) or '<dt>nothing failed</dt>'}</dl>
</body></html>
"""


def render_junit(exercise: Exercise, grades: list[Grade]) -> str:
    names = criteria_names(exercise, grades)
    suites = ET.Element("testsuites", name=f"exercise {exercise.name}")
    for g in grades:
        by = {r.name: r for r in g.results}
        failures = sum(1 for n, _ in names if n not in by or not by[n].passed)
        suite = ET.SubElement(suites, "testsuite", name=g.participant, tests=str(len(names)),
                              failures=str(failures), errors="1" if g.error else "0",
                              time=f"{g.seconds:.2f}")
        for name, description in names:
            case = ET.SubElement(suite, "testcase", classname=f"{exercise.name}.{g.participant}",
                                 name=name)
            r = by.get(name)
            if r is None:
                ET.SubElement(case, "error", message=g.error or "not graded")
            elif not r.passed:
                failure = ET.SubElement(case, "failure", message=description)
                failure.text = f"seen: {r.seen}\nhint: {r.hint}"
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def write_reports(exercise: Exercise, grades: list[Grade], directory: Path) -> dict[str, Path]:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"csv": directory / "grades.csv", "html": directory / "grades.html",
             "junit": directory / "grades.xml"}
    write_csv(paths["csv"], exercise, grades)
    paths["html"].write_text(render_html(exercise, grades))
    paths["junit"].write_text(render_junit(exercise, grades))
    return paths
