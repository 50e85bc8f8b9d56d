"""``testbed exercise``: list, start, check, hint, solution, reset, stop, grade.

``start`` writes the workspace (``answer.yaml`` to fill in, and
``instructions.md``) and starts the harness process, waiting until its
lab is ready; the other lab commands talk to that harness through its
socket (``testbed.exercise.harness``). ``check`` prints each criterion as
passed or failed with what was seen and the hint; exit 0 when all pass,
1 when one fails, 2 for an answer file that was refused. ``grade`` grades
many answer files against fresh labs (``testbed.exercise.grade``) and
writes the reports (``testbed.exercise.report``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from testbed.errors import LabError
from testbed.exercise import harness
from testbed.exercise.model import available, load_exercise

console = Console(highlight=False, soft_wrap=True)

ANSWER_TEMPLATE = """\
# Your answer to the exercise '{name}': {title}
# Read instructions.md, fill this in, then run: testbed exercise check
# Your router is {router}; its neighbors: {neighbors}.
#
# policy:            # a session policy per neighbor (the README's policy language)
#   NEIGHBOR:
#     import: [...]
#     export: [...]
# announce:          # prefixes of yours to originate, with communities
#   - {{prefix: ..., communities: [...]}}
# depeer: [NEIGHBOR] # sessions to shut down
"""


def cmd_list(args) -> int:
    table = Table(title="Exercises (exercises/)", title_justify="left")
    for column in ("name", "level", "topic", "what it teaches"):
        table.add_column(column, style="bold" if column == "name" else None)
    for name in available():
        ex = load_exercise(name)
        table.add_row(name, ex.level, ex.topic, ex.teaches.split("\n")[0])
    console.print(table)
    return 0


def _workspace(args) -> Path:
    return Path(getattr(args, "dir", None) or ".").resolve()


def _running(workspace: Path) -> dict:
    info = harness.state(workspace)
    if info is None:
        raise LabError(f"no exercise in {workspace} ('testbed exercise start NAME' starts one)")
    return info


def cmd_start(args) -> int:
    exercise = load_exercise(args.name)
    workspace = Path(args.directory or ".").resolve()
    workspace.mkdir(parents=True, exist_ok=True)
    info = harness.state(workspace)
    if info is not None and harness.alive(info):
        console.print(f"[red]exercise {info['exercise']} is already running here[/red] (lab {info['lab']}); "
                      "'testbed exercise stop' first")
        return 2
    from testbed.lab import Lab  # noqa: F401  (fail here, not in the harness, if the lab cannot import)

    log = open(workspace / harness.LOG_FILE, "a")
    web = [] if args.web is None else [json.dumps({"port": args.web, "bind": args.web_bind or "127.0.0.1",
                                                  "control": args.web_control})]
    process = subprocess.Popen([sys.executable, "-m", "testbed.exercise.harness", str(exercise.directory),
                                str(workspace), *web], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=log, start_new_session=True, text=True)
    log.close()
    t0 = time.monotonic()
    ready = None
    with console.status(f"starting the lab of {exercise.name}") as status:
        for line in process.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if "stage" in message:
                status.update(f"{message['stage']} ({time.monotonic() - t0:.1f} s)")
            elif "ready" in message or "error" in message:
                ready = message
                break
    process.stdout.close()
    if ready is None or "error" in ready:
        process.wait(timeout=60)
        reason = ready["error"] if ready else f"the harness exited (see {workspace / harness.LOG_FILE})"
        console.print("[red]the exercise lab did not start[/red]:", end=" ")
        console.print(reason, markup=False)
        return 3 if ready and ready.get("missing") else 1
    instructions = exercise.instructions.read_text()
    (workspace / "instructions.md").write_text(f"# {exercise.title}\n\n{instructions}")
    answer = workspace / "answer.yaml"
    if not answer.exists():
        neighbors = ", ".join(_neighbors(exercise))
        answer.write_text(ANSWER_TEMPLATE.format(name=exercise.name, title=exercise.title,
                                                 router=exercise.router, neighbors=neighbors))
    console.print(f"exercise [bold]{exercise.name}[/bold]: lab {ready['lab']} is running "
                  f"(harness pid {ready['pid']}, started in {ready['seconds']:.1f} s)")
    console.print(f"read {workspace / 'instructions.md'}, write {answer}, then 'testbed exercise check'")
    if ready.get("web"):
        console.print(f"live view (with the criteria): {ready['web']}", soft_wrap=True)
    return 0


def _neighbors(exercise) -> list[str]:
    from testbed.model.addressing import plan
    from testbed.model.loader import load

    return [n.name for n in plan(load(exercise.topology_file)).routers[exercise.router].neighbors]


def print_results(results: list[dict]) -> bool:
    for r in results:
        if r["passed"]:
            console.print(f"[green]passed[/green]  {r['description']}")
        else:
            console.print(f"[red]failed[/red]  {r['description']}")
            console.print(f"        seen: {r['seen']}", markup=False)
            console.print(f"        hint: {r['hint']}", markup=False)
    passed = sum(r["passed"] for r in results)
    console.print(f"{passed} of {len(results)} criteria passed")
    return passed == len(results)


def cmd_check(args) -> int:
    workspace = _workspace(args)
    _running(workspace)
    answer = Path(args.answer or workspace / "answer.yaml").resolve()
    with console.status("applying your answer and checking"):
        reply = harness.request(workspace, "check", answer=str(answer))
    if "invalid" in reply:
        console.print(f"[red]answer refused[/red] ({answer}); the lab is left as it was:")
        for problem in reply["invalid"]:
            console.print(f"  - {problem}", markup=False)
        return 2
    if "error" in reply:
        console.print(f"[red]error[/red]: {reply['error']}", markup=False)
        return 1
    return 0 if print_results(reply["results"]) else 1


def _exercise_of(args):
    if getattr(args, "name", None):
        return load_exercise(args.name)
    return load_exercise(_running(_workspace(args))["directory"])


def cmd_hint(args) -> int:
    exercise = _exercise_of(args)
    if exercise.hint_file.is_file():
        console.print(exercise.hint_file.read_text().strip(), markup=False)
    else:
        for item in exercise.criteria():
            console.print(f"- {item.description}", markup=False)
    return 0


def cmd_solution(args) -> int:
    exercise = _exercise_of(args)
    console.print(exercise.solution.read_text().rstrip(), markup=False)
    return 0


def cmd_reset(args) -> int:
    workspace = _workspace(args)
    with console.status("putting your router back as it was at the start"):
        reply = harness.request(workspace, "reset")
    if "error" in reply:
        console.print(f"[red]error[/red]: {reply['error']}", markup=False)
        return 1
    console.print("the lab is back as it was at the start (answer.yaml is unchanged)")
    return 0


def cmd_stop(args) -> int:
    workspace = _workspace(args)
    info = _running(workspace)
    if harness.alive(info):
        harness.request(workspace, "stop")
    deadline = time.monotonic() + 30
    while harness.state(workspace) is not None and time.monotonic() < deadline:
        try:
            import os

            os.kill(int(info["pid"]), 0)
        except OSError:
            break
        time.sleep(0.1)
    (workspace / harness.STATE_FILE).unlink(missing_ok=True)
    console.print(f"exercise {info['exercise']} stopped (lab {info['lab']})")
    return 0


def cmd_grade(args) -> int:
    from testbed.exercise.grade import grade
    from testbed.exercise.report import write_reports

    exercise = load_exercise(args.name)
    answers = [Path(a) for a in args.answers]
    missing = [str(a) for a in answers if not a.is_file()]
    if missing:
        console.print(f"[red]no such answer file[/red]: {', '.join(missing)}")
        return 2
    t0 = time.monotonic()

    def progress(g):
        console.print(f"{g.participant}: {g.passed}/{len(g.results)} criteria "
                      f"({g.seconds:.1f} s){' ' + g.error if g.error else ''}", markup=False)

    grades = grade(exercise, answers, args.jobs, progress)
    took = time.monotonic() - t0
    paths = write_reports(exercise, grades, Path(args.out))
    console.print(f"graded {len(grades)} answers in {took:.1f} s "
                  f"({60 * len(grades) / took:.1f} participants a minute); "
                  f"{', '.join(str(p) for p in paths.values())}")
    return 1 if any(g.error for g in grades) else 0


def cmd_verify(args) -> int:
    from testbed.exercise.verify import verify

    bad = 0
    total = time.monotonic()
    for name in args.names or available():
        exercise = load_exercise(name)
        problems, seconds, seen = verify(exercise)
        status = "[green]sound[/green]" if not problems else "[red]broken[/red]"
        console.print(f"{name}: {status} ({seconds:.1f} s, {len(seen)} answers checked)")
        for problem in problems:
            console.print(f"  - {problem}", markup=False)
        bad += bool(problems)
    console.print(f"{time.monotonic() - total:.1f} s in all")
    return 1 if bad else 0


def add_parser(sub) -> None:
    top = sub.add_parser("exercise", help="workshop exercises: start, check, grade")
    commands = top.add_subparsers(dest="exercise_command", required=True)
    commands.add_parser("list", help="the exercises, their level and topic").set_defaults(func=cmd_list)
    p = commands.add_parser("start", help="start an exercise's lab and write its workspace")
    p.add_argument("name")
    p.add_argument("directory", nargs="?", help="the workspace (default: here)")
    p.add_argument("--web", nargs="?", type=int, const=8080, default=None, metavar="PORT",
                   help="serve the live view of the lab with the exercise's criteria (see 'testbed up --web')")
    p.add_argument("--web-bind", metavar="ADDRESS", help="listen on ADDRESS instead of 127.0.0.1")
    p.add_argument("--web-control", action="store_true", help="let the page depeer, repeer, announce, withdraw")
    p.set_defaults(func=cmd_start)
    p = commands.add_parser("check", help="apply your answer to the running lab and check it")
    p.add_argument("answer", nargs="?", help="default: answer.yaml in the workspace")
    p.add_argument("--dir", help="the workspace (default: here)")
    p.set_defaults(func=cmd_check)
    for name, func, text in (("hint", cmd_hint, "hints for the exercise"),
                             ("solution", cmd_solution, "the reference solution")):
        p = commands.add_parser(name, help=text)
        p.add_argument("name", nargs="?", help="an exercise (default: the one running here)")
        p.add_argument("--dir", help="the workspace (default: here)")
        p.set_defaults(func=func)
    for name, func, text in (("reset", cmd_reset, "put the lab back as it was at the start"),
                             ("stop", cmd_stop, "stop the exercise's lab")):
        p = commands.add_parser(name, help=text)
        p.add_argument("--dir", help="the workspace (default: here)")
        p.set_defaults(func=func)
    p = commands.add_parser("verify", help="check exercises both ways: solution passes, wrong answers fail")
    p.add_argument("names", nargs="*", help="default: every exercise")
    p.set_defaults(func=cmd_verify)
    p = commands.add_parser("grade", help="grade answer files against fresh labs")
    p.add_argument("name")
    p.add_argument("answers", nargs="+", help="one answer file per participant (named after the file)")
    p.add_argument("--out", default="grades", help="directory for grades.csv/.html/.xml")
    p.add_argument("--jobs", type=int, help="labs at once (default: cores, limited by memory)")
    p.set_defaults(func=cmd_grade)
