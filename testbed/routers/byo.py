"""The lab's BIRD and FRR routers ("bring your own router"), beside its ExaBGP ones.

``ForeignRouters(lab)`` finds the routers of the lab's topology that run
BIRD or FRR (``testbed.model.router_kinds``) and does for them what the lab
does for ExaBGP speakers: ``write_configs`` renders each configuration
(``testbed.routers.configs``: the user's file or template, or the generated
one) into the router's work directory and has the daemon's parser check it
before anything starts; ``start`` runs the daemon in the router's namespace
through the node (argv lists, the lab's ``TESTBED_LAB`` tag in its
environment, so ``stop()`` kills it with the rest); ``state``/``digest``
read it through its adapter (``testbed.routers.bird``/``frr``) in the
shapes the route agents answer; ``set_admin`` shuts or opens one session
through the daemon's own control.

``converged()`` is what ``Lab.wait_converged`` checks in a lab with such
routers, since the model cannot predict a foreign policy: (1) every
session is in the state the lab expects (up unless depeered or cut), on
both sides; (2) for every session between a BYO router and an ExaBGP
router, the prefixes the BYO router exports to the ExaBGP router are
exactly those in that router's Adj-RIB-In from it, and the prefixes the
ExaBGP router's agent has in its Adj-RIB-Out towards the BYO router are
exactly those the BYO router holds from it, or fewer by those its import
filter rejected (BIRD keeps no rejected routes); (3) nothing changed (every
agent's state digest, every BYO router's sessions and routes) for
``QUIET`` seconds. Between two BYO routers only (1) and (3) apply.
"""

from __future__ import annotations

import subprocess
import time

from testbed.model.router_kinds import choices
from testbed.routers.configs import check, config_text

__all__ = ["ForeignRouters"]


def adapter_class(kind: str):
    if kind == "bird":
        from testbed.routers.bird import BirdRouter

        return BirdRouter
    from testbed.routers.frr import FrrRouter

    return FrrRouter


class _Daemons:
    """The processes of one FRR router as one ``poll``-able thing."""

    def __init__(self, processes: list):
        self.processes = processes
        self.pid = processes[-1].pid

    def poll(self):
        for process in self.processes:
            code = process.poll()
            if code is not None:
                return code
        return None

    def wait(self, timeout=None):
        for process in self.processes:
            process.wait(timeout)

    def kill(self):
        for process in self.processes:
            process.kill()

    def send_signal(self, signum):
        for process in self.processes:
            process.send_signal(signum)


class ForeignRouters:
    """The lab's BIRD and FRR routers (see the module docstring)."""

    QUIET = 0.6  # seconds without any change before a lab with BYO routers counts as converged
    # FRR waits this long (its default coalesce-time) before its first
    # updates; the generated FRR configuration sets 20 ms, a user's may not.
    FRR_COALESCE = 1.0
    POLL = 0.1

    def __init__(self, lab):
        self.lab = lab
        self.choices = {name: c for name, c in choices(lab.topology).items() if c.kind != "exabgp"}
        self.routers: dict = {}  # name -> adapter, once the work directory exists
        self.quiet = self.QUIET + (self.FRR_COALESCE if any(
            c.kind == "frr" and c.config is not None for c in self.choices.values()) else 0.0)

    def __contains__(self, name: str) -> bool:
        return name in self.choices

    def __bool__(self) -> bool:
        return bool(self.choices)

    def adapter(self, name: str):
        if name not in self.routers:
            choice = self.choices[name]
            self.routers[name] = adapter_class(choice.kind)(self.lab.plan, self.lab.plan.routers[name],
                                                            self.lab._router_dir(name))
        return self.routers[name]

    def write_configs(self) -> None:
        """Render and check every BYO router's configuration."""
        for name, choice in self.choices.items():
            router = self.adapter(name)
            router.directory.mkdir(mode=0o700, exist_ok=True)
            text = config_text(choice, self.lab.plan, self.lab.plan.routers[name])
            router.config.write_text(text)
            check(choice.kind, router.config, name, choice.config)
            router.prepare()

    def start(self, name: str, env: dict):
        """Start the router's daemon(s) in its namespace; returns a process."""
        router = self.adapter(name)
        node = self.lab.nodes[name]
        processes = []
        for argv in router.argvs():
            with open(router.log, "ab") as log:
                processes.append(node.popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log))
            router.started(argv)
        return processes[0] if len(processes) == 1 else _Daemons(processes)

    def wait_ready(self, deadline: float) -> None:
        for name in self.choices:
            router = self.adapter(name)
            while not router.ready():
                self.lab._wait_step(deadline, f"the control socket of router {name}")

    # -- convergence ------------------------------------------------------------
    def _agents(self) -> dict[str, dict]:
        return {name: client.request("summary") for name, client in self.lab.clients.items()
                if name not in self.lab.crashed}

    def problems(self, states: dict[str, dict], summaries: dict[str, dict]) -> list[str]:
        """What keeps the lab from being converged now (see the module docstring)."""
        lab = self.lab
        out = []
        sessions = {name: state["sessions"] for name, state in states.items()}
        sessions.update({name: summary["sessions"] for name, summary in summaries.items()})
        for router, table in sessions.items():
            for address, state in table.items():
                if state.get("shut") and router in self.choices and state["name"] not in lab.disabled[router]:
                    # The daemon shut it (a prefix limit): down until repeer, as the agents do.
                    lab.disabled[router].add(state["name"])
                    lab.expect.set_session(router, state["name"], up=False)
                want = lab.expect.session_up(router, state["name"])
                have = state["state"] == "established"
                if want != have:
                    out.append(f"router {router}: session to {state['name']} ({address}) is {state['state']}"
                               f"{' (' + str(state.get('reason')) + ')' if state.get('reason') else ''}, "
                               f"expected {'established' if want else 'down'}")
        snapshots: dict[str, dict] = {}
        for name, state in states.items():
            plan = lab.plan.routers[name]
            for n in plan.neighbors:
                peer = n.name
                if peer in self.choices or peer in lab.crashed or not lab.expect.session_up(name, peer):
                    continue
                if peer not in snapshots:
                    snapshots[peer] = lab.clients[peer].request("snapshot")
                back = lab.plan.routers[peer].neighbor(name).address
                received = set(snapshots[peer]["adj_rib_in"].get(back, {}))
                sent = set(state["adj_rib_out"].get(n.address, {}))
                if sent != received:
                    out.append(f"router {name} exports {sorted(sent - received)} to {peer}, which has not "
                               f"received them; {peer} still holds {sorted(received - sent)} from it")
                offered = {p for p, r in snapshots[peer]["adj_rib_out"].get(back, {}).items()}
                held = {p for p, r in state["adj_rib_in"].get(n.address, {}).items() if not r.get("rejected")}
                if not held <= offered:
                    out.append(f"router {name} still holds {sorted(held - offered)} from {peer}, "
                               "which no longer sends them")
        return out

    def _each(self, read) -> dict:
        """``read(adapter)`` for every running BYO router, a few at a time
        (each is a birdc or vtysh process, mostly waiting)."""
        from concurrent.futures import ThreadPoolExecutor

        names = [name for name in self.choices if name not in self.lab.crashed]
        with ThreadPoolExecutor(max_workers=4) as pool:
            return dict(zip(names, pool.map(lambda name: read(self.adapter(name)), names)))

    def wait_converged(self, timeout: float) -> float:
        """Wait until ``problems`` is empty and nothing changed for ``QUIET``
        seconds; returns the seconds waited or raises ConvergenceTimeout."""
        from testbed.errors import ConvergenceTimeout

        lab = self.lab
        t0 = time.monotonic()
        deadline = t0 + timeout
        last = None
        stable_since = checked = time.monotonic()
        problems: list[str] | None = None
        while True:
            lab.check_alive()
            summaries = self._agents()
            digests = self._each(lambda router: router.digest())
            fingerprint = (tuple(sorted((n, s["state_digest"], s["generation"]) for n, s in summaries.items())),
                           tuple(sorted(digests.items())))
            now = time.monotonic()
            if fingerprint != last:
                last = fingerprint
                stable_since = now
                problems = None
            elif now - stable_since >= self.quiet and (problems is None or now - checked >= 0.5):
                checked = now
                problems = self.problems(self._each(lambda router: router.state()), summaries)
                if not problems:
                    return time.monotonic() - t0
            if now >= deadline:
                if problems is None:
                    problems = self.problems(self._each(lambda router: router.state()), summaries) or [
                        "routes and sessions were still changing"]
                raise ConvergenceTimeout(f"routing did not converge within {timeout:.1f} s:\n  "
                                         + "\n  ".join(problems))
            time.sleep(self.POLL)  # BIRD and FRR tell no one when they change: poll them

    def set_admin(self, name: str, peer: str, down: bool) -> None:
        address = self.lab.plan.routers[name].neighbor(peer).address
        self.adapter(name).set_admin(address, down)
