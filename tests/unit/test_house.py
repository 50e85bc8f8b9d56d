"""The house's own rules, held for ``testbed/``: imports follow the layer
order and go round in no cycle; no module is over 500 lines (the checks
are in ``house.py``; each is first shown to catch what it is for on a
made-up package)."""

from __future__ import annotations

from pathlib import Path

import pytest

import house

PACKAGE = Path(__file__).resolve().parents[2] / "testbed"
def make(tmp_path: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = tmp_path / "testbed" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path / "testbed"


def test_the_checks_see_function_level_relative_and_package_imports(tmp_path):
    root = make(tmp_path, {
        "__init__.py": "",
        "errors.py": "",
        "bgp/__init__.py": "",
        "bgp/engine.py": "def f():\n    from ..lab import cleanup\n",      # upward, in a function
        "lab/__init__.py": "from testbed.lab.lab import Lab\n",
        "lab/lab.py": "import testbed.model.prediction\nfrom .cleanup import x\n",
        "lab/cleanup.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from testbed.cli import main\n"
                          "from testbed.errors import LabError\n",
        "model/__init__.py": "",
        "model/prediction.py": "from testbed.routers.config import agent_config\n",  # upward
        "routers/__init__.py": "",
        "routers/config.py": "from testbed.lab.cleanup import LAB_ENV\n",   # runs lab/__init__ first
    })
    assert house.imports("testbed.lab.lab", root / "lab" / "lab.py", house.modules(root)) == {
        "testbed.model": 1, "testbed.model.prediction": 1, "testbed.lab.cleanup": 2}
    violations = house.layering_violations(root)
    assert [v.split(": ", 1)[1] for v in violations] == [
        "testbed.bgp.engine (bgp) imports testbed.lab (lab), a higher layer",
        "testbed.bgp.engine (bgp) imports testbed.lab.cleanup (lab), a higher layer",
        "testbed.model.prediction (model) imports testbed.routers (routers), a higher layer",
        "testbed.model.prediction (model) imports testbed.routers.config (routers), a higher layer",
        "testbed.routers.config (routers) imports testbed.lab (lab), a higher layer",
        "testbed.routers.config (routers) imports testbed.lab.cleanup (lab), a higher layer",
    ]
    assert violations[0].startswith(f"{root / 'bgp' / 'engine.py'}:2: ")
    found = house.cycles(root)
    assert len(found) == 1 and found[0].startswith(
        "cycle among testbed.lab, testbed.lab.lab, testbed.model.prediction, testbed.routers.config: "
        "testbed.lab -> testbed.lab.lab (__init__.py:1); testbed.lab.lab -> testbed.model.prediction (lab.py:1)"), found


def test_a_sibling_import_inside_a_package_is_no_cycle(tmp_path):
    root = make(tmp_path, {"__init__.py": "", "lab/__init__.py": "from testbed.lab.lab import Lab\n",
                           "lab/lab.py": "from testbed.lab import control\n", "lab/control.py": "",
                           "mystery/__init__.py": ""})
    assert house.cycles(root) == []
    assert house.layering_violations(root) == [
        f"{root / 'mystery' / '__init__.py'}: module testbed.mystery is in no layer (add 'mystery' to LAYERS)"]


def test_the_size_check_lists_each_large_module(tmp_path):
    root = make(tmp_path, {"__init__.py": "", "big.py": "x = 1\n" * 501, "fine.py": "x = 1\n" * 500})
    assert house.oversized(root) == [f"{root / 'big.py'} has 501 lines (limit 500)"]


def test_no_import_cycle_in_testbed():
    found = house.cycles(PACKAGE)
    assert not found, "import cycles in testbed/:\n" + "\n".join(found)


def test_imports_follow_the_layer_order():
    found = house.layering_violations(PACKAGE)
    assert not found, (f"imports against the layer order {' < '.join(house.LAYERS)}:\n" + "\n".join(found))


def test_no_module_over_500_lines():
    found = house.oversized(PACKAGE)
    assert not found, "modules over 500 lines (split them by responsibility):\n" + "\n".join(found)
