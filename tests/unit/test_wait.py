"""``wait_until`` (testbed.testing.wait): returns the first truthy value,
and on timeout fails saying what was awaited and what was seen last."""

from __future__ import annotations

import time

import pytest

from testbed.errors import TestbedError
from testbed.testing.wait import WaitTimeout, wait_until


def test_returns_the_first_truthy_value_of_the_check():
    values = iter([0, None, [], ["ready"], ["later"]])
    assert wait_until(lambda: next(values), 1.0, "a list", interval=0) == ["ready"]


def test_a_timeout_names_what_was_awaited_and_what_was_seen_last():
    started = time.monotonic()
    with pytest.raises(WaitTimeout) as caught:
        wait_until(lambda: {}, 0.05, "router A's session with B to go down",
                   interval=0.01, explain=lambda: "A: sessions B=established")
    assert 0.05 <= time.monotonic() - started < 1.0
    message = str(caught.value)
    assert message.startswith("timed out after 0.05 s waiting for router A's session with B to go down")
    assert "last seen: {}" in message and message.endswith("\nA: sessions B=established")
    # A test that waits in vain fails (AssertionError); code can catch the project's root error.
    assert isinstance(caught.value, AssertionError) and isinstance(caught.value, TestbedError)
    assert caught.value.describe == "router A's session with B to go down" and caught.value.seen == {}


def test_the_check_runs_once_more_at_the_deadline():
    calls = []

    def check():
        calls.append(time.monotonic())
        return len(calls) >= 3

    # interval longer than the timeout: the first call, then one at the deadline.
    with pytest.raises(WaitTimeout):
        wait_until(check, 0.02, "a third call", interval=5)
    assert len(calls) == 2 and calls[1] - calls[0] >= 0.015


def test_exceptions_of_the_check_are_not_swallowed():
    def check():
        raise FileNotFoundError("/proc/123/stat")

    with pytest.raises(FileNotFoundError):
        wait_until(check, 1.0, "a process to exit")


def test_a_negative_timeout_is_refused():
    with pytest.raises(ValueError, match="timeout must not be negative"):
        wait_until(lambda: True, -1, "nothing")
