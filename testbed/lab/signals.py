"""Which signals stop a lab, and how they are turned into a normal exit.

Closing a terminal or an SSH session sends SIGHUP, Ctrl-\\ sends SIGQUIT,
``kill`` and service managers send SIGTERM: Python's default for each is to
die at once, leaving the lab's routers, hosts and work directory behind.
``catch_termination()`` turns each into an exception raised in the main
thread (``SystemExit(128 + signum)`` by default), so that ``finally`` blocks,
``with`` blocks and pytest fixtures stop the lab; ``restore()`` puts the
previous handlers back. Only signals nobody else handles are taken. SIGINT
(Ctrl-C) is Python's KeyboardInterrupt already.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable

TERMINATING = (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


def _exit(signum, frame):
    raise SystemExit(128 + signum)


def catch_termination(handler: Callable | None = None, *, force: bool = False) -> dict:
    """Install ``handler`` (default: raise ``SystemExit(128 + signum)``) for
    every signal of ``TERMINATING`` still at its default (every one if
    ``force``); return what ``restore`` needs. Does nothing outside the
    main thread, where Python cannot install handlers."""
    saved: dict = {}
    if threading.current_thread() is not threading.main_thread():
        return saved
    for signum in TERMINATING:
        if force or signal.getsignal(signum) is signal.SIG_DFL:
            saved[signum] = signal.signal(signum, handler or _exit)
    return saved


def restore(saved: dict) -> None:
    """Put back the handlers ``catch_termination`` replaced."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum, previous in saved.items():
        signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
    saved.clear()


def names() -> str:
    """``"SIGTERM, SIGHUP, SIGQUIT"``."""
    return ", ".join(signal.Signals(s).name for s in TERMINATING)


class Held:
    """Terminating signals held back while a lab stops (``hold``): a second
    SIGTERM or SIGHUP must not cut the teardown short. ``restore()`` puts
    the handlers back; ``exit_if_received()`` then exits as the first
    signal asked, if one came."""

    def __init__(self):
        self.received: list[int] = []
        self.saved = catch_termination(lambda signum, frame: self.received.append(signum), force=True)

    def restore(self) -> None:
        restore(self.saved)

    def exit_if_received(self) -> None:
        if self.received:
            raise SystemExit(128 + self.received[0])


def hold() -> Held:
    """Hold back SIGTERM, SIGHUP and SIGQUIT until ``Held.restore()``."""
    return Held()
