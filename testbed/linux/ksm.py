"""Merging the speakers' identical memory pages (Linux KSM) in a large lab.

Every speaker is forked from one zygote, and CPython's reference counting
writes to every object a process touches: each speaker copies ~2,200 of
the zygote's pages (~9 MiB), and two thirds of those differ from the
zygote's page in fewer than 8 words (measured in a 10-AS lab by comparing
each copied page with the zygote's). Speakers run the same code, so most
copies are alike from one speaker to the next. Kernel samepage merging
(KSM) finds identical pages and maps them once, copy-on-write: a 100-AS
lab went from 10.7 to 4.7 MiB of PSS per AS within 20 s.

Only the zygote's memory and its children's is offered for merging
(``prctl(PR_SET_MEMORY_MERGE)``, Linux 6.4 and later, inherited on fork;
``enable_for_this_process``). The kernel's merging thread, ksmd, is
host-wide: ``ensure`` starts it when it is off, at a scan rate for the
lab's size and a priority at which a busy lab leaves it CPU to scan,
recording the settings it found in the labs' root directory,
and ``restore`` puts them back when no other lab of that root is still in
use (``Lab.stop`` and ``cleanup.clean`` call it), as for the neighbour
tables. When ksmd already runs, its settings are the host's and are left
alone. ksmd costs CPU while it runs (at 1,000 pages per 20 ms, 20-25 % of
a core), which the benchmark counts as the lab's.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
from pathlib import Path

from testbed.linux.neigh_limits import locked, restore_saved

SYSFS = Path("/sys/kernel/mm/ksm")
SAVED = "ksm-settings.json"     # in the labs' root: ksmd's settings before a lab started it
SETTINGS = ("run", "pages_to_scan", "sleep_millisecs")
PR_SET_MEMORY_MERGE, PR_GET_MEMORY_MERGE = 67, 68
MIN_ROUTERS = 50                # smaller labs are small enough as they are
PAGES_PER_ROUTER = 5            # pages scanned per router and wake-up...
MAX_PAGES = 1000                # ...up to this many (50,000 pages a second)
SLEEP_MS = 20
NICE = -10                      # ksmd's priority while it runs for labs (the kernel's default: 5)


def supported() -> bool:
    """Whether this kernel can merge a whole process's memory and has KSM."""
    if not (SYSFS / "run").exists():
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(PR_GET_MEMORY_MERGE, 0, 0, 0, 0) >= 0


def wanted(routers: int, setting: str | None = None) -> bool:
    """Whether a lab of ``routers`` routers merges its pages:
    ``TESTBED_KSM`` (``setting``) "1" or "0" decides, else labs of at least
    ``MIN_ROUTERS`` routers do, where the kernel can."""
    setting = os.environ.get("TESTBED_KSM", "") if setting is None else setting
    if setting not in ("", "0", "1"):
        raise ValueError(f"TESTBED_KSM={setting!r}: use 1 (merge), 0 (do not) or leave it unset")
    if setting == "0" or (setting == "" and routers < MIN_ROUTERS):
        return False
    return supported()


def enable_for_this_process() -> None:
    """Offer this process's memory, and its future children's, to KSM.
    Raises ``OSError`` where the kernel cannot."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0) != 0:
        code = ctypes.get_errno() or errno.EINVAL
        raise OSError(code, f"prctl(PR_SET_MEMORY_MERGE): {os.strerror(code)}")


def scan_rate(routers: int) -> int:
    """Pages ksmd scans per wake-up for a lab of ``routers`` routers."""
    return max(100, min(MAX_PAGES, PAGES_PER_ROUTER * routers))


def read_settings() -> dict[str, int]:
    """ksmd's sysfs settings, and its priority as ``nice`` if it is found."""
    values = {name: int((SYSFS / name).read_text()) for name in SETTINGS}
    pid = ksmd_pid()
    if pid is not None:
        values["nice"] = os.getpriority(os.PRIO_PROCESS, pid)
    return values


def ksmd_pid() -> int | None:
    """The pid of the kernel's KSM thread; None without one."""
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/comm") as handle:
                    if handle.read().strip() == "ksmd":
                        return int(entry.name)
            except OSError:
                continue
    return None


def _write_settings(values: dict[str, int]) -> None:
    # run last: ksmd starts (or stops) with its scan rate and priority already set
    if "nice" in values:
        pid = ksmd_pid()
        if pid is not None:
            os.setpriority(os.PRIO_PROCESS, pid, values["nice"])
    for name in sorted((name for name in values if name in SETTINGS), key=lambda name: name == "run"):
        (SYSFS / name).write_text(f"{values[name]}\n")


def ensure(routers: int, root: Path) -> dict[str, tuple[int, int]]:
    """Start ksmd for a lab of ``routers`` routers if it is off;
    ``{setting: (old, new)}`` of what changed (empty if ksmd already ran)."""
    if read_settings()["run"] == 1:
        return {}  # the host's own KSM, or another lab's: left as it is
    with locked(root):
        current = read_settings()
        if current["run"] == 1:
            return {}
        saved = root / SAVED
        if not saved.exists():
            saved.write_text(json.dumps(current))
        values = {"pages_to_scan": scan_rate(routers), "sleep_millisecs": SLEEP_MS, "run": 1}
        if "nice" in current:
            # At its default priority, ksmd got 2 % of a core while a
            # 300-AS lab converged and merged next to nothing until the lab
            # was idle; at -10 it scans at the rate set (~20 % of a core),
            # and that lab converged as fast with 26 % less memory.
            values["nice"] = NICE
        _write_settings(values)
        return {name: (current[name], value) for name, value in values.items() if current[name] != value}


def restore(root: Path, except_lab: str | None = None) -> dict[str, int]:
    """Put back ksmd's settings from before a lab under ``root`` started
    it, unless a lab other than ``except_lab`` is still in use there; what
    was written (empty if nothing). Pages already merged stay merged until
    written to."""
    return restore_saved(root, SAVED, _write_settings, except_lab)
