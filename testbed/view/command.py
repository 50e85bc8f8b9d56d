"""The ``testbed graph`` command: a topology's picture into a file.

``graph(ref, output, prefixes)`` loads a topology (a name, a path, or
``internet:N[:SEED]`` for a generated Internet of N ASes), draws it and
writes SVG, PNG or DOT by the output's suffix; returns the path written.
No root needed; nothing but the output file is created.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import TopologyError
from ..model.loader import load
from ..model.topology import Topology
from .dot import to_dot
from .picture import picture
from .render import FORMATS, render


def load_spec(ref: str) -> Topology:
    """A topology by name or path, or ``internet:N[:SEED]`` (generated)."""
    if ref.startswith("internet:"):
        from ..model.generate import internet

        parts = ref.split(":")[1:]
        try:
            size = int(parts[0])
            seed = int(parts[1]) if len(parts) > 1 else 1
            if len(parts) > 2:
                raise ValueError("too many fields")
            return internet(size, seed=seed).validate()
        except (ValueError, IndexError) as exc:
            raise TopologyError([f"{ref!r}: use internet:N or internet:N:SEED ({exc})"], ref) from None
    return load(ref)


def output_format(path: Path) -> str:
    """svg, png or dot, by the file's suffix; ValueError otherwise."""
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise ValueError(f"output {path}: the picture is written as .svg, .png or .dot, "
                         f"not {path.suffix or 'a file without a suffix'}")
    return fmt


def graph(ref: str, output: str | Path | None = None, prefixes: bool = False) -> Path:
    if output is not None:
        output_format(Path(output))  # bad usage is reported before any work
    topology = load_spec(ref)
    path = Path(output) if output is not None else Path(f"{topology.name}.svg")
    fmt = output_format(path)
    data = render(to_dot(picture(topology, prefixes=prefixes)), fmt)
    path.write_bytes(data)
    return path
