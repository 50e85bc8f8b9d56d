"""The live view of a running lab, opened in headless chromium.

One triangle lab with a recorder and ``LiveView(control=True)`` (what
``testbed up triangle --web --web-control`` starts). The page opens with
its access token (a cookie from then on); B's prefix is chosen and the
highlighted tree is the peering; a click on "depeer" for the session
A-B makes the session turn down in the picture and the tree go through T,
within the lab's convergence time; a repeer brings both back. No console
error, no request to anything but the server. Without the token every
path is 401; stopping the view frees its port and leaves no thread.
An exercise's criteria and their state after a check are shown.
Screenshots: test-artifacts/live-*.png.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest


pytestmark = pytest.mark.emulation

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
B_PREFIX = "192.0.2.128/25"


@pytest.fixture(scope="module")
def live():
    import os

    if os.geteuid() != 0:
        pytest.skip("emulation test: needs root (sudo ./run.sh test)")
    from testbed.lab.lab import Lab
    from testbed.live import LiveView
    from testbed.report.recorder import Recorder

    recorder = Recorder(sample_interval=0)
    lab = Lab("triangle", recorder=recorder)
    view = None
    try:
        lab.start()
        view = LiveView(lab, recorder, port=0, control=True).start()
        yield lab, view
    finally:
        if view is not None:
            view.stop()
        lab.stop()


@pytest.fixture(scope="module")
def browser(live, open_browser):
    return open_browser(live[1].url, 1300, 1100)


def _wait(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.1f} s")
        time.sleep(0.05)   # the page changes on its own: look again


def _tree(driver) -> str:
    return driver.find_element("css selector", "#picture svg").get_attribute("data-tree")


def test_without_the_token_nothing_is_served(live):
    view = live[1]
    base = f"http://127.0.0.1:{view.port}"
    for path in ("/", "/events", "/api/state", "/api/router/A", "/nothing"):
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(base + path, timeout=5)
        assert caught.value.code == 401, path
    request = urllib.request.Request(base + "/api/action", data=b'{"op":"depeer","a":"A","b":"B"}',
                                     method="POST", headers={"Cookie": f"{view.access.cookie}={view.access.token}"})
    with pytest.raises(urllib.error.HTTPError) as caught:   # the token, but not the page's form token
        urllib.request.urlopen(request, timeout=5)
    assert caught.value.code == 403
    glass = json.load(urllib.request.urlopen(urllib.request.Request(
        base + "/api/router/A", headers={"Authorization": f"Bearer {view.access.token}"}), timeout=5))
    assert glass["adj_rib_in"]["B"][B_PREFIX]["path"] == ["B"]
    assert B_PREFIX in glass["adj_rib_out"]["T"] or glass["adj_rib_out"]["T"]


def test_a_depeer_clicked_on_the_page_turns_the_session_down_and_moves_the_tree(live, browser):
    from selenium.webdriver.support.ui import Select

    lab, view = live
    ARTIFACTS.mkdir(exist_ok=True)
    assert browser.current_url.endswith("/")        # the token left the address bar for a cookie
    _wait(lambda: browser.find_element("id", "status").text == "live", 10, "the event stream opens")
    Select(browser.find_element("id", "destination")).select_by_value(B_PREFIX)
    assert _wait(lambda: _tree(browser) == "session-A-B session-B-T", 5, "the tree at start")
    assert len(browser.find_elements("css selector", "#matrix-4 td.yes")) == 6
    browser.save_screenshot(str(ARTIFACTS / "live-before-depeering.png"))

    Select(browser.find_element("id", "session")).select_by_value("A B")
    clicked = time.monotonic()
    browser.find_element("id", "depeer").click()
    budget = 10.0      # the lab converges in well under a second; hold time 3 s
    _wait(lambda: _tree(browser) == "session-A-T session-B-T", budget, "the tree through T")
    _wait(lambda: "down" in browser.find_element("id", "session-A-B").get_attribute("class").split(),
          budget, "session A-B drawn down")
    took = time.monotonic() - clicked
    painted = browser.execute_script(
        "return getComputedStyle(document.querySelector('#session-A-T path')).stroke")
    assert painted == "rgb(213, 94, 0)", painted
    # The event log shows the depeering with its convergence time, from the recorder.
    _wait(lambda: "depeer A B" in browser.find_element("id", "log").text and
          " s" in browser.find_element("css selector", "#log tbody tr td:nth-child(3)").text, budget,
          "the event in the log")
    assert lab.as_path("A", "B") == ["T", "B"]
    browser.save_screenshot(str(ARTIFACTS / "live-after-depeering.png"))
    print(f"page showed the depeering {took:.2f} s after the click")

    browser.find_element("id", "repeer").click()
    _wait(lambda: _tree(browser) == "session-A-B session-B-T", budget, "the tree back on the peering")
    _wait(lambda: "down" not in browser.find_element("id", "session-A-B").get_attribute("class").split(),
          budget, "session A-B drawn up")


def test_the_agents_watch_alone_moves_the_page(live, browser):
    """A withdrawal not waited for: the recorder reads the state at once,
    often before every router heard of it; the follower of the agents'
    watch answers tells the page the rest (without it the page would not
    even show the state at start: checked by breaking it)."""
    lab, view = live
    rounds = view.follower.rounds
    with view.lock:
        lab.withdraw("B", B_PREFIX, wait=False)
    try:
        _wait(lambda: _tree(browser) == "", 10, "no tree once B withdrew its prefix")
        assert "noroute" in browser.find_element("id", "as-A").get_attribute("class").split()
        _wait(lambda: view.follower.rounds > rounds, 5, "the follower heard of it")
    finally:
        with view.lock:
            lab.announce("B", B_PREFIX)
    _wait(lambda: _tree(browser) == "session-A-B session-B-T", 10, "the tree back")


def test_no_console_error_and_no_request_but_to_the_server(live, browser):
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert errors == []
    origin = f"http://127.0.0.1:{live[1].port}/"
    urls = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    assert urls and all(u.startswith(origin) or u.startswith(("chrome:", "data:", "about:")) for u in urls), urls
    browser.find_element("id", "as-A").click()
    browser.find_element("css selector", "#glass summary").click()
    _wait(lambda: "received from B" in browser.find_element("id", "glass-body").text, 5, "the looking glass")
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1300, min(int(height) + 100, 5000))
    browser.save_screenshot(str(ARTIFACTS / "live-full.png"))


def test_an_exercises_criteria_are_shown_and_the_view_stops_clean(live, browser):
    """A second view of the same lab, as an exercise's harness starts it
    (with criteria); its page shows each criterion's state after a check.
    Stopping it frees its port and leaves none of its threads."""
    from testbed.live import LiveView

    lab, view = live
    extra = LiveView(lab, view.recorder, port=0, criteria=[
        {"name": "a_reaches_b", "description": "A reaches B over the peering"}]).start()
    port = extra.port
    try:
        browser.get(extra.url)
        table = lambda: browser.find_element("id", "criteria").text
        _wait(lambda: "not checked" in table(), 5, "the criteria before a check")
        extra.criteria_checked([{"name": "a_reaches_b", "description": "A reaches B over the peering",
                                 "passed": False, "seen": "A reaches B through T", "hint": "peer with B"}])
        _wait(lambda: "failed" in table() and "hint: peer with B" in table(), 5, "the criterion failed")
        browser.save_screenshot(str(ARTIFACTS / "live-criteria.png"))
    finally:
        extra.stop()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    assert not any(t.name.startswith("testbed-live") and t.is_alive() and t not in _threads_of(view)
                   for t in threading.enumerate())


def _threads_of(view):
    return set(view._threads) | {view.follower}
