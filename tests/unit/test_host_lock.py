"""The lock between xdist workers (testbed.testing.host_lock), held by real
processes: each child below takes and drops it on the commands the test
writes to its stdin and answers each when done; that a child waits is seen
in /proc/locks (a blocked flock is listed there with "->")."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from testbed.testing.host_lock import LOCK, TURNSTILE
from testbed.testing.wait import wait_until

CHILD = textwrap.dedent("""
    import sys
    from testbed.testing.host_lock import HostLock
    lock = HostLock(sys.argv[1])
    held = None
    for line in sys.stdin:
        command = line.strip()
        if command == "share":
            lock.share()
        elif command == "release":
            lock.release()
        elif command == "exclusive":
            held = lock.exclusive()
            held.__enter__()
        elif command == "leave":
            held.__exit__(None, None, None)
        print("done", command, flush=True)
""")


class Child:
    def __init__(self, directory: Path) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", CHILD, str(directory)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        self.directory = directory

    def send(self, command: str) -> None:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def answered(self, timeout: float = 0) -> str | None:
        if select.select([self.process.stdout], [], [], timeout)[0]:
            return self.process.stdout.readline().strip()
        return None

    def do(self, command: str) -> None:
        """``command``, done (not waiting for the lock)."""
        self.send(command)
        assert self.answered(timeout=10) == f"done {command}", f"pid {self.process.pid}: {command} did not return"

    def waits(self, command: str, on: str) -> None:
        """``command``, which must wait on the file ``on``."""
        self.send(command)
        inode = os.stat(self.directory / on).st_ino

        def blocked() -> bool:
            reply = self.answered()
            assert reply is None, f"pid {self.process.pid}: {command} did not wait ({reply})"
            return self.process.pid in waiters(inode)
        wait_until(blocked, 10, f"pid {self.process.pid} to wait on {on} for {command}", interval=0.02)

    def got(self, command: str) -> None:
        """The waiting ``command`` returned."""
        assert self.answered(timeout=10) == f"done {command}", f"pid {self.process.pid}: {command} still waits"

    def still_waits(self) -> None:
        assert self.answered() is None, f"pid {self.process.pid} stopped waiting"


def waiters(inode: int) -> set[int]:
    """Pids blocked in flock(2) on the file of ``inode``."""
    found = set()
    with open("/proc/locks") as handle:
        for line in handle:
            fields = line.split()
            if len(fields) > 6 and fields[1] == "->" and fields[6].rsplit(":", 1)[-1] == str(inode):
                found.add(int(fields[5]))
    return found


@pytest.fixture
def children(tmp_path):
    started: list[Child] = []

    def start() -> Child:
        started.append(Child(tmp_path))
        return started[-1]

    yield start
    for child in started:
        child.process.kill()
        child.process.wait()


def test_the_exclusive_taker_waits_for_every_shared_hold_and_shares_again_after(children):
    a, b = children(), children()
    a.do("share")
    b.do("share")  # shared holds coexist
    a.waits("exclusive", on=LOCK)  # its own shared hold dropped, it waits for b's
    b.do("release")
    a.got("exclusive")
    b.waits("share", on=LOCK)  # the next module waits for the exclusive test
    a.do("leave")  # a shares again, beside b
    b.got("share")


def test_a_module_that_starts_while_the_exclusive_taker_waits_queues_behind_it(children):
    # Without the turnstile, worker a's next module would take its shared
    # hold at once beside c's, and b could wait for ever.
    a, b, c = children(), children(), children()
    a.do("share")
    c.do("share")
    b.waits("exclusive", on=LOCK)
    a.do("release")
    a.waits("share", on=TURNSTILE)
    c.do("release")
    b.got("exclusive")
    a.still_waits()
    b.do("leave")
    a.got("share")


def test_two_exclusive_takers_holding_shared_take_turns(children):
    a, b = children(), children()
    a.do("share")
    b.do("share")
    a.waits("exclusive", on=LOCK)
    b.waits("exclusive", on=LOCK)  # dropping its own shared hold lets a in, whose turn b waits out
    a.got("exclusive")
    a.send("leave")  # a shares again only after b's turn
    b.got("exclusive")
    a.still_waits()
    b.do("leave")
    a.got("leave")


def test_the_hold_of_a_process_that_died_goes_with_it(children):
    a, b = children(), children()
    a.do("share")
    b.waits("exclusive", on=LOCK)
    a.process.kill()
    b.got("exclusive")
