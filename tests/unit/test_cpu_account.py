"""The benchmark's CPU account (testbed.bench.cpu_account, cpu_report):
reading /proc (a zygote speaker's stat lines captured from a lab, this
machine's /proc/stat, this process's own entries and a tagged child's),
the accounting of snapshots into buckets, its residue, and the table."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from testbed.bench.cpu_account import (TICK, CpuAccount, Snapshot, Times, account_phase, by_sessions,
                                       parse_machine, parse_stat, sessions_bucket, split, totals)
from testbed.bench.cpu_report import cost_line, cpu_rows, cpu_tables, markdown, short
from testbed.bench.cpu_report import main as cpu_report_main
from testbed.linux.processes import LAB_ENV

DATA = Path(__file__).parent / "data"


def test_a_speakers_stat_lines_give_its_threads_names_and_ticks():
    process, main, agent = [parse_stat(line) for line in (DATA / "proc_speaker_stat.txt").read_bytes().splitlines()]
    assert (process.comm, process.user, process.system, process.threads) == ("exabgp:r1", 4, 0, 2)
    assert (main.comm, main.user) == ("exabgp:r1", 3) and (agent.comm, agent.user) == ("agent:r1", 1)
    assert process.user == main.user + agent.user


def test_a_name_with_spaces_and_parentheses_is_read_whole():
    """A thread of this process renamed (prctl, as the speakers name theirs)
    to something that breaks a naive split of its stat line."""
    named = threading.Event()
    done = threading.Event()
    tids = []

    def run():
        ctypes.CDLL(None).prctl(15, b"a) b (c", 0, 0, 0)
        tids.append(threading.get_native_id())
        named.set()
        done.wait(5)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        named.wait(5)
        times = parse_stat(Path(f"/proc/self/task/{tids[0]}/stat").read_bytes())
        assert times.comm == "a) b (c" and times.threads >= 2
    finally:
        done.set()
        thread.join()


def test_this_process_own_ticks_match_what_the_kernel_tells_it():
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:
        pass
    times = parse_stat(Path("/proc/self/stat").read_bytes())
    own = os.times()
    assert times.comm == Path("/proc/self/comm").read_text().strip()
    assert abs((times.user + times.system) * TICK - (own.user + own.system)) <= 2 * TICK
    assert times.threads == len(os.listdir("/proc/self/task"))


def test_the_machine_line_is_read_by_column_and_anything_else_refused():
    machine = parse_machine((DATA / "proc_stat.txt").read_text())
    assert machine == {"user": 1112870, "nice": 4260, "system": 213793, "idle": 2957892, "iowait": 3242,
                       "irq": 0, "softirq": 5735, "steal": 809}
    with pytest.raises(ValueError, match="cpu"):
        parse_machine("intr 1 2 3\n")


def snapshots() -> tuple[Snapshot, Snapshot]:
    """Two snapshots of a lab: a speaker (pid 10, ExaBGP and agent threads),
    a shell (11) that ran commands, a speaker born between them (12),
    the harness by thread, ksmd, and the machine."""
    a = Snapshot("waiting for sessions and routes", 100.0)
    a.processes = {10: Times("exabgp:r1", 50, 10, threads=2), 11: Times("bash", 5, 5, 1, 1)}
    a.threads = {10: {10: Times("exabgp:r1", 40, 8), 20: Times("agent:r1", 10, 2)}}
    a.harness = Times("python", 100, 20, 3, 3, threads=3)
    a.harness_threads = {"harness": (80, 15), "prediction": (10, 2)}
    a.ksmd = Times("ksmd", 0, 40)
    a.machine = {"user": 1000, "nice": 0, "system": 500, "idle": 900, "iowait": 0, "irq": 0, "softirq": 7,
                 "steal": 3}
    b = Snapshot("converged", 102.0, cost=(0.01, 0.02, 0.05))
    b.processes = {10: Times("exabgp:r1", 150, 30, threads=2), 11: Times("bash", 6, 7, 21, 11),
                   12: Times("exabgp:r2", 20, 0, threads=2)}
    b.threads = {10: {10: Times("exabgp:r1", 100, 20), 20: Times("agent:r1", 50, 10)},
                 12: {12: Times("exabgp:r2", 15, 0), 13: Times("agent:r2", 5, 0)}}
    b.harness = Times("python", 130, 30, 3, 3, threads=2)
    b.harness_threads = {"harness": (100, 20)}   # the prediction's thread ended
    b.ksmd = Times("ksmd", 0, 45)
    b.machine = {"user": 1400, "nice": 10, "system": 600, "idle": 950, "iowait": 2, "irq": 0,
                 "softirq": 17, "steal": 4}
    return a, b


KINDS = {10: "speaker", 11: "shell", 12: "speaker"}


def test_a_phase_is_split_by_thread_and_kind():
    a, b = snapshots()
    phase = account_phase(a, b, KINDS)
    cpu = {k: [round(x / TICK) for x in v] for k, v in phase["cpu"].items()}  # back to ticks
    # speaker 10: 100+20 ticks, of which the agent's thread 40+8; speaker 12 born: all of its 20+0.
    assert cpu["agent"] == [40 + 5, 8] and cpu["exabgp"] == [60 + 15, 12]
    assert cpu["shells"] == [1, 2] and cpu["commands"] == [20, 10]  # the shell's waited-for children
    # harness 30+10: main 20+5 less the account's snapshot (1+2 ticks), the prediction's thread gone.
    assert cpu["account"] == [1, 2] and cpu["harness"] == [19, 3]
    assert cpu["harness threads"] == [10, 5] and "prediction" not in cpu
    assert cpu["ksmd"] == [0, 5]
    b.in_main = False  # a mark from another of the harness's threads costs that thread
    cpu = {k: [round(x / TICK) for x in v] for k, v in account_phase(a, b, KINDS)["cpu"].items()}
    assert cpu["harness"] == [20, 5] and cpu["harness threads"] == [9, 3] and cpu["account"] == [1, 2]
    assert phase["wall_s"] == 2.0
    machine = phase["machine"]
    assert round(machine["busy"] / TICK) == 410 + 100 + 10 and round(machine["softirq"] / TICK) == 10
    assert round(machine["idle"] / TICK) == 52 and round(machine["steal"] / TICK) == 1


def test_the_residue_makes_each_phase_add_up_to_the_machines_busy_time():
    a, b = snapshots()
    phase = account_phase(a, b, KINDS)
    known = sum(sum(v) for k, v in phase["cpu"].items() if k != "other")
    assert sum(sum(v) for v in phase["cpu"].values()) == pytest.approx(phase["machine"]["busy"])
    assert sum(phase["cpu"]["other"]) == pytest.approx(phase["machine"]["busy"] - known)
    # user and system each add up too: the residue's user part is the machine's user time less the known.
    user = sum(v[0] for v in phase["cpu"].values())
    assert user == pytest.approx(phase["machine"]["user"])
    # known user ticks: ExaBGP 75, agent 45, shell 1, commands 20, account 1, harness 19, other threads 10
    assert round(phase["cpu"]["other"][0] / TICK) == 410 - (75 + 45 + 1 + 20 + 1 + 19 + 10)


def test_speakers_group_by_their_number_of_sessions():
    a, b = snapshots()
    groups = by_sessions(a, b, KINDS, {"r1": 10, "r2": 12, "gone": 99}, {"r1": 1, "r2": 4},
                         {"r1": 100, "r2": 300})
    assert [g["sessions"] for g in groups] == ["1", ">3"]
    one, many = groups
    assert one["routes_in"] == 100 and one["exabgp_s"] == pytest.approx(72 * TICK)
    assert one["agent_s"] == pytest.approx(48 * TICK)
    assert many["speakers"] == 1 and many["exabgp_s"] == pytest.approx(15 * TICK)
    assert [sessions_bucket(n) for n in (1, 2, 3, 4)] == ["1", "2-3", "2-3", ">3"]


def test_the_table_shows_every_kind_by_phase_the_total_and_cpu_per_route(tmp_path, capsys):
    a, b = snapshots()
    account = CpuAccount(lambda: "", ksmd=False)
    account.snapshots = [a, b]
    result = split(account, {"r1": 10, "r2": 12}, {"r1": 1, "r2": 4}, {"r1": 100, "r2": 300},
                   KINDS, routes_out={"r1": 50, "r2": 600})
    assert result["routes_in"] == 400 and len(result["phases"]) == 1
    header, rows = cpu_rows(result)
    assert header == ["kind", "routes", "start → converged", "user / system", "µs per route (routes phase)"]
    by_kind = {row[0]: row for row in rows}
    exabgp = by_kind["speakers: ExaBGP thread"]
    assert exabgp[2] == "0.87" and exabgp[3] == "0.8 / 0.1"  # 75 + 12 ticks
    assert float(exabgp[4]) == pytest.approx(sum(totals(result["phases"])["exabgp"]) / 400 * 1e6, abs=1)
    assert "harness: prediction" not in by_kind  # nothing of it in this phase
    busy = by_kind["machine: busy (all of the above)"]
    kinds = [row for row in rows[1:] if not row[0].startswith(("machine: busy", "machine: idle", "machine: stolen", "  of"))]
    assert sum(float(row[2]) for row in kinds) == pytest.approx(float(busy[2]), abs=0.01 * len(kinds))
    assert len(cpu_tables(result, "test")) == 2 and "2 snapshots" in cost_line(result)
    assert short("started the kernel's page merging (KSM) for this lab (put back when the last lab "
                 "stops)") == "KSM on" and short("a stage never seen before") == "a stage never"
    text = markdown(result)
    assert "| speakers: agent thread | 0.53 | 0.53 | 0.5 / 0.1 |" in text and "| >3 | 1 | 300 / 600 | 0.15 | 0.05 | 500 | 167 |" in text
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"results": [{"size": 2, "model": "zygote", "cpu_split": result}]}))
    assert cpu_report_main([str(path)]) == 0 and "| kind | routes |" in capsys.readouterr().out


def test_a_tagged_process_and_a_named_thread_are_found_and_charged():
    """Real /proc: a child tagged with a lab id burns CPU between two marks
    and lands in the shells' bucket; the prediction thread in its own."""
    lab = f"cpu-account-{uuid.uuid4().hex[:8]}"
    account = CpuAccount(lambda: lab, ksmd=False)
    child = subprocess.Popen([sys.executable, "-c", "import sys,time\nsys.stdin.readline()\n"
                              "t=time.process_time()+0.1\nwhile time.process_time()<t: pass\n"
                              "print('burnt', flush=True)\nsys.stdin.read()"],
                             env={**os.environ, LAB_ENV: lab}, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    stop, burnt = threading.Event(), threading.Event()

    def predict():
        deadline = time.thread_time() + 0.05
        while time.thread_time() < deadline:
            pass
        burnt.set()
        stop.wait(10)

    try:
        time.sleep(0.05)  # the interpreter starts (its own CPU, before the first mark)
        account.mark("before")
        thread = threading.Thread(target=predict, name="prediction")
        thread.start()
        child.stdin.write(b"go\n")
        child.stdin.flush()
        assert child.stdout.readline() == b"burnt\n"
        assert burnt.wait(30)
        account.mark("converged")
        stop.set()
        thread.join()
    finally:
        child.communicate(b"")
    before, after = account.snapshots
    assert child.pid in after.processes
    phase = account_phase(before, after, {child.pid: "shell"})
    assert sum(phase["cpu"]["shells"]) >= 0.09
    assert sum(phase["cpu"]["prediction"]) >= 0.04
    assert after.cost[0] + after.cost[1] < 0.1  # CPU: its wall time is the machine's load


def test_what_ran_before_the_lab_had_an_id_is_never_read():
    """The first mark, before the lab has an id, only lists /proc: a
    process already running then is not the lab's (one started later is)."""
    lab = f"cpu-account-{uuid.uuid4().hex[:8]}"
    current = [""]
    account = CpuAccount(lambda: current[0], ksmd=False)
    env = {**os.environ, LAB_ENV: lab}
    # each child says it runs before it is looked for: until it has exec'd,
    # a fresh child is a copy of this process, without the lab's tag
    command = [sys.executable, "-c", "import sys; print('running', flush=True); sys.stdin.read()"]
    early = subprocess.Popen(command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    late = None
    try:
        assert early.stdout.readline() == b"running\n"
        account.mark("before")
        late = subprocess.Popen(command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert late.stdout.readline() == b"running\n"
        current[0] = lab
        snap = account.mark("converged")
        assert late.pid in snap.processes and early.pid not in snap.processes
        assert account.mark("an event after convergence") is snap and len(account.snapshots) == 2
    finally:
        for child in (early, late):
            if child is not None:
                child.communicate(b"")
