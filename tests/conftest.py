"""What the test files share (the floor under tests/unit and tests/emulation).

``wait_until`` itself lives in ``testbed.testing.wait`` (scenarios and
users' scripts wait the same way); import it from there. Here:
``exabgp_env``, ExaBGP's environment and quiet logging for the tests
that use its classes directly; ``bare_namespaces``, a factory of empty network namespaces with their
loopback up, each held by an ``unshare -n sleep`` process that is killed
after the test, for the emulation tests that try kernel mechanisms outside
a lab (netlink routes, listeners); ``open_browser``, headless Debian
chromium driven by selenium for the tests that look at pages as a person
does (reports, the live view), and the flags it runs with; ``host_exclusive``,
for the tests that check host-wide settings only the last lab puts back:
with pytest-xdist every test module holds the run's ``HostLock`` shared
(from before its own lab fixtures to after them) and such a test holds it
alone, so no lab of the other worker runs meanwhile; ``host_quiet``, the
same for a whole module whose lab measures a timing (how speakers batch
a burst). Without xdist they do nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator

import pytest

from testbed.errors import MissingDependency
from testbed.report.browser import CHROMIUM_FLAGS, chromium_paths
from testbed.testing.host_lock import HostLock
from testbed.testing.wait import wait_until


def _netns_inode(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except FileNotFoundError:
        return None


@pytest.fixture(scope="session")
def _host_lock(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostLock | None]:
    """This worker's handle on the lock of the run (None without xdist).
    It lives in the controller's base temporary directory, the parent of
    every worker's own (``.../pytest-N/popen-gwK``)."""
    if not hasattr(request.config, "workerinput"):
        yield None
        return
    lock = HostLock(tmp_path_factory.getbasetemp().parent)
    try:
        yield lock
    finally:
        lock.close()


@pytest.fixture(scope="module", autouse=True)
def _host_shared(_host_lock: HostLock | None) -> Iterator[None]:
    """The module's shared hold: autouse, so it is set up before the
    module's own lab fixtures and torn down after them."""
    if _host_lock is None:
        yield
        return
    _host_lock.share()
    try:
        yield
    finally:
        _host_lock.release()


def _alone(host_lock: HostLock | None) -> Iterator[None]:
    if host_lock is None:
        yield
        return
    with host_lock.exclusive():
        yield


@pytest.fixture
def host_exclusive(_host_lock: HostLock | None, _host_shared: None) -> Iterator[None]:
    """For a test that checks what only the last lab on the host puts back
    (neighbour limits, ksmd): no lab of another xdist worker runs while it
    does. Ask for it before any fixture that starts a lab."""
    yield from _alone(_host_lock)


@pytest.fixture(scope="module")
def host_quiet(_host_lock: HostLock | None, _host_shared: None) -> Iterator[None]:
    """For a module whose lab measures how its speakers batch a burst (a
    timing the other worker's labs, taking the cores, would change): the
    host to itself for the whole module."""
    yield from _alone(_host_lock)


@pytest.fixture(scope="session")
def exabgp_env():
    """ExaBGP's environment read once and its logging quiet, as a speaker
    sets them up: for the tests that use ExaBGP's classes directly."""
    import exabgp.environment.setup  # noqa: F401 - reads ExaBGP's environment once
    from exabgp.environment import getenv
    from exabgp.logger import log

    env = getenv()
    env.log.destination = "stderr"
    env.log.level = "CRITICAL"
    log.init(env)
    return env


@pytest.fixture
def bare_namespaces() -> Iterator[Callable[[], int]]:
    """``make()`` returns the pid of a process holding a new, empty network
    namespace whose ``lo`` is up; every one is killed at the test's end."""
    holders: list[subprocess.Popen] = []
    home = _netns_inode(os.getpid())

    def make() -> int:
        holder = subprocess.Popen(["unshare", "-n", "sleep", "60"])
        holders.append(holder)
        wait_until(lambda: _netns_inode(holder.pid) not in (None, home), 5,
                   f"unshare (pid {holder.pid}) to enter a new network namespace")
        subprocess.run(["nsenter", "-t", str(holder.pid), "-n", "ip", "link", "set", "lo", "up"], check=True)
        return holder.pid

    try:
        yield make
    finally:
        for holder in holders:
            holder.kill()
            holder.wait()


@pytest.fixture(scope="module")
def open_browser():
    """``open_browser(url, width, height)``: a selenium driver on headless
    chromium (console and network logged), at ``url``; every one is quit
    and its profile removed after the module."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opened = []

    def open_(url: str, width: int = 1300, height: int = 1000):
        try:
            binary, driver_path = chromium_paths()
        except MissingDependency as exc:
            pytest.fail(str(exc))  # set-up installs both: a missing browser is a failure, not a skip
        options = webdriver.ChromeOptions()
        options.binary_location = binary
        profile = tempfile.mkdtemp(prefix="testbed-chromium-")
        for flag in (*CHROMIUM_FLAGS, f"--window-size={width},{height}", f"--user-data-dir={profile}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        try:
            driver = webdriver.Chrome(service=Service(driver_path), options=options)
        except BaseException:
            shutil.rmtree(profile, ignore_errors=True)
            raise
        opened.append((driver, profile))
        driver.get(url)
        return driver

    try:
        yield open_
    finally:
        for driver, profile in opened:
            driver.quit()
            shutil.rmtree(profile, ignore_errors=True)
