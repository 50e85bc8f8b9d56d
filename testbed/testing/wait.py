"""Waiting for a condition, never for a time: ``wait_until``.

A test (or a scenario, or a user's script) that must wait for something the
lab sends no event for (a process to exit, a namespace to appear, a session
to drop after a fault) hands ``wait_until`` a ``check`` to call again and
again, how long it may take and what it waits for in words. It returns the
first truthy value ``check`` gave; after ``timeout`` seconds it raises
``WaitTimeout``, whose message says what was awaited, for how long, and
what ``check`` returned last (and, if given, what ``explain()`` says about
the state then). Nothing here touches the lab: a wait only waits.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from testbed.errors import TestbedError

T = TypeVar("T")


class WaitTimeout(TestbedError, AssertionError):
    """A condition did not hold in time. An ``AssertionError`` too, so that a
    test waiting for something that never happens fails rather than errors.
    ``describe`` is what was awaited, ``seen`` what the check returned last."""

    def __init__(self, describe: str, timeout: float, seen: object, detail: str = ""):
        self.describe, self.timeout, self.seen = describe, timeout, seen
        message = f"timed out after {timeout:g} s waiting for {describe}; last seen: {seen!r}"
        super().__init__(f"{message}\n{detail}" if detail else message)


def wait_until(check: Callable[[], T], timeout: float, describe: str, *,
               interval: float = 0.01, explain: Callable[[], str] | None = None) -> T:
    """Call ``check()`` every ``interval`` seconds until it returns something
    truthy, and return that. ``check`` is called at least once, and once
    more at the deadline. On timeout raise ``WaitTimeout`` naming
    ``describe`` (written as what is awaited: "router A's session with B to
    go down"), the last value seen and ``explain()`` if given. Exceptions
    ``check`` raises are not caught: a check that cannot look is a failure
    of its own."""
    if timeout < 0:
        raise ValueError(f"wait_until: timeout must not be negative, got {timeout}")
    deadline = time.monotonic() + timeout
    while True:
        seen = check()
        if seen:
            return seen
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WaitTimeout(describe, timeout, seen, explain() if explain else "")
        # polling: what is awaited sends no event the caller could block on
        time.sleep(min(interval, remaining))
