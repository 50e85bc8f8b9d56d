"""The ExaBGP backend: one ExaBGP per router with the route agent as its API process.

Behind ``testbed.routers.base.RouterBackend``. Each router's directory in
the lab's work directory holds ``exabgp.conf`` (``testbed.routers.exabgp_config``),
``agent.json``, the agent's control socket ``agent.sock`` and the logs
``exabgp.log`` and ``agent.log``. Speakers run in one of three process models:
``zygote`` (one pre-imported process per lab forks each router's ExaBGP,
whose agent runs as a thread of it: ``testbed.speaker.zygote``), the same
run by PyPy (``zygote-pypy``: ``testbed.speaker.pypy``) or ``exec``
(``exabgp`` and ``python -m testbed.agent`` per router). The backend talks
to each agent over two control connections (``testbed.routers.agent_client``): one
for requests, one for the ``watch`` long poll that brings state changes.

An administrative shutdown is one operation, ``set_neighbor_admin_state``
(its docstring says why it takes three steps); a configuration reload is
``reload``, the one place that knows ExaBGP 5.0 may drop a reload signal.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from testbed.errors import LabError, MissingDependency, SpeakerCrashed
from testbed.routers.agent_client import AgentClient
from testbed.linux import netns
from testbed.linux.processes import alive
from testbed.model.addressing import Plan
from testbed.routers.base import Namespace, RouterBackend
from testbed.model.agent_config import agent_config
from testbed.routers.exabgp_config import BGP_PORT, config_tree, quote_argv, render, speaker_environment
from testbed.routers.startup import start_in_order
from testbed.speaker import packing

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
PROCESS_MODELS = ("zygote", "zygote-pypy", "exec")
ZYGOTE_MODELS = ("zygote", "zygote-pypy")  # the zygote run by this Python, or by PyPy (testbed.speaker.pypy)
# ExaBGP 5.0's log lines of a reload (exabgp.reactor.loop.Reactor.reload)
RELOAD_BEGUN = b"performing reload of exabgp"
RELOAD_DONE = b"loaded new configuration successfully"
RELOAD_FAILED = b"could not load/reload configuration"


def exabgp_command() -> str:
    """The ``exabgp`` program of this interpreter's environment, else of PATH."""
    local = Path(sys.executable).parent / "exabgp"
    if local.exists():
        return str(local)
    found = shutil.which("exabgp")
    if not found:
        raise MissingDependency("the exabgp command is missing: install the project's "
                                "Python dependencies (scripts/setup.sh does)")
    return found


class SpeakerProcess:
    """A speaker forked by the zygote, with the part of ``Popen`` the lab uses."""

    def __init__(self, pid: int, zygote):
        self.pid = pid
        self._zygote = zygote
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None and not alive(self.pid):
            status = None
            try:
                status = self._zygote.status().get(self.pid, {}).get("status")
            except Exception:  # the zygote may be gone too; the speaker is dead either way
                pass
            self.returncode = status if isinstance(status, int) else -1
        return self.returncode

    def send_signal(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"speaker {self.pid}", timeout)
            time.sleep(0.01)
        return self.returncode


class ExaBGPBackend(RouterBackend):
    """ExaBGP and the route agent on every router of one lab."""

    kind = "exabgp"
    software = "ExaBGP"
    starts_while_configuring = True

    def __init__(self, plan: Plan, *, process_model: str = "zygote", mrai: float = 0.0,
                 update_delay: bool = True, merge_pages: bool = False,
                 progress: Callable[[str], None] = lambda stage: None):
        super().__init__()
        if process_model not in PROCESS_MODELS:
            raise LabError(f"unknown process model {process_model!r}: use one of {', '.join(PROCESS_MODELS)}")
        self.plan = plan
        self.process_model = process_model
        self.mrai = mrai
        self.update_delay = update_delay
        self.merge_pages = merge_pages
        self.progress = progress
        self.lab_id = ""
        self.workdir: Path | None = None
        self.zygote = None
        self.speakers: dict[str, subprocess.Popen | SpeakerProcess] = {}
        self.clients: dict[str, AgentClient] = {}  # requests
        self.watchers: dict[str, AgentClient] = {}  # the watch long poll
        self.agent_pids: dict[str, int] = {}
        self._watch_pending: dict[str, bool] = {}
        self._selector: selectors.BaseSelector | None = None
        self._disabled: dict[str, set[str]] = {r: set() for r in plan.routers}

    # -- files -------------------------------------------------------------------
    def router_dir(self, router: str) -> Path:
        assert self.workdir is not None
        return self.workdir / router

    def agent_argv(self, router: str) -> list[str]:
        return [sys.executable, "-m", "testbed.agent", str(self.router_dir(router) / "agent.json")]

    def render(self, router: str) -> str:
        """The router's ``exabgp.conf`` as it should be now (admin-down peers left out)."""
        tree = config_tree(self.plan.routers[router], self.plan.hold_time,
                           self.agent_argv(router), self._disabled[router])
        return render(tree)

    def files(self, router: str) -> list[Path]:
        return [self.router_dir(router) / name for name in ("exabgp.log", "agent.log", "exabgp.conf")]

    def log_tail(self, router: str, lines: int = 15) -> str:
        if self.workdir is None:
            return ""
        parts = []
        for log in ("exabgp.log", "agent.log"):
            path = self.router_dir(router) / log
            try:
                text = path.read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                continue
            parts.append(f"\n--- last lines of {path} ---\n" + "\n".join(text))
        return "".join(parts)

    # -- lifecycle ---------------------------------------------------------------
    def check_machine(self) -> None:
        exabgp_command()
        if self.process_model == "zygote-pypy":
            from testbed.speaker import pypy

            pypy.interpreter()

    def prepare(self, lab_id: str, workdir: Path):
        self.lab_id, self.workdir = lab_id, workdir
        if self.process_model not in ZYGOTE_MODELS:
            return None
        from testbed.speaker import pypy
        from testbed.speaker.zygote import ZygoteClient

        self.progress("starting the speaker zygote")
        self.zygote = ZygoteClient(workdir / "zygote.sock", lab_id, log=workdir / "zygote.log",
                                   merge_pages=self.merge_pages,
                                   **(pypy.zygote_options() if self.process_model == pypy.MODEL else {}))

        def start_zygote() -> list[str]:
            self.zygote.start()
            merging = self.zygote.info.get("merging_pages")
            if self.merge_pages and merging is not True:
                return [f"the speakers' pages will not be merged: {merging}"]
            return []

        return start_zygote

    def write_configs(self) -> None:
        paths = []
        for name, router in self.plan.routers.items():
            directory = self.router_dir(name)
            directory.mkdir(mode=0o700)
            (directory / "exabgp.conf").write_text(self.render(name))
            config = agent_config(self.plan, router, str(directory / "agent.sock"), str(directory / "agent.log"))
            config["mrai"] = self.mrai
            if self.update_delay:
                config["update_delay"] = self.start_timeout  # the longest an agent waits for release_routes
            (directory / "agent.json").write_text(json.dumps(config, indent=2))
            paths.append(str(directory / "exabgp.conf"))
        command = [exabgp_command(), "validate", *paths]
        result = subprocess.run(command, capture_output=True, text=True,
                                env={**os.environ, "exabgp_log_destination": "stdout"})
        if result.returncode != 0:
            raise LabError(f"ExaBGP refused a generated configuration ({quote_argv(command)}):\n"
                           + (result.stderr or result.stdout).strip())

    def start(self, nodes: Mapping[str, Namespace], deadline: float) -> None:
        pythonpath = os.pathsep.join(filter(None, [str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")]))

        def start_one(name: str) -> None:
            self.configured(name)  # its namespace: configured beside this start, in this order
            directory = self.router_dir(name)
            env = {**os.environ, **speaker_environment(self.plan.routers[name], self.lab_id),
                   **packing.peers_environment(self.plan.routers[name], self.plan.routers),
                   # A dead agent is not restarted (it would have lost its RIBs);
                   # the harness notices it (check_alive) instead.
                   "exabgp_api_respawn": "false", "PYTHONPATH": pythonpath, "PYTHONUNBUFFERED": "1"}
            if self.zygote is not None:
                pid = self.zygote.spawn(name, nodes[name].pid, directory / "exabgp.conf", env,
                                        directory / "exabgp.log", netns_inode=netns.netns_inode(nodes[name].pid))
                self.speakers[name] = SpeakerProcess(pid, self.zygote)
                return
            log = open(directory / "exabgp.log", "wb")
            try:
                self.speakers[name] = nodes[name].popen(
                    [exabgp_command(), str(directory / "exabgp.conf")], env=env,
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
            finally:
                log.close()

        # A fork from the zygote costs ~10 ms, an exec'd interpreter ~0.3 s of CPU.
        window = (8 if self.zygote is not None else 2) * (os.cpu_count() or 1)
        start_in_order(self.plan, start_one, {name: node.pid for name, node in nodes.items()}, BGP_PORT,
                       window, deadline, self.check_alive_now_and_then)
        self._connect_agents(deadline)

    def _connect_agents(self, deadline: float) -> None:
        """Connect to every agent's control socket, then ask them all for
        their pid at once (each answers when its event loop gets to it)."""
        self._selector = selectors.DefaultSelector()
        for name in self.plan.routers:
            path = str(self.router_dir(name) / "agent.sock")
            for table in (self.clients, self.watchers):
                client = AgentClient(path, name)
                while True:
                    self.check_alive_now_and_then()
                    try:
                        client.connect(min(deadline, time.monotonic() + 0.5))
                        break
                    except LabError:
                        if time.monotonic() >= deadline:
                            raise
                table[name] = client
            self._selector.register(self.watchers[name].sock, selectors.EVENT_READ, name)
            self._watch_pending[name] = False
            self.clients[name].send({"op": "summary"})
        for name, client in self.clients.items():
            try:
                self.agent_pids[name] = client.receive(timeout=max(1.0, deadline - time.monotonic()))["pid"]
            except LabError:
                self.check_alive()
                raise

    def release_routes(self, deadline: float) -> None:
        try:
            for client in self.clients.values():
                client.send({"op": "end_update_delay"})
            for client in self.clients.values():
                client.receive(timeout=max(10.0, deadline - time.monotonic()))
        except LabError:
            self.check_alive()
            raise

    def stop(self) -> None:
        for client in list(self.clients.values()) + list(self.watchers.values()):
            client.close()
        if self._selector is not None:
            self._selector.close()
            self._selector = None
        if self.zygote is not None:
            try:
                self.zygote.stop_children(grace=1.0)
            except Exception:  # the lab's sweep kills whatever is left
                pass
            self.zygote.close(timeout=2.0)

    def reap(self) -> None:
        for speaker in self.speakers.values():
            try:
                speaker.wait(timeout=0.1)
            except Exception:
                pass

    # -- liveness -----------------------------------------------------------------
    def check_alive(self) -> None:
        for name, popen in self.speakers.items():
            if name in self.crashed:
                continue
            code = popen.poll()
            if code is not None:
                raise SpeakerCrashed(f"the BGP speaker of router {name} exited with status {code}"
                                     f"{self.log_tail(name)}")
        for name, pid in self.agent_pids.items():
            if name not in self.crashed and not alive(pid):
                raise SpeakerCrashed(f"the route agent of router {name} (pid {pid}) exited"
                                     f"{self.log_tail(name)}")

    def crash(self, router: str) -> None:
        if router not in self.speakers:
            raise LabError(f"no router named {router!r}")
        self.crashed.add(router)
        if self._selector is not None and router in self.watchers:
            self._selector.unregister(self.watchers[router].sock)
        for pid in {self.speakers[router].pid, self.agent_pids.get(router)} - {None}:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    # -- state ------------------------------------------------------------------------
    def client(self, router: str) -> AgentClient:
        """The request connection to the router's agent."""
        if router not in self.clients:
            raise LabError(f"no router named {router!r} (routers: {', '.join(self.plan.routers)})")
        return self.clients[router]

    def refresh(self, deadline: float) -> None:
        live = [name for name in self.clients if name not in self.crashed]
        try:
            for name in live:
                self.clients[name].send({"op": "summary"})
            for name in live:  # a busy agent answers late, a dead one not at all
                self._store(name, self.clients[name].receive(timeout=max(10.0, deadline - time.monotonic())))
        except LabError:
            self.check_alive()  # a dead agent or speaker is the better message
            raise

    def changes(self, timeout: float, deadline: float) -> set[str]:
        assert self._selector is not None, "the backend is not started"
        for name, client in self.watchers.items():
            if name not in self.crashed and not self._watch_pending[name]:
                client.send({"op": "watch", "after": -1})
                self._watch_pending[name] = True
        changed = set()
        for key, _ in self._selector.select(timeout=timeout):
            name = key.data
            client = self.watchers[name]
            try:
                state = client.receive(timeout=max(5.0, deadline - time.monotonic()))
                self._watch_pending[name] = False
                if self._store(name, state):
                    changed.add(name)
                client.send({"op": "watch", "after": self.states[name]["generation"]})
                self._watch_pending[name] = True
            except LabError:
                self.check_alive()  # a dead agent or speaker is the better message
                raise
        return changed

    def _store(self, router: str, state: dict) -> bool:
        """Keep ``state`` unless an answer already kept is newer (a watch
        answer in flight may describe an older generation); then hold any
        session the router closed. Returns whether the generation grew."""
        known = self.states.get(router, {}).get("generation", -1)
        if state["generation"] < known:
            return False
        self.states[router] = state
        self._hold_max_prefix_shutdowns(router)
        return state["generation"] > known

    def _hold_max_prefix_shutdowns(self, router: str) -> None:
        """A router holds a session it closed for exceeding a maximum-prefix
        limit idle until an operator clears it; ExaBGP would reconnect at
        once, so the backend shuts the neighbor down administratively, the
        moment the agent's state reports the teardown, and tells the lab
        (``on_session_held``). ``admin_up`` clears it."""
        names = {n.address: n.name for n in self.plan.routers[router].neighbors}
        for address in self.states[router].get("shut") or {}:
            peer = names.get(address)
            if peer is not None and peer not in self._disabled[router]:
                self.admin_down(router, peer)
                self.on_session_held(router, peer)

    def snapshot(self, router: str) -> dict:
        return self.client(router).request("snapshot")

    def sessions(self, router: str) -> dict[str, dict]:
        return self.client(router).request("summary")["sessions"]

    # -- events --------------------------------------------------------------------
    def admin_down(self, router: str, peer: str) -> None:
        self.set_neighbor_admin_state(router, peer, down=True)

    def admin_up(self, router: str, peer: str) -> None:
        self.set_neighbor_admin_state(router, peer, down=False)

    def admin_down_peers(self, router: str) -> set[str]:
        return set(self._disabled[router])

    def set_neighbor_admin_state(self, router: str, peer: str, down: bool) -> None:
        """Shut ``router``'s session with ``peer`` down (``down``) or bring it
        back, the one way this backend does it. ExaBGP 5.0 has no API
        command that keeps a neighbor down (``teardown`` closes the session
        and ExaBGP reconnects at once), so:

        1. the neighbor is left out of (or put back into) ``exabgp.conf``,
           written atomically; on reload ExaBGP sends a Cease and refuses
           the peer's connections, or opens the session again;
        2. the agent is told (its ``admin`` request), so that it reports
           the session as administratively down and, on the way up, forgets
           a maximum-prefix shutdown of it;
        3. ExaBGP reloads its configuration (``reload``).
        """
        try:
            address = self.plan.routers[router].neighbor(peer).address
        except KeyError:
            raise LabError(f"router {router!r} has no session with {peer!r}") from None
        (self._disabled[router].add if down else self._disabled[router].discard)(peer)
        path = self.router_dir(router) / "exabgp.conf"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(self.render(router))
        tmp.rename(path)
        self.client(router).request("admin", neighbor=address, down=down)
        self.reload(router)

    def reload(self, router: str, timeout: float = 5.0) -> None:
        """Make the router's ExaBGP reload its configuration (SIGUSR1) and
        return once the reload is complete, as its log says.

        ExaBGP 5.0 drops a reload signal that arrives while it still has
        updates queued for a peer, which is exactly the moment after a
        depeering: so the signal is sent again every 0.2 s until the log
        shows the reload began. It is not sent again once it began (a
        second reload would be a different one). And it returns only when
        the log says the reload ended: a removed neighbor stays in ExaBGP's
        peer table until its next turn, after the reload, so a reload
        that re-adds it before that turn (a re-peer signalled while the
        depeering's reload still ran) keeps the dying peer and the session
        never comes back. ``LabError`` naming the router if ExaBGP could
        not load the file or did not finish within ``timeout``."""
        if router not in self.speakers:
            raise LabError(f"no router named {router!r}")
        log = self.router_dir(router) / "exabgp.log"

        def counts() -> tuple[int, int, int]:
            text = log.read_bytes()
            return text.count(RELOAD_BEGUN), text.count(RELOAD_DONE), text.count(RELOAD_FAILED)

        begun, done, failed = counts()
        deadline = time.monotonic() + timeout
        signalled = None
        while time.monotonic() < deadline:
            now_begun, now_done, now_failed = counts()
            if now_done > done:
                return
            if now_failed > failed:
                raise LabError(f"router {router}: ExaBGP could not load its configuration on reload"
                               f"{self.log_tail(router)}")
            if now_begun == begun and (signalled is None or time.monotonic() - signalled >= 0.2):
                self.check_alive()
                self.speakers[router].send_signal(signal.SIGUSR1)
                signalled = time.monotonic()
            time.sleep(0.005)  # polling a log file: there is no event to wait on
        raise LabError(f"router {router}: ExaBGP did not reload its configuration within {timeout:.0f} s"
                       f"{self.log_tail(router)}")

    def set_policy(self, router: str, peer: str, policy: dict | None) -> None:
        address = self.plan.routers[router].neighbor(peer).address
        reply = self.client(router).request("policy", neighbor=address, policy=policy)
        if "error" in reply:
            raise LabError(f"router {router}: {reply['error']}")

    def originate(self, router: str, prefix: str, communities=(), large_communities=(),
                  as_path=()) -> None:
        path = list(as_path)
        self.client(router).request("originate", prefix=prefix, communities=list(communities),
                                    large_communities=list(large_communities),
                                    **({"as_path": path} if path else {}))

    def withdraw(self, router: str, prefix: str) -> None:
        self.client(router).request("withdraw", prefix=prefix)
