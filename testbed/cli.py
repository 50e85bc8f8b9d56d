"""The ``testbed`` command: list, validate, graph, up, run, clean.

The only place that turns the project's errors into exit codes: 2 for an
invalid topology or bad usage, 3 for a machine that lacks something, 1 for
a lab or scenario that failed, 130 for Ctrl-C, 0 otherwise. SIGTERM, SIGHUP
and SIGQUIT are turned into a normal exit (``testbed.lab.signals``) so that a
running lab is always stopped.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import shutil
import signal
import threading
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from testbed.lab import cleanup, signals
from testbed.errors import MissingDependency, TestbedError, TopologyError
from testbed.internet import cli as internet_cli
from testbed.model.loader import TOPOLOGY_DIR, available, load, resolve

SCENARIO_DIR = TOPOLOGY_DIR.parent / "scenarios"
console = Console(highlight=False)


def summary(doc: str) -> str:
    """A docstring's first sentence as one line (it may run over several
    lines: the first line alone was cut mid-sentence)."""
    paragraph = " ".join(doc.strip().split("\n\n")[0].split())
    sentence = re.match(r"(.+?[.!?])(\s|$)", paragraph)
    return sentence.group(1) if sentence else paragraph


def _doc(path: Path) -> str:
    try:
        return ast.get_docstring(ast.parse(path.read_text())) or ""
    except (OSError, SyntaxError):
        return ""


def _yaml_description(path: Path) -> str:
    try:
        from testbed.model.yaml_loader import plain, read

        data = read(path)
        return str(plain(data.get("description", ""))) if isinstance(data, dict) else ""
    except TestbedError:
        return ""


def scenarios() -> dict[str, Path]:
    """Scenario name -> file."""
    if not SCENARIO_DIR.is_dir():
        return {}
    return {p.stem[len("test_"):]: p for p in sorted(SCENARIO_DIR.glob("test_*.py"))}


def cmd_list(args) -> int:
    table = Table(title="Topologies (topologies/)", title_justify="left")
    table.add_column("name", style="bold")
    table.add_column("what it is")
    for name in available():
        path = resolve(name)
        doc = _doc(path) if path.suffix == ".py" else _yaml_description(path)
        table.add_row(name, summary(doc))
    console.print(table)
    table = Table(title="Scenarios (scenarios/)", title_justify="left")
    table.add_column("name", style="bold")
    table.add_column("what it shows")
    for name, path in scenarios().items():
        table.add_row(name, summary(_doc(path)))
    console.print(table)
    return 0


def cmd_validate(args) -> int:
    from testbed.model.addressing import plan

    topology = load(args.topology)
    p = plan(topology)
    console.print(f"[green]valid[/green]: topology {topology.name!r} ({topology.source})")
    table = Table(title_justify="left")
    for column in ("router", "ASN", "router id", "prefixes", "hosts", "neighbors"):
        table.add_column(column)
    for router in p.routers.values():
        hosts = p.hosts_of(router.as_name) if router.prefixes else []
        table.add_row(router.name, str(router.asn), router.router_id, " ".join(router.prefixes),
                      " ".join(h.name for h in hosts),
                      ", ".join(f"{n.name} ({n.relationship}{', ' + n.via if n.via else ''})"
                                for n in router.neighbors))
    console.print(table)
    console.print(address_table(p))
    return 0


def address_table(p) -> Table:
    """Every link's and LAN's addresses: what the last tie-breaker (the
    lowest neighbor address) and a traceroute's hops are read against."""
    table = Table(title="links and LANs", title_justify="left")
    for column in ("where", "kind", "addresses"):
        table.add_column(column)
    for router in p.routers.values():
        for port in router.ports:
            table.add_row(f"{router.name} {port.ifname}", "link" if port.ifname.startswith("to-") else
                          ("IXP LAN" if port.ifname.startswith("ix-") else "port"),
                          " ".join(a for a in (port.address4, port.address6) if a))
        if router.lan4 or router.lan6:
            table.add_row(f"{router.name} lan", "hosts' LAN",
                          " ".join(str(a) for a in (router.lan4, router.lan6) if a))
    for host in p.hosts.values():
        table.add_row(host.name, "host", " ".join(a for a in (host.address4, host.address6) if a))
    return table


def cmd_graph(args) -> int:
    from .view.command import graph

    try:
        path = graph(args.topology, args.output, prefixes=args.prefixes)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    console.print(f"wrote {path}")
    return 0


def _start_lab(lab) -> None:
    from testbed.start_display import StartDisplay

    with StartDisplay(console, lab) as display:
        lab.progress = display
        lab.start()
    console.print(f"lab [bold]{lab.id}[/bold] of topology {lab.topology.name!r} converged in "
                  f"{lab.timings['start']:.2f} s: {len(lab.plan.routers)} routers, "
                  f"{len(lab.plan.sessions)} BGP sessions, {len(lab.plan.hosts)} hosts")


def _say(text) -> None:
    """Print, unless the terminal is gone (closed window: SIGHUP)."""
    try:
        console.print(text)
    except OSError:
        pass


def cmd_up(args) -> int:
    from testbed.lab.lab import Lab
    from testbed.lab_cli import run_cli

    live = None
    if args.web is None and (args.web_control or args.web_bind):
        print("error: --web-control and --web-bind need --web", file=sys.stderr)
        return 2
    recorder = None
    if args.web is not None:
        from testbed.report.recorder import Recorder

        recorder = Recorder(sample_interval=0)
    lab = Lab(args.topology, recorder=recorder)
    try:  # from before the start: a signal at any moment after it stops the lab
        _start_lab(lab)
        if args.web is not None:
            from testbed.live import LiveView

            live = LiveView(lab, recorder, port=args.web, bind=args.web_bind or "127.0.0.1",
                            control=args.web_control).start()
            console.print(f"live view: {live.url}" + (" (actions allowed)" if args.web_control else ""),
                          soft_wrap=True)
        if args.no_cli:
            if live is not None:
                console.print("serving until Ctrl-C")
                threading.Event().wait()
            return 0
        # The page's actions wait for a command, and the other way round.
        run_cli(lab, console, lock=live.lock if live is not None else None)
        return 0
    finally:
        if live is not None:
            live.stop()
        try:
            with console.status("stopping lab"):
                lab.stop()
        except OSError:  # the terminal is gone: stop all the same
            pass
        finally:
            lab.stop()
        if lab.id:
            _say(f"lab {lab.id} stopped in {lab.timings.get('stop', 0):.2f} s")


class _Outcome:
    """pytest plugin collecting results for the readable summary, and the
    step a Ctrl-C (or a terminating signal) cut short."""

    def __init__(self):
        self.results: list[tuple[str, str, str, list]] = []
        self.running: str | None = None
        self.interrupted_by = "Ctrl-C"

    def pytest_runtest_logstart(self, nodeid, location):
        self.running = nodeid

    def pytest_runtest_logfinish(self, nodeid, location):
        self.running = None

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            self.results.append((report.nodeid.split("::")[-1], report.outcome,
                                 str(report.longrepr).splitlines()[-1] if report.failed and report.longrepr else "",
                                 list(report.user_properties)))

    def pytest_keyboard_interrupt(self, excinfo):
        if self.running is not None:
            self.results.append((self.running.split("::")[-1], "interrupted",
                                 f"cut short by {self.interrupted_by}", []))
            self.running = None


def _terminal_console() -> Console:
    """A console on the terminal itself: pytest captures standard output
    (its file descriptor too) while the lab fixture starts a lab."""
    try:
        return Console(file=os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1), highlight=False)
    except (OSError, ValueError, AttributeError):
        return console


def cmd_run(args) -> int:
    import pytest

    from testbed.lab.startup_errors import ROOT_NEEDED
    from testbed.start_display import watch_start

    try:
        extra, report = _split_report_option(list(args.pytest_args))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    found = scenarios()
    path = found.get(args.scenario)
    if path is None:
        candidate = Path(args.scenario)
        if candidate.is_file():
            path = candidate
        else:
            console.print(f"[red]no scenario {args.scenario!r}[/red]; known: {', '.join(found)}")
            return 2
    if os.geteuid() != 0:  # every step would be skipped: say so once, as `testbed up` does
        raise MissingDependency(ROOT_NEEDED)
    doc = _doc(path)
    if doc:
        console.print(Panel(doc, title=f"scenario {path.stem[len('test_'):]}", title_align="left"))
    outcome = _Outcome()
    caught: list[int] = []

    def stop_run(signum, frame):
        # pytest stops the session and its fixtures (the lab) on KeyboardInterrupt.
        caught.append(signum)
        outcome.interrupted_by = signal.Signals(signum).name
        raise KeyboardInterrupt

    class _Display:
        def pytest_configure(self, config):
            config._testbed_watch_start = watch_start(_terminal_console())
            config._testbed_measurements_shown = True  # in the outcome table, not twice

    saved = signals.catch_termination(stop_run, force=True)
    try:
        with tempfile.TemporaryDirectory(prefix="testbed-report-") as scratch:
            code = pytest.main([str(path), "-q", "-p", "no:cacheprovider",
                                "-o", "console_output_style=classic", *extra,
                                *(["--testbed-report", scratch] if report else [])],
                               plugins=[outcome, _Display()])
            written = _place_reports(Path(scratch), Path(report)) if report else []
    finally:
        signals.restore(saved)
    table = Table(title="outcome", title_justify="left")
    for column in ("step", "result", "measured"):
        table.add_column(column)
    for name, result, detail, measured in outcome.results:
        colour = {"passed": "green", "failed": "red"}.get(result, "yellow")
        text = f"[{colour}]{result}[/{colour}]" + (f": {detail}" if detail else "")
        table.add_row(name.replace("test_", "").replace("_", " "), text,
                      "\n".join(f"{k}: {v}" for k, v in measured))
    _say(table)
    for page in written:
        _say(f"report: {page}")
    if code == pytest.ExitCode.INTERRUPTED:
        return 128 + (caught[0] if caught else signal.SIGINT)
    return 0 if code == 0 else 1


def _split_report_option(argv: list[str]) -> tuple[list[str], str | None]:
    """``--report FILE`` (or ``--report=FILE``) taken out of the arguments
    that follow the scenario, which otherwise all go to pytest."""
    rest, report = [], None
    items = iter(argv)
    for arg in items:
        if arg == "--report":
            report = next(items, None)
            if report is None:
                raise ValueError("--report needs a file name (FILE.html)")
        elif arg.startswith("--report="):
            report = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    return rest, report


def _place_reports(scratch: Path, target: Path) -> list[Path]:
    """Move the run's report(s) to ``target``; a scenario run over several
    topologies gives one report each, named ``<target stem>[<topology>].html``."""
    pages = sorted(p for p in scratch.glob("*.html") if p.name != "index.html")
    target.parent.mkdir(parents=True, exist_ok=True)
    if len(pages) == 1:
        shutil.move(str(pages[0]), target)
        return [target]
    placed = []
    for page in pages:
        suffix = page.stem[page.stem.index("["):] if "[" in page.stem else page.stem
        destination = target.with_name(f"{target.stem}{suffix}{target.suffix}")
        shutil.move(str(page), destination)
        placed.append(destination)
    return placed


def cmd_clean(args) -> int:
    removed = cleanup.clean(lab_id=args.lab)
    if not removed:
        console.print("nothing to clean: no leftovers of stopped labs")
    for record in removed:
        console.print(f"removed lab {record.id}: {len(record.pids)} processes killed"
                      + (f", {record.workdir} deleted" if record.workdir else ""))
    for record in cleanup.labs():
        if record.owner_alive:
            console.print(f"left running lab {record.id} (owner pid {record.manifest.get('owner_pid')} is alive; "
                          f"'testbed clean --lab {record.id}' removes it anyway)")
        elif record.workdir is None and record.parented:
            console.print(f"left running lab {record.id} ({len(record.pids)} processes, no work directory under "
                          f"{cleanup.DEFAULT_ROOT}, started by a live process; "
                          f"'testbed clean --lab {record.id}' removes it anyway)")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="testbed", description="Peering testbed: emulate, peer, depeer, test.")
    sub = top.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="topologies and scenarios").set_defaults(func=cmd_list)
    p = sub.add_parser("validate", help="check a topology (no root needed)")
    p.add_argument("topology", help="a name from topologies/ or a path")
    p.set_defaults(func=cmd_validate)
    p = sub.add_parser("graph", help="draw a topology's AS-level picture (no root needed)")
    p.add_argument("topology", help="a name from topologies/, a path, or internet:N[:SEED]")
    p.add_argument("-o", "--output", help="FILE.svg, FILE.png or FILE.dot (default: <topology>.svg)")
    p.add_argument("--prefixes", action="store_true", help="list each AS's prefixes in its box")
    p.set_defaults(func=cmd_graph)
    p = sub.add_parser("up", help="bring a lab up and open Mininet's CLI")
    p.add_argument("topology")
    p.add_argument("--no-cli", action="store_true",
                   help="start, report, stop (a smoke test); with --web: serve until Ctrl-C")
    p.add_argument("--web", nargs="?", type=int, const=8080, default=None, metavar="PORT",
                   help="serve a live view of the lab (default port 8080; 0: any free port)")
    p.add_argument("--web-bind", metavar="ADDRESS",
                   help="listen on ADDRESS instead of 127.0.0.1 (e.g. 0.0.0.0); the access token is needed")
    p.add_argument("--web-control", action="store_true",
                   help="let the page depeer, repeer, announce and withdraw")
    p.set_defaults(func=cmd_up)
    p = sub.add_parser("run", help="run a scenario and show its outcome")
    p.add_argument("scenario", help="a name from scenarios/ or a path")
    p.add_argument("pytest_args", nargs=argparse.REMAINDER,
                   help="--report FILE.html writes the run's HTML report; the rest goes to pytest")
    p.set_defaults(func=cmd_run)
    from testbed.exercise.cli import add_parser as add_exercise_parser

    add_exercise_parser(sub)
    p = sub.add_parser("clean", help="remove what killed labs left behind")
    p.add_argument("--lab", help="remove this lab even if its owner is alive")
    p.set_defaults(func=cmd_clean)
    internet_cli.add_commands(sub)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # Closing the terminal (SIGHUP), Ctrl-\\ (SIGQUIT) and SIGTERM end the
    # command as an exception does: a running lab is stopped first.
    signals.catch_termination(force=True)
    try:
        return args.func(args)
    except TopologyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except MissingDependency as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except TestbedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
