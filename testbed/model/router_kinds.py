"""Which router software each router of a topology runs, and with what configuration.

An AS (``Topology.add_as``) or an IXP route server (``add_route_server``)
runs ``router="exabgp"`` (the default: ExaBGP with the testbed's route
agent), ``"bird"`` (BIRD 2) or ``"frr"`` (FRRouting), with ``config=``
the user's own configuration: a file used as it is, or a Jinja2 template
(a name ending in ``.j2``) rendered with the plan's values; without
``config`` the testbed generates one with the ExaBGP routers' policy. A
relative path is taken from the directory of the topology file that
declared the AS. ``problems(topology)`` returns each mistake with the
declaration's file:line (``testbed.model.validate`` adds them to its
own); ``choices(topology)`` maps every router name to its ``Choice``.
Pure: nothing is read but the existence of the files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROUTER_KINDS = ("exabgp", "bird", "frr")
TEMPLATE_SUFFIXES = (".j2", ".jinja", ".jinja2")

__all__ = ["ROUTER_KINDS", "Choice", "choices", "config_path", "problems"]


@dataclass(frozen=True)
class Choice:
    """The software of one router: its kind, the user's configuration
    (``None``: generated) and whether that is a template."""

    kind: str
    config: Path | None = None
    where: object = None

    @property
    def template(self) -> bool:
        return self.config is not None and self.config.suffix in TEMPLATE_SUFFIXES


def config_path(system) -> Path | None:
    """The AS's ``config`` as an absolute path (relative to its topology
    file), or ``None``."""
    config = getattr(system, "config", None)
    if config is None:
        return None
    path = Path(config)
    if not path.is_absolute() and system.where is not None:
        path = Path(system.where.file).resolve().parent / path
    return path


def problems(topology) -> list[str]:
    """Each bad ``router``/``config`` of ``topology``'s ASes, with file:line."""
    out = []
    for system in topology.systems:
        at = f"{system.where}: " if system.where else ""
        kind = getattr(system, "router", "exabgp")
        config = getattr(system, "config", None)
        if not isinstance(kind, str) or kind not in ROUTER_KINDS:
            out.append(f"{at}AS {system.name!r}: unknown router kind {kind!r}: use one of "
                       + ", ".join(repr(k) for k in ROUTER_KINDS))
            continue
        if config is None:
            continue
        if not isinstance(config, (str, Path)) or not str(config):
            out.append(f"{at}AS {system.name!r}: config {config!r} must be a file path")
            continue
        if kind == "exabgp":
            out.append(f"{at}AS {system.name!r}: config {str(config)!r} is for a BIRD or FRR router; "
                       "ExaBGP routers take the testbed's policy (set router='bird' or 'frr')")
            continue
        path = config_path(system)
        if not path.is_file():
            out.append(f"{at}AS {system.name!r}: config file {str(config)!r} not found ({path})")
    return out


def choices(topology) -> dict[str, Choice]:
    """Router name -> its ``Choice``, for every router of ``topology``
    (validated: see ``problems``)."""
    found = {}
    for system in topology.systems:
        choice = Choice(getattr(system, "router", "exabgp"), config_path(system), system.where)
        for name in system.routers:
            found[name] = choice
    return found
