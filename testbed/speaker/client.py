"""The harness's side of a lab's zygote (``testbed.speaker.zygote``).

``ZygoteClient.start`` runs ``python -m testbed.speaker.zygote <socket>``
(with this interpreter, or another one given: PyPy for ``zygote-pypy``)
with the lab's tag in its environment, waits for its "ready" line on
stdout, then talks to it on its Unix socket, one JSON request per line and
one reply each (``testbed.jsonlines``): ``spawn`` a router's speaker (its
pid), ``status`` of every child, ``stop_children``, ``close``. An
``{"error": ...}`` reply becomes a ``LabError``.
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import subprocess
import sys
from pathlib import Path

from testbed import jsonlines
from testbed.errors import LabError
from testbed.linux.processes import LAB_ENV
from testbed.speaker import AGENT_PROCESS

PACKAGE_ROOT = Path(__file__).resolve().parents[2]


class ZygoteClient:
    """Start one lab's zygote and talk to it (blocking, one request at a time)."""

    def __init__(self, socket_path: str | Path, lab_id: str, log: str | Path | None = None,
                 agent: str = "thread", merge_pages: bool = False, python: str | None = None,
                 python_env: dict | None = None, ready_timeout: float = 15.0):
        self.path = str(socket_path)
        self.lab_id = lab_id
        self.log = str(log) if log else None
        self.agent = agent
        self.merge_pages = merge_pages
        self.python = python or sys.executable  # the interpreter the zygote (and every speaker) runs on
        self.ready_timeout = ready_timeout  # seconds start() waits for the "ready" line
        self.python_env = dict(python_env or {})  # its settings (PyPy's GC), unless the caller's environment has them
        self.process: subprocess.Popen | None = None
        self.connection: jsonlines.Connection | None = None
        self.info: dict = {}

    @property
    def sock(self) -> socket.socket | None:
        return None if self.connection is None else self.connection.sock

    def start(self, timeout: float | None = None, env: dict | None = None) -> "ZygoteClient":
        timeout = self.ready_timeout if timeout is None else timeout
        pythonpath = os.pathsep.join(filter(None, [str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")]))
        environment = {**self.python_env, **(env if env is not None else os.environ), LAB_ENV: self.lab_id,
                       "PYTHONPATH": pythonpath}
        log = open(self.log, "ab") if self.log else subprocess.DEVNULL
        try:
            self.process = subprocess.Popen(
                [self.python, "-m", "testbed.speaker.zygote", self.path, "--agent", self.agent,
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
        self.connection = jsonlines.Connection.connect(self.path)
        return self

    def _log_tail(self) -> str:
        if not self.log:
            return ""
        try:
            return "\n" + "\n".join(Path(self.log).read_text(errors="replace").splitlines()[-15:])
        except OSError:
            return ""

    def request(self, op: str, timeout: float = 30.0, **fields) -> dict:
        if self.connection is None:
            raise LabError("the zygote is not started")
        try:
            reply = self.connection.request({"op": op, **fields}, timeout)
        except jsonlines.ConnectionClosed as exc:
            raise LabError(f"the zygote of lab {self.lab_id} closed the connection{self._log_tail()}") from exc
        if "error" in reply:
            raise LabError(reply["error"])
        return reply

    def spawn(self, router: str, netns_pid: int, config: str | Path, env: dict, log: str | Path,
              agent: str | None = None, netns_inode: int | None = None) -> int:
        """Fork ``router``'s speaker; its pid. Its ExaBGP configuration's
        ``process`` block named ``AGENT_PROCESS`` is the route agent."""
        fields = {"router": router, "netns_pid": netns_pid, "config": str(config), "env": env,
                  "log": str(log), "agent": agent or self.agent, "agent_process": AGENT_PROCESS}
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
        if self.connection is not None:
            try:
                self.request("exit", timeout=timeout)
            except Exception:  # it may be gone already; then there is nothing to ask
                pass
            self.connection.close()
            self.connection = None
        if self.process is not None and self.process.poll() is None:
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
