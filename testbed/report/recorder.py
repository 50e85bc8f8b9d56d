"""Records what happens in a lab, for the HTML report (and a live view).

A ``Recorder`` is handed to a ``Lab`` (``Lab(..., recorder=Recorder())``)
and is called at the lab's events (``testbed.report.hooks``). It keeps:
the topology picture (SVG and its element index, ``testbed.view``); the
routing state after start and before and after every event
(``testbed.report.state``), with the time each event took to converge,
the counters' growth across the lab (churn) and the best paths that
changed; the results of probe streams, with the send time of every lost
probe; samples of every inter-AS link's byte counters in a thread
(``testbed.report.links``); test steps told by the pytest plugin
(``step``); and the reproducibility record. ``data()`` returns it all as
JSON-ready data, which ``testbed.report.html`` renders. ``subscribe(fn)``
calls ``fn(kind, payload)`` for every state, event, stream and step as it
is recorded (kinds: "started", "state", "event", "stream", "step",
"stopped"), which is what a live view needs. Recording never raises into
the lab: a failure is kept in ``problems`` and shown in the report.
"""

from __future__ import annotations

import threading
import time
import traceback
from typing import Callable

from .state import State, capture, changes, churn


class Recorder:
    """See the module docstring. ``sample_interval``: seconds between link
    counter samples (0 turns sampling off)."""

    def __init__(self, title: str = "", sample_interval: float = 0.5, shared_environment=None):
        self.title = title
        self.sample_interval = sample_interval
        self.shared_environment = shared_environment
        self.t0: float | None = None
        self.lab_info: dict = {}
        self.environment: dict = {}
        self.picture: dict = {}
        self.states: list[State] = []
        self.events: list[dict] = []
        self.streams: list[dict] = []
        self.steps: list[dict] = []
        self.problems: list[str] = []
        self.traffic: dict = {}
        self.seconds_spent = 0.0  # time the recording itself took, on the lab's thread
        self._last_stats: State | None = None  # the last state read, stored or not (churn)
        self._links: list = []
        self._sampler = None
        self._open: dict[int, dict] = {}
        self._listeners: list[Callable[[str, object], None]] = []
        self._lock = threading.Lock()

    # -- for viewers ---------------------------------------------------------
    def subscribe(self, listener: Callable[[str, object], None]) -> None:
        self._listeners.append(listener)

    def _tell(self, kind: str, payload) -> None:
        for listener in list(self._listeners):
            try:
                listener(kind, payload)
            except Exception:
                self._problem(f"listener {listener!r}")

    def _problem(self, what: str) -> None:
        self.problems.append(f"{what}: {traceback.format_exc(limit=3).strip().splitlines()[-1]}")

    def now(self) -> float:
        return 0.0 if self.t0 is None else time.monotonic() - self.t0

    # -- called by the lab -----------------------------------------------------
    def lab_started(self, lab) -> None:
        started = time.monotonic()
        self.t0 = started
        try:
            from ..view import inline_svg, picture, render, to_dot
            from .environment import record
            from .links import CounterSampler, links

            self.lab_info = {"id": lab.id, "topology": lab.topology.name,
                             "description": lab.topology.description or "",
                             "start_seconds": round(lab.timings.get("start", 0.0), 3),
                             "started_at": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
            self.environment = record(lab, self.shared_environment)
            pic = picture(lab.topology)
            self.picture = {"svg": inline_svg(render(to_dot(pic), "svg")), "index": pic.index(),
                            "prefixes": {n.name: list(n.prefixes) for n in pic.nodes}}
            self._capture(lab, "after start")
            self._links = links(lab.plan)
            if self.sample_interval > 0 and self._links:
                pids = {router: lab.nodes[router].pid for router in lab.plan.routers}
                self._sampler = CounterSampler(pids, self._links, self.t0, self.sample_interval)
                self._sampler.sample()
                self._sampler.start()
            self._tell("started", self.lab_info)
        except Exception:
            self._problem("recording the start")
        self.seconds_spent += time.monotonic() - started

    def _capture(self, lab, label: str) -> int:
        """Capture a state; returns its index (an unchanged state is not
        stored twice: the index of the equal one before it)."""
        state = capture(lab, label, self.now())
        last = self.states[-1] if self.states else None
        if last is not None and last.ribs == state.ribs and last.sessions == state.sessions:
            self._last_stats = state
            return len(self.states) - 1
        self.states.append(state)
        self._last_stats = state
        self._tell("state", state.to_json())
        return len(self.states) - 1

    def event_begin(self, lab, kind: str, text: str) -> int:
        started = time.monotonic()
        token = len(self.events) + len(self._open)
        entry = {"kind": kind, "text": text, "t": round(self.now(), 4), "before": None}
        try:
            if self.t0 is not None:
                if self._sampler is not None:
                    # The phase before the event ends with this sample.
                    self._sampler.sample()
                    entry["t"] = self._sampler.times[-1]
                entry["before"] = self._capture(lab, f"before {text}")
                entry["_before_state"] = self._last_stats
        except Exception:
            self._problem(f"recording before {text}")
        self._open[token] = entry
        self.seconds_spent += time.monotonic() - started
        entry["_wall"] = time.monotonic()
        return token

    def event_end(self, lab, token: int, result, error: BaseException | None) -> None:
        entry = self._open.pop(token, None)
        if entry is None:
            return
        took = time.monotonic() - entry.pop("_wall")
        started = time.monotonic()
        entry["seconds"] = round(result, 4) if isinstance(result, (int, float)) else None
        entry["wall_seconds"] = round(took, 4)
        entry["error"] = None if error is None else f"{type(error).__name__}: {error}"
        before_state = entry.pop("_before_state", None)
        try:
            if self.t0 is not None and not getattr(lab, "stopped", False):
                label = f"after {entry['text']}" + ("" if error is None else " (failed)")
                entry["after"] = self._capture(lab, label)
                if self._sampler is not None:
                    self._sampler.sample()
                after_state = self._last_stats
                if before_state is not None:
                    entry["churn"] = churn(before_state, after_state)
                    entry["changed"] = changes(before_state, after_state)
                    span = entry["seconds"] or took
                    entry["per_second"] = {key: round(value / span, 1) if span > 0 else None
                                           for key, value in entry["churn"].items()}
        except Exception:
            self._problem(f"recording after {entry['text']}")
        self.events.append(entry)
        self._tell("event", entry)
        self.seconds_spent += time.monotonic() - started

    def stream_opened(self, lab, src: str, dst: str, family: int, stream) -> None:
        self.streams.append({"src": src, "dst": dst, "family": family, "t": round(self.now(), 4),
                             "_stream": stream})

    def lab_stopping(self, lab) -> None:
        started = time.monotonic()
        try:
            if self._sampler is not None:
                try:
                    self._sampler.sample()
                finally:
                    self._sampler.stop()
            if self.t0 is not None:
                self._capture(lab, "at the end")
            self._finish_traffic()
            self._resolve_streams()
        except Exception:
            self._problem("recording the end")
        finally:
            if self._sampler is not None:
                self._sampler.stop()
        self._tell("stopped", {})
        self.seconds_spent += time.monotonic() - started

    # -- called by the test runner -------------------------------------------
    def step(self, name: str, outcome: str, duration: float, message: str = "",
             properties: list | None = None) -> None:
        self._resolve_streams()
        entry = {"name": name, "outcome": outcome, "duration": round(duration, 3),
                 "message": message, "properties": [list(p) for p in properties or []],
                 "t": round(self.now(), 3)}
        self.steps.append(entry)
        self._tell("step", entry)

    # -- results ------------------------------------------------------------------
    def _resolve_streams(self) -> None:
        for entry in self.streams:
            stream = entry.get("_stream")
            result = getattr(stream, "result", None)
            if stream is None or result is None:
                continue
            del entry["_stream"]
            entry.update({"destination": result.destination, "sent": result.sent,
                          "received": result.received, "rate": result.rate,
                          "duration": round(result.duration, 4),
                          "longest_outage": round(result.longest_outage, 4),
                          "lost_at": [round(entry["t"] + seq / result.rate, 4) for seq in result.lost]})
            self._tell("stream", {k: v for k, v in entry.items() if k != "lost_at"})

    def _finish_traffic(self) -> None:
        from .links import summarise

        if self._sampler is None:
            return
        boundaries = [(e["text"], e["t"]) for e in self.events]
        self.traffic = summarise(self._links, self._sampler.times, self._sampler.series, boundaries,
                                 self.sample_interval)
        if self._sampler.error:
            self.problems.append(f"link sampling stopped: {self._sampler.error}")

    def data(self) -> dict:
        """Everything recorded, JSON-ready (see the module docstring)."""
        self._resolve_streams()
        return {
            "title": self.title or self.lab_info.get("topology", "lab"),
            "lab": self.lab_info,
            "environment": self.environment,
            "picture": self.picture,
            "states": [s.to_json() for s in self.states],
            "events": [{k: v for k, v in e.items() if not k.startswith("_")} for e in self.events],
            "streams": [{k: v for k, v in s.items() if not k.startswith("_")} for s in self.streams
                        if "sent" in s],
            "steps": self.steps,
            "traffic": self.traffic,
            "problems": self.problems,
            "recording_seconds": round(self.seconds_spent, 3),
        }
