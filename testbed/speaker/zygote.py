"""The zygote: one pre-initialised Python image per lab that forks every BGP speaker.

Started the plain way, a router costs two interpreters (``exabgp``, then the
route agent it runs), each paying its imports in CPU (~0.3 s) and private
memory (~20 MiB). The zygote is a long-lived process that imports ExaBGP
and the route agent once, checks ExaBGP's internals against what the
speakers patch (``testbed.speaker.compat``, loudly), takes its heap out of
the cyclic garbage collector (``gc.freeze``, so the collector never writes
to the pages children share), and then forks one child per router on
request; the child becomes the router's ExaBGP (``testbed.speaker.child``)
and runs its route agent in-process (``testbed.speaker.helpers``). If the
agent ends while ExaBGP is not shutting down, the speaker exits with
status 1, so the harness notices.

Every child inherits the zygote's environment block, so the zygote is started
with ``TESTBED_LAB=<id>`` (it serves one lab) and every speaker then carries
the tag in ``/proc/<pid>/environ``. The zygote itself never enters a
namespace and holds none open.

Control: ``testbed.speaker.client.ZygoteClient`` (harness side) starts
``python -m testbed.speaker.zygote <socket>`` and sends one JSON object per
line on that Unix socket (``testbed.jsonlines``), each answered by one line:

- ``{"op": "spawn", "router", "netns_pid", "config", "env", "log",
  "agent_process" [, "agent": "thread"|"fork"] [, "netns_inode"]}`` ->
  ``{"pid": n}``, sent once the child is inside the namespace (or
  ``{"error": ...}``); ``agent_process`` names the ExaBGP ``process`` block
  that is the route agent;
- ``{"op": "status"}`` -> ``{"children": {pid: {"router", "running",
  "status"}}}``, exits reaped on SIGCHLD (status: exit code, or -signal);
- ``{"op": "stop", "grace": s}`` -> TERM to every child, a bounded wait,
  KILL, then the statuses;
- ``{"op": "exit"}`` -> ``{"ok": true}``, then the zygote exits (its
  children live on; ``stop`` first to end them);
- ``{"op": "ping"}`` -> ``{"pid", "lab"}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import selectors
import signal
import socket
import sys
import time

from testbed import jsonlines
from testbed.linux.processes import LAB_ENV
from testbed.speaker import child, compat, pypy
from testbed.speaker.client import ZygoteClient  # noqa: F401 - the harness's older import path
from testbed.speaker.helpers import AGENT_MODES, set_name

SPAWN_TIMEOUT = 10.0  # seconds a child may take to enter its namespace

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
    "testbed.agent.loop",
    "testbed.agent.main",
    "testbed.speaker.inprocess",
    "testbed.speaker.handover",
    "testbed.speaker.packing",
    "testbed.speaker.sharing",
    "testbed.speaker.prefixes",
    "testbed.linux.routes",
    "testbed.bgp",
    "testbed.routers.agent_client",
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
    compat.verify()  # before any fork: every speaker inherits the verdict
    _warm_up()
    return missing


def _warm_up() -> None:
    """Run once here what every speaker would otherwise run first, so that
    its result is shared: ExaBGP logs ``platform.uname()`` at start, and its
    processor field runs ``uname -p`` (a fork and an exec) the first time."""
    import platform

    platform.uname().processor


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
        self.clients: dict[socket.socket, jsonlines.Lines] = {}

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
                        self.clients[conn] = jsonlines.Lines()
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
        lines = jsonlines.read(conn, self.clients[conn])
        if lines is None:
            self.selector.unregister(conn)
            self.clients.pop(conn, None)
            conn.close()
            return
        for line in lines:
            if not line.strip():
                continue
            try:
                reply = self.handle(json.loads(line))
            except Exception as exc:  # a bad request must not end the lab's zygote
                reply = {"error": f"{type(exc).__name__}: {exc}"}
            jsonlines.send(conn, reply)

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
        if not request.get("agent_process"):
            return {"error": f"router {router}: the spawn request names no agent_process "
                             "(the ExaBGP process block that is the route agent)"}
        env[LAB_ENV] = self.lab
        report_r, report_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            os.close(report_r)
            child.speaker(request, agent, env, report_w,
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testbed.speaker.zygote",
                                     description="fork BGP speakers for one lab")
    parser.add_argument("socket", help="Unix socket to serve the control protocol on")
    parser.add_argument("--agent", choices=AGENT_MODES, default="thread",
                        help="default way to run each route agent")
    parser.add_argument("--merge-pages", action="store_true",
                        help="offer this process's memory and its speakers' to KSM (testbed.linux.ksm)")
    args = parser.parse_args(argv)
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
    warmed = jit = None
    if pypy.running():
        # PyPy's gc.disable() stops its major collections: the warm-up's
        # garbage would stay in the heap every child inherits. The JIT's
        # code for the per-route path is what every child should inherit.
        gc.enable()
        jit = pypy.configure_jit()
        if pypy.warm_rounds():
            warmed = pypy.warm_up(pypy.warm_rounds())
        gc.collect()
    child.PRELOADED.update(sys.modules)
    if hasattr(gc, "freeze"):  # CPython; PyPy's collector has no such thing
        gc.freeze()  # no collect() first: it would leave holes children then fill
    gc.enable()  # for what the zygote allocates from now on; frozen objects are never scanned
    took = time.monotonic() - t0
    set_name("testbed-zygote")
    zygote = Zygote(args.socket, args.agent)

    def ready():
        line = json.dumps({"ready": True, "pid": os.getpid(), "lab": zygote.lab,
                           "preload_s": round(took, 3), "missing": missing,
                           "modules": len(child.PRELOADED), "merging_pages": merging,
                           "python": platform.python_implementation(), "warm_up": warmed,
                           "jit": jit})
        os.write(1, line.encode() + b"\n")
        # From now on our output goes where our errors go (the zygote's log).
        os.dup2(2, 1)

    zygote.serve(ready)
    return 0


if __name__ == "__main__":
    sys.exit(main())
