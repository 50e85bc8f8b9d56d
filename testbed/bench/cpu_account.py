"""Where the CPU of a lab's start goes: per process kind, thread, phase and route.

``CpuAccount.mark(stage)`` is called at every progress stage of
``Lab.start()`` (and once before it, once at convergence); each mark reads
``/proc``: user and system time of every process of the lab (its threads
too where it has several: a zygote speaker's are named ``exabgp:<router>``
and ``agent:<router>``) and of the children each has waited for, of the
measuring process itself by thread (its main thread, the prediction
thread, the rest), of ksmd, and the whole machine's busy time from
``/proc/stat``. ``account`` (pure) turns consecutive snapshots into CPU
seconds per phase and kind; what the machine was busy with that is in no
process read is the residue ``other`` (other load on the machine, short
processes not waited for by the lab's, softirq on an idle core), so that
each phase adds up to the machine's busy time. ``split`` is what the
benchmark keeps in its JSON (``testbed.bench.cpu_report`` prints it). The
kernel here accounts CPU by ticks of ``CLOCK_TICKS``: a softirq (veth
traffic) is charged as system time to whatever ran when it came, and a
process that runs in bursts shorter than a tick is mostly missed (its
time lands in the residue). The account reads ticks because they split
user from system time as ``/proc/stat`` does; the benchmark's "CPU until
converged" is the scheduler's nanosecond count
(``testbed.bench.observe.cpu_ticks``), which is larger by what ticks miss.
"""

from __future__ import annotations

import os
import resource
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from testbed.linux.processes import lab_of

TICK = 1.0 / os.sysconf("SC_CLK_TCK")   # seconds per clock tick of /proc
RECHECK = 1.0   # seconds a process that is not the lab's is looked at again (it may not have exec'd yet)
ROUTES_PHASE = "waiting for sessions and routes"
START, END = "before the first stage", "converged"

# Buckets of CPU, in the order they are shown.
BUCKETS = ("exabgp", "agent", "zygote", "shells", "commands", "harness", "prediction",
           "harness threads", "account", "ksmd", "other")
MACHINE = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


@dataclass(frozen=True)
class Times:
    """One /proc/<pid>[/task/<tid>]/stat, in clock ticks."""

    comm: str
    user: int
    system: int
    child_user: int = 0     # of the children it waited for (cutime)
    child_system: int = 0   # (cstime)
    threads: int = 1
    start: int = 0          # start time, ticks since boot (tells a reused pid apart)


def parse_stat(data: bytes) -> Times:
    """A /proc/<pid>/stat line: the command name may hold spaces and ')'."""
    open_, close = data.index(b"("), data.rindex(b")")
    fields = data[close + 2:].split()  # fields[0] is the state (field 3 of proc(5))
    return Times(data[open_ + 1:close].decode(errors="replace"), int(fields[11]), int(fields[12]),
                 int(fields[13]), int(fields[14]), int(fields[17]), int(fields[19]))


def parse_machine(text: str) -> dict[str, int]:
    """The first line of /proc/stat (all cores), by column name, in ticks."""
    line = text.split("\n", 1)[0].split()
    if not line or line[0] != "cpu":
        raise ValueError(f"/proc/stat: expected the 'cpu' line first, found {line[:1]}")
    return {name: int(value) for name, value in zip(MACHINE, line[1:])}


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


@dataclass
class Snapshot:
    """Cumulative CPU at one moment."""

    label: str                       # the phase that begins here
    at: float                        # time.monotonic()
    processes: dict[int, Times] = field(default_factory=dict)           # the lab's, by pid
    threads: dict[int, dict[int, Times]] = field(default_factory=dict)  # pid -> tid -> times (several only)
    harness: Times | None = None
    harness_threads: dict[str, tuple[int, int]] = field(default_factory=dict)  # main/prediction -> ticks
    ksmd: Times | None = None
    machine: dict[str, int] = field(default_factory=dict)
    cost: tuple[float, float, float] = (0.0, 0.0, 0.0)  # this snapshot's own (user s, system s, wall s)
    in_main: bool = True             # taken in the harness's main thread (else another of its threads)


def read_process(pid: int, snap: Snapshot, started: int | None = None) -> int | None:
    """Add ``pid`` (and its threads, if it has several) to ``snap`` unless
    it is gone, or its start time is not ``started``: returns its start time."""
    data = _read(f"/proc/{pid}/stat")
    if data is None:
        return None
    times = parse_stat(data)
    if started is not None and times.start != started:
        return times.start
    snap.processes[pid] = times
    if times.threads > 1:
        found = {}
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            tids = []
        for tid in tids:
            data = _read(f"/proc/{pid}/task/{tid}/stat")
            if data is not None:
                found[int(tid)] = parse_stat(data)
        snap.threads[pid] = found
    return times.start


class CpuAccount:
    """Snapshots of a lab's CPU taken at the marks of its start.

    ``lab_id`` returns the lab's id ("" until it has one). The lab's
    processes are found by the tag in their environment, each read once:
    a process of the lab is known by its pid and start time after that;
    one that is not the lab's by its pid, looked at again for ``RECHECK``
    seconds (it may be one forked that has not yet exec'd) and forgotten
    when it is gone; those running at a mark before the lab has an id are
    never read (on a machine of 3,000 processes under load, reading their
    environments made a snapshot take 1 s). A process of the lab that
    took, between two marks, the pid of one that was not is missed: its
    CPU falls in ``other``."""

    def __init__(self, lab_id: Callable[[], str], ksmd: bool = True):
        self.lab_id = lab_id
        self.snapshots: list[Snapshot] = []
        self._ksmd_pid: int | None = None
        if ksmd:
            from testbed.linux.ksm import ksmd_pid

            self._ksmd_pid = ksmd_pid()
        self._mine: dict[int, int | None] = {}  # pid -> start time
        self._not_mine: dict[int, float] = {}   # pid -> when first seen
        self._lock = threading.Lock()

    def _lab_pids(self, now: float) -> list[int]:
        lab = self.lab_id()
        if not lab:  # before the lab has an id: what runs now is not of it (and is never read)
            for entry in os.listdir("/proc"):
                if entry.isdigit():
                    self._not_mine.setdefault(int(entry), float("-inf"))
            return []
        me = os.getpid()
        pids = []
        listed = set()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            listed.add(pid)
            if pid in self._mine:
                pids.append(pid)
                continue
            seen = self._not_mine.get(pid)
            if pid == me or (seen is not None and now - seen > RECHECK):
                continue
            if lab_of(pid) == lab:
                self._mine[pid] = None
                self._not_mine.pop(pid, None)
                pids.append(pid)
            elif seen is None:
                self._not_mine[pid] = now
        for pid in [pid for pid in self._not_mine if pid not in listed]:
            del self._not_mine[pid]
        for pid in [pid for pid in self._mine if pid not in listed]:
            del self._mine[pid]
        return pids

    def mark(self, stage: str) -> Snapshot:
        """Take a snapshot; ``stage`` names the phase that begins now. After
        the mark of ``END`` (converged) it takes none: a lab's later
        progress lines (an event's) are not of its start."""
        with self._lock:
            if self.snapshots and self.snapshots[-1].label == END:
                return self.snapshots[-1]
            before = resource.getrusage(resource.RUSAGE_THREAD)
            wall = time.perf_counter()
            snap = Snapshot(stage.split(":")[0], time.monotonic(),
                            in_main=threading.current_thread() is threading.main_thread())
            # The machine first, at the mark: the processes' reads follow
            # within the snapshot's wall time (kept in ``cost``).
            snap.machine = parse_machine((_read("/proc/stat") or b"").decode())
            for pid in self._lab_pids(snap.at):
                started = read_process(pid, snap, self._mine[pid])
                if started is not None and pid not in snap.processes:  # the pid was reused
                    del self._mine[pid]
                    if lab_of(pid) == self.lab_id():
                        self._mine[pid] = read_process(pid, snap)
                else:
                    self._mine[pid] = started
            self._read_harness(snap)
            if self._ksmd_pid is not None:
                data = _read(f"/proc/{self._ksmd_pid}/stat")
                snap.ksmd = parse_stat(data) if data else None
            after = resource.getrusage(resource.RUSAGE_THREAD)
            snap.cost = (after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime,
                         time.perf_counter() - wall)
            self.snapshots.append(snap)
            return snap

    def _read_harness(self, snap: Snapshot) -> None:
        data = _read("/proc/self/stat")
        snap.harness = parse_stat(data) if data else None
        main = threading.main_thread().native_id
        names = {thread.native_id: "harness" if thread.native_id == main else thread.name
                 for thread in threading.enumerate()}
        for tid in os.listdir("/proc/self/task"):
            name = names.get(int(tid))
            if name in ("harness", "prediction"):
                data = _read(f"/proc/self/task/{tid}/stat")
                if data:
                    times = parse_stat(data)
                    snap.harness_threads[name] = (times.user, times.system)

    def kinds(self) -> dict[int, str]:
        """The kind of every process seen (``observe.kind_of`` while it
        lives, else by the name it last had)."""
        from testbed.bench.observe import kind_of

        kinds: dict[int, str] = {}
        for snap in reversed(self.snapshots):
            for pid, times in snap.processes.items():
                if pid not in kinds:
                    kind = kind_of(pid)
                    kinds[pid] = kind if kind != "gone" else kind_by_name(times.comm)
        return kinds


def kind_by_name(comm: str) -> str:
    if comm.startswith("exabgp"):
        return "speaker"
    if comm.startswith("agent"):
        return "agent"
    if comm.startswith("testbed-zygote"):
        return "zygote"
    return "shell"


KIND_BUCKET = {"speaker": "exabgp", "agent": "agent", "zygote": "zygote", "shell": "shells"}

Cpu = dict[str, list[float]]  # bucket -> [user s, system s]


def _add(cpu: Cpu, bucket: str, user: float, system: float) -> None:
    entry = cpu.setdefault(bucket, [0.0, 0.0])
    entry[0] += user
    entry[1] += system


def _delta(after: Times, before: Times | None) -> tuple[int, int, int, int]:
    if before is None:  # born in this phase: everything it has is of it
        before = Times("", 0, 0)
    return (after.user - before.user, after.system - before.system,
            after.child_user - before.child_user, after.child_system - before.child_system)


def speaker_split(pid: int, a: Snapshot, b: Snapshot) -> tuple[float, float, float, float]:
    """(ExaBGP user, system, agent user, system) seconds of one speaker
    between two snapshots: the agent is its threads named agent:*, ExaBGP
    the rest of the process (its reactor's thread)."""
    user, system, _, _ = _delta(b.processes[pid], a.processes.get(pid))
    agent_user = agent_system = 0
    for tid, times in b.threads.get(pid, {}).items():
        if times.comm.startswith("agent"):
            before = a.threads.get(pid, {}).get(tid)
            agent_user += times.user - (before.user if before else 0)
            agent_system += times.system - (before.system if before else 0)
    return ((user - agent_user) * TICK, (system - agent_system) * TICK, agent_user * TICK, agent_system * TICK)


def account_phase(a: Snapshot, b: Snapshot, kinds: dict[int, str]) -> dict:
    """CPU seconds by bucket between two snapshots, and the machine's."""
    cpu: Cpu = {}
    for pid, times in b.processes.items():
        kind = kinds.get(pid, kind_by_name(times.comm))
        user, system, child_user, child_system = _delta(times, a.processes.get(pid))
        if kind == "speaker":
            eu, es, au, as_ = speaker_split(pid, a, b)
            _add(cpu, "exabgp", eu, es)
            _add(cpu, "agent", au, as_)
        else:
            _add(cpu, KIND_BUCKET.get(kind, kind), user * TICK, system * TICK)
        _add(cpu, "commands", child_user * TICK, child_system * TICK)
    if b.harness is not None:
        # The measuring process: its main thread, the prediction's thread,
        # and the rest (the build's thread pools, the memory sampler, ended
        # threads), less this account's own snapshot from the thread it ran in.
        user, system, child_user, child_system = _delta(b.harness, a.harness)
        rest = [user * TICK, system * TICK]
        for name in ("harness", "prediction"):
            now, then = b.harness_threads.get(name), a.harness_threads.get(name, (0, 0))
            if now is None:
                continue
            du, ds = (now[0] - then[0]) * TICK, (now[1] - then[1]) * TICK
            rest = [rest[0] - du, rest[1] - ds]
            _add(cpu, name, du, ds)
        _add(cpu, "harness threads", *rest)
        _add(cpu, "harness" if b.in_main else "harness threads", -b.cost[0], -b.cost[1])
        _add(cpu, "account", b.cost[0], b.cost[1])
        _add(cpu, "commands", child_user * TICK, child_system * TICK)
    if b.ksmd is not None:
        user, system, _, _ = _delta(b.ksmd, a.ksmd)
        _add(cpu, "ksmd", user * TICK, system * TICK)
    machine = {name: (b.machine.get(name, 0) - a.machine.get(name, 0)) * TICK for name in MACHINE}
    busy_user = machine["user"] + machine["nice"]
    busy_system = machine["system"] + machine["irq"] + machine["softirq"]
    known_user = sum(v[0] for v in cpu.values())
    known_system = sum(v[1] for v in cpu.values())
    _add(cpu, "other", busy_user - known_user, busy_system - known_system)
    return {"phase": a.label, "wall_s": b.at - a.at,
            "cpu": {k: [round(v[0], 3), round(v[1], 3)] for k, v in cpu.items()},
            "machine": {"busy": round(busy_user + busy_system, 3), "user": round(busy_user, 3),
                        "system": round(busy_system, 3), "softirq": round(machine["softirq"], 3),
                        "idle": round(machine["idle"] + machine["iowait"], 3),
                        "steal": round(machine["steal"], 3)}}


def sessions_bucket(count: int) -> str:
    return "1" if count <= 1 else "2-3" if count <= 3 else ">3"


def by_sessions(a: Snapshot, b: Snapshot, kinds: dict[int, str], speaker_pids: dict[str, int],
                sessions: dict[str, int], routes: dict[str, int],
                routes_out: dict[str, int] | None = None) -> list[dict]:
    """The speakers' CPU between two snapshots grouped by their number of
    sessions (1, 2-3, >3), with the routes they received and sent."""
    groups: dict[str, dict] = {}
    for router, pid in speaker_pids.items():
        if pid not in b.processes or kinds.get(pid) != "speaker":
            continue
        eu, es, au, as_ = speaker_split(pid, a, b)
        key = sessions_bucket(sessions.get(router, 0))
        group = groups.setdefault(key, {"sessions": key, "speakers": 0, "session_ends": 0, "routes_in": 0,
                                        "routes_out": 0, "exabgp_s": 0.0, "agent_s": 0.0})
        group["speakers"] += 1
        group["session_ends"] += sessions.get(router, 0)
        group["routes_in"] += routes.get(router, 0)
        group["routes_out"] += (routes_out or {}).get(router, 0)
        group["exabgp_s"] += eu + es
        group["agent_s"] += au + as_
    return [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in groups[key].items()}
            for key in ("1", "2-3", ">3") if key in groups]


def split(account: CpuAccount, speaker_pids: dict[str, int] | None = None,
          sessions: dict[str, int] | None = None, routes: dict[str, int] | None = None,
          kinds: dict[int, str] | None = None, routes_out: dict[str, int] | None = None) -> dict:
    """What the benchmark keeps: every phase's account, the routes phase
    by sessions per speaker, and what the snapshots cost (``kinds``: the
    processes' kinds, else ``account.kinds()``)."""
    snaps = account.snapshots
    kinds = kinds if kinds is not None else account.kinds()
    phases = [account_phase(a, b, kinds) for a, b in zip(snaps, snaps[1:]) if b.at > a.at or a.label != b.label]
    grouped: list[dict] = []
    for a, b in zip(snaps, snaps[1:]):
        if a.label == ROUTES_PHASE and speaker_pids:
            grouped = by_sessions(a, b, kinds, speaker_pids, sessions or {}, routes or {}, routes_out)
    costs = [s.cost for s in snaps]
    return {"phases": phases, "routes_phase": ROUTES_PHASE,
            "routes_in": sum((routes or {}).values()) or None, "by_sessions": grouped,
            "snapshots": len(snaps), "lab_processes": len(snaps[-1].processes) if snaps else 0,
            "snapshot_cpu_ms_max": round(max((c[0] + c[1] for c in costs), default=0) * 1000, 2),
            "snapshot_wall_ms_max": round(max((c[2] for c in costs), default=0) * 1000, 2),
            "snapshot_ms": [[round((c[0] + c[1]) * 1000, 2), round(c[2] * 1000, 2)] for c in costs],
            "tick_s": TICK}


def totals(phases: list[dict]) -> dict[str, list[float]]:
    """The buckets summed over phases: [user s, system s] each."""
    total: Cpu = {}
    for phase in phases:
        for bucket, (user, system) in phase["cpu"].items():
            _add(total, bucket, user, system)
    return total


def lab_split(account: CpuAccount, lab) -> dict:
    """``split`` of a started lab: its speakers, their sessions and the
    routes each received (asked of each router's agent)."""
    sessions: dict[str, int] = {}
    for session in lab.plan.sessions:
        for end in (session.a, session.b):
            sessions[end] = sessions.get(end, 0) + 1
    routes: dict[str, int] = {}
    routes_out: dict[str, int] = {}
    for name in lab.plan.routers:
        try:
            stats = lab.clients[name].request("summary").get("stats") or {}
        except Exception:  # noqa: BLE001 - a router that cannot say counts none
            stats = {}
        routes[name] = stats.get("routes_in", 0)
        routes_out[name] = stats.get("announced_out", 0) + stats.get("withdrawn_out", 0)
    pids = {name: speaker.pid for name, speaker in lab.speakers.items() if getattr(speaker, "pid", None)}
    return split(account, pids, sessions, routes, routes_out=routes_out)
