"""A running lab: build, start, wait, change, observe, stop.

``Lab(topology)`` is the one object users hold; it is a facade over the
modules that do the work. On ``start()`` it checks the machine
(``preflight``), makes the work directory and builds and configures the
namespaces and links (``build``), has the router backend render, validate
and start one BGP daemon per router (``testbed.routers``: ExaBGP with the
route agent by default), and waits until every router's state equals the
model's prediction (``testbed.model.prediction``, waited for by
``converge``). Events (``events``: depeer, re-peer, crash, announce,
withdraw, set_policy) change the lab and the prediction together; queries
(``queries``) read the routers' RIBs through the backend and the kernels'
tables over netlink; traffic goes through ``probes``. ``stop()`` (also on
any exception during start, on ``with`` exit and on Ctrl-C) kills exactly
the lab's processes, which removes its namespaces and links with them.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from testbed.errors import LabError
from testbed.lab import cleanup, signals, startup_errors
from testbed.lab.build import build_network, configure, kill_processes, make_workdir
from testbed.lab.converge import Convergence
from testbed.lab.events import Events
from testbed.lab.preflight import netem_available, preflight, tcp_md5_available  # noqa: F401 - public names
from testbed.lab.probes import Probes
from testbed.lab.queries import Queries
from testbed.linux import ksm
from testbed.linux import neigh_limits as neighbours
from testbed.model.addressing import Plan, plan
from testbed.model.prediction import Expectation
from testbed.model.loader import load
from testbed.model.topology import Topology
from testbed.report.hooks import recorded
from testbed.routers.base import RouterBackend
from testbed.model.router_kinds import choices
from testbed.lab.converge_foreign import ForeignConvergence
from testbed.routers.foreign import MixedBackend
from testbed.routers.exabgp import PROCESS_MODELS, ZYGOTE_MODELS, ExaBGPBackend, SpeakerProcess  # noqa: F401 - public names
from testbed.routers.startup import Listeners as _Listeners  # noqa: F401 - tests import it from here


class Lab:
    """One emulated Internet; see the module docstring.

    ``backend`` runs the routers (a ``testbed.routers.base.RouterBackend``);
    by default ExaBGP with the route agent, configured by ``process_model``,
    ``mrai``, ``update_delay`` and ``merge_pages``. The lab's parts are
    ``backend``, ``convergence``, ``events``, ``queries`` and ``probes``;
    its methods are the stable names users call."""

    UPDATE_DELAY_PATIENCE = 5.0
    """Seconds without a session coming up after which the start-up update
    delay ends anyway (``Convergence.end_update_delay``)."""

    def __init__(self, topology: Topology | str | Path, *, root: Path | str | None = None,
                 keep_workdir: bool = False,
                 progress: Callable[[str], None] | None = None,
                 process_model: str | None = None, mrai: float | None = None,
                 update_delay: bool | None = None, merge_pages: bool | None = None,
                 recorder=None, backend: RouterBackend | None = None):
        self.topology = topology.validate() if isinstance(topology, Topology) else load(topology)
        self.plan: Plan = plan(self.topology)
        self._besides: list[_Beside] = []  # start-up work running beside the build
        self._prediction: _Beside | None = None
        self.expect = Expectation(self.plan)
        self.root = Path(root) if root else cleanup.DEFAULT_ROOT
        self.keep_workdir = keep_workdir or bool(os.environ.get("TESTBED_KEEP"))
        # How the ExaBGP backend runs speakers and agents (its PROCESS_MODELS).
        self.process_model = process_model or os.environ.get("TESTBED_PROCESS_MODEL", "zygote")
        from testbed.agent.agent import MRAI_DEFAULT

        # Seconds a route agent holds an announcement to an eBGP neighbor
        # (testbed.agent.agent.Agent.hold); TESTBED_MRAI overrides the default.
        self.mrai = mrai if mrai is not None else float(os.environ.get("TESTBED_MRAI", MRAI_DEFAULT))
        if not 0 <= self.mrai <= 30:
            raise LabError(f"MRAI of {self.mrai} s: use 0 (off) to 30 seconds")
        # Whether the routers send no UPDATE until every session is up
        # (Convergence.end_update_delay); TESTBED_UPDATE_DELAY=0 turns it off.
        self.update_delay = (update_delay if update_delay is not None
                             else os.environ.get("TESTBED_UPDATE_DELAY", "1") != "0")
        # Whether the speakers' identical pages are merged (testbed.linux.ksm):
        # by default in labs of 50 routers or more, where the kernel can;
        # TESTBED_KSM=0/1 decides otherwise.
        if self.process_model not in ZYGOTE_MODELS:
            self.merge_pages = False
        elif merge_pages is not None:
            self.merge_pages = bool(merge_pages) and ksm.supported()
        else:
            try:
                self.merge_pages = ksm.wanted(len(self.plan.routers))
            except ValueError as exc:
                raise LabError(str(exc)) from None
        self.progress = progress or (lambda stage: None)
        def exabgp(plan: Plan) -> ExaBGPBackend:
            return ExaBGPBackend(
                plan, process_model=self.process_model, mrai=self.mrai, update_delay=self.update_delay,
                merge_pages=self.merge_pages, progress=lambda stage: self.progress(stage))

        # Routers that run BIRD or FRR (testbed.model.router_kinds) make a
        # lab of several kinds (testbed.routers.foreign).
        kinds = choices(self.topology)
        mixed = backend is None and any(c.kind != "exabgp" for c in kinds.values())
        if mixed:
            self.update_delay = False
            backend = MixedBackend(self.plan, kinds, exabgp)
        self.backend = backend or exabgp(self.plan)
        self.id = ""
        self.workdir: Path | None = None
        self.net = None
        self.nodes: dict = {}
        self.queries = Queries(self.plan, self.backend, self.nodes)
        self.probes = Probes(self.plan, self.nodes)
        self.events = Events(self.plan, self.expect, self.backend, self.nodes)
        self.convergence = (ForeignConvergence if mixed else Convergence)(
            self.plan, self.expect, self.backend, self.queries.names, lambda stage: self.progress(stage))
        self.started = False
        self.stopped = False
        self.timings: dict[str, float] = {}
        # Told of the start, each event, each probe stream and the stop
        # (testbed.report.hooks); None records nothing.
        self.recorder = recorder

    # -- the ExaBGP backend's insides, for tests and benchmarks that look at them --
    speakers = property(lambda self: getattr(self.backend, "speakers", {}))
    clients = property(lambda self: getattr(self.backend, "clients", {}))
    watchers = property(lambda self: getattr(self.backend, "watchers", {}))
    agent_pids = property(lambda self: getattr(self.backend, "agent_pids", {}))
    zygote = property(lambda self: getattr(self.backend, "zygote", None))
    summaries = property(lambda self: self.backend.states, doc="router -> its latest state")
    crashed = property(lambda self: self.backend.crashed, doc="routers crashed on purpose")
    cut_links = property(lambda self: self.events.cut_links, doc="sessions whose link is cut")

    @property
    def disabled(self) -> dict[str, set[str]]:
        """router -> peers whose session it holds administratively down."""
        return {router: self.backend.admin_down_peers(router) for router in self.plan.routers}

    def _client(self, router: str):
        """The control connection to the router's route agent (ExaBGP backend)."""
        return self.backend.client(router)

    def _reload(self, router: str) -> None:
        """Make the router's daemon re-read its configuration file as it is now."""
        self.backend.reload(router)

    # -- lifecycle ---------------------------------------------------------
    def __enter__(self) -> "Lab":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self, timeout: float = 60.0) -> "Lab":
        """Build and start everything; return once routing has converged."""
        preflight(self.topology, self.backend)
        t0 = time.monotonic()
        self.backend.start_timeout = timeout
        self._catch_sigterm()
        reported = self.progress
        self.progress = stage = startup_errors.Stage(reported)
        try:
            self._predict_in_background()
            self.id, self.workdir = make_workdir(self.root, self.topology)
            # The backend's helpers (the zygote's imports) and the
            # configurations' rendering and validation run beside the build
            # (mostly other processes' CPU and waiting); both are joined
            # before any speaker starts.
            helpers = self.backend.prepare(self.id, self.workdir)
            helpers_ready = self._beside(helpers, "helpers") if helpers is not None else None
            configs_ready = self._beside(self.backend.write_configs, "configurations")
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
            self.net = build_network(self.plan, self.id, self.nodes)
            self.timings["build"] = time.monotonic() - t0
            self.progress("configuring addresses")  # beside the speakers' start where the backend can (build.configure)
            self._besides.append(configuring := configure(self.plan, self.nodes, self.backend))
            self.progress(f"rendering and validating {getattr(self.backend, 'software', self.backend.kind)} configurations")
            configs_ready.result()
            for note in (helpers_ready.result() if helpers_ready is not None else None) or ():
                self.progress(note)
            self.progress("starting BGP speakers")
            self.backend.start(self.nodes, t0 + timeout)
            configuring.result()  # the end hosts last
            self.started = True
            if self.update_delay:
                self.progress("establishing sessions, routes held back")
                self.convergence.end_update_delay(t0 + timeout, self.UPDATE_DELAY_PATIENCE)
            self.progress("waiting for sessions and routes")
            self.wait_converged(timeout=max(1.0, timeout - (time.monotonic() - t0)))
            self.timings["start"] = time.monotonic() - t0
            if self.recorder is not None:
                self.recorder.lab_started(self)
        except BaseException as exc:
            self.stop()
            failure = startup_errors.explain(exc, self, stage.last)
            if failure is not None:
                raise failure from exc
            raise
        finally:
            self.progress = reported
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

    def _catch_sigterm(self) -> None:
        """SIGTERM, SIGHUP and SIGQUIT become SystemExit while the lab runs
        (``testbed.lab.signals``; those nobody else handles), so ``finally``
        blocks and fixtures stop it instead of the process dying."""
        self._old_sigterm = signals.catch_termination()

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
        held = signals.hold()  # and SIGTERM, SIGHUP, SIGQUIT: exit once stopped
        try:
            t0 = time.monotonic()
            for task in self._besides:  # a start that failed while they ran: let them finish first
                task.join()
            self.probes.close()
            self.backend.stop()
            if self.id:
                kill_processes(self.id, self.nodes)
            self.backend.reap()
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
            held.restore()
            signals.restore(getattr(self, "_old_sigterm", None) or {})
        if interrupted:
            raise interrupted
        held.exit_if_received()

    # -- health and convergence ----------------------------------------------
    def check_alive(self) -> None:
        """Raise ``SpeakerCrashed`` if any speaker or route agent has exited."""
        self.backend.check_alive()

    def wait_converged(self, timeout: float = 30.0) -> float:
        """Wait until every session is in its expected state and every
        router's Loc-RIB equals the model's prediction. Returns the seconds
        waited; raises ``ConvergenceTimeout`` saying what was still missing.
        It only waits: it changes nothing in the lab."""
        if not self.started:
            raise LabError("the lab is not started")
        prediction, self._prediction = self._prediction, None
        if prediction is not None:
            prediction.result()
        return self.convergence.wait_converged(timeout)

    # -- events (see testbed.lab.events) ------------------------------------
    def _settle(self, wait: bool, timeout: float, event) -> float | None:
        """Carry out ``event``; with ``wait``, the seconds from its start until routing converged."""
        started = time.monotonic()
        event()
        if not wait:
            return None
        self.wait_converged(timeout)
        return time.monotonic() - started

    @recorded("depeer")
    def depeer(self, a: str, b: str, how: str = "admin", wait: bool = True,
               timeout: float = 30.0) -> float | None:
        """End the session between ASes ``a`` and ``b``.

        ``how="admin"``: ``a`` shuts the session down (the backend's
        ``admin_down``; ``a`` refuses ``b``'s reconnections).
        ``how="link"``: the private link is cut at both ends; the session
        dies when the hold timer expires. Returns the seconds until routing
        converged (``wait``), else None.
        """
        return self._settle(wait, timeout, lambda: self.events.depeer(a, b, how))

    @recorded("repeer")
    def repeer(self, a: str, b: str, wait: bool = True, timeout: float = 30.0) -> float | None:
        """Undo a depeering of ``a`` and ``b`` (whichever way it was done),
        or a maximum-prefix shutdown of their session."""
        return self._settle(wait, timeout, lambda: self.events.repeer(a, b))

    @recorded("crash")
    def crash(self, router: str, wait: bool = True, timeout: float = 60.0) -> float | None:
        """Kill the router's BGP speaker and agent (SIGKILL), as a crashed
        routing daemon: no NOTIFICATION is sent, but the kernel closes its
        TCP connections, so the neighbors drop their sessions at once and
        route around it (a silent failure, such as a power loss, is a cut
        link instead: ``depeer(..., how="link")``). The crash is expected,
        so it is not reported as a failure. Returns the seconds until the
        rest of the lab converged (``wait``)."""
        return self._settle(wait, timeout, lambda: self.events.crash(router))

    @recorded("announce")
    def announce(self, system: str, prefix: str, wait: bool = True, timeout: float = 30.0, *,
                 communities=(), large_communities=(), as_path=()) -> float | None:
        """AS ``system`` starts originating ``prefix``, tagged with
        ``communities`` (``"65000:1"``, ``"blackhole"``, ...) and
        ``large_communities`` (``"64500:0:64502"``). Any prefix may be
        announced, also another AS's (a hijack). ``as_path``: ASNs the route
        carries behind ``system``'s own (a route replayed from a real table,
        ``testbed.internet.mrt``)."""
        return self._settle(wait, timeout, lambda: self.events.announce(system, prefix, communities, large_communities, as_path))

    @recorded("withdraw")
    def withdraw(self, system: str, prefix: str, wait: bool = True, timeout: float = 30.0) -> float | None:
        """AS ``system`` stops originating ``prefix``."""
        return self._settle(wait, timeout, lambda: self.events.withdraw(system, prefix))

    @recorded("set_policy")
    def set_policy(self, router: str, peer: str, policy: dict | None, wait: bool = True,
                   timeout: float = 30.0) -> float | None:
        """Replace the policy ``router`` applies on its session with ``peer``
        (the policy language of ``testbed.bgp.rules``; ``None`` for the plain
        relationship policy), as an operator changing the configuration.
        Export changes take effect at once; an import change resets the
        session so that the peer sends its routes again. Returns the seconds
        until routing converged (``wait``)."""
        return self._settle(wait, timeout, lambda: self.events.set_policy(router, peer, policy))

    def policy(self, router: str, peer: str) -> dict | None:
        """The policy ``router`` applies on its session with ``peer`` now."""
        return self.events.policy(router, peer)

    # -- queries (see testbed.lab.queries) -----------------------------------
    def snapshot(self, router: str) -> dict:
        """Everything the router's agent knows: RIBs, sessions, kernel routes."""
        return self.queries.snapshot(router)

    def loc_rib(self, router: str) -> dict[str, dict]:
        """prefix -> best route at ``router``."""
        return self.queries.loc_rib(router)

    def sessions(self, router: str) -> dict[str, dict]:
        """peer AS name -> session state as the router's agent sees it."""
        return self.queries.sessions(router)

    def prefix_of(self, target: str, family: int = 4) -> str:
        """The prefix of an AS name (its first of ``family``), or ``target`` if it is a prefix."""
        return self.queries.prefix_of(target, family)

    def route(self, router: str, target: str, family: int = 4) -> dict | None:
        """The best route at ``router`` for an AS's prefix (or a prefix)."""
        return self.queries.route(router, target, family)

    def as_path(self, router: str, target: str, family: int = 4) -> list[str] | None:
        """AS names along the best path at ``router`` towards ``target``
        (an AS name or prefix); [] if it is the router's own; None if no route."""
        return self.queries.as_path(router, target, family)

    def names(self, asns) -> list[str]:
        """AS names of ASNs (``AS<n>`` for unknown ones)."""
        return self.queries.names(asns)

    def kernel_routes(self, router: str) -> dict[str, str]:
        """prefix -> next hop of the BGP routes in the router's kernel table."""
        return self.queries.kernel_routes(router)

    def counters(self, router: str, neighbor: str) -> dict[str, int]:
        """Interface counters of ``router``'s port towards AS ``neighbor``."""
        return self.queries.counters(router, neighbor)

    def dump(self, directory: Path | str) -> Path:
        """Write every router's RIB snapshot and copy every log into ``directory``."""
        return self.queries.dump(directory, with_files=self.workdir is not None)

    # -- traffic (see testbed.lab.probes) -------------------------------------
    @property
    def traffic(self):
        return self.probes.traffic

    def host(self, ref: str):
        """A host by host name or AS name (its first host)."""
        return self.probes.host(ref)

    def address(self, ref: str, family: int = 4) -> str:
        """An address for a host name, an AS name (its first host) or an address."""
        return self.probes.address(ref, family)

    def send(self, src: str, dst: str, packets: int = 100, size: int = 1000, family: int = 4) -> int:
        """Send ``packets`` UDP datagrams of ``size`` bytes from ``src`` to ``dst``'s discard port."""
        return self.probes.send(src, dst, packets, size, family)

    def ping(self, src: str, dst: str, family: int = 4, count: int = 3, timeout: float = 1.0):
        """ICMP echo from host/AS ``src`` to host/AS/address ``dst``."""
        return self.probes.ping(src, dst, family, count, timeout)

    def reachable(self, src: str, dst: str, family: int = 4, timeout: float = 1.0) -> bool:
        return self.probes.reachable(src, dst, family, timeout)

    def traceroute(self, src: str, dst: str, family: int = 4, max_hops: int = 16):
        """Router-level hops from ``src`` to ``dst`` (ICMP time exceeded)."""
        return self.probes.traceroute(src, dst, family, max_hops)

    def as_traceroute(self, src: str, dst: str, family: int = 4) -> list[str]:
        """The ASes the packets really crossed, from ``src``'s AS to ``dst``'s."""
        return self.probes.as_traceroute(src, dst, family)

    def router_traceroute(self, src: str, dst: str, family: int = 4) -> list[str]:
        """The routers the packets from ``src`` to ``dst`` crossed."""
        return self.probes.router_traceroute(src, dst, family)

    def stream(self, src: str, dst: str, family: int = 4, rate: float = 200.0):
        """A sequenced probe stream (context manager) to count loss during an event."""
        stream = self.probes.stream(src, dst, family, rate)
        if self.recorder is not None:
            self.recorder.stream_opened(self, src, dst, family, stream)
        return stream


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


class _Beside:
    """A piece of start-up work in a thread; ``result()`` waits for it and
    returns what it returned, or raises what it raised."""

    def __init__(self, work, name: str):
        self._error: BaseException | None = None
        self._value = None

        def run():
            try:
                self._value = work()
            except BaseException as exc:
                self._error = exc

        self._thread = threading.Thread(target=run, name=name, daemon=True)
        self._thread.start()

    def join(self) -> None:
        self._thread.join()

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value
