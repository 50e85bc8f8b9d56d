"""testbed.linux.ksm's decisions and bookkeeping, on a stand-in for
/sys/kernel/mm/ksm: when a lab merges its speakers' pages, how fast ksmd
scans for it, and that the settings it found are put back, once, when the
last lab of the root stops, and never when the host already ran KSM."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from testbed.linux import lab_records
from testbed.linux import ksm


PRIORITY: dict[int, int] = {}


@pytest.fixture
def sysfs(tmp_path, monkeypatch) -> Path:
    directory = tmp_path / "ksm"
    directory.mkdir()
    for name, value in {"run": 0, "pages_to_scan": 100, "sleep_millisecs": 20}.items():
        (directory / name).write_text(f"{value}\n")
    monkeypatch.setattr(ksm, "SYSFS", directory)
    # ksmd as pid 36 at the kernel's priority, 5
    PRIORITY.clear()
    PRIORITY[36] = 5
    monkeypatch.setattr(ksm, "ksmd_pid", lambda: 36)
    monkeypatch.setattr(ksm.os, "getpriority", lambda which, pid: PRIORITY[pid])
    monkeypatch.setattr(ksm.os, "setpriority", lambda which, pid, value: PRIORITY.__setitem__(pid, value))
    return directory


def settings(directory: Path) -> dict[str, int]:
    return {**{name: int((directory / name).read_text()) for name in ksm.SETTINGS}, "nice": PRIORITY[36]}


def test_scan_rate_grows_with_the_lab_within_bounds():
    assert ksm.scan_rate(3) == 100
    assert ksm.scan_rate(100) == 500
    assert ksm.scan_rate(300) == ksm.scan_rate(1000) == ksm.MAX_PAGES


@pytest.mark.parametrize("routers, setting, expected", [
    (10, "", False), (49, "", False), (50, "", True), (1000, "", True),
    (10, "1", True), (1000, "0", False),
])
def test_which_labs_merge(monkeypatch, routers, setting, expected):
    monkeypatch.setattr(ksm, "supported", lambda: True)
    assert ksm.wanted(routers, setting) is expected


def test_nothing_merges_where_the_kernel_cannot(monkeypatch):
    monkeypatch.setattr(ksm, "supported", lambda: False)
    assert ksm.wanted(1000, "1") is False


def test_a_bad_setting_says_what_is_allowed():
    with pytest.raises(ValueError, match=r"TESTBED_KSM='yes': use 1 \(merge\), 0 \(do not\)"):
        ksm.wanted(100, "yes")


def test_started_for_a_lab_and_put_back_after_the_last(sysfs, tmp_path, monkeypatch):
    root = tmp_path / "root"
    assert ksm.ensure(1000, root) == {"run": (0, 1), "pages_to_scan": (100, ksm.MAX_PAGES),
                                      "nice": (5, ksm.NICE)}
    assert settings(sysfs) == {"run": 1, "pages_to_scan": ksm.MAX_PAGES, "sleep_millisecs": 20,
                               "nice": ksm.NICE}
    assert json.loads((root / ksm.SAVED).read_text()) == {"run": 0, "pages_to_scan": 100,
                                                          "sleep_millisecs": 20, "nice": 5}
    # a second lab finds ksmd running: nothing changes, nothing more is saved
    assert ksm.ensure(10, root) == {}
    assert settings(sysfs)["pages_to_scan"] == ksm.MAX_PAGES

    class Record:
        def __init__(self, lab_id, in_use):
            self.id, self.in_use = lab_id, in_use

    monkeypatch.setattr(lab_records, "labs", lambda _root: [Record("a", True), Record("b", True)])
    assert ksm.restore(root, except_lab="a") == {}  # b still runs
    assert settings(sysfs)["run"] == 1
    monkeypatch.setattr(lab_records, "labs", lambda _root: [Record("b", True)])
    assert ksm.restore(root, except_lab="b") == {"run": 0, "pages_to_scan": 100, "sleep_millisecs": 20,
                                                 "nice": 5}
    assert settings(sysfs) == {"run": 0, "pages_to_scan": 100, "sleep_millisecs": 20, "nice": 5}
    assert not (root / ksm.SAVED).exists()
    assert ksm.restore(root) == {}  # once


def test_a_host_that_runs_ksm_keeps_its_settings(sysfs, tmp_path):
    (sysfs / "run").write_text("1\n")
    (sysfs / "pages_to_scan").write_text("4000\n")
    root = tmp_path / "root"
    assert ksm.ensure(1000, root) == {}
    assert not (root / ksm.SAVED).exists()
    assert ksm.restore(root) == {}
    assert settings(sysfs) == {"run": 1, "pages_to_scan": 4000, "sleep_millisecs": 20, "nice": 5}
