"""When the route agent's UPDATEs go out: the MRAI-like hold and the update delay.

The agent (``testbed.agent.agent``) asks ``Schedule.hold`` whether an
Announce or Withdraw may go out now; ``release`` hands back the held
announcements whose window ended. While the update delay lasts
(``delaying``), every action for a neighbor is kept in ``delayed`` (the
last per neighbor and prefix) and ``end_update_delay`` hands them back.
Time comes in as arguments (monotonic seconds), so tests pass a clock.
No I/O.
"""

from __future__ import annotations

import time
from collections import deque

from testbed.bgp import Announce, Withdraw

MRAI_DEFAULT = 0.02
"""Seconds an announcement to an eBGP neighbor is held (see ``Schedule.hold``):
the lab's MinRouteAdvertisementInterval, far below RFC 4271's suggested
30 s, which would make every lab wait for timers."""


class Schedule:
    """The held and delayed actions of one agent."""

    def __init__(self, mrai: float, ebgp: set[str], update_delay: float | None):
        # MRAI-like hold (RFC 4271 §9.2.1.1): announcements to eBGP
        # neighbors wait ``mrai`` seconds from a route's first change, and
        # only the last best path of that window is sent; see ``hold``.
        self.mrai = mrai
        self.ebgp = ebgp
        self.held: dict[tuple[str, str], list] = {}     # (neighbor, prefix) -> [due, action]
        self.held_order: deque = deque()                # (due, key), due ascending
        # Update delay (a router's "bgp update-delay" after it starts): no
        # UPDATE is sent until the lab says every session is up, or for
        # ``update_delay`` seconds at most; see ``end_update_delay``.
        self.update_delay_until = None if not update_delay else time.monotonic() + float(update_delay)
        self.update_delay_ended: dict | None = None  # when (wall clock) and why it ended
        self.delayed: dict[tuple, object] = {}

    def hold(self, action, now: float, announced: dict) -> bool:
        """Whether ``action`` waits for the neighbor's MRAI window instead of
        going out now (then it is kept, replacing what was held for the same
        neighbor and prefix). ``announced``: (neighbor, prefix) -> the route
        last sent.

        An announcement to an eBGP neighbor is held until ``mrai`` seconds
        after the first change of that route; whatever best path holds then
        is sent, and the paths explored meanwhile never are (RFC 4271's
        MinRouteAdvertisementIntervalTimer, per destination, applied from
        the first change). Withdrawals are not delayed (the RFC exempts
        them): one replaces a held announcement, and goes out at once
        unless the neighbor never heard of the route."""
        key = (action.neighbor, action.route.prefix if isinstance(action, Announce) else action.prefix)
        held = self.held.get(key)
        if isinstance(action, Withdraw):
            if held is not None:
                del self.held[key]
                if key not in announced:
                    return True  # announced to nobody: nothing to withdraw
            return False
        if self.mrai <= 0 or action.neighbor not in self.ebgp:
            if held is not None:
                del self.held[key]
            return False
        if held is not None:
            held[1] = action
        else:
            due = now + self.mrai
            self.held[key] = [due, action]
            self.held_order.append((due, key))
        return True

    def release(self, now: float) -> tuple[list, float | None]:
        """The held announcements whose window has ended, and the seconds
        until the next one ends (None if nothing is held)."""
        order = self.held_order
        due_actions = []
        while order and order[0][0] <= now:
            due, key = order.popleft()
            held = self.held.get(key)
            if held is not None and held[0] == due:
                del self.held[key]
                due_actions.append(held[1])
        while order and self.held.get(order[0][1], (None,))[0] != order[0][0]:
            order.popleft()  # replaced or dropped since
        return due_actions, (max(0.0, order[0][0] - now) if order else None)

    def drop_held(self, neighbor: str) -> None:
        for key in [k for k in self.held if k[0] == neighbor]:
            del self.held[key]

    @property
    def delaying(self) -> bool:
        return self.update_delay_until is not None

    def delay(self, pending: dict) -> None:
        """Keep back every action of ``pending`` (removed from it) that is
        not for the kernel: only the kernel hears of routes meanwhile."""
        for key in [key for key in pending if key[0] != "kernel"]:
            self.delayed[key] = pending.pop(key)

    def end_update_delay(self, why: str, announced: dict) -> dict:
        """End the delay; what it kept back, the last action per neighbor
        and prefix (a withdrawal of what a neighbor was never sent, per
        ``announced``, is dropped)."""
        self.update_delay_until = None
        self.update_delay_ended = {"at": time.time(), "reason": why}
        delayed, self.delayed = self.delayed, {}
        for key, action in list(delayed.items()):
            if isinstance(action, Withdraw) and (action.neighbor, action.prefix) not in announced:
                del delayed[key]
        return delayed
