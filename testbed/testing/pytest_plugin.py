"""pytest plugin: lab fixtures, scenario measurements, artifacts on failure.

A scenario module names its topology in ``TOPOLOGY`` (a name from
``topologies/``, a path, or a ``Topology``; or a list of them, to run the
module's tests once per topology) and asks for the ``lab`` fixture: one lab
per module (and topology), started before its first test and stopped
after its last, also when a test fails or the run is interrupted. Tests
that use a lab are marked ``emulation``. Without root they are skipped with
the reason; as root (CI) a skipped emulation test fails the run, so a green
result always means the labs really ran. When a test fails, the lab's
speaker and agent logs and every router's RIB dump are written under
``test-artifacts/`` and named in the report. ``report(name, value)``
records a measurement that is printed at the end of the run. With
``--testbed-report DIR`` each lab gets a recorder and an HTML report
(``testbed.report.pytest_report``).
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from pathlib import Path

import pytest

from testbed.lab.lab import Lab
from testbed.model.loader import resolve
from testbed.model.topology import Topology

_LAB_KEY = pytest.StashKey[Lab]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--testbed-progress", action="store_true",
                     help="print each stage while a lab starts")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # A scenario module's tests share one lab and run in order (depeer, then
    # look, then re-peer): with pytest-xdist they must stay on one worker.
    # (The suite's tests of host-wide settings, neighbour limits and ksmd,
    # also keep the other worker's labs away: tests/conftest.py.)
    if getattr(config.option, "dist", "no") == "load":
        config.option.dist = "loadfile"
    config.addinivalue_line("markers", "emulation: starts real namespaces and BGP speakers; needs root")
    config._testbed_skipped_emulation = []  # type: ignore[attr-defined]
    config._testbed_measurements = []  # type: ignore[attr-defined]
    config.pluginmanager.register(_Reports(config), "testbed-reports")


class _Reports:
    """Every test's reports as the process that prints them sees them
    (with pytest-xdist, the controller: the workers send theirs): an
    emulation test skipped as root, and the measurements of workers."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.controller = (not hasattr(config, "workerinput")
                           and getattr(config.option, "dist", "no") != "no")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        config = self.config
        if report.skipped and "emulation" in report.keywords and os.geteuid() == 0:
            if report.nodeid not in config._testbed_skipped_emulation:
                config._testbed_skipped_emulation.append(report.nodeid)
        if self.controller and report.when == "teardown":  # the report fixture ran in a worker
            config._testbed_measurements += [(report.nodeid, name, value) for name, value in report.user_properties
                                             if not str(name).startswith("testbed.")]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "lab" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.emulation)
        if item.get_closest_marker("emulation") and os.geteuid() != 0:
            item.add_marker(pytest.mark.skip(reason="emulation test: needs root (sudo ./run.sh test)"))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    refs = getattr(metafunc.module, "TOPOLOGY", None)
    if "lab" in metafunc.fixturenames and isinstance(refs, (list, tuple)):
        ids = [r.name if isinstance(r, Topology) else Path(str(r)).stem for r in refs]
        metafunc.parametrize("lab", list(refs), indirect=True, scope="module", ids=ids)


def _topology_of(module, ref=None) -> Topology | Path:
    ref = getattr(module, "TOPOLOGY", None) if ref is None else ref
    if ref is None:
        raise pytest.UsageError(f"{module.__file__}: the lab fixture needs a module-level TOPOLOGY "
                                "(a topology name, path or Topology)")
    if isinstance(ref, Topology):
        return ref
    return resolve(ref, near=Path(module.__file__).parent)


@pytest.fixture(scope="module")
def lab(request: pytest.FixtureRequest):
    """A started lab for the module's ``TOPOLOGY``; stopped after the module."""
    progress = None
    if request.config.getoption("--testbed-progress"):
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        started = time.monotonic()

        def progress(stage: str) -> None:
            reporter.write_line(f"  lab: {stage} ({time.monotonic() - started:.1f} s)")

    from testbed.report.pytest_report import recorder_for

    recorder = recorder_for(request)  # --testbed-report: its report is written after the stop below
    instance = Lab(_topology_of(request.module, getattr(request, "param", None)), progress=progress,
                   recorder=recorder)
    request.addfinalizer(instance.stop)  # registered before start: a half-started lab is stopped too
    watch = getattr(request.config, "_testbed_watch_start", None)  # `testbed run` shows the start
    with watch(instance) if watch else contextlib.nullcontext():
        instance.start(timeout=getattr(request.module, "START_TIMEOUT", 60.0))
    request.node.stash[_LAB_KEY] = instance
    yield instance


@pytest.fixture
def report(request: pytest.FixtureRequest):
    """``report(name, value, unit="")`` records a measurement for the summary."""

    def record(name: str, value, unit: str = "") -> None:
        request.node.user_properties.append((name, f"{value}{unit}"))
        request.config._testbed_measurements.append((request.node.nodeid, name, f"{value}{unit}"))

    return record


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    instance = item.funcargs.get("lab") if hasattr(item, "funcargs") else None
    if not isinstance(instance, Lab) or instance.stopped or not instance.started:
        return
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", item.nodeid)[-120:]
    directory = Path(item.config.rootpath) / "test-artifacts" / safe
    try:
        instance.dump(directory)
        lines = [f"speaker logs and RIB dumps of lab {instance.id}: {directory}"]
        for router in instance.plan.routers:
            sessions = instance.sessions(router)
            states = ", ".join(f"{peer}={s['state']}" for peer, s in sessions.items())
            rib = instance.loc_rib(router)
            routes = "; ".join(f"{p} {instance.names(r['as_path'])}" for p, r in sorted(rib.items()))
            lines.append(f"{router}: sessions {states}\n    Loc-RIB: {routes}")
        rep.sections.append(("testbed lab", "\n".join(lines)))
    except Exception as exc:  # never hide the real failure behind a dump error
        rep.sections.append(("testbed lab", f"could not dump the lab: {exc}"))


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    measurements = getattr(config, "_testbed_measurements", [])
    if measurements and not getattr(config, "_testbed_measurements_shown", False):  # `testbed run`'s table shows them
        terminalreporter.section("scenario measurements")
        for nodeid, name, value in measurements:
            terminalreporter.write_line(f"{nodeid}: {name} = {value}")
    skipped = getattr(config, "_testbed_skipped_emulation", [])
    if skipped:
        terminalreporter.section("emulation tests skipped as root", red=True)
        for nodeid in skipped:
            terminalreporter.write_line(f"SKIPPED AS ROOT (counts as failure): {nodeid}", red=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    skipped = getattr(session.config, "_testbed_skipped_emulation", [])
    if skipped and session.exitstatus in (0, 5):
        session.exitstatus = 1
