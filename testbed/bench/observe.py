"""Observing a running lab from outside, for the measuring tools.

The benchmark, its experiments and the soak read a lab through ``/proc``
only: its processes are those tagged with its id (``lab_pids``,
``testbed.linux.processes``), each one's kind (speaker, agent, shell,
zygote), memory (PSS and RSS from ``smaps_rollup``) and CPU time (the
scheduler's count, in clock ticks); a
``MemorySampler`` thread keeps the peaks and stops a lab before the machine
runs out of memory; ``idle_cpu``, ``ksmd_ticks`` and ``wait_merged`` read
the CPU of an idle lab and of the kernel's page merging. ``phases`` turns
the lab's progress lines into the durations of its start, and
``leftovers`` says whether ``stop()`` left a process or the work directory
behind.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from testbed.linux.processes import proc_stat, tagged_processes

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SAMPLE_PERIOD = 0.5    # seconds between memory samples
MIB = 1024 * 1024


def phases(stages: list[tuple[str, float]], end: float) -> dict[str, float]:
    """Seconds per start-up phase from ``Lab``'s progress lines and when
    each came (monotonic), each phase named by its line's first clause and
    lasting until the next line (the last until ``end``)."""
    marks = stages + [("", end)]
    return {stage.split(":")[0]: round(marks[i + 1][1] - at, 3) for i, (stage, at) in enumerate(stages)}


def lab_pids(lab_id: str | None) -> list[int]:
    """The processes tagged with a lab's id (none without an id)."""
    return tagged_processes().get(lab_id, []) if lab_id else []


def leftovers(lab) -> tuple[int, bool]:
    """After ``stop()``: how many of the lab's processes are left, and
    whether its work directory is."""
    return len(lab_pids(lab.id)), bool(lab.workdir and lab.workdir.exists())



def memory(pid: int) -> tuple[int, int]:
    """(PSS, RSS) of ``pid`` in bytes; (0, 0) if it is gone."""
    pss = rss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1]) * 1024
                elif line.startswith("Rss:"):
                    rss = int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return pss, rss


def cpu_ticks(pid: int) -> float | None:
    """CPU time of ``pid`` in clock ticks; None if it is gone.

    The scheduler's nanosecond count of each of its threads
    (``/proc/<pid>/task/*/schedstat``; a thread that ended no longer
    counts), not utime + stime of ``/proc/<pid>/stat``: where the kernel
    accounts CPU by timer tick (this one does), a whole tick goes to
    whoever runs when it fires, and processes that run in bursts shorter
    than a tick are mostly missed (a 100-AS lab of BIRD routers: 0.2 s by
    ticks, 1.0 s by the scheduler; its node shells 0.0 s against 0.7 s).
    Where there is no schedstat, utime + stime."""
    nanoseconds = 0
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/schedstat") as handle:
                nanoseconds += int(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        fields = proc_stat(pid)
        return None if fields is None else int(fields[11]) + int(fields[12])
    return nanoseconds * CLOCK_TICKS / 1e9


def kind_of(pid: int) -> str:
    """speaker, agent or shell (node shells and anything else)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            argv = handle.read().split(b"\0")
        with open(f"/proc/{pid}/comm", "rb") as handle:
            comm = handle.read().strip()
    except OSError:
        return "gone"
    # Processes forked by the zygote share its command line; it names them.
    if comm.startswith(b"exabgp:") or comm == b"bird":  # a BIRD daemon is a router's whole speaker
        return "speaker"
    if comm.startswith(b"agent:"):
        return "agent"
    if comm.startswith(b"testbed-zygote"):
        return "zygote"
    if any(arg == b"testbed.agent" for arg in argv):
        return "agent"
    if any(Path(arg.decode(errors="replace")).name == "exabgp" for arg in argv[:2]):
        return "speaker"
    return "shell"


def lab_memory(lab_id: str) -> tuple[int, int, int]:
    """(PSS, RSS, process count) of every process of the lab."""
    pids = lab_pids(lab_id)
    pss = rss = 0
    for pid in pids:
        p, r = memory(pid)
        pss += p
        rss += r
    return pss, rss, len(pids)


MIN_AVAILABLE = 1.5 * 1024 * MIB  # below this the lab's speakers are killed: the machine is shared


def available_memory() -> int | None:
    """MemAvailable of /proc/meminfo, in bytes."""
    try:
        with open("/proc/meminfo") as handle:
            return next(int(line.split()[1]) * 1024 for line in handle if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError):
        return None


class MemorySampler:
    """Samples the lab's total memory in a thread; keeps the peaks. If the
    machine's available memory falls below ``MIN_AVAILABLE`` it kills the
    lab's speakers (the lab then fails with a crashed speaker, and stops)
    rather than let the kernel's out-of-memory killer pick a process of
    anyone else on the machine; ``exhausted`` says so."""

    def __init__(self, lab):
        self.lab = lab
        self.exhausted: str | None = None
        self.peak_pss = self.peak_rss = 0
        self.samples = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-sampler", daemon=True)

    def __enter__(self) -> "MemorySampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def sample(self) -> tuple[int, int, int]:
        pss, rss, count = lab_memory(self.lab.id)
        if count:
            with self._lock:
                self.samples += 1
                self.peak_pss = max(self.peak_pss, pss)
                self.peak_rss = max(self.peak_rss, rss)
        return pss, rss, count

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_PERIOD):
            if not self.lab.stopped:
                self.sample()
                available = available_memory()
                if available is not None and available < MIN_AVAILABLE and self.exhausted is None:
                    self.exhausted = (f"the machine had {available / MIB:.0f} MiB available with the lab "
                                      f"at {self.peak_pss / MIB:.0f} MiB PSS: its speakers were killed")
                    for speaker in list(self.lab.speakers.values()):
                        try:
                            os.kill(speaker.pid, 9)
                        except OSError:
                            pass


def idle_cpu(lab_id: str, window: float, ksmd: bool = False) -> dict[str, float]:
    """CPU used by the lab's processes over ``window`` seconds, in % of one
    core, by process kind (processes present at both ends of the window);
    with ``ksmd``, the kernel's page-merging thread's too, as the lab's."""
    before = {pid: cpu_ticks(pid) for pid in lab_pids(lab_id)}
    if ksmd:
        before[-1] = ksmd_ticks()
    t0 = time.monotonic()
    time.sleep(window)
    elapsed = time.monotonic() - t0
    used: dict[str, int] = {}
    for pid, ticks in before.items():
        after = ksmd_ticks() if pid == -1 else cpu_ticks(pid)
        if ticks is not None and after is not None:
            kind = "ksmd" if pid == -1 else kind_of(pid)
            used[kind] = used.get(kind, 0) + after - ticks
    return {kind: 100.0 * ticks / CLOCK_TICKS / elapsed for kind, ticks in sorted(used.items())}


def ksmd_ticks() -> int | None:
    """utime + stime of the kernel's KSM thread; None without one."""
    from testbed.linux.ksm import ksmd_pid

    pid = ksmd_pid()
    return None if pid is None else cpu_ticks(pid)


MERGE_SETTLE = 2.0    # KSM counts as settled once pages_sharing grew less than
MERGE_QUIET = 10.0    # this % over this many seconds...
MERGE_WAIT = 180.0    # ...or after this long


def wait_merged(log=lambda text: None) -> float:
    """Wait until KSM has merged about all it will; the seconds waited."""
    def sharing() -> int:
        from testbed.linux.ksm import SYSFS

        return int((SYSFS / "pages_sharing").read_text())

    t0 = time.monotonic()
    history = [(t0, sharing())]
    while time.monotonic() - t0 < MERGE_WAIT:
        time.sleep(1.0)
        now, count = time.monotonic(), sharing()
        history.append((now, count))
        older = [c for t, c in history if now - t >= MERGE_QUIET]
        if older and count - older[-1] <= older[-1] * MERGE_SETTLE / 100:
            break
    log(f"  KSM merged {history[-1][1]:,} page mappings; waited {time.monotonic() - t0:.0f} s")
    return time.monotonic() - t0


PROBE_LOOPS = 2_000_000  # iterations of the machine probe's pure-Python loop


def machine_probe(repeat: int = 3) -> float:
    """Milliseconds for a fixed pure-Python loop, best of ``repeat``: how
    fast this machine runs the interpreter the lab is made of, right now.

    Printed with every invocation, at its start and its end, because these
    machines are virtual and share their cores: the same code measured an
    hour apart ran the probe (and the whole benchmark) up to 1.5 times
    slower. Figures of two invocations compare only as far as their probes
    agree."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        total = 0
        for i in range(PROBE_LOOPS):
            total += i
        best = min(best, time.perf_counter() - t0)
    return best * 1000
