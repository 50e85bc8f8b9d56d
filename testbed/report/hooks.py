"""The few places a ``Lab`` tells its recorder what happens.

A lab made with ``Lab(..., recorder=r)`` calls ``r.lab_started(lab)`` once
routing converged at start, ``r.lab_stopping(lab)`` first thing in
``stop()`` (only if it had started), ``r.stream_opened(lab, src, dst,
family, stream)`` when a probe stream is made, and, through the
``recorded`` decorator on its event methods (depeer, repeer, announce,
withdraw, set_policy, crash), ``r.event_begin(lab, kind, text)`` before and
``r.event_end(lab, token, result, error)`` after each. A recorder must not
raise: the lab's own work comes first. ``testbed.report.recorder.Recorder``
is the one the report uses; a live view can subscribe to it or bring its
own object with these five methods. Importing this module imports nothing
else of the project.
"""

from __future__ import annotations

import functools
import json


def describe(kind: str, args: tuple, kwargs: dict) -> str:
    """An event in words: ``depeer A B how=link``."""
    shown = [str(a) if not isinstance(a, (dict, list)) else json.dumps(a, sort_keys=True) for a in args]
    for key, value in sorted(kwargs.items()):
        if key in ("wait", "timeout") or value in (None, (), []):
            continue
        shown.append(f"{key}={json.dumps(value, sort_keys=True) if isinstance(value, (dict, list, tuple)) else value}")
    return " ".join([kind, *shown])


def recorded(kind: str):
    """Decorate a Lab event method so that its recorder sees it."""

    def wrap(method):
        @functools.wraps(method)
        def run(lab, *args, **kwargs):
            recorder = getattr(lab, "recorder", None)
            if recorder is None:
                return method(lab, *args, **kwargs)
            token = recorder.event_begin(lab, kind, describe(kind, args, kwargs))
            try:
                result = method(lab, *args, **kwargs)
            except BaseException as exc:
                recorder.event_end(lab, token, None, exc)
                raise
            recorder.event_end(lab, token, result, None)
            return result

        return run

    return wrap
