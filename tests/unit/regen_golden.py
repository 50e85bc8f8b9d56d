"""Golden files of every shipped topology: what they hold, and the command
that writes them again.

For each topology in ``topologies/``, ``tests/unit/golden/<topology>/``
holds its address plan (``plan.json``: ``testbed.model.addressing.plan``
as JSON, every field in declaration order) and, per router, the files a
lab writes into that router's work directory: ``<router>/exabgp.conf``
(``render(config_tree(...))``) and ``<router>/agent.json``
(``agent_config``) for an ExaBGP router, ``<router>/bird.conf`` or
``frr.conf`` (``testbed.routers.configs.config_text``: generated, a
user's template rendered, or a user's file) for a BIRD or FRR router. What varies by machine is fixed to stand-ins:
the Python executable is ``/venv/bin/python`` and the lab's work directory
``/run/testbed/LAB``. ``test_golden.py`` compares every file with what the
code renders now.

After checking that a change of the rendered output is meant, write them
again (from the checkout's root) with:

    .venv/bin/python tests/unit/regen_golden.py

It rewrites every topology's folder (removing files of routers that are
gone) and prints what changed.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import this checkout's testbed
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from testbed.model.addressing import Plan, plan  # noqa: E402
from testbed.model.loader import available, load  # noqa: E402
from testbed.model.router_kinds import choices  # noqa: E402
from testbed.routers.configs import config_text  # noqa: E402
from testbed.model.agent_config import agent_config  # noqa: E402
from testbed.routers.exabgp_config import config_tree, render  # noqa: E402

GOLDEN = Path(__file__).resolve().parent / "golden"
PYTHON = "/venv/bin/python"          # stands in for sys.executable
WORKDIR = "/run/testbed/LAB"         # stands in for the lab's work directory


def plan_json(p: Plan) -> str:
    """A stable text of an address plan: every dataclass field in its
    declared order, tuples as lists, dicts in their (deterministic) order."""
    return json.dumps(dataclasses.asdict(p), indent=2) + "\n"


def rendered(name: str) -> dict[str, str]:
    """Relative path -> text of every golden file of topology ``name``."""
    topology = load(name)
    p = plan(topology)
    kinds = choices(topology)
    files = {"plan.json": plan_json(p)}
    for router in p.routers.values():
        choice = kinds[router.name]
        if choice.kind != "exabgp":  # a BIRD or FRR router: the configuration its daemon gets
            files[f"{router.name}/{choice.kind}.conf"] = config_text(choice, p, router)
            continue
        folder = f"{WORKDIR}/{router.name}"
        argv = [PYTHON, "-m", "testbed.agent", f"{folder}/agent.json"]
        files[f"{router.name}/exabgp.conf"] = render(config_tree(router, p.hold_time, argv))
        config = agent_config(p, router, f"{folder}/agent.sock", f"{folder}/agent.log")
        files[f"{router.name}/agent.json"] = json.dumps(config, indent=2) + "\n"
    return files


def stored(name: str) -> dict[str, str]:
    """Relative path -> text of the golden files kept for topology ``name``."""
    folder = GOLDEN / name
    if not folder.is_dir():
        return {}
    return {path.relative_to(folder).as_posix(): path.read_text()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def regenerate(names: list[str] | None = None) -> list[str]:
    """Write the golden files of ``names`` (every shipped topology by
    default); returns what changed, one line per file."""
    changes = []
    for name in names or available():
        old, new = stored(name), rendered(name)
        shutil.rmtree(GOLDEN / name, ignore_errors=True)
        for relative, text in new.items():
            path = GOLDEN / name / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        for relative in sorted(old.keys() | new.keys()):
            if relative not in old:
                changes.append(f"added    {name}/{relative}")
            elif relative not in new:
                changes.append(f"removed  {name}/{relative}")
            elif old[relative] != new[relative]:
                changes.append(f"changed  {name}/{relative}")
    for folder in sorted(GOLDEN.iterdir()) if names is None and GOLDEN.is_dir() else ():
        if folder.is_dir() and folder.name not in available():
            shutil.rmtree(folder)
            changes.append(f"removed  {folder.name}/ (no such topology any more)")
    return changes


def main(argv: list[str]) -> int:
    changes = regenerate(argv or None)
    print("\n".join(changes) if changes else "golden files unchanged")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
