"""The route agent: ExaBGP's API process on every lab router.

ExaBGP speaks BGP but chooses no routes and programs no kernel. It starts
this agent (``python -m testbed.agent <config.json>``) inside the router's
network namespace and talks to it through a transport
(``testbed.agent.transport``): session events and received routes in,
announcements, withdrawals and teardowns out. ``Agent`` feeds the events to
the pure ``RouterEngine`` (Adj-RIB-In, import policy, decision process,
valley-free export, built by ``testbed.bgp.configure``) and carries out the
engine's actions: kernel routes through ``testbed.agent.kernel_mirror``,
UPDATEs through the transport when ``testbed.agent.schedule`` lets them
go. Its event loop is ``testbed.agent.loop``, its control socket
``testbed.agent.control``, its entry point ``testbed.agent.main``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time

from testbed.agent import control
from testbed.agent.codec import parse_update
from testbed.agent.kernel_mirror import KernelMirror
from testbed.agent.schedule import MRAI_DEFAULT, Schedule  # noqa: F401 - MRAI_DEFAULT: the lab's default
from testbed.agent.transport import Received, TextTransport
from testbed.bgp import Announce, InstallRoute, RemoveRoute, Route, Teardown, Withdraw
from testbed.bgp.configure import engine_from_config
from testbed.model.igp import kernel_next_hop

log = logging.getLogger("testbed.agent.agent")


class Agent:
    """State of one router's agent, and what it does on each event.

    ``transport``: its link to ExaBGP (by default a ``TextTransport``
    writing commands to ``out``, else to stdout); ``kernel``: a
    ``testbed.linux.routes.KernelTable`` or a stand-in (None: no kernel)."""

    def __init__(self, config: dict, kernel=None, out=None, transport=None):
        self.config = config
        self.name = config["router"]
        self.engine = engine_from_config(config)
        self.neighbors = self.engine.neighbors
        self.names = {n["address"]: n["name"] for n in config["neighbors"]}
        if config.get("route_server"):
            # A route server forwards nothing: its next hops are the members'.
            if kernel is not None and hasattr(kernel, "close"):
                kernel.close()
            kernel = None
        self.transport = transport if transport is not None else TextTransport(
            out if out is not None else sys.stdout)
        self.errors: list[str] = []
        self.mirror = KernelMirror(kernel, self.errors)
        self.reconcile_again = False  # the last reconcile_kernel left routes out
        # BGP next hop (another router's loopback) -> the directly connected
        # address to forward to, from the IGP.
        self.resolve = {address: entry["via"] for address, entry in (config.get("igp") or {}).items()}
        self.sessions = {address: {"state": "idle", "since": time.time(), "reason": None,
                                   "last_notification": None, "admin_down": False, "flaps": 0}
                         for address in self.neighbors}
        self.generation = 0
        self._pending: dict[tuple, object] = {}
        self._announced: dict[tuple[str, str], Route] = {}  # last sent, for withdrawals
        self._batching = False
        ebgp = {address for address, n in self.neighbors.items() if n.asn != config["asn"]}
        # The lab sets mrai (schedule.MRAI_DEFAULT unless told otherwise).
        self.schedule = Schedule(float(config.get("mrai") or 0.0), ebgp, config.get("update_delay"))
        self.stopping = False
        # What this router received and sent, for the benchmark's count of
        # path exploration: UPDATE events in, routes and withdrawals in,
        # announcements and withdrawals out, kernel operations.
        self.stats = dict.fromkeys(("updates_in", "routes_in", "withdrawn_in", "announced_out",
                                    "withdrawn_out", "kernel_ops"), 0)

    @property
    def kernel(self):
        return self.mirror.kernel

    @kernel.setter
    def kernel(self, kernel) -> None:
        self.mirror.kernel = kernel

    @property
    def kernel_routes(self) -> dict[str, str]:
        return self.mirror.routes

    # -- engine actions ----------------------------------------------------
    def apply(self, actions) -> None:
        """Carry out engine actions: commands to ExaBGP, routes to the kernel.

        Inside ``batch()`` only the last action per (neighbor, prefix) and
        per kernel prefix is kept and carried out when the batch ends: while
        a burst of UPDATEs is being read, intermediate best paths are never
        sent or installed (what an MRAI timer achieves, without the wait)."""
        pending = self._pending
        for action in actions:
            kind = type(action)
            if kind is InstallRoute or kind is RemoveRoute:
                pending[("kernel", action.prefix)] = action
            elif kind is Announce:
                pending[("bgp", action.neighbor, action.route.prefix)] = action
            elif kind is Withdraw:
                pending[("bgp", action.neighbor, action.prefix)] = action
            elif kind is Teardown:
                # After what the engine sent before it (withdrawals to others).
                pending[("teardown", action.neighbor, len(pending))] = action
            else:
                raise TypeError(f"not an engine action: {action!r}")
        if not self._batching:
            self.flush()
        self.changed()

    @contextlib.contextmanager
    def batch(self):
        """Coalesce the actions of several events (see ``apply``)."""
        self._batching = True
        try:
            yield
        finally:
            self._batching = False
            self.flush()

    def hold(self, action, now: float) -> bool:
        """Whether ``action`` waits for its MRAI window (``Schedule.hold``)."""
        return self.schedule.hold(action, now, self._announced)

    def release(self, now: float | None = None) -> float | None:
        """Send the held announcements whose window has ended; return the
        seconds until the next one ends (None if nothing is held)."""
        due, wait = self.schedule.release(time.monotonic() if now is None else now)
        if due:
            self._send_bgp(due)
        return wait

    def drop_held(self, neighbor: str) -> None:
        """Forget what was held for a neighbor whose session went down (on
        the next session the engine announces its whole Adj-RIB-Out)."""
        self.schedule.drop_held(neighbor)

    @property
    def update_delay_until(self) -> float | None:
        return self.schedule.update_delay_until

    def check_update_delay(self, now: float) -> float | None:
        """End the update delay if its longest wait has passed; the seconds
        it may still last (None: not delaying)."""
        until = self.schedule.update_delay_until
        if until is None:
            return None
        if now >= until:
            self.end_update_delay("its longest wait passed")
            return None
        return until - now

    def end_update_delay(self, why: str) -> None:
        """Send what the update delay kept back (``Schedule.end_update_delay``),
        and from now on send at once."""
        if not self.schedule.delaying:
            return
        delayed = self.schedule.end_update_delay(why, self._announced)
        log.info("update delay over (%s): %d UPDATE(s) to send", why, len(delayed))
        self._pending = {**delayed, **self._pending}
        if not self._batching:
            self.flush()
        self.changed()

    def flush(self) -> None:
        pending, self._pending = self._pending, {}
        if self.schedule.delaying:
            self.schedule.delay(pending)
        kernel = []
        bgp = []
        now = time.monotonic()
        resolve = self.resolve
        for action in pending.values():
            kind = type(action)
            if kind is InstallRoute:
                next_hop = "blackhole" if action.blackhole else kernel_next_hop(resolve, action.next_hop)
                kernel.append(("replace", action.prefix, next_hop))
            elif kind is RemoveRoute:
                kernel.append(("delete", action.prefix, None))
            elif kind is Announce or kind is Withdraw:
                if not self.hold(action, now):
                    bgp.append(action)
            else:
                bgp.append(action)
        # The kernel first: a router forwards a route before it tells anyone
        # about it, so no neighbor sends traffic it cannot yet carry.
        if kernel:
            self.stats["kernel_ops"] += len(kernel)
            self.mirror.apply(kernel)
        if bgp:
            self._send_bgp(bgp)

    def _send_bgp(self, actions) -> None:
        self.transport.send([self._outgoing(action) for action in actions])

    def _outgoing(self, action) -> tuple:
        """``(action, route last announced)`` for the transport, with the
        bookkeeping of what each neighbor was sent."""
        if isinstance(action, Announce):
            self.stats["announced_out"] += 1
            self._announced[(action.neighbor, action.route.prefix)] = action.route
            return action, None
        if isinstance(action, Withdraw):
            self.stats["withdrawn_out"] += 1
            return action, self._announced.pop((action.neighbor, action.prefix), None)
        # A Teardown. Cease, subcode 1: maximum number of prefixes reached (RFC 4486).
        log.warning("tearing down the session with %s: %s", action.neighbor, action.reason)
        self.sessions[action.neighbor]["reason"] = action.reason
        return action, None

    def reconcile_kernel(self) -> bool:
        """Put back Loc-RIB routes the kernel dropped (``KernelMirror.reconcile``);
        whether every one is there now."""
        complete, fixed = self.mirror.reconcile(self.engine.loc_rib(), self.resolve)
        if fixed:
            self.changed()
        return complete

    def changed(self) -> None:
        self.generation += 1

    # -- ExaBGP events -----------------------------------------------------
    def receive(self, items: list) -> None:
        """What the transport read (``Transport.read``), as one batch."""
        with self.batch():
            for item in items:
                if type(item) is bytes:
                    self.on_api_line(item)
                else:
                    self.on_received(item)

    def on_api_line(self, line: bytes) -> None:
        """One line of ExaBGP's API: a JSON event, or text to log."""
        line = line.strip()
        if not line.startswith(b"{"):
            if line and line not in (b"done",):
                log.info("exabgp: %s", line.decode(errors="replace"))
            return
        try:
            self.on_event(json.loads(line))
        except Exception as exc:  # one bad event must not stop routing
            log.exception("event failed: %s", line[:500])
            self.errors.append(f"event handling failed: {type(exc).__name__}: {exc}")
            self.changed()

    def on_received(self, item: Received) -> None:
        peer, announced, withdrawn = item
        try:
            self.on_update(peer, announced, withdrawn)
        except Exception as exc:  # one bad event must not stop routing
            log.exception("update from %s failed: %s", peer, json.dumps([r.prefix for r in announced][:20]))
            self.errors.append(f"event handling failed: {type(exc).__name__}: {exc}")
            self.changed()

    def on_event(self, event: dict) -> None:
        kind = event.get("type")
        neighbor = event.get("neighbor", {})
        peer = neighbor.get("address", {}).get("peer")
        if peer not in self.neighbors:
            return
        if kind == "state":
            self.on_state(peer, neighbor.get("state"), neighbor.get("reason"))
        elif kind == "update":
            message = neighbor.get("message", {})
            if "update" in message:
                self.on_update(peer, *parse_update(message))
        elif kind == "notification":
            note = neighbor.get("notification", {})
            self.sessions[peer]["last_notification"] = {
                "direction": neighbor.get("direction"), "code": note.get("code"),
                "subcode": note.get("subcode"), "data": note.get("data"),
                "message": note.get("message")}
            self.changed()

    def on_update(self, peer: str, announced: list[Route], withdrawn: list[str]) -> None:
        """Routes received from ``peer``."""
        if peer in self.neighbors:
            stats = self.stats
            stats["updates_in"] += 1
            stats["routes_in"] += len(announced)
            stats["withdrawn_in"] += len(withdrawn)
            self.apply(self.engine.receive(peer, announced, withdrawn))

    def on_state(self, peer: str, state: str | None, reason: str | None) -> None:
        session = self.sessions[peer]
        was = session["state"]
        name = "established" if state == "up" else (state or "unknown")
        session.update(state=name, since=time.time(), reason=reason)
        log.info("session %s (%s): %s -> %s%s", peer, self.names[peer], was, name,
                 f" ({reason})" if reason else "")
        if state == "up":
            self.apply(self.engine.session_up(peer))
        elif state == "down":
            self.drop_held(peer)
            if was == "established":
                session["flaps"] += 1
            self.apply(self.engine.session_down(peer))
        else:
            self.changed()

    # -- control requests (testbed.agent.control) -----------------------------
    def summary(self) -> dict:
        return control.summary(self)

    def handle(self, request: dict) -> dict | None:
        """The reply to a control request; None for a watch that must wait."""
        return control.handle(self, request)

    def run(self, signals: bool = True) -> None:
        """The event loop (``testbed.agent.loop.run``)."""
        from testbed.agent.loop import run

        run(self, signals=signals)
