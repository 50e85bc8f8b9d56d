"""pytest plugin: HTML reports of scenario labs and JUnit XML properties.

``--testbed-report DIR`` gives every lab the ``lab`` fixture starts a
``Recorder`` (``recorder_for``, called by that fixture), records each test
step of the module with its verdict, duration, measurements and assertion
message, and once the lab has stopped writes ``DIR/<module>.html`` (with
``[<topology>]`` for a module run over several topologies); at the end of
the run ``DIR/index.html`` links every report in the directory (with
pytest-xdist, the controller writes it after the workers). With
``--junitxml``, the run's shared reproducibility record goes into the
test suite's properties and each lab's own part (topology hash, seed,
process model, MRAI, hold time, update delay...) into every test case of
that lab, beside the ``report`` fixture's measurements (which pytest
already writes as properties). ``--testbed-report-check`` then opens every
report in headless chromium and fails the run on a console error or a
network request (``./run.sh test`` does both, into
``test-artifacts/reports/``).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

_SHARED = pytest.StashKey[dict]()
_WRITTEN = pytest.StashKey[list]()
_RECORDERS = pytest.StashKey[dict]()  # module node id -> its labs' recorders
META = re.compile(r"<!-- testbed-report (\{.*?\}) -->")
BROWSERS = 2  # headless chromiums opening the run's reports at once
LAB_KEYS = ("topology", "topology_source", "topology_hash", "seed", "process_model", "mrai_s",
            "hold_time_s", "update_delay", "merge_pages", "lab_id")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--testbed-report", metavar="DIR", default=None,
                     help="write a self-contained HTML report of each scenario module's lab into DIR, "
                          "and DIR/index.html")
    parser.addoption("--testbed-report-check", action="store_true", default=False,
                     help="with --testbed-report: at the end, open every report of DIR in headless chromium "
                          "and fail the run if one has a console error or asks the network for anything")


def _junit(config: pytest.Config) -> bool:
    return bool(getattr(config.option, "xmlpath", None))


def shared_record(config: pytest.Config) -> dict:
    """The run's shared reproducibility record, computed once."""
    if _SHARED not in config.stash:
        from .environment import record_without_lab

        config.stash[_SHARED] = record_without_lab()
    return config.stash[_SHARED]


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    if not _junit(config) or hasattr(config, "workerinput"):
        return
    try:
        from _pytest.junitxml import xml_key
    except ImportError:  # pytest moved it: the properties per test case still carry the record
        return
    xml = config.stash.get(xml_key, None)
    if xml is not None:
        for key, value in shared_record(config).items():
            xml.add_global_property(f"testbed.{key}", value)


def _report_name(request: pytest.FixtureRequest) -> str:
    name = Path(request.module.__file__).stem
    param = getattr(request, "param", None)
    if param is not None:
        name += f"[{getattr(param, 'name', None) or Path(str(param)).stem}]"
    return re.sub(r"[^A-Za-z0-9_.\[\]-]+", "_", name)


def recorder_for(request: pytest.FixtureRequest):
    """A Recorder for the lab about to start, or None without
    ``--testbed-report``; its report is written after the lab stops (the
    finalizer registered here runs after the lab fixture's own)."""
    directory = request.config.getoption("--testbed-report")
    if not directory:
        return None
    from .recorder import Recorder

    name = _report_name(request)
    recorder = Recorder(title=name, shared_environment=shared_record(request.config))

    def write() -> None:
        write_report(recorder, Path(directory) / f"{name}.html", name)
        request.config.stash.setdefault(_WRITTEN, []).append(name)

    request.addfinalizer(write)
    request.config.stash.setdefault(_RECORDERS, {}).setdefault(request.node.nodeid, []).append(recorder)
    return recorder


def write_report(recorder, path: Path, name: str) -> Path:
    """Render the recorder's data to ``path`` (an HTML file)."""
    from .html import render

    t0 = time.monotonic()
    data = recorder.data()
    counts = {outcome: sum(1 for s in data["steps"] if s["outcome"] in kinds)
              for outcome, kinds in (("passed", ("passed",)), ("failed", ("failed", "error")),
                                     ("skipped", ("skipped",)))}
    page = render(data)
    meta = {"name": name, "topology": data["lab"].get("topology", ""), **counts,
            "recording_s": data["recording_seconds"], "render_s": round(time.monotonic() - t0, 3)}
    path.parent.mkdir(parents=True, exist_ok=True)
    # The summary for the index goes last: a comment before the DOCTYPE
    # would put browsers in quirks mode.
    path.write_text(page + f"<!-- testbed-report {json.dumps(meta, sort_keys=True)} -->\n")
    return path


def _lab_of(item: pytest.Item):
    lab = getattr(item, "funcargs", {}).get("lab")
    return lab if hasattr(lab, "plan") and hasattr(lab, "recorder") else None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    outcome = yield
    rep = outcome.get_result()
    lab = _lab_of(item)
    if lab is None:
        _lab_failed(item, rep)
        return
    if rep.when == "setup" and rep.passed and _junit(item.config) and lab.started:
        record = getattr(lab, "_junit_record", None)
        if record is None:
            from .environment import record as lab_record

            full = lab_record(lab, shared_record(item.config))
            record = lab._junit_record = {key: full[key] for key in LAB_KEYS}
        for key, value in record.items():
            item.user_properties.append((f"testbed.{key}", value))
    recorder = lab.recorder
    if recorder is None or not hasattr(recorder, "step"):
        return
    if rep.when == "call" or (rep.when == "setup" and not rep.passed):
        message = ""
        if rep.failed:
            message = rep.longreprtext[-4000:]
        elif rep.skipped and isinstance(rep.longrepr, tuple):
            message = str(rep.longrepr[2])
        name = item.name[len("test_"):] if item.name.startswith("test_") else item.name
        recorder.step(name.replace("_", " "), rep.outcome, rep.duration, message,
                      [p for p in item.user_properties if not str(p[0]).startswith("testbed.")])


def _lab_failed(item: pytest.Item, rep) -> None:
    """A test whose lab did not start: its report says why (the lab's
    recorder saw no start; the error is the setup's)."""
    if rep.when != "setup" or not rep.failed:
        return
    module = item.getparent(pytest.Module)
    recorders = item.config.stash.get(_RECORDERS, {}).get(module.nodeid if module else "", [])
    if recorders and recorders[-1].t0 is None:
        recorder = recorders[-1]
        if not recorder.steps:  # the first test saw the error; the others repeat it
            recorder.problems.append("the lab did not start: see the first step's message")
        recorder.step(item.name, "error", rep.duration, rep.longreprtext[-4000:], [])


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    directory = session.config.getoption("--testbed-report")
    if not directory or hasattr(session.config, "workerinput"):
        return
    index = write_index(Path(directory), shared_record(session.config))
    if index is not None and session.config.getoption("--testbed-report-check"):
        check_reports(session, Path(directory))


def check_reports(session: pytest.Session, directory: Path) -> dict[str, list[str]]:
    """Every report of the run opened in chromium (``page_problems``): the
    run fails when one has a console error or makes a request. Two
    browsers share the pages (one per core of a small machine). Returns
    ``{page: [problems]}`` of the pages with problems."""
    from concurrent.futures import ThreadPoolExecutor

    from testbed.report.browser import page_problems

    pages = sorted(directory.glob("*.html"))
    started = time.monotonic()
    shares = [pages[i::BROWSERS] for i in range(BROWSERS) if pages[i::BROWSERS]]
    found: dict[str, list[str]] = {}
    with ThreadPoolExecutor(max(1, len(shares))) as pool:
        for problems in pool.map(page_problems, shares):
            found.update(problems)
    bad = {page: problems for page, problems in found.items() if problems}
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    line = (f"testbed reports: {len(pages)} pages of {directory} opened in chromium "
            f"({time.monotonic() - started:.1f} s), {len(bad)} with problems")
    if reporter is not None:
        reporter.write_line(line, red=bool(bad), green=not bad)
        for page, problems in bad.items():
            for problem in problems[:5]:
                reporter.write_line(f"  {page}: {problem}", red=True)
    if bad:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    return bad


def write_index(directory: Path, environment: dict) -> Path | None:
    """``directory/index.html`` linking every report found there."""
    from .html import render_index

    entries = []
    for path in sorted(directory.glob("*.html")):
        if path.name == "index.html":
            continue
        match = META.search(path.read_text()[-2000:])
        if match:
            entries.append({**json.loads(match.group(1)), "file": path.name})
    if not entries and not directory.is_dir():
        return None
    directory.mkdir(parents=True, exist_ok=True)
    index = directory / "index.html"
    index.write_text(render_index(entries, environment))
    return index
