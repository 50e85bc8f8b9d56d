"""Topology files: where they are found and how one is loaded.

A topology is a Python module that leaves a ``Topology`` in a module-level
variable named ``topology``, or a YAML file of the same declarations
(``testbed.model.yaml_loader``). ``resolve`` turns a reference (a name or a
path) into its file, ``load`` imports it and returns the validated model
(a ``TopologyError`` naming the file for a missing or broken one), and
``available`` lists the shipped topologies in ``TOPOLOGY_DIR``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from testbed.errors import TopologyError
from testbed.model.topology import Topology

TOPOLOGY_DIR = Path(__file__).resolve().parents[2] / "topologies"


TOPOLOGY_SUFFIXES = (".py", ".yaml", ".yml")


def resolve(ref: str | Path, near: Path | None = None) -> Path:
    """The file of a topology reference: a path to a ``.py`` or ``.yaml``
    file, or a name looked up (as ``NAME.py``, ``NAME.yaml``, ``NAME.yml``)
    in ``near/topologies``, ``near/../topologies`` (a scenario's own
    project) and then the shipped ``topologies/``."""
    path = Path(ref)
    if path.suffix in TOPOLOGY_SUFFIXES:
        if not path.is_absolute() and near is not None and (near / path).is_file():
            return near / path
        return path
    dirs = [near / "topologies", near.parent / "topologies"] if near is not None else []
    for directory in [*dirs, TOPOLOGY_DIR]:
        for suffix in TOPOLOGY_SUFFIXES:
            if (directory / f"{ref}{suffix}").is_file():
                return directory / f"{ref}{suffix}"
    return TOPOLOGY_DIR / f"{ref}.py"


def load(ref: str | Path, near: Path | None = None) -> Topology:
    """Load a topology by name or path (see ``resolve``).

    A YAML file is read by ``testbed.model.yaml_loader``. A Python module must define ``topology`` (a ``Topology``). The result is
    validated; a missing or broken module is reported as ``TopologyError``.
    """
    path = resolve(ref, near)
    if not path.is_file():
        known = ", ".join(available()) or "none"
        raise TopologyError([f"no topology file {path} (known topologies: {known})"], str(ref))
    if path.suffix in (".yaml", ".yml"):
        from testbed.model.yaml_loader import load_yaml

        return load_yaml(path).validate()
    spec = importlib.util.spec_from_file_location(f"testbed_topology_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # a user's file: report, do not crash
        from testbed.model.import_failure import import_problem

        raise TopologyError([import_problem(path, exc)], str(path)) from exc
    topo = getattr(module, "topology", None)
    if not isinstance(topo, Topology):
        raise TopologyError(["it defines no module-level `topology = Topology(...)`"], str(path))
    topo.source = str(path)
    return topo.validate()


def available() -> list[str]:
    """Names of the topologies shipped in ``topologies/``."""
    if not TOPOLOGY_DIR.is_dir():
        return []
    return sorted({p.stem for p in TOPOLOGY_DIR.iterdir()
                   if p.suffix in TOPOLOGY_SUFFIXES and not p.name.startswith("_")})
