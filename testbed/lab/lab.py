"""A running lab: build, start, wait, change, observe, stop.

``Lab(topology)`` takes a validated topology and its address plan and, on
``start()``: builds the Mininet nodes and veth links (``testbed.linux.nodes``),
configures every namespace over netlink, renders each router's ExaBGP and
agent configuration (``testbed.routers.exabgp_config``) and checks them all with
``exabgp validate``, starts one ExaBGP per router (which starts its route
agent, ``testbed.agent.agent``), and waits until every router's Loc-RIB equals the
model's prediction (``testbed.model.prediction``). Events (depeer, re-peer, announce,
withdraw) change the lab and the prediction together; queries read the
agents' RIBs over their control sockets and the kernels' tables over
netlink; traffic goes through ``testbed.traffic.traffic``. ``stop()`` (also on any
exception during start, on ``with`` exit and on Ctrl-C) kills exactly the
lab's processes, which removes its namespaces and links with them.
"""

from __future__ import annotations

import json
import os
import secrets
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from testbed.lab import cleanup
from testbed.linux import ksm
from testbed.linux import neigh_limits as neighbours
from testbed.linux import netns
from testbed.model.addressing import Plan, plan
from testbed.lab.control import AgentClient
from testbed.errors import ConvergenceTimeout, LabError, MissingDependency, SpeakerCrashed
from testbed.model.prediction import Expectation
from testbed.linux.namespaces import configure_host, configure_ixp, configure_router, create_veths, prepare_namespace
from testbed.linux.nodes import PrebuiltLink, node_class
from testbed.routers.exabgp_config import BGP_PORT, agent_config, config_tree, quote_argv, render, speaker_environment
from testbed.model.loader import load
from testbed.model.topology import Topology
from testbed.report.hooks import recorded

PACKAGE_ROOT = Path(__file__).resolve().parents[2]

# How speakers and agents run (see docs/architecture.md):
#   zygote  one pre-imported process per lab forks each router's ExaBGP, whose
#           route agent runs as a thread of it: one process per router;
#   exec    the plain way: ``exabgp`` and ``python -m testbed.agent`` per router.
PROCESS_MODELS = ("zygote", "exec")
NODE_THREADS = 8  # nodes whose shells start at the same time
CONFIGURE_THREADS = 4  # namespaces configured at the same time
TCP_LISTEN = 10  # the kernel's TCP state number of a listening socket


class SpeakerProcess:
    """A speaker forked by the zygote, with the part of ``Popen`` the lab uses."""

    def __init__(self, pid: int, zygote):
        self.pid = pid
        self._zygote = zygote
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None and not cleanup.alive(self.pid):
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


def _exabgp() -> str:
    local = Path(sys.executable).parent / "exabgp"
    if local.exists():
        return str(local)
    found = shutil.which("exabgp")
    if not found:
        raise MissingDependency("the exabgp command is missing: install the project's "
                                "Python dependencies (scripts/setup.sh does)")
    return found


def preflight(topology: Topology) -> None:
    """Check the machine before anything is created; one sentence per lack."""
    if os.geteuid() != 0:
        raise MissingDependency("a lab needs root (network namespaces): run it with sudo")
    if not shutil.which("mnexec"):
        raise MissingDependency("mnexec is missing: install Debian's 'mininet' package "
                                "(apt-get install --no-install-recommends mininet)")
    _exabgp()
    shaped = [r for r in topology.relationships if r.bandwidth is not None]
    if shaped and not shutil.which("tc"):
        raise MissingDependency("tc is missing (link bandwidth needs it): apt-get install iproute2")
    protected = [r for r in topology.relationships if r.password is not None]
    if protected and not tcp_md5_available():
        raise MissingDependency(f"{protected[0].where}: session passwords need TCP MD5 (RFC 2385), which "
                                "this kernel lacks (CONFIG_TCP_MD5SIG); remove the passwords to run here")
    emulated = [r for r in topology.relationships if r.delay is not None or r.loss is not None]
    if emulated and not netem_available():
        where = emulated[0]
        raise MissingDependency(
            f"{where.where}: link delay/loss needs the netem qdisc, which this kernel lacks "
            "(modprobe sch_netem, or install linux-modules-extra); remove delay/loss to run here")


def tcp_md5_available() -> bool:
    """Whether the kernel supports TCP MD5 signatures (set a key on an
    unconnected socket, as a listening BGP speaker does)."""
    import socket
    import struct

    addr = struct.pack("=H2s4s", socket.AF_INET, b"\0\0", socket.inet_aton("127.0.0.1")).ljust(128, b"\0")
    option = addr + struct.pack("=BBHI", 0, 0, 1, 0) + b"k".ljust(80, b"\0")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.setsockopt(socket.IPPROTO_TCP, 14, option)  # TCP_MD5SIG
        except OSError:
            return False
    return True


def netem_available() -> bool:
    """Whether the kernel has the netem qdisc (tried in a throwaway namespace)."""
    result = subprocess.run(["unshare", "-n", "tc", "qdisc", "add", "dev", "lo", "root",
                             "netem", "delay", "1ms"], capture_output=True)
    return result.returncode == 0


class Lab:
    """One emulated Internet; see the module docstring."""

    def __init__(self, topology: Topology | str | Path, *, root: Path | str | None = None,
                 keep_workdir: bool = False,
                 progress: Callable[[str], None] | None = None,
                 process_model: str | None = None, mrai: float | None = None,
                 update_delay: bool | None = None, merge_pages: bool | None = None,
                 recorder=None):
        self.topology = topology.validate() if isinstance(topology, Topology) else load(topology)
        self.plan: Plan = plan(self.topology)
        self._as_names = {r.asn: r.as_name for r in self.plan.routers.values()}
        self._besides: list[_Beside] = []  # start-up work running beside the build
        self._prediction: _Beside | None = None
        self.expect = Expectation(self.plan)
        self.root = Path(root) if root else cleanup.DEFAULT_ROOT
        self.keep_workdir = keep_workdir or bool(os.environ.get("TESTBED_KEEP"))
        self.process_model = process_model or os.environ.get("TESTBED_PROCESS_MODEL", "zygote")
        if self.process_model not in PROCESS_MODELS:
            raise LabError(f"unknown process model {self.process_model!r}: use one of "
                           f"{', '.join(PROCESS_MODELS)}")
        from testbed.agent.agent import MRAI_DEFAULT

        # Seconds a route agent holds an announcement to an eBGP neighbor
        # (testbed.agent.agent.Agent.hold); TESTBED_MRAI overrides the default.
        self.mrai = mrai if mrai is not None else float(os.environ.get("TESTBED_MRAI", MRAI_DEFAULT))
        if not 0 <= self.mrai <= 30:
            raise LabError(f"MRAI of {self.mrai} s: use 0 (off) to 30 seconds")
        # Whether the agents send no UPDATE until every session is up (see
        # _end_update_delay); TESTBED_UPDATE_DELAY=0 turns it off.
        self.update_delay = (update_delay if update_delay is not None
                             else os.environ.get("TESTBED_UPDATE_DELAY", "1") != "0")
        # Whether the speakers' identical pages are merged (testbed.linux.ksm):
        # by default in labs of 50 routers or more, where the kernel can;
        # TESTBED_KSM=0/1 decides otherwise.
        if self.process_model != "zygote":
            self.merge_pages = False
        elif merge_pages is not None:
            self.merge_pages = bool(merge_pages) and ksm.supported()
        else:
            try:
                self.merge_pages = ksm.wanted(len(self.plan.routers))
            except ValueError as exc:
                raise LabError(str(exc)) from None
        self._start_timeout = 60.0
        self.zygote = None
        self.progress = progress or (lambda stage: None)
        self.id = ""
        self.workdir: Path | None = None
        self.net = None
        self.nodes: dict = {}
        self.speakers: dict[str, subprocess.Popen] = {}
        self.clients: dict[str, AgentClient] = {}
        self.watchers: dict[str, AgentClient] = {}
        self._watch_pending: dict[str, bool] = {}
        self.summaries: dict[str, dict] = {}
        self.agent_pids: dict[str, int] = {}
        self.crashed: set[str] = set()
        self.disabled: dict[str, set[str]] = {r: set() for r in self.plan.routers}
        self.cut_links: set[frozenset] = set()
        self._traffic = None
        self.started = False
        self.stopped = False
        self.timings: dict[str, float] = {}
        # Told of the start, each event, each probe stream and the stop
        # (testbed.report.hooks); None records nothing.
        self.recorder = recorder

    # -- lifecycle ---------------------------------------------------------
    def __enter__(self) -> "Lab":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self, timeout: float = 60.0) -> "Lab":
        """Build and start everything; return once routing has converged."""
        preflight(self.topology)
        t0 = time.monotonic()
        self._start_timeout = timeout
        self._catch_sigterm()
        try:
            self._predict_in_background()
            self._make_workdir()
            # The zygote's imports and the configurations' rendering and
            # `exabgp validate` run beside the build (mostly other
            # processes' CPU and waiting); both are joined before any
            # speaker starts.
            zygote_ready = None
            if self.process_model == "zygote":
                from testbed.speaker.zygote import ZygoteClient

                self.progress("starting the speaker zygote")
                self.zygote = ZygoteClient(self.workdir / "zygote.sock", self.id,
                                           log=self.workdir / "zygote.log", merge_pages=self.merge_pages)
                zygote_ready = self._beside(self.zygote.start, "zygote")
            configs_ready = self._beside(self._write_configs, "configurations")
            raised = neighbours.ensure(self.plan, self.root)
            if raised:
                self.progress("raised the host's neighbour-table limits for this lab (put back when the "
                              "last lab stops): " + ", ".join(
                                  f"net.ipv{key[0]}.neigh.default.gc_thresh{key[2]} {old} -> {new}"
                                  for key, (old, new) in sorted(raised.items())))
            if self.merge_pages:
                started = ksm.ensure(len(self.plan.routers), self.root)
                if started:
                    self.progress("started the kernel's page merging (KSM) for this lab (put back when "
                                  "the last lab stops): " + ", ".join(
                                      f"{name} {old} -> {new}" for name, (old, new) in started.items()))
            self.progress("building namespaces and links")
            self._build()
            self.timings["build"] = time.monotonic() - t0
            self.progress("configuring addresses")
            self._configure()
            self.progress("rendering and validating ExaBGP configurations")
            configs_ready.result()
            if zygote_ready is not None:
                zygote_ready.result()
                merging = self.zygote.info.get("merging_pages")
                if self.merge_pages and merging is not True:
                    self.progress(f"the speakers' pages will not be merged: {merging}")
            self.progress("starting BGP speakers")
            self._start_speakers(t0 + timeout)
            self._connect_agents(t0 + timeout)
            self.started = True
            if self.update_delay:
                self.progress("establishing sessions, routes held back")
                self._end_update_delay(t0 + timeout)
            self.progress("waiting for sessions and routes")
            self.wait_converged(timeout=max(1.0, timeout - (time.monotonic() - t0)))
            self.timings["start"] = time.monotonic() - t0
            if self.recorder is not None:
                self.recorder.lab_started(self)
        except BaseException:
            self.stop()
            raise
        return self

    def _beside(self, work, name: str) -> "_Beside":
        """Run ``work()`` in a thread now; ``stop()`` waits for it."""
        task = _Beside(work, name)
        self._besides.append(task)
        return task

    def _predict_in_background(self) -> None:
        """Compute the model's prediction (``Expectation.loc_ribs``) in a
        thread while the lab is built and its speakers start: it is pure
        Python work (seconds at a hundred ASes) that nothing needs before
        ``wait_converged``, which waits for it and raises what it raised
        (``NoConvergence`` above all). ``stop()`` does not wait for it."""
        def predict():
            t0 = time.monotonic()
            try:
                self.expect.loc_ribs()
            finally:
                self.timings["model"] = time.monotonic() - t0

        self._prediction = _Beside(predict, "prediction")

    def _join_prediction(self) -> None:
        prediction, self._prediction = self._prediction, None
        if prediction is not None:
            prediction.result()

    def _catch_sigterm(self) -> None:
        """Turn SIGTERM into SystemExit while the lab runs, so ``finally``
        blocks and fixtures stop it (Python's default would just die and
        leave the lab behind). Only if nobody else handles SIGTERM."""
        self._old_sigterm = None
        if _main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            def terminate(signum, frame):
                raise SystemExit(128 + signum)

            self._old_sigterm = signal.signal(signal.SIGTERM, terminate)

    def _make_workdir(self) -> None:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        for _ in range(16):
            lab_id = secrets.token_hex(3)
            workdir = self.root / lab_id
            try:
                workdir.mkdir(mode=0o700)
            except FileExistsError:
                continue
            self.id, self.workdir = lab_id, workdir
            break
        else:
            raise LabError(f"could not create a work directory under {self.root}")
        manifest = {"id": self.id, "topology": self.topology.name, "source": self.topology.source,
                    "owner_pid": os.getpid(), "owner_start": cleanup.process_start_time(os.getpid()),
                    "created": time.time()}
        tmp = self.workdir / "manifest.json.tmp"
        tmp.write_text(json.dumps(manifest, indent=2))
        tmp.rename(self.workdir / "manifest.json")

    def _build(self) -> None:
        from mininet.link import TCLink
        from mininet.net import Mininet

        # Mininet.init() would raise system-wide limits and sysctls of the
        # root namespace; a lab touches nothing it did not create.
        Mininet.inited = True
        cls = node_class(self.id)
        net = Mininet(topo=None, build=False, controller=None, autoSetMacs=False,
                      waitConnected=False, inNamespace=False)
        self.net = net
        names = list(self.plan.routers) + list(self.plan.hosts) + list(self.plan.ixps)
        made: dict[str, object] = {}

        def make(name: str):
            node = cls(name, ip=None, inNamespace=True)
            made[name] = node  # known to stop() from now on, whatever happens next
            # Before any link exists: interfaces made from now on inherit
            # "default" (no DAD, so no tentative link-local address delaying
            # IPv6 neighbour discovery for a second after start).
            prepare_namespace(node.pid)
            return node

        # Each node's shell takes a few milliseconds to start, mostly waiting
        # for it (fork, exec, its first prompt): start several at once.
        from concurrent.futures import ThreadPoolExecutor

        try:
            with ThreadPoolExecutor(max_workers=NODE_THREADS) as pool:
                nodes = list(pool.map(make, names))
        finally:
            self.nodes.update(made)  # every shell started, even if one failed
        self.nodes = {}
        for name, node in zip(names, nodes):  # Mininet's lists in the plan's order, as addHost makes them
            net.hosts.append(node)
            net.nameToNode[name] = node
            self.nodes[name] = node
        plain = []
        for link in self.plan.links:
            shaped = link.bandwidth is not None or link.delay is not None or link.loss is not None
            if not shaped:
                plain.append(link)
                continue
            params = {k: v for k, v in (("bw", link.bandwidth), ("delay", link.delay),
                                        ("loss", link.loss)) if v is not None}
            net.addLink(self.nodes[link.node1], self.nodes[link.node2],
                        intfName1=link.ifname1, intfName2=link.ifname2,
                        addr1=_mac(link.node1, link.ifname1), addr2=_mac(link.node2, link.ifname2),
                        cls=TCLink, **params)
        # Plain links: veth pairs made over netlink in one go, then recorded in Mininet.
        create_veths([(link.node1, link.ifname1, _mac(link.node1, link.ifname1),
                       link.node2, link.ifname2, _mac(link.node2, link.ifname2)) for link in plain],
                     {name: node.pid for name, node in self.nodes.items()})
        for link in plain:
            net.addLink(self.nodes[link.node1], self.nodes[link.node2],
                        intfName1=link.ifname1, intfName2=link.ifname2,
                        addr1=_mac(link.node1, link.ifname1), addr2=_mac(link.node2, link.ifname2),
                        cls=PrebuiltLink)

    def _configure(self) -> None:
        """Every namespace's addresses, bridges, sysctls and static routes,
        several namespaces at a time: each thread enters its own namespace,
        and the kernel's share of the work (it runs in the sending system
        call, outside the interpreter lock) overlaps the encoding of the
        next batch."""
        from concurrent.futures import ThreadPoolExecutor

        work = ([(configure_router, name, router) for name, router in self.plan.routers.items()]
                + [(configure_host, name, host) for name, host in self.plan.hosts.items()]
                + [(configure_ixp, name, ixp) for name, ixp in self.plan.ixps.items()])
        with ThreadPoolExecutor(max_workers=CONFIGURE_THREADS) as pool:
            for done in [pool.submit(fn, self.nodes[name].pid, item) for fn, name, item in work]:
                done.result()  # the first failure, once every thread has finished

    def _router_dir(self, router: str) -> Path:
        assert self.workdir is not None
        return self.workdir / router

    def _agent_argv(self, router: str) -> list[str]:
        return [sys.executable, "-m", "testbed.agent", str(self._router_dir(router) / "agent.json")]

    def _render(self, router: str) -> str:
        tree = config_tree(self.plan.routers[router], self.plan.hold_time,
                           self._agent_argv(router), self.disabled[router])
        return render(tree)

    def _write_configs(self) -> None:
        paths = []
        for name, router in self.plan.routers.items():
            directory = self._router_dir(name)
            directory.mkdir(mode=0o700)
            (directory / "exabgp.conf").write_text(self._render(name))
            config = agent_config(self.plan, router, str(directory / "agent.sock"),
                                  str(directory / "agent.log"))
            config["mrai"] = self.mrai
            if self.update_delay:
                # The longest an agent waits for _end_update_delay.
                config["update_delay"] = self._start_timeout
            (directory / "agent.json").write_text(json.dumps(config, indent=2))
            paths.append(str(directory / "exabgp.conf"))
        command = [_exabgp(), "validate", *paths]
        result = subprocess.run(command, capture_output=True, text=True,
                                env={**os.environ, "exabgp_log_destination": "stdout"})
        if result.returncode != 0:
            raise LabError(f"ExaBGP refused a generated configuration ({quote_argv(command)}):\n"
                           + (result.stderr or result.stdout).strip())

    def _start_speakers(self, deadline: float) -> None:
        """Start one ExaBGP per router, passive sides first.

        Of each session the higher ASN is passive (it listens) and the lower
        one connects. A connection refused because the peer is not listening
        yet costs ExaBGP a growing back-off (1 s, 2 s, 3 s...), so routers
        start in descending ASN order, with only a few starting at a time,
        each counted as started once it listens on port 179: every active
        side then finds its passive peers listening on its first try."""
        pythonpath = os.pathsep.join(filter(None, [str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")]))
        # A fork from the zygote costs ~10 ms, an exec'd interpreter ~0.3 s of CPU.
        window = (8 if self.zygote is not None else 2) * (os.cpu_count() or 1)
        starting: list[str] = []
        order = sorted(self.plan.routers.values(), key=lambda r: r.asn, reverse=True)
        with _Listeners(BGP_PORT) as listeners:
            def still_starting() -> list[str]:
                return [n for n in starting if not listeners.listening(n, self.nodes[n].pid)]

            for router in order:
                while len(starting) >= window:
                    starting = still_starting()
                    if len(starting) >= window:
                        self._wait_step(deadline, "speakers to listen")
                name = router.name
                directory = self._router_dir(name)
                env = {**os.environ, **speaker_environment(router, self.id),
                       # A dead agent is not restarted (it would have lost its RIBs);
                       # the harness notices it (check_alive) instead.
                       "exabgp_api_respawn": "false",
                       "PYTHONPATH": pythonpath, "PYTHONUNBUFFERED": "1"}
                if self.zygote is not None:
                    pid = self.zygote.spawn(name, self.nodes[name].pid, directory / "exabgp.conf", env,
                                            directory / "exabgp.log",
                                            netns_inode=netns.netns_inode(self.nodes[name].pid))
                    self.speakers[name] = SpeakerProcess(pid, self.zygote)
                else:
                    log = open(directory / "exabgp.log", "wb")
                    try:
                        self.speakers[name] = self.nodes[name].popen(
                            [_exabgp(), str(directory / "exabgp.conf")], env=env,
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
                    finally:
                        log.close()
                if router.neighbors:
                    starting.append(name)
            while starting:
                starting = still_starting()
                if starting:
                    self._wait_step(deadline, "speakers to listen")

    def _wait_step(self, deadline: float, what: str) -> None:
        self._check_alive_now_and_then()
        if time.monotonic() > deadline:
            raise LabError(f"timed out waiting for {what}")
        time.sleep(0.01)  # no event tells us a socket started listening in another process

    ALIVE_PERIOD = 0.25  # seconds between liveness checks inside start-up polling loops

    def _check_alive_now_and_then(self) -> None:
        """``check_alive`` in a polling loop: reading every speaker's
        /proc entry a hundred times a second cost more CPU than starting them."""
        now = time.monotonic()
        if now - getattr(self, "_alive_checked", 0.0) >= self.ALIVE_PERIOD:
            self._alive_checked = now
            self.check_alive()

    def _connect_agents(self, deadline: float) -> None:
        """Connect to every agent's control socket, then ask them all for
        their pid at once (each answers when its event loop gets to it)."""
        for name in self.plan.routers:
            path = str(self._router_dir(name) / "agent.sock")
            for table in (self.clients, self.watchers):
                client = AgentClient(path, name)
                while True:
                    self._check_alive_now_and_then()
                    try:
                        client.connect(min(deadline, time.monotonic() + 0.5))
                        break
                    except LabError:
                        if time.monotonic() >= deadline:
                            raise
                table[name] = client
            self._watch_pending[name] = False
            self.clients[name].send({"op": "summary"})
        for name, client in self.clients.items():
            try:
                self.agent_pids[name] = client.receive(timeout=max(1.0, deadline - time.monotonic()))["pid"]
            except LabError:
                self.check_alive()
                raise

    def stop(self) -> None:
        """Stop every process of the lab and remove its work directory.
        Safe to call twice, and after a failed start."""
        if self.stopped:
            return
        if self.recorder is not None and self.started:
            self.recorder.lab_stopping(self)
        self.stopped = True
        interrupted = None
        # Ctrl-C during teardown must not leave half a lab: finish, then re-raise.
        previous = signal.getsignal(signal.SIGINT) if _main_thread() else None
        if previous is not None:
            signal.signal(signal.SIGINT, lambda *_: None)
        try:
            t0 = time.monotonic()
            for task in self._besides:  # a start that failed while they ran: let them finish first
                task.join()
            if self._traffic is not None:
                self._traffic.close()
            for client in list(self.clients.values()) + list(self.watchers.values()):
                client.close()
            if self.zygote is not None:
                try:
                    self.zygote.stop_children(grace=1.0)
                except Exception:  # the sweep below kills whatever is left
                    pass
                self.zygote.close(timeout=2.0)
            if self.id:
                pids = cleanup.tagged_processes().get(self.id, [])
                shells = {node.shell.pid for node in self.nodes.values() if node.shell}
                # Leaves first: agents and speakers, then the node shells.
                cleanup.kill([p for p in pids if p not in shells], grace=1.0)
                for node in self.nodes.values():
                    try:
                        node.terminate()
                    except Exception:
                        pass
                cleanup.kill(cleanup.tagged_processes().get(self.id, []), grace=1.0)
            for speaker in self.speakers.values():
                try:
                    speaker.wait(timeout=0.1)
                except Exception:
                    pass
            if self.workdir is not None and not self.keep_workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)
            if self.id:
                try:  # the neighbour-table limits, if a lab raised them and none is left
                    neighbours.restore(self.root, except_lab=self.id)
                except OSError as exc:
                    sys.stderr.write(f"testbed: could not restore the neighbour-table limits: {exc}\n")
                try:  # and ksmd's settings, if a lab started it
                    ksm.restore(self.root, except_lab=self.id)
                except OSError as exc:
                    sys.stderr.write(f"testbed: could not restore the kernel's page merging settings: {exc}\n")
            self.timings["stop"] = time.monotonic() - t0
        except KeyboardInterrupt as exc:  # pragma: no cover - timing dependent
            interrupted = exc
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
            if getattr(self, "_old_sigterm", None) is not None and _main_thread():
                signal.signal(signal.SIGTERM, self._old_sigterm)
        if interrupted:
            raise interrupted

    # -- health ------------------------------------------------------------
    def check_alive(self) -> None:
        """Raise ``SpeakerCrashed`` if any speaker or route agent has exited."""
        for name, popen in self.speakers.items():
            if name in self.crashed:
                continue
            code = popen.poll()
            if code is not None:
                raise SpeakerCrashed(f"the BGP speaker of router {name} exited with status {code}"
                                     f"{self._log_tail(name)}")
        for name, pid in self.agent_pids.items():
            if name not in self.crashed and not cleanup.alive(pid):
                raise SpeakerCrashed(f"the route agent of router {name} (pid {pid}) exited"
                                     f"{self._log_tail(name)}")

    def _log_tail(self, router: str, lines: int = 15) -> str:
        if self.workdir is None:
            return ""
        parts = []
        for log in ("exabgp.log", "agent.log"):
            path = self._router_dir(router) / log
            try:
                text = path.read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                continue
            parts.append(f"\n--- last lines of {path} ---\n" + "\n".join(text))
        return "".join(parts)

    # -- convergence -------------------------------------------------------
    def _expected_sessions(self, router: str) -> dict[str, bool]:
        return {n.name: self.expect.session_up(router, n.name)
                for n in self.plan.routers[router].neighbors}

    def _mismatch(self, router: str, digests: dict[str, str]) -> list[str]:
        summary = self.summaries.get(router)
        if summary is None:
            return [f"router {router}: no answer from its route agent yet"]
        problems = []
        for address, state in summary["sessions"].items():
            want = self._expected_sessions(router)[state["name"]]
            have = state["state"] == "established"
            if want != have:
                hint = ""
                if state.get("last_notification"):
                    hint = f"; last notification {state['last_notification']}"
                elif want and self.plan.routers[router].neighbor(state["name"]).password:
                    hint = ("; no NOTIFICATION: the session has a TCP MD5 password, and a "
                            "mismatch drops every segment silently")
                problems.append(f"router {router}: session to {state['name']} ({address}) is "
                                f"{state['state']}, expected {'established' if want else 'down'}{hint}")
        if summary["state_digest"] != digests[router]:
            problems.append(f"router {router}: Loc-RIB or Adj-RIB-In differs from the expected one")
        return problems

    UPDATE_DELAY_PATIENCE = 5.0
    """Seconds without a session coming up after which the update delay
    ends anyway (a session that cannot come up is wait_converged's to report)."""

    def _end_update_delay(self, deadline: float) -> None:
        """Wait until every session the model expects is Established, then
        let the agents send their UPDATEs.

        Routers start over seconds (minutes at a thousand ASes), so routes
        sent as soon as each session opens would be explored again with
        every session that opens after it, on the CPU the speakers still
        starting need: the lab's own "bgp update-delay". Each agent also
        ends it by itself once the start's timeout has passed."""
        missing: dict[str, int] = {}

        def all_up(changed) -> bool:
            for router in changed:
                sessions = self.summaries[router]["sessions"].values()
                missing[router] = sum(1 for state in sessions if state["state"] != "established"
                                      and frozenset((router, state["name"])) in self.expect.up)
            return len(missing) == len(self.plan.routers) and not any(missing.values())

        up, _ = self._follow_agents(all_up, deadline, patience=self.UPDATE_DELAY_PATIENCE)
        if not up:
            down = sorted(router for router, count in missing.items() if count)
            self.progress(f"sending routes with sessions of {len(down)} router(s) still down "
                          f"({', '.join(down[:5])}{', ...' if len(down) > 5 else ''})")
        try:
            for client in self.clients.values():
                client.send({"op": "end_update_delay"})
            for client in self.clients.values():
                client.receive(timeout=max(10.0, deadline - time.monotonic()))
        except LabError:
            self.check_alive()
            raise

    def _follow_agents(self, satisfied: Callable[[set[str]], bool], deadline: float,
                       patience: float | None = None) -> tuple[bool, float]:
        """Follow every running agent's state (its watch answers) until
        ``satisfied(routers whose state changed)`` holds, which is asked
        first with every router; not at ``deadline``, or after ``patience``
        seconds in which no router changed anything. Returns whether it
        held and when a router last changed (monotonic clock);
        ``self.summaries`` holds each agent's latest state."""
        selector = selectors.DefaultSelector()
        try:
            for name, client in self.watchers.items():
                if name in self.crashed:
                    continue
                selector.register(client.sock, selectors.EVENT_READ, name)
                if not self._watch_pending[name]:
                    client.send({"op": "watch", "after": -1})
                    self._watch_pending[name] = True
            # Start from the agents' present state, asked directly: a watch
            # answer still in flight may describe an older generation.
            live = [name for name in self.clients if name not in self.crashed]
            try:
                for name in live:
                    self.clients[name].send({"op": "summary"})
                for name in live:  # a busy agent answers late, a dead one not at all
                    self.summaries[name] = self.clients[name].receive(
                        timeout=max(10.0, deadline - time.monotonic()))
            except LabError:
                self.check_alive()  # a dead agent or speaker is the better message
                raise
            changed = set(live)
            wait = 0.0
            last_change = time.monotonic()
            while True:
                for key, _ in selector.select(timeout=wait):
                    name = key.data
                    client = self.watchers[name]
                    try:
                        summary = client.receive(timeout=max(5.0, deadline - time.monotonic()))
                        self._watch_pending[name] = False
                        if summary["generation"] >= self.summaries.get(name, {}).get("generation", -1):
                            if summary["generation"] > self.summaries.get(name, {}).get("generation", -1):
                                last_change = time.monotonic()
                                changed.add(name)
                            self.summaries[name] = summary
                        client.send({"op": "watch", "after": self.summaries[name]["generation"]})
                        self._watch_pending[name] = True
                    except LabError:
                        self.check_alive()  # a dead agent or speaker is the better message
                        raise
                # A dead agent closes its socket (receive raises); a dead
                # speaker is looked for a few times a second, and once more
                # before saying the lab converged.
                self._check_alive_now_and_then()
                if satisfied(changed):
                    self.check_alive()
                    return True, last_change
                changed = set()
                now = time.monotonic()
                if now >= deadline or (patience is not None and now - last_change >= patience):
                    return False, last_change
                wait = min(deadline - now, 0.5)
        finally:
            selector.close()

    def wait_converged(self, timeout: float = 30.0) -> float:
        """Wait until every session is in its expected state and every
        router's Loc-RIB equals the model's prediction. Returns the seconds
        waited; raises ``ConvergenceTimeout`` saying what was still missing."""
        if not self.started:
            raise LabError("the lab is not started")
        self._join_prediction()
        t0 = time.monotonic()
        digests = self.expect.digests()

        def converged(changed) -> bool:
            nonlocal digests
            if self._hold_shut_sessions():
                digests = self.expect.digests()
            return not any(self._mismatch(r, digests) for r in self.plan.routers if r not in self.crashed)

        done, last_change = self._follow_agents(converged, t0 + timeout)
        if done:
            return time.monotonic() - t0
        self.check_alive()
        message = self._describe_mismatch(digests, timeout)
        quiet = time.monotonic() - last_change
        if quiet >= 2.0:
            message += (f"\n  (no router changed anything in the last {quiet:.1f} s: the lab settled in "
                        "a state other than the model's. Either something on the real path lost or "
                        "changed a message, or the policies allow more than one stable state (a BGP "
                        "wedgie, RFC 4264: possible once they break the customer > peer > provider "
                        "rules), and which one a network lands in depends on timing.)")
        raise ConvergenceTimeout(message)

    def _hold_shut_sessions(self) -> bool:
        """Keep down the sessions a route agent closed for exceeding a
        maximum-prefix limit. A router holds such a session idle until an
        operator clears it; ExaBGP would reconnect at once, so the lab
        removes the neighbor from that router's configuration, as an
        administrative shutdown does. ``repeer`` clears it. Returns whether
        it held any."""
        held = False
        for router, summary in self.summaries.items():
            for address in summary.get("shut") or {}:
                names = {n.address: n.name for n in self.plan.routers[router].neighbors}
                peer = names.get(address)
                if peer is not None and peer not in self.disabled[router]:
                    self._set_admin(router, peer, down=True)
                    # Down until cleared, whatever the peer sends meanwhile.
                    self.expect.set_session(router, peer, up=False)
                    held = True
        return held

    def _describe_mismatch(self, digests: dict[str, str], timeout: float) -> str:
        lines = [f"routing did not converge within {timeout:.1f} s:"]
        expected = self.expect.loc_ribs()
        for router in self.plan.routers:
            if router in self.crashed:
                continue
            problems = self._mismatch(router, digests)
            lines += [f"  {p}" for p in problems if "Adj-RIB-In" not in p]
            if any("Adj-RIB-In" in p for p in problems):
                try:
                    actual = self.loc_rib(router)
                except LabError as exc:
                    lines.append(f"  router {router}: {exc}")
                    continue
                wanted = expected[router]  # converted to JSON at each lookup: once
                for prefix in sorted(set(wanted) | set(actual)):
                    want, have = wanted.get(prefix), actual.get(prefix)
                    if _brief(want) != _brief(have):
                        lines.append(f"  router {router}: {prefix}: expected {self._fmt(want)}, "
                                     f"got {self._fmt(have)}")
                try:
                    received = self.snapshot(router)["adj_rib_in"]
                except LabError:
                    received = {}
                names = {n.address: n.name for n in self.plan.routers[router].neighbors}
                for address, want_rib in self.expect.adj_ribs_in()[router].items():
                    have_rib = received.get(address, {})
                    missing = sorted(set(want_rib) - set(have_rib))
                    extra = sorted(set(have_rib) - set(want_rib))
                    if missing or extra:
                        lines.append(f"  router {router}: from {names.get(address, address)}: "
                                     f"not yet received {missing or 'nothing'}, not expected {extra or 'nothing'}")
        return "\n".join(lines)

    def _fmt(self, route: dict | None) -> str:
        if route is None:
            return "no route"
        if route.get("neighbor") is None and not route.get("as_path"):
            return "local origin"
        return f"AS path {self.names(route['as_path'])} via {route['next_hop']}"

    # -- events ------------------------------------------------------------
    @recorded("depeer")
    def depeer(self, a: str, b: str, how: str = "admin", wait: bool = True,
               timeout: float = 30.0) -> float | None:
        """End the session between ASes ``a`` and ``b``.

        ``how="admin"``: ``a`` shuts the session down (removes the neighbor
        and reloads its speaker; ``a`` refuses ``b``'s reconnections).
        ``how="link"``: the private link is cut at both ends; the session
        dies when the hold timer expires. Returns the seconds until routing
        converged (``wait``), else None.
        """
        session = self.plan.session(a, b)
        if how == "admin":
            self._set_admin(a, b, down=True)
        elif how == "link":
            self._set_link(session, up=False)
        else:
            raise LabError(f"unknown way to depeer {how!r}: use 'admin' or 'link'")
        self.expect.set_session(a, b, up=False)
        return self.wait_converged(timeout) if wait else None

    @recorded("repeer")
    def repeer(self, a: str, b: str, wait: bool = True, timeout: float = 30.0) -> float | None:
        """Undo a depeering of ``a`` and ``b`` (whichever way it was done)."""
        session = self.plan.session(a, b)
        for x, y in ((a, b), (b, a)):
            if y in self.disabled[x]:
                self._set_admin(x, y, down=False)
        if session.key in self.cut_links:
            self._set_link(session, up=True)
        self.expect.set_session(a, b, up=True)
        return self.wait_converged(timeout) if wait else None

    @recorded("crash")
    def crash(self, router: str, wait: bool = True, timeout: float = 60.0) -> float | None:
        """Kill the router's BGP speaker and agent (SIGKILL), as a crashed
        routing daemon: no NOTIFICATION is sent, but the kernel closes its
        TCP connections, so the neighbors drop their sessions at once and
        route around it (a silent failure, such as a power loss, is a cut
        link instead: ``depeer(..., how="link")``). The crash is expected,
        so it is not reported as a failure. Returns the seconds until the
        rest of the lab converged (``wait``)."""
        if router not in self.speakers:
            raise LabError(f"no router named {router!r}")
        self.crashed.add(router)
        for pid in {self.speakers[router].pid, self.agent_pids.get(router)} - {None}:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for neighbor in self.plan.routers[router].neighbors:
            self.expect.set_session(router, neighbor.name, up=False)
        return self.wait_converged(timeout) if wait else None

    @recorded("announce")
    def announce(self, system: str, prefix: str, wait: bool = True, timeout: float = 30.0, *,
                 communities=(), large_communities=()) -> float | None:
        """AS ``system`` starts originating ``prefix``, tagged with
        ``communities`` (``"65000:1"``, ``"blackhole"``, ...) and
        ``large_communities`` (``"64500:0:64502"``). Any prefix may be
        announced, also another AS's (a hijack)."""
        from testbed.bgp.community import community_set, community_text, large_set, large_text

        try:
            tags = community_set(communities)
            large = large_set(large_communities)
        except ValueError as exc:
            raise LabError(f"announce {prefix} from {system}: {exc}") from None
        self._client(system).request("originate", prefix=prefix,
                                     communities=[community_text(c) for c in tags],
                                     large_communities=[large_text(c) for c in large])
        self.expect.set_origin(system, _normal(prefix), True, tags, large)
        return self.wait_converged(timeout) if wait else None

    @recorded("set_policy")
    def set_policy(self, router: str, peer: str, policy: dict | None, wait: bool = True,
                   timeout: float = 30.0) -> float | None:
        """Replace the policy ``router`` applies on its session with ``peer``
        (the policy language of ``testbed.bgp.rules``; ``None`` for the plain
        relationship policy), as an operator changing the configuration.
        Export changes take effect at once; an import change resets the
        session so that the peer sends its routes again. Returns the seconds
        until routing converged (``wait``)."""
        from testbed.bgp.rules import PolicyError, parse_policy

        try:
            neighbor = self.plan.routers[router].neighbor(peer)
        except KeyError:
            raise LabError(f"router {router!r} has no session with {peer!r}") from None
        try:
            parse_policy(policy, f"policy of {router} towards {peer}")
        except PolicyError as exc:
            raise LabError(str(exc)) from None
        reply = self._client(router).request("policy", neighbor=neighbor.address, policy=policy)
        if "error" in reply:
            raise LabError(f"router {router}: {reply['error']}")
        self.expect.set_policy(router, peer, policy)
        return self.wait_converged(timeout) if wait else None

    def policy(self, router: str, peer: str) -> dict | None:
        """The policy ``router`` applies on its session with ``peer`` now."""
        if (router, peer) in self.expect.policies:
            return self.expect.policies[(router, peer)]
        return self.plan.routers[router].neighbor(peer).policy

    @recorded("withdraw")
    def withdraw(self, system: str, prefix: str, wait: bool = True, timeout: float = 30.0) -> float | None:
        """AS ``system`` stops originating ``prefix``."""
        self._client(system).request("withdraw", prefix=prefix)
        self.expect.set_origin(system, _normal(prefix), False)
        return self.wait_converged(timeout) if wait else None

    def _set_admin(self, router: str, peer: str, down: bool) -> None:
        (self.disabled[router].add if down else self.disabled[router].discard)(peer)
        path = self._router_dir(router) / "exabgp.conf"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(self._render(router))
        tmp.rename(path)
        address = self.plan.routers[router].neighbor(peer).address
        self._client(router).request("admin", neighbor=address, down=down)
        self._reload(router)

    RELOAD_MARK = b"performing reload of exabgp"

    def _reload(self, router: str, timeout: float = 5.0) -> None:
        """Make the router's ExaBGP reload its configuration (SIGUSR1), and
        make sure it did: ExaBGP 5.0 drops a reload signal that arrives while
        it still has updates queued for a peer, which is exactly the moment
        after a depeering. So watch its log for the reload and signal again
        until it shows up."""
        log = self._router_dir(router) / "exabgp.log"
        seen = log.read_bytes().count(self.RELOAD_MARK)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            self.speakers[router].send_signal(signal.SIGUSR1)
            resend = time.monotonic() + 0.2
            while time.monotonic() < resend:
                if log.read_bytes().count(self.RELOAD_MARK) > seen:
                    return
                time.sleep(0.005)  # polling a log file: there is no event to wait on
        raise LabError(f"router {router}: ExaBGP did not reload its configuration within {timeout:.0f} s"
                       f"{self._log_tail(router)}")

    def _set_link(self, session, up: bool) -> None:
        if session.via is not None:
            raise LabError(f"the session {session.a}-{session.b} crosses IXP {session.via}: "
                           "cutting a port there would cut every session on it; depeer it with how='admin'")
        for router, peer in ((session.a, session.b), (session.b, session.a)):
            ifname = self.plan.routers[router].neighbor(peer).ifname
            with netns.iproute(self.nodes[router].pid) as ipr:
                ipr.link("set", index=ipr.link_lookup(ifname=ifname)[0], state="up" if up else "down")
        (self.cut_links.discard if up else self.cut_links.add)(session.key)

    # -- queries -----------------------------------------------------------
    def _client(self, router: str) -> AgentClient:
        if router not in self.clients:
            raise LabError(f"no router named {router!r} (routers: {', '.join(self.plan.routers)})")
        return self.clients[router]

    def snapshot(self, router: str) -> dict:
        """Everything the router's agent knows: RIBs, sessions, kernel routes."""
        return self._client(router).request("snapshot")

    def loc_rib(self, router: str) -> dict[str, dict]:
        """prefix -> best route at ``router``."""
        return self.snapshot(router)["loc_rib"]

    def sessions(self, router: str) -> dict[str, dict]:
        """peer AS name -> session state as the router's agent sees it."""
        return {s["name"]: s for s in self._client(router).request("summary")["sessions"].values()}

    def prefix_of(self, target: str, family: int = 4) -> str:
        """The prefix of an AS name (its first of ``family``), or ``target``
        itself if it is a prefix."""
        if target in self.plan.routers or target in self.plan.systems:
            system = self.plan.system_of(target) if target in self.plan.routers else target
            for prefix in self.plan.prefixes_of(system):
                if (":" in prefix) == (family == 6):
                    return prefix
            raise LabError(f"AS {target} originates no IPv{family} prefix")
        return _normal(target)

    def route(self, router: str, target: str, family: int = 4) -> dict | None:
        """The best route at ``router`` for an AS's prefix (or a prefix)."""
        return self.loc_rib(router).get(self.prefix_of(target, family))

    def as_path(self, router: str, target: str, family: int = 4) -> list[str] | None:
        """AS names along the best path at ``router`` towards ``target``
        (an AS name or prefix); [] if it is the router's own; None if no route."""
        route = self.route(router, target, family)
        return None if route is None else self.names(route["as_path"])

    def names(self, asns) -> list[str]:
        """AS names of ASNs (``AS<n>`` for unknown ones)."""
        by_asn = self._as_names
        return [by_asn.get(int(a), f"AS{a}") for a in asns]

    def kernel_routes(self, router: str) -> dict[str, str]:
        """prefix -> next hop of the BGP routes in the router's kernel table."""
        from testbed.linux.routes import read_bgp_routes

        with netns.iproute(self.nodes[router].pid) as ipr:
            return read_bgp_routes(ipr)

    def counters(self, router: str, neighbor: str) -> dict[str, int]:
        """Interface counters of ``router``'s port towards AS ``neighbor``:
        ``tx_bytes``, ``rx_bytes``, ``tx_packets``, ``rx_packets``. A
        session across an IXP shares the router's one port on the peering
        LAN with every other IXP session, as on a real exchange."""
        ifname = self.plan.routers[router].neighbor(neighbor).ifname
        with netns.iproute(self.nodes[router].pid) as ipr:
            link = ipr.get_links(ipr.link_lookup(ifname=ifname)[0])[0]
        stats = link.get_attr("IFLA_STATS64")
        return {key: int(stats[key]) for key in ("tx_bytes", "rx_bytes", "tx_packets", "rx_packets")}

    def send(self, src: str, dst: str, packets: int = 100, size: int = 1000, family: int = 4) -> int:
        """Send ``packets`` UDP datagrams of ``size`` payload bytes from host
        (or AS) ``src`` to ``dst``'s discard port, as fast as the host can;
        returns the payload bytes sent. The traffic goes one way (at most a
        rate-limited ICMP error comes back), for measuring volumes and
        ratios on the links it crosses."""
        import socket as _socket

        address = self.address(dst, family)
        with netns.inside(self._src_pid(src)):
            sock = _socket.socket(_socket.AF_INET if family == 4 else _socket.AF_INET6,
                                  _socket.SOCK_DGRAM)
        sent = 0
        payload = bytes(size)
        try:
            for _ in range(packets):
                try:
                    sent += sock.sendto(payload, (address, 9))
                except OSError:  # an ICMP error from an earlier datagram, or no route
                    continue
        finally:
            sock.close()
        return sent

    # -- traffic -----------------------------------------------------------
    @property
    def traffic(self):
        if self._traffic is None:
            from testbed.traffic.traffic import Traffic

            self._traffic = Traffic()
        return self._traffic

    def host(self, ref: str):
        """A host by host name or AS name (its first host)."""
        if ref in self.plan.hosts:
            return self.plan.hosts[ref]
        hosts = self.plan.hosts_of(ref)
        if hosts:
            return hosts[0]
        raise LabError(f"no host or AS with hosts named {ref!r}")

    def address(self, ref: str, family: int = 4) -> str:
        """An address for a host name, an AS name (its first host) or an address."""
        if ref in self.plan.hosts or self.plan.hosts_of(ref):
            host = self.host(ref)
            address = host.ip4 if family == 4 else host.ip6
            if address is None:
                raise LabError(f"host {host.name} has no IPv{family} address")
            return address
        return ref

    def _src_pid(self, src: str) -> int:
        return self.nodes[self.host(src).name].pid

    def ping(self, src: str, dst: str, family: int = 4, count: int = 3, timeout: float = 1.0):
        """ICMP echo from host/AS ``src`` to host/AS/address ``dst``."""
        return self.traffic.ping(self._src_pid(src), self.address(dst, family), count=count,
                                 timeout=timeout)

    def reachable(self, src: str, dst: str, family: int = 4, timeout: float = 1.0) -> bool:
        return self.traffic.reachable(self._src_pid(src), self.address(dst, family), timeout=timeout)

    def traceroute(self, src: str, dst: str, family: int = 4, max_hops: int = 16):
        """Router-level hops from ``src`` to ``dst`` (ICMP time exceeded)."""
        return self.traffic.traceroute(self._src_pid(src), self.address(dst, family),
                                       max_hops=max_hops)

    def as_traceroute(self, src: str, dst: str, family: int = 4) -> list[str]:
        """The ASes the packets really crossed, from ``src``'s AS to ``dst``'s,
        by the owner of each answering address; '?' for a silent hop."""
        hops = self.traffic.traceroute(self._src_pid(src), self.address(dst, family))
        path = [self.host(src).system]
        for hop in hops:
            owner = self.plan.owner_of(hop.address) if hop.address else None
            owner = owner or "?"
            if path[-1] != owner:
                path.append(owner)
        return path

    def router_traceroute(self, src: str, dst: str, family: int = 4) -> list[str]:
        """The routers the packets from ``src`` to ``dst`` crossed, by the
        router each answering address belongs to, and the destination host
        if it answered ('?' for a silent hop)."""
        hops = self.traffic.traceroute(self._src_pid(src), self.address(dst, family))
        hosts = {h.ip4: h.name for h in self.plan.hosts.values()}
        hosts.update({h.ip6: h.name for h in self.plan.hosts.values()})
        path: list[str] = []
        for hop in hops:
            router = (self.plan.router_of(hop.address) or hosts.get(hop.address)
                      if hop.address else None) or "?"
            if not path or path[-1] != router:
                path.append(router)
        return path

    def stream(self, src: str, dst: str, family: int = 4, rate: float = 200.0):
        """A sequenced probe stream (context manager) to count loss during an event."""
        stream = self.traffic.stream(self._src_pid(src), self.address(dst, family), rate=rate)
        if self.recorder is not None:
            self.recorder.stream_opened(self, src, dst, family, stream)
        return stream

    # -- diagnostics -------------------------------------------------------
    def dump(self, directory: Path | str) -> Path:
        """Write every router's RIB snapshot and copy every log into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for router in self.plan.routers:
            try:
                data = self.snapshot(router)
                data["kernel_table"] = self.kernel_routes(router)
            except Exception as exc:
                data = {"error": str(exc)}
            (directory / f"{router}.rib.json").write_text(json.dumps(data, indent=2, sort_keys=True))
            if self.workdir is not None:
                for log in ("exabgp.log", "agent.log", "exabgp.conf"):
                    source = self._router_dir(router) / log
                    if source.exists():
                        shutil.copy(source, directory / f"{router}.{log}")
        return directory


def _mac(node: str, ifname: str) -> str:
    """A stable, locally administered MAC address for an interface."""
    import hashlib

    digest = hashlib.sha1(f"{node}/{ifname}".encode()).digest()
    return ":".join(f"{b:02x}" for b in (0x02, *digest[:5]))


def _normal(prefix: str) -> str:
    import ipaddress

    return str(ipaddress.ip_network(prefix, strict=True))


def _brief(route: dict | None):
    return None if route is None else (tuple(route.get("as_path", ())), route.get("next_hop"))


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


class _Listeners:
    """Whether a namespace has an IPv4 TCP listener on a port, asked over a
    socket-diagnostics netlink socket made in it (kept until it says yes,
    all closed on exit).

    It asks the kernel for listening sockets only (0.3 ms). Reading
    ``/proc/<pid>/net/tcp`` instead walks the host's whole TCP connection
    hash, one for every namespace, whatever the namespace holds: ~5 ms of
    system time per read on this machine kind, and polled for 16 starting
    routers every 10 ms that took a quarter of a core from them."""

    def __init__(self, port: int):
        self.port = port
        self._sockets: dict[str, object] = {}

    def __enter__(self) -> "_Listeners":
        return self

    def __exit__(self, *exc) -> None:
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()

    def listening(self, name: str, pid: int) -> bool:
        from pyroute2 import DiagSocket

        sock = self._sockets.get(name)
        if sock is None:
            with netns.inside(pid):
                sock = DiagSocket()
                sock.bind()
            self._sockets[name] = sock
        found = sock.get_sock_stats(family=socket.AF_INET, states=1 << TCP_LISTEN)
        if not any(entry["idiag_sport"] == self.port for entry in found):
            return False
        self._sockets.pop(name).close()
        return True


class _Beside:
    """A piece of start-up work in a thread; ``result()`` waits for it and
    raises what it raised."""

    def __init__(self, work, name: str):
        import threading

        self._error: BaseException | None = None

        def run():
            try:
                work()
            except BaseException as exc:
                self._error = exc

        self._thread = threading.Thread(target=run, name=name, daemon=True)
        self._thread.start()

    def join(self) -> None:
        self._thread.join()

    def result(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error
