"""A real scenario run with `testbed run --report` and --junitxml, and its
report opened in headless chromium.

One run of the small triangle scenario (settlement-free peering: a
depeering and a re-peering with traffic) gives the report and the JUnit
XML every test here reads (`testbed run` runs pytest with
--testbed-report; the index of that option is unit-tested). The browser
checks open the report from disk: the DOM holds the picture and both
reachability matrices, choosing B's prefix and a state highlights the
sessions of the routing tree the lab really had (the peering before the
depeering, T after it), the highlight is really painted, the console has
no error and no request leaves the page. Screenshots go to
test-artifacts/report-*.png. A missing browser fails here, as root.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytestmark = pytest.mark.emulation

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = "scenarios/test_settlement_free_peering.py"
ARTIFACTS = ROOT / "test-artifacts"
B_PREFIX = "192.0.2.128/25"  # B's first prefix in the triangle topology


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Run the scenario once with `testbed run --report` (extra arguments
    go to pytest: the JUnit XML); returns (report path, JUnit path, seconds)."""
    if os.geteuid() != 0:
        pytest.skip("emulation test: needs root (sudo ./run.sh test)")
    out = tmp_path_factory.mktemp("report-run")
    junit, page = out / "junit.xml", out / "reports" / "settlement.html"
    t0 = time.monotonic()
    done = subprocess.run([str(Path(sys.executable).parent / "testbed"), "run", "settlement_free_peering",
                           "--report", str(page), f"--junitxml={junit}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=240)
    seconds = time.monotonic() - t0
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"report: {page}" in " ".join(done.stdout.split())
    return page, junit, seconds


def embedded(page: str) -> dict:
    """The data in the page, its states made whole again."""
    from testbed.report.html import full_states

    data = json.loads(re.search(r'<script type="application/json" id="report-data">(.*?)</script>',
                                page, re.S).group(1))
    data["states"] = full_states(data["states"])
    return data


def test_report_is_written_with_its_summary(run, report):
    path, _, seconds = run
    page = path.read_text()
    data = embedded(page)
    meta = json.loads(re.search(r"<!-- testbed-report (\{.*\}) -->", page).group(1))
    assert meta["passed"] == len(data["steps"]) >= 5 and meta["failed"] == 0
    assert meta["name"] == "test_settlement_free_peering" and meta["topology"] == "triangle"
    report("report size", f"{len(page) / 1000:.0f}", " kB")
    report("time the report added (recording + rendering)",
           f"{meta['recording_s'] + meta['render_s']:.3f}", " s")
    report("scenario run with report", f"{seconds:.1f}", " s")
    assert len(page) < 500_000


def test_report_holds_the_events_their_effects_and_the_traffic(run):
    data = embedded(run[0].read_text())
    kinds = [e["text"] for e in data["events"]]
    assert kinds[:2] == ["depeer A B", "repeer A B"], kinds
    depeer, repeer = data["events"][:2]
    assert depeer["seconds"] is not None and depeer["error"] is None
    moved = {(c["router"], c["prefix"]): c for c in depeer["changed"]}
    assert moved[("A", B_PREFIX)]["before"] == ["B"] and moved[("A", B_PREFIX)]["after"] == ["T", "B"]
    assert repeer["churn"]["updates_in"] > 0           # the re-opened session's routes arrived
    after_depeer = data["states"][depeer["after"]]
    assert after_depeer["ribs"]["A"][B_PREFIX]["path"] == ["T", "B"]
    assert after_depeer["sessions"]["A"]["B"] != "established"
    # The scenario's traffic crossed transit while depeered, the peering after.
    traffic = data["traffic"]
    phase = [p["label"] for p in traffic["phases"]].index("depeer A B")
    sent = 1_000_000   # the scenario sends 1,000 datagrams of 1,000 bytes each time
    assert traffic["by_class"]["transit"][phase] > sent, traffic
    assert traffic["by_class"]["peering"][phase] < sent / 10, traffic
    assert traffic["by_class"]["peering"][phase + 1] > sent, traffic
    assert not data["problems"], data["problems"]
    for key in ("git_commit", "exabgp_version", "kernel", "topology_hash", "mrai_s", "hold_time_s",
                "process_model", "update_delay", "machine_probe_ms"):
        assert data["environment"][key], key


def test_junit_xml_carries_measurements_and_the_reproducibility_record(run):
    _, junit, _ = run
    root = ET.parse(junit).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    suite_props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert suite_props["testbed.exabgp_version"] == "5.0.15"
    assert suite_props["testbed.git_commit"] and suite_props["testbed.kernel"]
    cases = suite.findall("testcase")
    assert cases
    for case in cases:
        props = {p.get("name"): p.get("value") for p in case.find("properties")}
        assert props["testbed.topology"] == "triangle"
        assert props["testbed.topology_hash"].startswith("sha256:")
        assert props["testbed.hold_time_s"] == "3"
    # The README's example names only properties that really appear.
    readme = (ROOT / "README.md").read_text()
    example = readme[readme.index("```xml"):readme.index("```", readme.index("```xml") + 6)]
    written = set(suite_props) | {p.get("name") for case in cases for p in case.find("properties")}
    shown = set(re.findall(r'name="(testbed\.[a-z_0-9]+)"', example))
    assert shown and shown <= written, shown - written
    measured = [case for case in cases if case.get("name") == "test_peering_takes_the_traffic_off_the_transit_link"]
    names = {p.get("name") for p in measured[0].find("properties")}
    assert len(names - {n for n in names if n.startswith("testbed.")}) >= 1   # the report fixture's values


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    """The report of a module whose lab cannot start (an invalid topology)."""
    if os.geteuid() != 0:
        pytest.skip("emulation test: needs root (sudo ./run.sh test)")
    tmp_path = tmp_path_factory.mktemp("broken")
    (tmp_path / "test_broken.py").write_text(
        "from testbed import Topology\n"
        "topology = Topology('broken')\n"
        "topology.add_as(0, 'A')\n"
        "TOPOLOGY = topology\n\n"
        "def test_one(lab):\n    pass\n")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_broken.py",
                           "--testbed-report", "reports"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    return tmp_path / "reports"


def test_a_lab_that_did_not_start_gets_a_report_saying_why(broken):
    page = (broken / "test_broken.html").read_text()
    data = embedded(page)
    assert [s["outcome"] for s in data["steps"]] == ["error"]
    assert "ASN 0 is reserved" in data["steps"][0]["message"]
    assert data["problems"] == ["the lab did not start: see the first step's message"]
    assert '"failed": 1' in page.splitlines()[-1]
    assert 'href="test_broken.html"' in (broken / "index.html").read_text()


# -- the browser ----------------------------------------------------------------

@pytest.fixture(scope="module")
def browser(run, open_browser):
    return open_browser(run[0].as_uri(), 1300, 1000)


def _choose(driver, state_prefix: str, prefix: str) -> str:
    from selenium.webdriver.support.ui import Select

    states = Select(driver.find_element("id", "state"))
    label = next(o.text for o in states.options if o.text.split(": ", 1)[1].startswith(state_prefix))
    states.select_by_visible_text(label)
    Select(driver.find_element("id", "destination")).select_by_value(prefix)
    return driver.find_element("css selector", "#picture svg").get_attribute("data-tree")


def test_the_page_holds_the_picture_and_the_matrices(browser):
    svg = browser.find_element("css selector", "#picture svg")
    for name in ("A", "B", "T"):
        assert svg.find_element("id", f"as-{name}")
    for family in (4, 6):
        rows = browser.find_elements("css selector", f"#matrix-{family} tr")
        assert len(rows) == 4                                   # a header and A, B, T
        cells = browser.find_elements("css selector", f"#matrix-{family} td.yes")
        assert len(cells) == 6                                  # everybody reaches everybody at start
        assert "AS path" in cells[0].get_attribute("title")


def test_choosing_a_destination_highlights_the_routing_tree(browser):
    ARTIFACTS.mkdir(exist_ok=True)
    # At start, A reaches B over the peering; T over its customer link.
    assert _choose(browser, "after start", B_PREFIX) == "session-A-B session-B-T"
    browser.save_screenshot(str(ARTIFACTS / "report-before-depeering.png"))
    # Once A and B depeered, A's path to B runs through T.
    assert _choose(browser, "after depeer A B", B_PREFIX) == "session-A-T session-B-T"
    tree = browser.find_element("id", "session-A-T")
    assert "tree" in tree.get_attribute("class").split()
    painted = browser.execute_script(
        "return getComputedStyle(document.querySelector('#session-A-T path')).stroke")
    assert painted == "rgb(213, 94, 0)", painted
    down = browser.find_element("id", "session-A-B").get_attribute("class").split()
    assert "down" in down
    browser.save_screenshot(str(ARTIFACTS / "report-after-depeering.png"))
    # Clicking an AS shows its routes.
    browser.find_element("id", "as-A").click()
    caption = browser.find_element("id", "router-caption").text
    assert caption.startswith("A (")
    rib = browser.find_element("id", "rib").text
    assert B_PREFIX in rib and "T B" in rib


def test_no_console_error_and_no_request_leaves_the_page(run, browser):
    errors = [entry for entry in browser.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]
    assert errors == []
    page = run[0].as_uri()
    from_page, anywhere = [], []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            url = message["params"]["request"]["url"]
            anywhere.append(url)
            if message["params"].get("documentURL") == page:
                from_page.append(url)
    assert from_page == [page]     # the page itself, nothing it asked for
    # (the browser's own new-tab page loads chrome:// resources before it)
    assert [u for u in anywhere if not u.startswith(("file:", "chrome:", "data:", "about:"))] == []
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1300, min(int(height) + 100, 6000))
    browser.save_screenshot(str(ARTIFACTS / "report-full.png"))


def test_the_report_of_a_lab_that_did_not_start_opens_cleanly(browser, broken):
    browser.get((broken / "test_broken.html").as_uri())
    assert "ASN 0 is reserved" in browser.find_element("tag name", "body").text
    errors = [entry for entry in browser.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]
    assert errors == []


def test_the_run_s_report_check_names_a_console_error_and_a_request(tmp_path):
    """``--testbed-report-check`` (``check_reports``, ``page_problems`` in
    two browsers) fails a run whose report has a script error or asks for
    anything beyond itself, whichever browser opened it."""
    from types import SimpleNamespace

    from testbed.report.pytest_report import BROWSERS, check_reports

    good = tmp_path / "b_good.html"
    good.write_text("<!doctype html><title>t</title><p>fine</p>")
    script = tmp_path / "a_script.html"   # sorted first: the first browser's
    script.write_text("<!doctype html><title>t</title><script>no_such_function()</script>")
    request = tmp_path / "c_request.html"  # the second browser's
    request.write_text(f"<!doctype html><title>t</title><img src=\"{(tmp_path / 'missing.png').as_uri()}\">")
    assert BROWSERS == 2
    session = SimpleNamespace(exitstatus=0, config=SimpleNamespace(
        pluginmanager=SimpleNamespace(get_plugin=lambda name: None)))
    bad = check_reports(session, tmp_path)
    assert set(bad) == {str(script), str(request)}, bad
    assert any("no_such_function" in problem for problem in bad[str(script)]), bad
    assert any(problem.startswith("request: file:") and "missing.png" in problem
               for problem in bad[str(request)]), bad
    assert session.exitstatus == pytest.ExitCode.TESTS_FAILED
    session.exitstatus = 0
    assert check_reports(session, tmp_path / "none") == {} and session.exitstatus == 0
