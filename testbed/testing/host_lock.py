"""A shared/exclusive lock between the processes of one test run.

Labs of two pytest-xdist workers run side by side and never touch each
other, but a few tests check the host's own settings that labs change for
as long as any lab runs (neighbour table sizes, ksmd): "the last lab puts
them back" only holds if no other lab runs meanwhile. So every test module
of a worker holds the lock SHARED while it runs, and such a test takes it
EXCLUSIVE: it waits until the other worker's module has ended, and no
other module starts until it is done.

``HostLock(directory)`` is one process's handle on the lock kept in
``directory`` (two files, ``host.lock`` and ``host.turnstile``, made if
missing; flock(2), so a dead process's hold goes with it). ``share()`` and
``release()`` take and drop a shared hold; ``exclusive()`` is a context
manager that drops this handle's shared hold, takes the lock alone, and
on leaving takes the shared hold back. A taker of the exclusive lock
first holds the turnstile, which every ``share()`` passes through: a
module that starts while it waits queues behind it, so a stream of
shared holders cannot starve it. flock(2) locks belong to an open file,
so two handles in one process exclude each other as two processes do.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

LOCK = "host.lock"
TURNSTILE = "host.turnstile"


class HostLock:
    """One process's handle on the lock in ``directory`` (see the module)."""

    def __init__(self, directory: str | os.PathLike) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / LOCK
        self._lock = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._turnstile = os.open(directory / TURNSTILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self.shared = False

    def share(self) -> None:
        """Hold the lock shared (waits while another handle holds it
        exclusive or waits to)."""
        if self.shared:
            return
        with self._through_turnstile():
            fcntl.flock(self._lock, fcntl.LOCK_SH)
        self.shared = True

    def release(self) -> None:
        """Drop the shared hold."""
        if self.shared:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self.shared = False

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """The lock alone for the body; this handle's shared hold (if any)
        is dropped meanwhile and taken back after."""
        was_shared = self.shared
        # Dropped before the turnstile: two workers that both want the lock
        # alone would otherwise each wait for the other's shared hold.
        self.release()
        try:
            with self._through_turnstile():
                fcntl.flock(self._lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._lock, fcntl.LOCK_UN)
        finally:
            if was_shared:
                self.share()

    @contextlib.contextmanager
    def _through_turnstile(self) -> Iterator[None]:
        fcntl.flock(self._turnstile, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._turnstile, fcntl.LOCK_UN)

    def close(self) -> None:
        """Drop every hold and close the files."""
        self.shared = False
        for fd in (self._lock, self._turnstile):
            os.close(fd)
