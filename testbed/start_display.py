"""What ``testbed up`` and ``testbed run`` show while a lab starts.

``StartDisplay(console, lab)`` is a context manager and the lab's progress
callback: each stage the lab reports (``Lab.progress``) is printed as a line
once done, with its time, and a rich progress bar counts the BGP speakers
started against the routers of the plan (read from ``lab.speakers`` at every
refresh). ``watch_start(console)`` gives the same for the lab fixture of a
``testbed run``, whose output pytest would otherwise capture.
"""

from __future__ import annotations

import contextlib
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn


class _Progress(Progress):
    def __init__(self, display: "StartDisplay", *args, **kwargs):
        self.display = display
        super().__init__(*args, **kwargs)

    def get_renderables(self):
        if getattr(self.display, "speaker_task", None) is not None:
            self.display.refresh_speakers()
        yield from super().get_renderables()


class StartDisplay:
    """Stages as lines, speakers as a bar; see the module docstring."""

    def __init__(self, console: Console, lab):
        self.console = console
        self.lab = lab
        self.t0 = time.monotonic()
        self.stage: str | None = None
        self.stage_t0 = self.t0
        self.speaker_task = None
        self.progress = _Progress(self, SpinnerColumn(), TextColumn("{task.description}"),
                                  BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                  console=console, transient=True)
        self.stage_task = self.progress.add_task("preparing", total=None, visible=True)
        self.speaker_task = self.progress.add_task("BGP speakers started", total=len(lab.plan.routers),
                                                   visible=False)

    def refresh_speakers(self) -> None:
        count = len(self.lab.speakers)
        if count:
            self.progress.update(self.speaker_task, completed=count, visible=True)

    def _finish_stage(self) -> None:
        if self.stage is not None:
            self.console.print(f"  [green]done[/green] {self.stage} ({time.monotonic() - self.stage_t0:.1f} s)")

    def __call__(self, stage: str) -> None:
        self._finish_stage()
        self.stage, self.stage_t0 = stage, time.monotonic()
        self.progress.update(self.stage_task, description=stage)

    def __enter__(self) -> "StartDisplay":
        self.console.print(f"starting a lab of topology {self.lab.topology.name!r}: "
                           f"{len(self.lab.plan.routers)} routers, {len(self.lab.plan.hosts)} hosts")
        self.progress.start()
        return self

    def __exit__(self, kind, exc, tb) -> None:
        try:
            self.refresh_speakers()
            self.progress.stop()
        except OSError:  # the terminal is gone (SIGHUP): the lab must still stop
            return
        if kind is None:
            self._finish_stage()
            self.console.print(f"  [green]done[/green] BGP speakers started: {len(self.lab.speakers)}/"
                               f"{len(self.lab.plan.routers)}")
        elif self.stage is not None:
            self.console.print(f"  [red]stopped[/red] while {self.stage}")


def watch_start(console: Console):
    """For the lab fixture: ``with watch(lab): lab.start()`` shows the start."""

    @contextlib.contextmanager
    def watch(lab):
        display = StartDisplay(console, lab)
        previous = lab.progress
        lab.progress = display
        try:
            with display:
                yield display
        finally:
            lab.progress = previous

    return watch
