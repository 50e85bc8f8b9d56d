"""Headless chromium, for checking pages the way a person meets them
(reports, the live view, grading summaries): the flags it needs on a
machine with no network (without the background-networking ones it keeps
trying hosts the network refuses) and where the browser and its driver are."""

from __future__ import annotations

import shutil

from testbed.errors import MissingDependency

CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage")
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium_paths() -> tuple[str, str]:
    """The browser and its driver (``chromedriver``), or ``MissingDependency``
    saying what to install."""
    driver = shutil.which("chromedriver")
    browser = next((found for name in BROWSERS if (found := shutil.which(name))), None)
    if driver is None or browser is None:
        raise MissingDependency("checking pages needs chromium (or Chrome) and chromedriver: "
                                "run scripts/setup.sh as root")
    return browser, driver


def page_problems(paths: list, driver=None) -> dict[str, list[str]]:
    """Open each page in headless chromium and say what is wrong with it:
    an error in its console (also after choosing some of its states and
    another destination and router, so the page's script runs over its data) or a request for anything
    but the page itself. ``{page: [problems]}``, empty lists where all is
    well. Needs selenium and ``chromium_paths()``."""
    import json
    import tempfile

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import Select

    profile = None
    if driver is None:
        binary, driver_path = chromium_paths()
        options = webdriver.ChromeOptions()
        options.binary_location = binary
        profile = tempfile.mkdtemp(prefix="testbed-chromium-")
        for flag in (*CHROMIUM_FLAGS, "--window-size=1300,1000", f"--user-data-dir={profile}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        own = webdriver.Chrome(service=Service(driver_path), options=options)
    else:
        own = None
    browser = driver or own
    found: dict[str, list[str]] = {}
    try:
        for path in paths:
            url = path.resolve().as_uri()
            browser.get_log("browser"), browser.get_log("performance")  # drop what came before
            browser.get(url)
            problems = []
            # Two moments of the run (the last, and one between; later
            # states are stored as changes to earlier ones, so the last goes
            # through the page's script over all of them), and another
            # destination and router than the ones shown first.
            for element_id, samples in (("state", 2), ("destination", 1), ("router", 1)):
                chosen = browser.find_elements("id", element_id)
                if chosen and chosen[0].tag_name == "select":
                    count = len(Select(chosen[0]).options)
                    picks = sorted({count - 1 - (count - 1) * k // samples for k in range(samples)})
                    for index in picks:
                        Select(browser.find_element("id", element_id)).select_by_index(index)
            problems += [f"console: {entry['message']}" for entry in browser.get_log("browser")
                         if entry["level"] in ("SEVERE", "ERROR")]
            for entry in browser.get_log("performance"):
                message = json.loads(entry["message"])["message"]
                if message.get("method") == "Network.requestWillBeSent":
                    asked = message["params"]["request"]["url"]
                    if asked != url and not asked.startswith(("chrome:", "data:", "about:")):
                        problems.append(f"request: {asked}")
            found[str(path)] = problems
    finally:
        if own is not None:
            own.quit()
        if profile is not None:
            shutil.rmtree(profile, ignore_errors=True)
    return found
