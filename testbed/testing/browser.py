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
