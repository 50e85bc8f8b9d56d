"""BIRD and FRR routers behind the router-backend seam, and a lab of several kinds.

``ForeignBackend`` is a ``testbed.routers.base.RouterBackend`` for the
routers of a lab that run BIRD 2 or FRR (``testbed.model.router_kinds``):
it renders each configuration (``testbed.routers.configs``: the user's
file or template, or the generated one) and has the daemon's parser check
it before anything is built (``prepare``), starts the daemons in the
routers' namespaces with the lab's tag, reads them through their adapters
(``testbed.routers.bird``, ``frr``) into the states and snapshots the seam
describes (its ``state_digest`` is a digest of the daemon's own answer:
a foreign policy is not the model's, see ``ForeignConvergence``), and shuts
and opens sessions through the daemon's control. It cannot originate or
change a policy on the fly (``LabError``): the configuration is the user's.

``MixedBackend`` drives a lab whose routers run different software: it
hands each router to the backend of its kind (the ExaBGP backend with a
plan of the ExaBGP routers only, ``ForeignBackend`` for the others) and
merges their states. ``testbed.lab.converge_foreign`` is the lab's wait
for such a lab.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path

from testbed.errors import LabError, MissingDependency, SpeakerCrashed
from testbed.linux.processes import LAB_ENV
from testbed.model.addressing import Plan
from testbed.model.router_kinds import Choice
from testbed.routers.base import Namespace, RouterBackend
from testbed.routers.byo import adapter_class
from testbed.routers.configs import check, config_text, daemon_binary

__all__ = ["ForeignBackend", "MixedBackend"]


class ForeignBackend(RouterBackend):
    """The BIRD and FRR routers of one lab (see the module docstring)."""

    kind = "byo"
    software = "BIRD/FRR"
    POLL = 0.1

    def __init__(self, plan: Plan, choices: Mapping[str, Choice]):
        super().__init__()
        self.plan = plan
        self.choices = dict(choices)
        self.adapters: dict = {}
        self.processes: dict[str, list] = {}
        self.held: dict[str, set[str]] = {r: set() for r in self.choices}
        self.workdir: Path | None = None
        self.lab_id = ""
        self._texts: dict[str, str] = {}

    def _adapter(self, router: str):
        if router not in self.choices:
            raise LabError(f"no BIRD or FRR router named {router!r}")
        return self.adapters[router]

    # -- lifecycle ------------------------------------------------------------
    def check_machine(self) -> None:
        for choice in self.choices.values():
            try:
                for program in (("bird", "birdc") if choice.kind == "bird" else ("vtysh",)):
                    daemon_binary(program)
            except LabError as exc:
                raise MissingDependency(str(exc)) from None

    def prepare(self, lab_id: str, workdir: Path):
        """Render and check every configuration now, before the lab builds
        anything: a refused file stops the start with nothing made."""
        self.lab_id, self.workdir = lab_id, workdir
        for name, choice in self.choices.items():
            directory = workdir / name
            directory.mkdir(mode=0o700, exist_ok=True)
            adapter = adapter_class(choice.kind)(self.plan, self.plan.routers[name], directory)
            self.adapters[name] = adapter
            adapter.config.write_text(config_text(choice, self.plan, self.plan.routers[name]))
            check(choice.kind, adapter.config, name, choice.config)
            adapter.prepare()
        return None

    def write_configs(self) -> None:
        """Done in ``prepare``."""

    def start(self, nodes: Mapping[str, Namespace], deadline: float) -> None:
        env = {**os.environ, LAB_ENV: self.lab_id}
        for name, adapter in self.adapters.items():
            started = []
            for argv in adapter.argvs():
                with open(adapter.log, "ab") as log:
                    started.append(nodes[name].popen(argv, env=env, stdin=subprocess.DEVNULL,
                                                     stdout=log, stderr=log))
                adapter.started(argv)
            self.processes[name] = started
        for name, adapter in self.adapters.items():
            while not adapter.ready():
                self.check_alive()
                if time.monotonic() > deadline:
                    raise LabError(f"router {name}: its {self.choices[name].kind} control socket did not answer")
                time.sleep(0.02)  # no event tells us another process made its socket

    def release_routes(self, deadline: float) -> None:
        """BIRD and FRR hold nothing back."""

    def stop(self) -> None:
        for processes in self.processes.values():
            for process in processes:
                try:
                    process.terminate()
                except Exception:
                    pass

    def reap(self) -> None:
        for processes in self.processes.values():
            for process in processes:
                try:
                    process.wait(timeout=0.1)
                except Exception:
                    pass

    # -- liveness --------------------------------------------------------------
    def check_alive(self) -> None:
        for name, processes in self.processes.items():
            if name in self.crashed:
                continue
            for process in processes:
                code = process.poll()
                if code is not None:
                    raise SpeakerCrashed(f"the {self.choices[name].kind} daemon of router {name} exited with "
                                         f"status {code}{self.log_tail(name)}")

    def crash(self, router: str) -> None:
        self._adapter(router)
        self.crashed.add(router)
        for process in self.processes.get(router, []):
            try:
                os.kill(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    # -- state -----------------------------------------------------------------
    def _read(self, router: str) -> dict:
        adapter = self.adapters[router]
        digest = hashlib.sha256(adapter.digest().encode()).hexdigest()
        sessions = adapter.sessions()
        state = self.states.get(router, {"generation": 0})
        generation = state["generation"] + (1 if state.get("state_digest") != digest
                                            or state.get("sessions") != sessions else 0)
        shut = {a: s["shut"] for a, s in sessions.items() if s.get("shut")}
        for address, reason in shut.items():
            peer = sessions[address]["name"]
            if peer not in self.held[router]:
                self.held[router].add(peer)
                self.on_session_held(router, peer)
        return {"router": router, "generation": generation, "sessions": sessions,
                "state_digest": digest, "shut": shut}

    def refresh(self, deadline: float) -> None:
        for router in self.adapters:
            if router not in self.crashed:
                self.states[router] = self._read(router)

    def changes(self, timeout: float, deadline: float) -> set[str]:
        end = time.monotonic() + timeout
        while True:
            changed = set()
            for router in self.adapters:
                if router in self.crashed:
                    continue
                old = self.states.get(router, {}).get("generation", -1)
                self.states[router] = self._read(router)
                if self.states[router]["generation"] > old:
                    changed.add(router)
            if changed or time.monotonic() + self.POLL > end:
                return changed
            time.sleep(self.POLL)  # BIRD and FRR tell no one when they change: poll them

    def snapshot(self, router: str) -> dict:
        return {**self.states.get(router, {}), **self._adapter(router).state()}

    def sessions(self, router: str) -> dict[str, dict]:
        return self._adapter(router).sessions()

    def kernel_protocol(self, router: str) -> int:
        return self._adapter(router).kernel_protocol

    # -- events ----------------------------------------------------------------
    def admin_down(self, router: str, peer: str) -> None:
        self._adapter(router).set_admin(self.plan.routers[router].neighbor(peer).address, True)
        self.held[router].add(peer)

    def admin_up(self, router: str, peer: str) -> None:
        self._adapter(router).set_admin(self.plan.routers[router].neighbor(peer).address, False)
        self.held[router].discard(peer)

    def admin_down_peers(self, router: str) -> set[str]:
        self._adapter(router)
        return set(self.held[router])

    def reload(self, router: str) -> None:
        adapter = self._adapter(router)
        if self.choices[router].kind != "bird":
            raise LabError(f"router {router} runs FRR: reload its configuration through vtysh")
        adapter.birdc("configure")

    def _theirs(self, router: str, what: str) -> LabError:
        return LabError(f"router {router} runs {self.choices[router].kind} with its own configuration: "
                        f"{what} is the configuration's to do, not the lab's")

    def set_policy(self, router: str, peer: str, policy: dict | None) -> None:
        self._adapter(router)
        raise self._theirs(router, "a policy change")

    def originate(self, router: str, prefix: str, communities: Iterable[str] = (),
                  large_communities: Iterable[str] = ()) -> None:
        self._adapter(router)
        raise self._theirs(router, "originating a prefix")

    def withdraw(self, router: str, prefix: str) -> None:
        self._adapter(router)
        raise self._theirs(router, "withdrawing a prefix")

    # -- diagnostics -----------------------------------------------------------
    def log_tail(self, router: str, lines: int = 15) -> str:
        adapter = self.adapters.get(router)
        if adapter is None:
            return ""
        try:
            text = adapter.log.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return f"\n--- last lines of {adapter.log} ---\n" + "\n".join(text)

    def files(self, router: str) -> list[Path]:
        adapter = self._adapter(router)
        return [adapter.config, adapter.log]


class MixedBackend(RouterBackend):
    """Routers of several kinds in one lab: each handed to its backend."""

    kind = "mixed"

    def __init__(self, plan: Plan, choices: Mapping[str, Choice], make_exabgp: Callable[[Plan], RouterBackend]):
        foreign = {name: c for name, c in choices.items() if c.kind != "exabgp"}
        self.foreign = ForeignBackend(plan, foreign)
        own = {name: r for name, r in plan.routers.items() if name not in foreign}
        self.exabgp = make_exabgp(replace(plan, routers=own)) if own else None
        self.parts = [p for p in (self.exabgp, self.foreign) if p is not None]
        self.software = "ExaBGP, BIRD and FRR"
        self._alive_checked = 0.0
        self._held: SessionHeld | None = None

    def _part(self, router: str) -> RouterBackend:
        if router in self.foreign.choices:
            return self.foreign
        if self.exabgp is None:
            raise LabError(f"no router named {router!r}")
        return self.exabgp

    # Attributes the lab reads or sets, kept across the parts.
    @property
    def states(self):
        merged = {}
        for part in self.parts:
            merged.update(part.states)
        return merged

    @property
    def crashed(self):
        return set().union(*(p.crashed for p in self.parts))

    @property
    def on_session_held(self):
        return self._held

    @on_session_held.setter
    def on_session_held(self, fn):
        self._held = fn
        for part in self.parts:
            part.on_session_held = fn

    @property
    def start_timeout(self):
        return self.parts[0].start_timeout

    @start_timeout.setter
    def start_timeout(self, value):
        for part in self.parts:
            part.start_timeout = value

    def __getattr__(self, name):  # the ExaBGP backend's insides (clients, speakers, ...)
        exabgp = self.__dict__.get("exabgp")
        if exabgp is None:
            raise AttributeError(name)
        return getattr(exabgp, name)

    def check_machine(self) -> None:
        for part in self.parts:
            part.check_machine()

    def prepare(self, lab_id: str, workdir: Path):
        helpers = [part.prepare(lab_id, workdir) for part in self.parts]
        helpers = [h for h in helpers if h is not None]
        if not helpers:
            return None
        return lambda: [note for helper in helpers for note in (helper() or [])]

    def write_configs(self) -> None:
        for part in self.parts:
            part.write_configs()

    def start(self, nodes, deadline: float) -> None:
        # Foreign daemons first: they listen at once, and ExaBGP's active
        # sides then find them.
        for part in reversed(self.parts):
            part.start(nodes, deadline)

    def release_routes(self, deadline: float) -> None:
        for part in self.parts:
            part.release_routes(deadline)

    def stop(self) -> None:
        for part in self.parts:
            part.stop()

    def reap(self) -> None:
        for part in self.parts:
            part.reap()

    def check_alive(self) -> None:
        for part in self.parts:
            part.check_alive()

    def crash(self, router: str) -> None:
        self._part(router).crash(router)

    def refresh(self, deadline: float) -> None:
        for part in self.parts:
            part.refresh(deadline)

    def changes(self, timeout: float, deadline: float) -> set[str]:
        changed = set()
        if self.exabgp is not None:
            changed |= self.exabgp.changes(min(timeout, ForeignBackend.POLL), deadline)
        changed |= self.foreign.changes(0.0 if changed else max(0.0, timeout - ForeignBackend.POLL), deadline)
        return changed

    def snapshot(self, router: str) -> dict:
        return self._part(router).snapshot(router)

    def sessions(self, router: str) -> dict[str, dict]:
        return self._part(router).sessions(router)

    def kernel_protocol(self, router: str) -> int | None:
        part = self._part(router)
        return part.kernel_protocol(router) if part is self.foreign else None

    def admin_down(self, router: str, peer: str) -> None:
        self._part(router).admin_down(router, peer)

    def admin_up(self, router: str, peer: str) -> None:
        self._part(router).admin_up(router, peer)

    def admin_down_peers(self, router: str) -> set[str]:
        return self._part(router).admin_down_peers(router)

    def reload(self, router: str) -> None:
        self._part(router).reload(router)

    def set_policy(self, router: str, peer: str, policy: dict | None) -> None:
        self._part(router).set_policy(router, peer, policy)

    def originate(self, router, prefix, communities=(), large_communities=()) -> None:
        self._part(router).originate(router, prefix, communities, large_communities)

    def withdraw(self, router: str, prefix: str) -> None:
        self._part(router).withdraw(router, prefix)

    def log_tail(self, router: str, lines: int = 15) -> str:
        return self._part(router).log_tail(router, lines)

    def files(self, router: str) -> list[Path]:
        return self._part(router).files(router)


SessionHeld = Callable[[str, str], None]
