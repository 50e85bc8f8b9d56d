"""Child processes a test starts, stopped on every path.

A test that starts ``testbed`` or a harness in a child process must stop
it however the test ends: an assertion, a timeout, a child that ignores
Ctrl-C (a process started from a shell's background job ignores SIGINT, and
so do its children). ``owned_child(argv, root)`` starts the child in a
session of its own, with SIGINT at its default, and labs under the work
root ``root`` (``TESTBED_WORKDIR``); on leaving, whatever happened, it
sends SIGTERM to the child's process group, SIGKILL after a grace period,
and removes what labs under ``root`` the dead child left (``testbed.lab.
cleanup.clean``: never a lab of another root or of a live owner).
``stop_child`` is that stop on its own, for tests that stop a child
themselves and must not leave it running when it does not stop.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

from testbed.lab import cleanup


def default_signals() -> None:
    """In the child before exec: Ctrl-C and the terminating signals act,
    even if the test runs where they are ignored (a background job)."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(signum, signal.SIG_DFL)


def stop_child(child, root: Path | None = None, grace: float = 10.0) -> bool:
    """Stop ``child`` (a ``Popen`` or a pexpect ``spawn``) and its process
    group; then remove the labs it left under ``root``. Returns whether it
    had to be killed (it had not ended by itself)."""
    pid = child.pid
    killed = False
    if _alive(child):
        killed = True
        for signum, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signum)
            if _wait(child, wait):
                break
    if root is not None:
        cleanup.clean(Path(root))
    return killed


def _alive(child) -> bool:
    if isinstance(child, subprocess.Popen):
        return child.poll() is None
    return child.isalive()


def _wait(child, timeout: float) -> bool:
    if isinstance(child, subprocess.Popen):
        try:
            child.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False
    import time

    deadline = time.monotonic() + timeout
    while child.isalive():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@contextlib.contextmanager
def owned_child(argv: list[str], root: Path, **popen):
    """``Popen(argv)`` with labs under ``root``, stopped on leaving (see the
    module docstring)."""
    env = {**(popen.pop("env", None) or os.environ), "TESTBED_WORKDIR": str(root)}
    child = subprocess.Popen(argv, env=env, start_new_session=True, preexec_fn=default_signals, **popen)
    try:
        yield child
    finally:
        stop_child(child, root)
        for stream in (child.stdin, child.stdout, child.stderr):
            if stream is not None:
                stream.close()
