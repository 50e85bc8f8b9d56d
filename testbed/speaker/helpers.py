"""How a zygote speaker starts its route agent: a stand-in for the
``subprocess.Popen`` ExaBGP starts its API processes with.

ExaBGP's ``Processes._start`` starts each ``process`` block of its
configuration through ``subprocess.Popen`` and then talks to it over two
pipes. ``install`` wraps ``_start`` (patch ``helper-start`` of
``testbed.speaker.compat``) so that the block the zygote was told is the
route agent's (``agent_process``, the name ``testbed.routers.exabgp_config``
gives it) is not exec'd: it gets an ``AgentHandle`` that runs the agent of
the configuration file its command names (``testbed.agent.main.config_path``)
in this image, either in a thread of the speaker (``ThreadAgent``, with the
in-process transport of ``testbed.speaker.inprocess`` unless
``TESTBED_TRANSPORT=text``) or in a fork of it (``ForkedAgent``, the exec
model's text transport). Every other block is started as ExaBGP would.
The handle provides what ExaBGP uses of a ``Popen``: ``stdin``, ``stdout``,
``poll``, ``terminate``, ``kill``, ``wait``.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback

from testbed.speaker import compat, inprocess

AGENT_MODES = ("thread", "fork")


def channel_of(handle) -> inprocess.Channel | None:
    """The in-process channel of a helper ExaBGP started, if it is ours."""
    return getattr(handle, "channel", None)


def install(processes_module, mode: str, agent_process: str, profiled) -> None:
    """Start the block ``agent_process`` as an agent in ``mode``
    (``AGENT_MODES``) in this speaker; ``profiled(name)``: a context to run
    the agent thread in (``testbed.speaker.child.profiled``)."""
    stand_in = _Subprocess(mode, profiled)

    def _start(self, name):
        stand_in.starting = name if name == agent_process else None
        try:
            start(self, name)
        finally:
            stand_in.starting = None
        channel = channel_of(self._process.get(name))
        if channel is not None:
            from testbed.speaker import handover

            handover.wrap_encoder(self, name, channel)

    start = compat.replace("helper-start", processes_module.Processes, _start)
    processes_module.subprocess = stand_in  # what _start calls Popen on (its digest covers the call)


class _Subprocess:
    """Stands in for the ``subprocess`` module inside
    ``exabgp.reactor.api.processes``: ``Popen`` while the agent's block is
    being started runs the agent in this image; anything else is really
    started."""

    def __init__(self, mode: str, profiled):
        self.mode = mode
        self.profiled = profiled
        self.starting: str | None = None

    def __getattr__(self, name):
        return getattr(subprocess, name)

    def Popen(self, argv, **kwargs):  # noqa: N802 - the name ExaBGP calls
        if self.starting is None:
            return subprocess.Popen(argv, **kwargs)
        from testbed.agent.main import config_path

        config = config_path(argv)
        env = dict(kwargs.get("env") or os.environ)
        if self.mode == "thread":
            return ThreadAgent(list(argv), config, env, self.profiled)
        return ForkedAgent(list(argv), config, env)


def set_name(name: str) -> None:
    """Name the calling thread (/proc/<pid>/comm for the main thread), so
    ps, top and tooling tell speakers and agents apart: they all share the
    zygote's command line."""
    import ctypes

    ctypes.CDLL(None).prctl(15, name[:15].encode(), 0, 0, 0)  # PR_SET_NAME


def text_stream(fd: int) -> io.TextIOWrapper:
    return io.TextIOWrapper(io.FileIO(fd, "w", closefd=False), line_buffering=True,
                            write_through=True)


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


class AgentHandle:
    """The part of ``subprocess.Popen`` that ExaBGP's ``Processes`` uses:
    ``stdin`` (it writes events), ``stdout`` (it polls and reads commands),
    ``poll``, ``terminate``, ``kill``, ``wait``."""

    def __init__(self, argv: list[str]):
        self.args = argv
        self.returncode: int | None = None
        down_r, down_w = os.pipe()   # ExaBGP -> agent (events)
        up_r, up_w = os.pipe()       # agent -> ExaBGP (commands)
        self._down_r, self._up_w = down_r, up_w
        self.stdin = self.event_writer(down_w)
        self.stdout = os.fdopen(up_r, "rb")

    def event_writer(self, fd: int):
        """What ExaBGP writes its events to (``stdin``)."""
        return os.fdopen(fd, "wb")

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(self.args, timeout)
            time.sleep(0.005)  # as Popen.wait(timeout) does: no event for a child's end here
        return self.returncode


class ForkedAgent(AgentHandle):
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
    """Body of a forked agent: the exec model's ``main`` on the two pipes. Never returns."""
    code = 1
    try:
        os.setpgrp()
        with open("/proc/thread-self/comm") as handle:  # the speaker's: exabgp:<router>
            set_name("agent:" + handle.read().strip().partition(":")[2])
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
        sys.stdout = text_stream(1)
        sys.argv = [sys.executable, "-m", "testbed.agent", config]
        from testbed.agent.main import main

        code = main([config])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        exit_fork(code)


def exit_fork(code: int) -> None:
    """End a forked child (a speaker, a forked agent) with ``code``: its
    output flushed, and none of the parent's exit handlers run."""
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


class ThreadAgent(AgentHandle):
    """The agent in a thread of the speaker: one process per router.

    The agent's selector loop and ExaBGP's reactor each block only in
    poll/select/read, which release the GIL; they talk through two pipes
    as the processes would (with objects beside them, in-process). The
    agent runs without signal handlers (only the main thread may install
    them): the speaker's own handlers stop ExaBGP, which closes the
    agent's pipe."""

    def __init__(self, argv: list[str], config: str, env: dict, profiled):
        super().__init__(argv)
        self.pid = os.getpid()
        self.agent = None
        self.channel = inprocess.Channel() if inprocess.enabled() else None
        self._profiled = profiled
        with open(config) as handle:
            self._config = json.load(handle)
        self._thread = threading.Thread(target=self._run, name="testbed-agent", daemon=True)
        self._thread.start()

    def event_writer(self, fd: int):
        """A ``batching.DeferredPipe`` (written once per turn of ExaBGP's
        loop) unless ``TESTBED_BATCHING`` leaves ``handover`` out."""
        from testbed.speaker import batching

        return batching.DeferredPipe(fd) if batching.enabled("handover") else super().event_writer(fd)

    def transport(self):
        if self.channel is not None:
            from testbed.speaker import batching, handover

            def stats() -> dict:
                return {**handover.queue_stats(), **batching.counters()}

            return inprocess.InProcessTransport(self.channel, self._down_r, self._up_w, stats=stats)
        from testbed.agent.transport import TextTransport

        return TextTransport(text_stream(self._up_w), input_fd=self._down_r)

    def _run(self) -> None:
        import logging

        from testbed.agent.main import embedded

        code = 1
        try:
            set_name(f"agent:{self._config.get('router', '')}")
            self.agent = embedded(self._config, self.transport())
            with self._profiled(f"{self._config.get('router', 'router')}.agent"):
                self.agent.run(signals=False)
            code = 0
        except BaseException:
            logging.getLogger("testbed.agent.agent").exception("the agent thread failed")
            traceback.print_exc()
        finally:
            self.returncode = code
            # ExaBGP sees our end of the command pipe close: it notices the
            # loss like a helper's exit (see reactor.watch_helpers).
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
