"""The logic of the ``zygote-pypy`` process model (``testbed.speaker.pypy``)
that runs on any Python: finding PyPy's environment, the JIT warm-up (run
here on CPython: the same code), which must leave ExaBGP's environment
unread for the speakers, and the slotted dataclasses made also on Python
3.9. That the model's speakers run and route is tests/emulation/test_pypy_speakers.py."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.bgp.route import Route, _slotted, store_through_slots
from testbed.errors import LabError, MissingDependency
from testbed.routers.exabgp import PROCESS_MODELS, ExaBGPBackend
from testbed.model.addressing import plan
from testbed.model.topology import Topology
from testbed.speaker import pypy

ROOT = Path(__file__).resolve().parents[2]


def test_a_missing_pypy_environment_says_how_to_make_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TESTBED_PYPY", str(tmp_path / "nothing" / "python"))
    with pytest.raises(MissingDependency, match=r"zygote-pypy.*TESTBED_PYPY=.*nothing/python.*setup-pypy\.sh"):
        pypy.interpreter()
    made = tmp_path / "python"
    made.write_text("#!/bin/sh\n")
    made.chmod(0o644)
    with pytest.raises(MissingDependency):  # there, but not executable
        pypy.interpreter()
    made.chmod(0o755)
    monkeypatch.setenv("TESTBED_PYPY", str(made))
    assert pypy.interpreter() == str(made)
    assert pypy.zygote_options() == {"python": str(made), "python_env": {"PYPY_GC_NURSERY": pypy.NURSERY},
                                     "ready_timeout": 60.0}


def test_the_backend_knows_the_model_and_checks_for_pypy(tmp_path, monkeypatch):
    assert "zygote-pypy" in PROCESS_MODELS
    topo = Topology("two")
    topo.transit(topo.add_as(64500, "T", ["198.51.100.0/24"]), topo.add_as(64501, "A", ["192.0.2.0/24"]))
    backend = ExaBGPBackend(plan(topo.validate()), process_model="zygote-pypy")
    monkeypatch.setenv("TESTBED_PYPY", str(tmp_path / "python"))
    with pytest.raises(MissingDependency, match="setup-pypy"):
        backend.check_machine()
    with pytest.raises(LabError, match="zygote, zygote-pypy, exec"):
        ExaBGPBackend(plan(topo.validate()), process_model="pypy")


WARM_UP = """
import json, os
from testbed.speaker import pypy, zygote
from exabgp.environment.environment import Env
from exabgp.logger.option import option

zygote.preload()  # as the zygote does first: ExaBGP imported, its environment not read
logger, definition = option.logger, Env.definition
done = pypy.warm_up(40)
print(json.dumps({"done": done, "setup": Env._setup, "env": len(Env._env), "definition": Env.definition is definition,
                  "logger": option.logger is logger, "port": os.environ.get("exabgp_tcp_port")}))
Env._setup = True
try:
    pypy.warm_up(1)
except RuntimeError as exc:
    print(exc)
"""


def test_the_warm_up_runs_the_per_route_paths_and_leaves_exabgp_environment_unread():
    # In a fresh interpreter, as in the zygote before its first fork.
    result = subprocess.run([sys.executable, "-c", WARM_UP], capture_output=True, text=True, timeout=120,
                            cwd=ROOT, env={**os.environ, "exabgp_tcp_port": "1179"})
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.splitlines()
    state = json.loads(first)
    assert state["done"]["updates"] == 40 and state["done"]["routes"] == 40
    # As before: a speaker forked after it reads its own router's environment.
    assert state["setup"] is False and state["env"] == 0 and state["definition"] and state["logger"]
    assert state["port"] == "1179"  # a router's setting, put back
    assert second == "ExaBGP's environment was read before the warm-up"


def test_slotted_dataclasses_without_slots_argument_behave_as_python_3_10s():
    # What frozen_slots does on Python 3.9 (PyPy), checked on this Python.
    @dataclasses.dataclass(frozen=True)
    class Point:
        x: int
        y: int = 2
        tags: tuple = ()

    Slotted = _slotted(Point)
    assert Slotted.__slots__ == ("x", "y", "tags") and Slotted.__qualname__.endswith("Point")
    p = Slotted(1)
    assert (p.x, p.y, p.tags) == (1, 2, ()) and p == Slotted(1, 2) and hash(p) == hash(Slotted(1, 2, ()))
    assert not hasattr(p, "__dict__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.x = 3
    assert dataclasses.replace(p, y=5) == Slotted(1, 5)
    # The descriptors store_through_slots builds Route's __init__ from.
    store_through_slots(Slotted)
    assert Slotted(4, tags=(1,)) == Slotted(x=4, y=2, tags=(1,))
    assert repr(Slotted(4)) == "test_slotted_dataclasses_without_slots_argument_behave_as_python_3_10s.<locals>.Point(x=4, y=2, tags=())"


def test_routes_are_slotted_on_this_python():
    assert "__slots__" in Route.__dict__ and not hasattr(Route("192.0.2.0/24", None), "__dict__")


def test_the_cost_line_is_fitted_through_the_speakers():
    from testbed.bench.speaker_cost import fit

    line = fit([(100, 0.2 + 100 * 50e-6), (300, 0.2 + 300 * 50e-6), (1000, 0.2 + 1000 * 50e-6)])
    assert line.fixed_s == pytest.approx(0.2) and line.per_route_us == pytest.approx(50.0)
    assert line.points == 3 and line.r2 == pytest.approx(1.0)
    noisy = fit([(0, 1.0), (10, 3.0), (10, 1.0), (20, 3.0)])
    assert noisy.per_route_us == pytest.approx(1e5) and noisy.fixed_s == pytest.approx(1.0) and 0 < noisy.r2 < 1
    with pytest.raises(ValueError, match="two different route counts"):
        fit([(38, 0.03), (38, 0.05)])


def test_the_crossover_is_where_the_cheaper_route_pays_for_the_dearer_start():
    from testbed.bench.speaker_cost import Fit, crossover

    cpython = Fit(fixed_s=0.01, per_route_us=600, points=100, r2=0.9)
    assert crossover(cpython, Fit(fixed_s=0.51, per_route_us=100, points=100, r2=0.9)) == pytest.approx(1000)
    assert crossover(cpython, Fit(fixed_s=0.0, per_route_us=100, points=100, r2=0.9)) == 0.0  # always cheaper
    assert crossover(cpython, Fit(fixed_s=0.0, per_route_us=3000, points=100, r2=0.9)) is None  # never
