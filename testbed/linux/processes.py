"""The processes of a lab, found by the tag in their environment.

Every process a lab starts (node shells, ExaBGP speakers, route agents, the
zygote) carries ``TESTBED_LAB=<id>`` (``LAB_ENV``) in its environment; that
tag, read from ``/proc/<pid>/environ``, is the only way anything here finds
a lab's processes (``tagged_processes``), so a second lab, or anything else
on the machine, is never touched. ``kill`` ends a list of pids (TERM, a
bounded wait, then KILL); ``proc_stat``, ``process_start_time`` and
``alive`` read ``/proc`` for the lab and the cleanup.
"""

from __future__ import annotations

import os
import signal
import time

LAB_ENV = "TESTBED_LAB"  # the environment variable that tags a lab's processes
_TAG = LAB_ENV.encode() + b"="


def proc_stat(pid: int) -> list[bytes] | None:
    """The fields of /proc/<pid>/stat after the command name (field 3, the
    state, is index 0); None if the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    return data[data.rindex(b")") + 2:].split()


def process_start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (tells pid reuse apart)."""
    fields = proc_stat(pid)
    return None if fields is None else int(fields[19])


def lab_of(pid: int) -> str | None:
    """The lab id in the environment of ``pid``, if any."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            environ = handle.read()
    except OSError:
        return None
    for entry in environ.split(b"\0"):
        if entry.startswith(_TAG):
            return entry[len(_TAG):].decode(errors="replace")
    return None


def tagged_processes() -> dict[str, list[int]]:
    """lab id -> pids of every live process tagged with it."""
    found: dict[str, list[int]] = {}
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        lab = lab_of(int(entry))
        if lab:
            found.setdefault(lab, []).append(int(entry))
    return found


def kill(pids: list[int], grace: float = 2.0) -> list[int]:
    """SIGTERM, wait up to ``grace`` seconds, then SIGKILL. Returns the pids
    that had to be killed."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if _alive(p)]
        if alive:
            time.sleep(0.02)
    for pid in alive:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 2.0
    while any(_alive(p) for p in alive) and time.monotonic() < deadline:
        time.sleep(0.01)
    return alive


def alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie counts as gone)."""
    return _alive(pid)


def _alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (reap our children)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return False
    except ChildProcessError:
        pass
    fields = proc_stat(pid)
    return fields is not None and fields[0] != b"Z"
