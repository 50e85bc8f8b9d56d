"""A speaker: the body of a child the zygote forks, which becomes one
router's ExaBGP without starting an interpreter.

``speaker`` (called in the child, never returns) becomes a session leader,
sends its output to the router's ``exabgp.log``, enters the router's
network namespace (``setns`` on ``/proc/<pid>/ns/net``), reports "ok"
(or why not) on the zygote's pipe, takes the router's environment and
runs ExaBGP's own server entry point in-process (``run_exabgp``:
``exabgp.application.server.cmdline``, which ends in
``Reactor(...).run()``), after installing what the speaker changes in
ExaBGP: the agent's start (``testbed.speaker.helpers``), the reactor's
wait and turns (``testbed.speaker.reactor``), the speed-ups
(``testbed.speaker.speedups``), the cache of received path attributes
(``testbed.speaker.receiving``), the in-process transport
(``testbed.speaker.handover``) and the packing of UPDATEs
(``testbed.speaker.packing``), each through ``testbed.speaker.compat``.
It exits with ExaBGP's status, or 1 if its agent ended while ExaBGP ran.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import traceback

from testbed.speaker import AGENT_PROCESS, batching, compat, helpers, inprocess, reactor, receiving, speedups
from testbed.speaker.helpers import exit_fork, set_name, text_stream

# Read in the zygote, from the harness's environment (a speaker's is its router's).
PROFILE_DIR = os.environ.get("TESTBED_PROFILE")
PROFILE_CLOCK = os.environ.get("TESTBED_PROFILE_CLOCK", "wall")
PROFILE_ONLY = {name for name in os.environ.get("TESTBED_PROFILE_ONLY", "").split(",") if name}
CLONE_NEWNET = 0x40000000
PRELOADED: set[str] = set()  # the zygote's modules (for TESTBED_ZYGOTE_TRACE), set by it before forking


class State:
    router = "router"


def read_exabgp_environment() -> None:
    """In a child: what ExaBGP's first getenv() would have done."""
    compat.verify(["env-setup"])
    from exabgp.environment import setup
    from exabgp.environment.environment import Env

    Env.setup(setup.CONFIGURATION)


def setns(pid: int, inode: int | None) -> None:
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


def speaker(request: dict, agent: str, env: dict, report_w: int, close: list) -> None:
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
        sys.stdout, sys.stderr = text_stream(1), text_stream(2)
        set_name(f"exabgp:{request['router']}")
        State.router = str(request["router"])
        setns(int(request["netns_pid"]), request.get("netns_inode"))
        # Inside the namespace: the zygote may fork the next speaker. What
        # follows is this speaker's own work, beside the next one's (the
        # zygote waits for this word, the harness for the zygote's answer:
        # the start of every speaker of the lab queues behind it).
        os.write(report_w, b"ok")
        os.close(report_w)
        report_w = -1
        os.environ.clear()
        os.environ.update(env)
        read_exabgp_environment()
        import gc

        gc.enable()
        code = run_exabgp(str(request["config"]), agent, request.get("agent_process") or AGENT_PROCESS)
    except BaseException as exc:
        text = f"{type(exc).__name__}: {exc}"
        if report_w >= 0:
            try:
                os.write(report_w, text.encode())
            except OSError:
                pass
        traceback.print_exc()
    finally:
        exit_fork(code)


@contextlib.contextmanager
def profiled(name: str):
    """With ``TESTBED_PROFILE=<directory>`` in the harness's environment,
    profile this thread (cProfile, wall time: waits show as the calls that
    block, ``select``, ``flush``, ``send``...) and write ``<directory>/<name>.prof``
    when it ends: where a speaker's CPU goes, per function, for
    performance work (``python -m pstats``). ``TESTBED_PROFILE_CLOCK=cpu``
    times the calls in the thread's own CPU time instead (waits count
    nothing, nor do other threads and processes holding the cores; each
    call costs a system call more); ``TESTBED_PROFILE_ONLY=R,C`` profiles
    those routers only. Without ``TESTBED_PROFILE``, nothing."""
    directory = PROFILE_DIR
    if not directory or (PROFILE_ONLY and State.router not in PROFILE_ONLY):
        yield
        return
    import cProfile
    import time

    profile = cProfile.Profile(time.thread_time_ns, 1e-9) if PROFILE_CLOCK == "cpu" else cProfile.Profile()
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        # whole or absent: a speaker killed while writing (a lab's stop
        # does not wait long) left truncated files pstats could not load
        path = os.path.join(directory, f"{name}.prof")
        try:
            profile.dump_stats(f"{path}.part")
            os.replace(f"{path}.part", path)
        except OSError:
            pass


def install(agent: str, agent_process: str) -> None:
    """Everything a speaker changes in ExaBGP, each patch once."""
    from exabgp.reactor.api import API, processes
    from exabgp.reactor.asynchronous import ASYNC
    from exabgp.reactor.loop import Reactor
    from exabgp.reactor.peer import Peer

    from exabgp.reactor.network.connection import Connection

    transport = inprocess.enabled()
    helpers.install(processes, agent, agent_process, profiled)
    reactor.watch_helpers(processes.Processes)
    turns = speedups.enabled() and speedups.install()
    if receiving.enabled():
        receiving.install()
    if batching.enabled("recv"):
        batching.install_reader(Connection)
    reactor.install(Reactor, Peer, no_wait_when_queued=transport, turns=turns,
                    drain=batching.DRAIN_STEPS if batching.enabled("drain") else 0,
                    handover=batching.enabled("handover"))
    if transport:
        from testbed.speaker import handover

        handover.install(API, ASYNC, helpers.channel_of)
        from testbed.speaker import sharing

        if sharing.enabled():
            from testbed.speaker import packing

            maker = handover.attribute_maker = sharing.AttributeMaker(handover.make_attributes)
            packing.shared_forms = maker.forms
        from testbed.speaker import prefixes

        if prefixes.enabled():
            handover.prefix_parts = prefixes.PrefixParts()
    from exabgp.reactor.protocol import Protocol

    from testbed.speaker import packing

    packing.install(Protocol)


def run_exabgp(config: str, agent: str, agent_process: str) -> int:
    """What ``exabgp <config>`` does after its imports: main() turns it into
    ``exabgp server <config>`` and calls ``server.cmdline``, which sets up
    the environment and logging and ends in ``Reactor(configuration).run()``
    and ``sys.exit(code)``."""
    compat.verify(["server-cmdline"])
    from exabgp.application import server

    install(agent, agent_process)
    sys.argv = ["exabgp", config]
    parser = argparse.ArgumentParser(prog="exabgp server")
    server.setargs(parser)
    try:
        with profiled(f"{State.router}.exabgp"):
            server.cmdline(parser.parse_args([config]))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    if reactor.Lost.process:
        sys.stderr.write(f"testbed.speaker.zygote: exiting with status 1: the API process "
                         f"{reactor.Lost.process} ended while ExaBGP ran\n")
        code = code or 1
    if os.environ.get("TESTBED_ZYGOTE_TRACE"):
        late = sorted(m for m in sys.modules if m not in PRELOADED)
        sys.stderr.write(f"testbed.speaker.zygote: {len(late)} modules imported after the fork: "
                         f"{' '.join(late)}\n")
    return code
