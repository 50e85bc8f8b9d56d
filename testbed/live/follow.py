"""Follows a running lab's route agents for the live view.

A ``Follower`` thread opens its own connection to every agent's control
socket (the lab's own connections belong to the lab's thread) and does
what ``Lab.wait_converged`` does: it sends ``watch`` with the last
generation it saw, and the agent answers only once its state changed.
Answers that arrive together are taken as one round: the routers that
changed are asked for their Loc-RIB and sessions (``loc_rib``, all sent
before any answer is read), and each answer goes to ``on_router(name,
reply)``; a router whose agent is gone goes to ``on_gone(name, why)``.
No router is asked anything while nothing changes. ``stop()`` wakes the
thread through a pipe and closes every connection.
"""

from __future__ import annotations

import os
import selectors
import threading
import time

from testbed.errors import LabError
from testbed.routers.agent_client import AgentClient

SETTLE = 0.05   # seconds to let answers of one burst arrive together


class Follower(threading.Thread):
    def __init__(self, paths: dict[str, str], on_router, on_gone):
        super().__init__(name="testbed-live-follower", daemon=True)
        self.paths = paths
        self.on_router, self.on_gone = on_router, on_gone
        self.clients: dict[str, AgentClient] = {}
        self._wake_r, self._wake_w = os.pipe()
        self._stopping = False
        self.rounds = 0

    def connect(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        for name, path in self.paths.items():
            client = AgentClient(path, name)
            client.connect(deadline)
            self.clients[name] = client

    def _ask(self, names) -> dict[str, int]:
        """Loc-RIBs of ``names`` (sent to all, then read); returns each
        one's generation."""
        asked, seen = [], {}
        for name in names:
            try:
                self.clients[name].send({"op": "loc_rib"})
                asked.append(name)
            except LabError as exc:
                self._drop(name, str(exc))
        for name in asked:
            try:
                reply = self.clients[name].receive(timeout=10.0)
            except LabError as exc:
                self._drop(name, str(exc))
                continue
            seen[name] = reply.get("generation", -1)
            self.on_router(name, reply)
        return seen

    def _drop(self, name: str, why: str) -> None:
        client = self.clients.pop(name, None)
        if client is not None:
            try:
                self.selector.unregister(client.sock)
            except (KeyError, ValueError, AttributeError):
                pass
            client.close()
        if not self._stopping:
            self.on_gone(name, why)

    def run(self) -> None:
        self.selector = selectors.DefaultSelector()
        try:
            self.selector.register(self._wake_r, selectors.EVENT_READ, None)
            seen = self._ask(list(self.clients))
            for name, generation in seen.items():
                self.clients[name].send({"op": "watch", "after": generation})
                self.selector.register(self.clients[name].sock, selectors.EVENT_READ, name)
            while not self._stopping:
                changed = self._ready(None)
                if self._stopping:
                    break
                changed |= self._ready(SETTLE)   # the rest of the burst
                if self._stopping or not changed:
                    continue
                self.rounds += 1
                for name, generation in self._ask(sorted(changed)).items():
                    try:
                        self.clients[name].send({"op": "watch", "after": generation})
                    except LabError as exc:
                        self._drop(name, str(exc))
        except Exception as exc:  # never into the lab: the view just stops following
            if not self._stopping:
                self.on_gone("*", f"following the agents stopped: {type(exc).__name__}: {exc}")
        finally:
            for client in self.clients.values():
                client.close()
            self.clients.clear()
            self.selector.close()
            os.close(self._wake_r)

    def _ready(self, timeout) -> set[str]:
        changed = set()
        for key, _ in self.selector.select(timeout):
            if key.data is None:
                self._stopping = True
                return changed
            try:
                self.clients[key.data].receive(timeout=5.0)   # the watch answer: a summary
                changed.add(key.data)
            except LabError as exc:
                self._drop(key.data, str(exc))
        return changed

    def stop(self) -> None:
        self._stopping = True
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass
        if self.ident is None:     # never started: run() did not close its end
            os.close(self._wake_r)
        elif self.is_alive():
            self.join(timeout=5.0)
        os.close(self._wake_w)
