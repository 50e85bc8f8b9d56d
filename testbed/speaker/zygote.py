"""The zygote: one pre-initialised Python image per lab that forks every BGP speaker.

Started the plain way, a router costs two interpreters (``exabgp``, then the
route agent it runs), each paying its imports in CPU (~0.3 s) and private
memory (~20 MiB). The zygote is a long-lived process that imports ExaBGP
and the route agent once, takes its heap out of the cyclic garbage
collector (``gc.freeze``, so the collector never writes to the pages children
share), and then forks one child per router on request. The child becomes a
session leader, enters the router's network namespace (``setns`` on
``/proc/<pid>/ns/net``), takes the router's environment, sends its
stdout/stderr to the router's ``exabgp.log`` and runs ExaBGP's own server
entry point in-process (``exabgp.application.server.cmdline``: environment,
logging, configuration, ``Reactor(...).run()``); no interpreter is started.

The route agent named in the configuration's ``process`` block is not
exec'd. ExaBGP's ``Processes`` still starts it through ``Popen`` and talks to
it over two pipes with its JSON encoder and command parser, but the ``Popen``
it gets (``_Subprocess``) recognises ``<python> -m testbed.agent <json>`` and
runs ``testbed.agent.agent`` either in a thread of the speaker (``"thread"``) or in
a fork of it (``"fork"``). Any other helper is started as ExaBGP would. If
the agent ends while ExaBGP is not shutting down, the speaker shuts down and
exits with status 1, so the harness notices.

Every child inherits the zygote's environment block, so the zygote is started
with ``TESTBED_LAB=<id>`` (it serves one lab) and every speaker then carries
the tag in ``/proc/<pid>/environ``. The zygote itself never enters a
namespace and holds none open.

Control: ``ZygoteClient`` (harness side) starts ``python -m testbed.speaker.zygote
<socket>`` and sends one JSON object per line on that Unix socket, each
answered by one line:

- ``{"op": "spawn", "router", "netns_pid", "config", "env", "log"
  [, "agent": "thread"|"fork"] [, "netns_inode"]}`` -> ``{"pid": n}``, sent
  once the child is inside the namespace (or ``{"error": ...}``);
- ``{"op": "status"}`` -> ``{"children": {pid: {"router", "running",
  "status"}}}``, exits reaped on SIGCHLD (status: exit code, or -signal);
- ``{"op": "stop", "grace": s}`` -> TERM to every child, a bounded wait,
  KILL, then the statuses;
- ``{"op": "exit"}`` -> ``{"ok": true}``, then the zygote exits (its
  children live on; ``stop`` first to end them);
- ``{"op": "ping"}`` -> ``{"pid", "lab"}``.

It relies on ExaBGP 5.0.15 internals (pinned in pyproject.toml; check these
on an upgrade): the entry point ``exabgp.application.server.cmdline`` that
``exabgp <conf>`` ends in (``Reactor(...).run()``); the environment being
read once when ``exabgp.environment.setup`` is imported (each child calls
``Env.setup`` itself); ``Processes._start`` starting helpers through
``subprocess.Popen`` (the stand-in provides stdin, stdout, poll, terminate,
wait, kill); ``Processes._handle_problem`` and the ``silence`` flag for a
helper that ended; and, for forked agents, ExaBGP binding its listeners
before it starts helpers (the forked agent closes what it inherits).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

from testbed.speaker import speedups as exabgp_speedups
from testbed.speaker import inprocess
from testbed.linux.processes import LAB_ENV

# Read in the zygote, from the harness's environment (a speaker's is its router's).
_PROFILE_DIR = os.environ.get("TESTBED_PROFILE")

AGENT_MODES = ("thread", "fork")
SPAWN_TIMEOUT = 10.0  # seconds a child may take to enter its namespace
CLONE_NEWNET = 0x40000000
PACKAGE_ROOT = Path(__file__).resolve().parents[2]

# What the zygote imports before it forks anything: every module a speaker
# and its agent import while they run. Modules imported later are private
# to each child (TESTBED_ZYGOTE_TRACE=1 makes a speaker log them at exit).
PRELOAD = (
    "exabgp.application.server",
    "exabgp.reactor.loop",
    "exabgp.reactor.api.processes",
    "exabgp.reactor.api.response",
    "exabgp.reactor.api.command",
    "exabgp.configuration.configuration",
    "exabgp.configuration.check",
    "exabgp.bgp.message.update",
    "exabgp.bgp.message.open",
    "exabgp.bgp.message.notification",
    "exabgp.protocol.family",
    "exabgp.rib.change",
    "exabgp.reactor.asynchronous",
    "testbed.agent.agent",
    "testbed.speaker.inprocess",
    "testbed.linux.routes",
    "testbed.bgp",
    "testbed.lab.control",
)


# -- the zygote --------------------------------------------------------------

def preload() -> list[str]:
    """Import everything children need; return what could not be imported."""
    import importlib

    missing = []
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    from exabgp.environment.environment import Env

    # ExaBGP reads its environment once, when exabgp.environment.setup is
    # first imported (its last line calls Env.setup): that must happen in
    # each child, after it took its router's environment. Import the module
    # here with Env.setup made a no-op (an import in a child writes to many
    # shared pages of the import machinery); the child calls Env.setup.
    if Env._setup:
        raise RuntimeError("ExaBGP's environment was read before any speaker was forked; "
                           "a preloaded module calls getenv() at import")
    Env._setup = True
    try:
        import exabgp.environment.setup  # noqa: F401
    finally:
        Env._setup = False
    _warm_up()
    return missing


def _warm_up() -> None:
    """Run once here what every speaker would otherwise run first, so that
    its result is shared: ExaBGP logs ``platform.uname()`` at start, and its
    processor field runs ``uname -p`` (a fork and an exec) the first time."""
    import platform

    platform.uname().processor


def _read_exabgp_environment() -> None:
    """In a child: what ExaBGP's first getenv() would have done."""
    from exabgp.environment import setup
    from exabgp.environment.environment import Env

    Env.setup(setup.CONFIGURATION)


class Zygote:
    """The server: accepts control connections, forks speakers, reaps them."""

    def __init__(self, path: str, default_agent: str = "thread"):
        self.path = path
        self.default_agent = default_agent
        self.lab = os.environ.get(LAB_ENV, "")
        self.children: dict[int, dict] = {}
        self.running = True
        self.selector = selectors.DefaultSelector()
        self.server: socket.socket | None = None
        self.wake_r, self.wake_w = socket.socketpair()
        self.clients: dict[socket.socket, bytes] = {}

    def serve(self, ready=None) -> None:
        for sock in (self.wake_r, self.wake_w):
            sock.setblocking(False)
        signal.set_wakeup_fd(self.wake_w.fileno())
        signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the loop through the wakeup fd
        signal.signal(signal.SIGTERM, self._terminate)
        signal.signal(signal.SIGINT, self._terminate)
        if os.path.exists(self.path):
            os.unlink(self.path)
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(self.path)
        os.chmod(self.path, 0o600)
        self.server.listen(16)
        self.selector.register(self.server, selectors.EVENT_READ, "server")
        self.selector.register(self.wake_r, selectors.EVENT_READ, "wake")
        if ready is not None:
            ready()
        try:
            while self.running:
                for key, _ in self.selector.select(timeout=None):
                    if key.data == "server":
                        conn, _ = self.server.accept()
                        self.clients[conn] = b""
                        self.selector.register(conn, selectors.EVENT_READ, "client")
                    elif key.data == "wake":
                        try:
                            while self.wake_r.recv(256):
                                pass
                        except BlockingIOError:
                            pass
                    else:
                        self._read(key.fileobj)
                self._reap()
        finally:
            signal.set_wakeup_fd(-1)
            for conn in list(self.clients):
                conn.close()
            self.server.close()
            try:
                os.unlink(self.path)
            except OSError:
                pass

    def _terminate(self, *_):
        self.running = False

    def _read(self, conn: socket.socket) -> None:
        try:
            chunk = conn.recv(1 << 16)
        except OSError:
            chunk = b""
        if not chunk:
            self.selector.unregister(conn)
            self.clients.pop(conn, None)
            conn.close()
            return
        data = self.clients[conn] + chunk
        *lines, self.clients[conn] = data.split(b"\n")
        for line in lines:
            if not line.strip():
                continue
            try:
                reply = self.handle(json.loads(line))
            except Exception as exc:  # a bad request must not end the lab's zygote
                reply = {"error": f"{type(exc).__name__}: {exc}"}
            conn.setblocking(True)
            try:
                conn.sendall(json.dumps(reply).encode() + b"\n")
            except OSError:
                pass

    def handle(self, request: dict) -> dict:
        op = request.get("op")
        if op == "spawn":
            return self.spawn(request)
        if op == "status":
            self._reap()
            return {"children": {str(pid): child for pid, child in self.children.items()}}
        if op == "stop":
            return self.stop(float(request.get("grace", 1.0)))
        if op == "exit":
            self.running = False
            return {"ok": True}
        if op == "ping":
            return {"pid": os.getpid(), "lab": self.lab}
        return {"error": f"unknown op {op!r}"}

    def spawn(self, request: dict) -> dict:
        router = str(request["router"])
        agent = request.get("agent", self.default_agent)
        if agent not in AGENT_MODES:
            return {"error": f"router {router}: unknown agent mode {agent!r} ({', '.join(AGENT_MODES)})"}
        env = {str(k): str(v) for k, v in request["env"].items()}
        if env.get(LAB_ENV, self.lab) != self.lab:
            return {"error": f"router {router}: this zygote serves lab {self.lab!r}, "
                             f"not {env.get(LAB_ENV)!r}"}
        env[LAB_ENV] = self.lab
        report_r, report_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            os.close(report_r)
            _speaker(request, agent, env, report_w,
                     close=[self.selector, self.server, self.wake_r, self.wake_w, *self.clients])
        os.close(report_w)
        self.children[pid] = {"router": router, "running": True, "status": None,
                              "started": time.time()}
        # The child says when it is inside the namespace, or why it is not.
        with os.fdopen(report_r, "rb") as report:
            with selectors.DefaultSelector() as waiting:
                waiting.register(report, selectors.EVENT_READ)
                ready = waiting.select(SPAWN_TIMEOUT)
            said = report.read().decode(errors="replace") if ready else "no word within " \
                f"{SPAWN_TIMEOUT:.0f} s"
        if not ready:
            _signal(pid, signal.SIGKILL)
        if said != "ok":
            self._reap()
            return {"error": f"router {router}: speaker did not start: "
                             f"{said.strip() or 'it exited at once'}", "pid": pid}
        return {"pid": pid}

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = self.children.setdefault(pid, {"router": None})
            child.update(running=False, status=os.waitstatus_to_exitcode(status), ended=time.time())

    def stop(self, grace: float) -> dict:
        """TERM every live child, wait up to ``grace``, then KILL."""
        live = [pid for pid, c in self.children.items() if c.get("running")]
        for pid in live:
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(self.children[p]["running"] for p in live):
            time.sleep(0.01)  # children announce their end only through SIGCHLD
            self._reap()
        for pid in live:
            if self.children[pid]["running"]:
                # A forked agent (its own process group) then reads end of
                # file from its speaker and exits; the lab's tag sweep is the
                # backstop for anything that does not.
                _signal(pid, signal.SIGKILL)
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline and any(self.children[p]["running"] for p in live):
            time.sleep(0.01)
            self._reap()
        return {"children": {str(pid): child for pid, child in self.children.items()}}


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


# -- a speaker (the forked child) --------------------------------------------

class _State:
    agent_lost: str | None = None
    router = "router"


def _setns(pid: int, inode: int | None) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if inode is not None and os.fstat(fd).st_ino != inode:
            raise OSError(f"process {pid} is no longer in the expected network namespace")
        if libc.setns(fd, CLONE_NEWNET) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"setns into the network namespace of pid {pid}: {os.strerror(code)}")
    finally:
        os.close(fd)


def _set_name(name: str) -> None:
    """Name the calling thread (/proc/<pid>/comm for the main thread), so
    ps, top and tooling tell speakers and agents apart: they all share the
    zygote's command line."""
    import ctypes

    ctypes.CDLL(None).prctl(15, name[:15].encode(), 0, 0, 0)  # PR_SET_NAME


def _text_stream(fd: int) -> io.TextIOWrapper:
    return io.TextIOWrapper(io.FileIO(fd, "w", closefd=False), line_buffering=True,
                            write_through=True)


def _speaker(request: dict, agent: str, env: dict, report_w: int, close: list) -> None:
    """Body of a forked child: become the router's ExaBGP. Never returns."""
    code = 70
    try:
        os.setsid()
        signal.set_wakeup_fd(-1)
        for obj in close:
            obj.close()
        for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        sys.stdout, sys.stderr = _text_stream(1), _text_stream(2)
        _set_name(f"exabgp:{request['router']}")
        _State.router = str(request["router"])
        _setns(int(request["netns_pid"]), request.get("netns_inode"))
        os.environ.clear()
        os.environ.update(env)
        _read_exabgp_environment()
        import gc

        gc.enable()
        os.write(report_w, b"ok")
        os.close(report_w)
        report_w = -1
        code = _run_exabgp(str(request["config"]), agent)
    except BaseException as exc:
        text = f"{type(exc).__name__}: {exc}"
        if report_w >= 0:
            try:
                os.write(report_w, text.encode())
            except OSError:
                pass
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


@contextlib.contextmanager
def _profiled(name: str):
    """With ``TESTBED_PROFILE=<directory>`` in the harness's environment,
    profile this thread (cProfile, wall time: waits show as the calls that
    block, ``select``, ``flush``, ``send``...) and write ``<directory>/<name>.prof``
    when it ends: where a speaker's CPU goes, per function, for
    performance work (``python -m pstats``). Without it, nothing."""
    directory = _PROFILE_DIR
    if not directory:
        yield
        return
    import cProfile

    profile = cProfile.Profile()
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        try:
            profile.dump_stats(os.path.join(directory, f"{name}.prof"))
        except OSError:
            pass


def _run_exabgp(config: str, agent: str) -> int:
    """What ``exabgp <config>`` does after its imports: main() turns it into
    ``exabgp server <config>`` and calls ``server.cmdline``, which sets up
    the environment and logging and ends in ``Reactor(configuration).run()``
    and ``sys.exit(code)``."""
    from exabgp.application import server
    from exabgp.reactor.api import processes

    from exabgp.reactor.loop import Reactor
    from exabgp.reactor.peer import Peer

    processes.subprocess = _Subprocess(agent)
    _watch_helpers(processes.Processes)
    _sleep_when_idle(Reactor)
    if exabgp_speedups.enabled():
        if exabgp_speedups.install():
            _turns_for_peers_with_work(Reactor, Peer)
    if inprocess.enabled():
        from exabgp.reactor.api import API
        from exabgp.reactor.asynchronous import ASYNC

        inprocess.install(API, processes.Processes, ASYNC,
                          lambda handle: getattr(handle, "channel", None), Reactor)
    sys.argv = ["exabgp", config]
    parser = argparse.ArgumentParser(prog="exabgp server")
    server.setargs(parser)
    try:
        with _profiled(f"{_State.router}.exabgp"):
            server.cmdline(parser.parse_args([config]))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    if _State.agent_lost:
        sys.stderr.write(f"testbed.speaker.zygote: exiting with status 1: the API process "
                         f"{_State.agent_lost} ended while ExaBGP ran\n")
        code = code or 1
    if os.environ.get("TESTBED_ZYGOTE_TRACE"):
        late = sorted(m for m in sys.modules if m not in _PRELOADED)
        sys.stderr.write(f"testbed.speaker.zygote: {len(late)} modules imported after the fork: "
                         f"{' '.join(late)}\n")
    return code


IDLE_MARGIN = 0.005  # seconds after a second boundary an idle speaker wakes up


def _sleep_when_idle(reactor_class) -> None:
    """Let an idle speaker sleep until the next second instead of waking
    every ``exabgp_reactor_speed / 100`` seconds.

    ExaBGP's loop waits in ``poll()`` on its sessions and API pipe, and
    between events it wakes up every 50 ms (at the lab's speed 5) to give
    every peer a turn, which is what an idle speaker spends its CPU on. Its
    keepalive and hold timers count whole seconds (``int(time.time())``,
    ``exabgp.bgp.timer``), so once every session is Established and no API
    work is queued, a turn just after each second boundary sees every timer
    when the 50 ms turns would. Messages, API commands and signals (through
    a wake-up pipe: ``poll()`` is otherwise resumed after a signal handler
    runs) still wake it at once; a session not Established keeps the short
    turns, which drive its connection attempts."""
    import select

    from exabgp.bgp.fsm import FSM

    wait_for_io = reactor_class._wait_for_io
    established = FSM.ESTABLISHED
    state = {}

    def _wait_for_io(self, sleeptime):
        wake = state.get("wake")
        if wake is None:
            wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
            self._poller.register(wake_r, select.POLLIN)
            state["wake"] = wake = wake_r
        if sleeptime and self._peers and not self.asynchronous._async and not self.signal.received \
                and all(peer.fsm.state == established for peer in self._peers.values()):
            now = time.time()
            sleeptime = max(sleeptime, int((1.0 - now % 1.0 + IDLE_MARGIN) * 1000))
        for fd in wait_for_io(self, sleeptime):
            if fd == wake:
                try:
                    while os.read(wake, 256):
                        pass
                except BlockingIOError:
                    pass
                continue
            yield fd

    reactor_class._wait_for_io = _wait_for_io


def _turns_for_peers_with_work(reactor_class, peer_class) -> None:
    """Give a turn only to the peers with something to do, and to every
    peer once in each new second.

    ExaBGP's loop gives every peer a turn whenever it wakes up, whatever
    woke it: a turn resumes the peer's generator, which tries to read,
    looks at its timers and its Adj-RIB-Out, and yields. A router with 200
    sessions resumed 200 generators for every UPDATE one of them received.
    The timers count whole seconds (see ``_sleep_when_idle``), so a turn
    for every peer in each new second sees them whenever they can change;
    within a second an Established peer needs one only if
    ``_needs_turn``."""
    from exabgp.bgp.fsm import FSM
    from exabgp.reactor.peer import ACTION

    established, later = FSM.ESTABLISHED, ACTION.LATER
    run, active_peers = peer_class.run, reactor_class.active_peers
    wait_for_io = reactor_class._wait_for_io

    def peer_run(self):
        self._testbed_action = action = run(self)
        return action

    def _wait_for_io(self, sleeptime):
        self._testbed_ready = ready = set()
        for fd in wait_for_io(self, sleeptime):
            ready.add(fd)
            yield fd

    def reactor_active_peers(self):
        peers = active_peers(self)
        second = int(time.time())
        if second != getattr(self, "_testbed_second", None):
            self._testbed_second = second
            return peers
        ready = getattr(self, "_testbed_ready", ())
        table = self._peers
        return {key for key in peers if _needs_turn(table[key], ready, established, later)}

    peer_class.run = peer_run
    reactor_class._wait_for_io = _wait_for_io
    reactor_class.active_peers = reactor_active_peers


def _needs_turn(peer, ready, established, later) -> bool:
    """Whether an ExaBGP peer needs a turn of the loop before the next
    second: it is not Established (its connection attempts and OPENs run
    on turns), its last turn did not end with ``ACTION.LATER`` (nothing
    more to do for now; ``ACTION.NOW``: more to read or write),
    its socket is readable (``ready``: the file descriptors the last poll
    returned), it is told to tear down or take a new configuration, or
    something waits to be sent (Adj-RIB-Out changes, a resend, operational
    messages, route refreshes, EORs)."""
    if peer.fsm.state != established or getattr(peer, "_testbed_action", None) != later:
        return True
    if peer._teardown is not None or peer._neighbor is not None or peer.socket() in ready:
        return True
    neighbor = peer.neighbor
    return bool(neighbor.rib.outgoing.pending() or neighbor.messages or neighbor.refresh
                or neighbor.eor)


def _watch_helpers(processes_class) -> None:
    """If ExaBGP loses its API process while it is not shutting down, shut
    the speaker down (SIGTERM: it closes its sessions cleanly) and make it
    exit with status 1. ``Processes._handle_problem`` is where ExaBGP learns
    that a helper's pipe closed or that it exited; ``silence`` is set once
    ExaBGP itself is terminating its helpers. Setting it here too matters:
    ExaBGP forgets the lost helper but still tells it about every session
    going down during the shutdown, and that write raises KeyError
    (processes.py ``write``) and aborts the shutdown half-way."""
    original = processes_class._handle_problem

    def _handle_problem(self, process):
        if process in self._process and not self.silence and _State.agent_lost is None:
            _State.agent_lost = process
            self.silence = True
            sys.stderr.write(f"testbed.speaker.zygote: API process {process} ended on its own: "
                             "shutting the speaker down\n")
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, process)

    processes_class._handle_problem = _handle_problem


class _Subprocess:
    """Stands in for the ``subprocess`` module inside
    ``exabgp.reactor.api.processes``: ``Popen`` of the route agent's command
    runs it in this image; anything else is really started."""

    def __init__(self, agent: str):
        self.agent = agent

    def __getattr__(self, name):
        return getattr(subprocess, name)

    def Popen(self, argv, **kwargs):  # noqa: N802 - the name ExaBGP calls
        config = _agent_json(argv)
        if config is None:
            return subprocess.Popen(argv, **kwargs)
        env = dict(kwargs.get("env") or os.environ)
        return (ThreadAgent if self.agent == "thread" else ForkedAgent)(list(argv), config, env)


def _agent_json(argv) -> str | None:
    """The agent.json of ``<python> -m testbed.agent <agent.json>``, else None."""
    if isinstance(argv, str):
        import shlex

        argv = shlex.split(argv)
    argv = list(argv)
    if len(argv) == 4 and argv[1:3] == ["-m", "testbed.agent"]:
        return argv[3]
    return None


class _AgentHandle:
    """The part of ``subprocess.Popen`` that ExaBGP's ``Processes`` uses:
    ``stdin`` (it writes events), ``stdout`` (it polls and reads commands),
    ``poll``, ``terminate``, ``kill``, ``wait``."""

    def __init__(self, argv: list[str]):
        self.args = argv
        self.returncode: int | None = None
        down_r, down_w = os.pipe()   # ExaBGP -> agent (events)
        up_r, up_w = os.pipe()       # agent -> ExaBGP (commands)
        self._down_r, self._up_w = down_r, up_w
        self.stdin = os.fdopen(down_w, "wb")
        self.stdout = os.fdopen(up_r, "rb")

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(self.args, timeout)
            time.sleep(0.005)  # as Popen.wait(timeout) does: no event for a child's end here
        return self.returncode


class ForkedAgent(_AgentHandle):
    """The agent in a fork of the speaker: its own process (and process
    group, as ExaBGP's ``preexec_helper`` makes it), no new interpreter."""

    def __init__(self, argv: list[str], config: str, env: dict):
        super().__init__(argv)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _agent_child(config, env, self._down_r, self._up_w)
        self.pid = pid
        os.close(self._down_r)
        os.close(self._up_w)

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.returncode = 255
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def terminate(self) -> None:
        # End of file first: the agent leaves its loop at once, where SIGTERM
        # alone waits for its select() timeout (1 s).
        try:
            self.stdin.close()
        except OSError:
            pass
        if self.poll() is None:
            _signal(self.pid, signal.SIGTERM)

    def kill(self) -> None:
        if self.poll() is None:
            _signal(self.pid, signal.SIGKILL)


def _agent_child(config: str, env: dict, down_r: int, up_w: int) -> None:
    """Body of a forked agent. Never returns."""
    code = 1
    try:
        os.setpgrp()
        with open("/proc/thread-self/comm") as handle:  # the speaker's: exabgp:<router>
            _set_name("agent:" + handle.read().strip().partition(":")[2])
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGALRM, signal.SIGUSR1,
                       signal.SIGUSR2, signal.SIGCHLD):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.dup2(down_r, 0)
        os.dup2(up_w, 1)
        # Let go of every descriptor of the speaker (listening and session
        # sockets above all, or a closed session would stay open here) but
        # keep the numbers taken: the speaker's Python objects still hold
        # them, and one closing "its" number later must not close ours.
        null = os.open(os.devnull, os.O_RDWR)
        for fd in _open_fds():
            if fd > 2 and fd != null:
                os.dup2(null, fd)
        os.environ.clear()
        os.environ.update(env)
        sys.stdout = _text_stream(1)
        sys.argv = [sys.executable, "-m", "testbed.agent", config]
        from testbed.agent import agent

        code = agent.main([config])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _open_fds() -> list[int]:
    fds = []
    for entry in os.listdir("/proc/self/fd"):
        fd = int(entry)
        try:
            os.fstat(fd)
        except OSError:
            continue  # the directory listing's own descriptor, now closed
        fds.append(fd)
    return fds


class ThreadAgent(_AgentHandle):
    """The agent in a thread of the speaker: one process per router.

    The agent's selector loop and ExaBGP's reactor each block only in
    poll/select/read, which release the GIL; they talk through two pipes
    exactly as the processes would. ``Agent.run`` installs SIGTERM/SIGINT
    handlers, which only the main thread may do: in this thread that call
    is made a no-op (the speaker's own handlers stop it; the agent ends
    when ExaBGP closes its stdin)."""

    def __init__(self, argv: list[str], config: str, env: dict):
        super().__init__(argv)
        self.pid = os.getpid()
        self.agent = None
        self.channel = inprocess.Channel() if inprocess.enabled() else None
        with open(config) as handle:
            self._config = json.load(handle)
        self._thread = threading.Thread(target=self._run, name="testbed-agent", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import logging

        from testbed.agent import agent as agent_module
        from testbed.linux.routes import KernelTable

        code = 1
        try:
            _set_name(f"agent:{self._config.get('router', '')}")
            logger = logging.getLogger("testbed")
            if self._config.get("log") and not logger.handlers:
                handler = logging.FileHandler(self._config["log"])
                handler.setFormatter(logging.Formatter(
                    "%(asctime)s.%(msecs)03d %(levelname)s %(message)s", datefmt="%H:%M:%S"))
                logger.addHandler(handler)
                logger.setLevel(logging.INFO)
                logger.propagate = False
            agent_module.signal = _ThreadSignals()
            if self.channel is not None:
                self.agent = inprocess.InProcessAgent(self._config, self.channel, self._up_w,
                                                      kernel=KernelTable())
            else:
                self.agent = agent_module.Agent(self._config, kernel=KernelTable(),
                                                out=_text_stream(self._up_w))
            agent_module.log.info("agent of router %s (AS%s) started in thread of pid %d",
                                  self.agent.name, self._config["asn"], os.getpid())
            with _profiled(f"{self._config.get('router', 'router')}.agent"):
                self.agent.run(stdin_fd=self._down_r)
            code = 0
        except BaseException:
            logging.getLogger("testbed.agent.agent").exception("the agent thread failed")
            traceback.print_exc()
        finally:
            self.returncode = code
            # ExaBGP sees our end of the command pipe close: it notices the
            # loss like a helper's exit (see _watch_helpers).
            for fd in (self._up_w, self._down_r):
                try:
                    os.close(fd)
                except OSError:
                    pass

    def poll(self) -> int | None:
        return self.returncode

    def terminate(self) -> None:
        if self.agent is not None:
            self.agent.stopping = True
        try:
            self.stdin.close()  # the agent reads end of file and returns
        except OSError:
            pass

    kill = terminate


class _ThreadSignals:
    """``signal`` as the agent's thread sees it: handlers are not installed."""

    SIGTERM = signal.SIGTERM
    SIGINT = signal.SIGINT

    @staticmethod
    def signal(signum, handler):
        return None


_PRELOADED: frozenset[str] = frozenset()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testbed.speaker.zygote",
                                     description="fork BGP speakers for one lab")
    parser.add_argument("socket", help="Unix socket to serve the control protocol on")
    parser.add_argument("--agent", choices=AGENT_MODES, default="thread",
                        help="default way to run each route agent")
    parser.add_argument("--merge-pages", action="store_true",
                        help="offer this process's memory and its speakers' to KSM (testbed.linux.ksm)")
    args = parser.parse_args(argv)
    global _PRELOADED
    import gc

    merging: bool | str = False
    if args.merge_pages:  # before the image is built: all of it, and every child's, inherit it
        from testbed.linux.ksm import enable_for_this_process

        try:
            enable_for_this_process()
            merging = True
        except OSError as exc:
            merging = str(exc)
    gc.disable()  # no collection while the shared image is being built
    t0 = time.monotonic()
    missing = preload()
    _PRELOADED = frozenset(sys.modules)
    gc.freeze()  # no collect() first: it would leave holes children then fill
    gc.enable()  # for what the zygote allocates from now on; frozen objects are never scanned
    took = time.monotonic() - t0
    _set_name("testbed-zygote")
    zygote = Zygote(args.socket, args.agent)

    def ready():
        line = json.dumps({"ready": True, "pid": os.getpid(), "lab": zygote.lab,
                           "preload_s": round(took, 3), "missing": missing,
                           "modules": len(_PRELOADED), "merging_pages": merging})
        os.write(1, line.encode() + b"\n")
        # From now on our output goes where our errors go (the zygote's log).
        os.dup2(2, 1)

    zygote.serve(ready)
    return 0


# -- the harness side --------------------------------------------------------

class ZygoteClient:
    """Start one lab's zygote and talk to it (blocking, one request at a time)."""

    def __init__(self, socket_path: str | Path, lab_id: str, log: str | Path | None = None,
                 agent: str = "thread", merge_pages: bool = False):
        self.path = str(socket_path)
        self.lab_id = lab_id
        self.log = str(log) if log else None
        self.agent = agent
        self.merge_pages = merge_pages
        self.process: subprocess.Popen | None = None
        self.sock: socket.socket | None = None
        self._buffer = b""
        self.info: dict = {}

    def start(self, timeout: float = 15.0, env: dict | None = None) -> "ZygoteClient":
        from testbed.errors import LabError

        pythonpath = os.pathsep.join(filter(None, [str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")]))
        environment = {**(env if env is not None else os.environ), LAB_ENV: self.lab_id,
                       "PYTHONPATH": pythonpath}
        log = open(self.log, "ab") if self.log else subprocess.DEVNULL
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "testbed.speaker.zygote", self.path, "--agent", self.agent,
                 *(["--merge-pages"] if self.merge_pages else [])],
                env=environment, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                start_new_session=True, cwd=str(PACKAGE_ROOT))
        finally:
            if self.log:
                log.close()
        assert self.process.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(self.process.stdout, selectors.EVENT_READ)
        try:
            if not selector.select(timeout):
                raise LabError(f"the zygote of lab {self.lab_id} did not get ready within "
                               f"{timeout:.0f} s{self._log_tail()}")
            line = self.process.stdout.readline()
        finally:
            selector.close()
            self.process.stdout.close()
        if not line:
            code = self.process.wait()
            raise LabError(f"the zygote of lab {self.lab_id} exited with status {code} "
                           f"before it was ready{self._log_tail()}")
        self.info = json.loads(line)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)
        return self

    def _log_tail(self) -> str:
        if not self.log:
            return ""
        try:
            return "\n" + "\n".join(Path(self.log).read_text(errors="replace").splitlines()[-15:])
        except OSError:
            return ""

    def request(self, op: str, timeout: float = 30.0, **fields) -> dict:
        from testbed.errors import LabError

        if self.sock is None:
            raise LabError("the zygote is not started")
        self.sock.settimeout(timeout)
        self.sock.sendall(json.dumps({"op": op, **fields}).encode() + b"\n")
        while b"\n" not in self._buffer:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise LabError(f"the zygote of lab {self.lab_id} closed the connection"
                               f"{self._log_tail()}")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        reply = json.loads(line)
        if "error" in reply:
            raise LabError(reply["error"])
        return reply

    def spawn(self, router: str, netns_pid: int, config: str | Path, env: dict, log: str | Path,
              agent: str | None = None, netns_inode: int | None = None) -> int:
        """Fork ``router``'s speaker; its pid."""
        fields = {"router": router, "netns_pid": netns_pid, "config": str(config), "env": env,
                  "log": str(log), "agent": agent or self.agent}
        if netns_inode is not None:
            fields["netns_inode"] = netns_inode
        return int(self.request("spawn", **fields)["pid"])

    def status(self) -> dict[int, dict]:
        return {int(pid): child for pid, child in self.request("status")["children"].items()}

    def stop_children(self, grace: float = 1.0) -> dict[int, dict]:
        reply = self.request("stop", grace=grace, timeout=grace + 10.0)
        return {int(pid): child for pid, child in reply["children"].items()}

    def close(self, timeout: float = 5.0) -> None:
        """Ask the zygote to exit (its children live on); kill it if it does not."""
        if self.sock is not None:
            try:
                self.request("exit", timeout=timeout)
            except Exception:  # it may be gone already; then there is nothing to ask
                pass
            self.sock.close()
            self.sock = None
        if self.process is not None and self.process.poll() is None:
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


if __name__ == "__main__":
    sys.exit(main())
