"""The background process that keeps an exercise's lab running.

``testbed exercise start`` runs ``python -m testbed.exercise.harness
EXERCISE WORKSPACE`` in a new session. The harness owns the ``Workbench``
(and so the lab: its manifest names the harness as owner, so ``testbed
clean`` removes what a killed harness left). It reports its start on
stdout, one JSON object a line (``{"stage": ...}``, then ``{"ready": ...}``
or ``{"error": ...}``), writes ``.testbed-exercise.json`` in the workspace
and answers requests on a Unix socket in the lab's 0700 work directory,
one JSON object a line each way: ``check`` (an answer file's path),
``reset``, ``status``, ``stop``. SIGTERM and ``stop`` stop the lab.
With a third argument (JSON: the live view's port, bind, control) it also
serves the live view (``testbed.live``) with the exercise's criteria, their
state updated at each check, and says its link in the ready message.
``request()`` is the client side.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import traceback
from pathlib import Path

from testbed import jsonlines

STATE_FILE = ".testbed-exercise.json"
LOG_FILE = ".testbed-exercise.log"


def state(workspace: Path) -> dict | None:
    """The running exercise of ``workspace``, or None."""
    try:
        return json.loads((Path(workspace) / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None


def alive(info: dict) -> bool:
    try:
        os.kill(int(info["pid"]), 0)
    except (OSError, KeyError, ValueError):
        return False
    return Path(info.get("socket", "")).exists()


def request(workspace: Path, op: str, timeout: float = 300.0, **fields) -> dict:
    """Send one request to the harness of ``workspace`` and return its answer."""
    from testbed.errors import LabError

    info = state(workspace)
    if info is None or not alive(info):
        raise LabError(f"no exercise is running for {Path(workspace).resolve()} "
                       "('testbed exercise start NAME' starts one)")
    conn = jsonlines.Connection.connect(info["socket"])
    try:
        return conn.request({"op": op, **fields}, timeout)
    except jsonlines.ConnectionClosed:
        raise LabError("the exercise harness closed the connection without answering "
                       f"(its log: {Path(workspace) / LOG_FILE})") from None
    finally:
        conn.close()


def _say(out, **fields) -> None:
    out.write(json.dumps(fields) + "\n")
    out.flush()


def _handle(bench, message: dict) -> dict:
    from testbed.errors import TestbedError
    from testbed.exercise.answer import AnswerError

    op = message.get("op")
    try:
        if op == "check":
            try:
                results = bench.check(message["answer"])
            except AnswerError as exc:
                return {"invalid": exc.problems}
            return {"results": [r.as_dict() for r in results]}
        if op == "reset":
            bench.reset()
            return {"ok": True}
        if op == "status":
            reply = {"exercise": bench.exercise.name, "lab": bench.lab.id,
                     "applied": bench.applied.source if bench.applied else None}
            if message.get("policy_of"):  # the policy the router applies towards that neighbor
                reply["policy"] = bench.lab.policy(bench.router, message["policy_of"])
            return reply
        if op == "stop":
            return {"ok": True}
        return {"error": f"unknown request {op!r}"}
    except TestbedError as exc:
        return {"error": str(exc)}


def serve(exercise_ref: str, workspace: Path, web: dict | None = None) -> int:
    from testbed.errors import TestbedError
    from testbed.exercise.model import load_exercise
    from testbed.exercise.workbench import Workbench

    out = sys.stdout
    def terminate(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    bench = view = None
    state_path = workspace / STATE_FILE
    try:
        try:
            exercise = load_exercise(exercise_ref)
            recorder = None
            if web is not None:  # the live view (testbed.live), with the criteria
                from testbed.report.recorder import Recorder

                recorder = Recorder(sample_interval=0)
            bench = Workbench(exercise, recorder=recorder)
            bench.lab.progress = lambda stage: _say(out, stage=stage)
            bench.start()
            if web is not None:
                from testbed.live import LiveView

                view = LiveView(bench.lab, recorder, **web, criteria=[
                    {"name": c.name, "description": c.description} for c in exercise.criteria()]).start()
        except TestbedError as exc:
            from testbed.errors import MissingDependency

            _say(out, error=str(exc), missing=isinstance(exc, MissingDependency))
            return 1
        path = bench.lab.workdir / "exercise.sock"
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(path))
        os.chmod(path, 0o600)
        server.listen(4)
        info = {"exercise": exercise.name, "directory": str(exercise.directory), "socket": str(path),
                "lab": bench.lab.id, "pid": os.getpid(), "router": exercise.router}
        if view is not None:
            info["web"] = view.url
        tmp = state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(info, indent=1) + "\n")
        tmp.replace(state_path)
        _say(out, ready=True, **info, seconds=round(bench.lab.timings.get("start", 0.0), 2))
        # Nobody reads stdout any more: from here on it goes to the log.
        log = os.open(workspace / LOG_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        bench.lab.progress = lambda stage: None
        while True:
            conn, _ = server.accept()
            with conn:
                try:
                    message = jsonlines.Connection(conn).receive(None)
                except (jsonlines.ConnectionClosed, ValueError):
                    message = {}
                try:
                    if view is None:
                        reply = _handle(bench, message)
                    else:
                        with view.lock:  # one caller of the lab at a time (the page's actions too)
                            reply = _handle(bench, message)
                        if "results" in reply:
                            view.criteria_checked(reply["results"])
                except Exception as exc:  # keep the lab alive; say what broke
                    traceback.print_exc()
                    reply = {"error": f"{type(exc).__name__}: {exc}"}
                jsonlines.send(conn, reply)  # False when the caller is gone: nothing to do
            if message.get("op") == "stop":
                return 0
    finally:
        if view is not None:
            view.stop()
        if bench is not None:
            bench.stop()
        try:
            if state(workspace) and state(workspace).get("pid") == os.getpid():
                state_path.unlink()
        except OSError:
            pass


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (2, 3):
        print("usage: python -m testbed.exercise.harness EXERCISE WORKSPACE [WEB-JSON]", file=sys.stderr)
        return 2
    web = json.loads(args[2]) if len(args) == 3 else None  # LiveView's port, bind, control
    return serve(args[0], Path(args[1]).resolve(), web)


if __name__ == "__main__":
    sys.exit(main())
