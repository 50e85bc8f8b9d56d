"""The reproducibility record of a run: what ran, on what, with which knobs.

``record(lab)`` gathers the project's version and git commit, the
versions of ExaBGP, Python, Mininet, Graphviz and the kernel, the
topology file's SHA-256 (or, for a topology built in code, that of its
drawing's DOT text, which covers every AS, session and prefix), the seed
of a generated topology, the lab's parameters (process model, MRAI, hold
time, update delay, page merging) and a machine probe (a fixed
pure-Python loop, to read timings against the shared machine's speed).
``record_without_lab`` is the part that needs no lab (for JUnit XML).
Everything is strings and numbers, ready for JSON and XML properties.
"""

from __future__ import annotations

import hashlib
import platform
import re
import shutil
import subprocess
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE_LOOPS = 1_000_000


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def git_commit(root: Path = ROOT) -> str:
    """The checkout's commit, with "+dirty" for uncommitted changes, or
    "unknown" outside a git checkout."""
    if not (root / ".git").exists() or shutil.which("git") is None:
        return "unknown"
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def graphviz_version() -> str:
    found = shutil.which("dot")
    if found is None:
        return "not installed"
    done = subprocess.run([found, "-V"], capture_output=True, text=True, timeout=10)
    match = re.search(r"version (\S+)", done.stderr + done.stdout)
    return match.group(1) if match else "unknown"


def machine_probe_ms(loops: int = PROBE_LOOPS) -> float:
    """Milliseconds for a fixed pure-Python loop (best of two)."""
    best = float("inf")
    for _ in range(2):
        t0 = time.perf_counter()
        total = 0
        for i in range(loops):
            total += i
        best = min(best, time.perf_counter() - t0)
    return round(best * 1000, 1)


def record_without_lab() -> dict[str, str]:
    """Versions and machine: the part of the record shared by every lab of a run."""
    import sys

    return {
        "testbed_version": _version("peering-testbed"),
        "git_commit": git_commit(),
        "exabgp_version": _version("exabgp"),
        "python_version": sys.version.split()[0],
        "mininet_version": _version("mininet"),
        "graphviz_version": graphviz_version(),
        "kernel": platform.release(),
        "machine": f"{platform.machine()}, {_cpus()} CPUs",
        "machine_probe_ms": str(machine_probe_ms()),
        "machine_probe_loops": str(PROBE_LOOPS),
    }


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 0)


def topology_hash(topology) -> str:
    """SHA-256 of the topology's file, or of its DOT text if it has none."""
    source = getattr(topology, "source", None)
    if source and Path(source).is_file():
        return "sha256:" + hashlib.sha256(Path(source).read_bytes()).hexdigest()
    from ..view import picture, to_dot

    return "sha256(dot):" + hashlib.sha256(to_dot(picture(topology, prefixes=True)).encode()).hexdigest()


def record(lab, shared: dict[str, str] | None = None) -> dict[str, str]:
    """The full record of one lab (see the module docstring)."""
    topology = lab.topology
    seed = re.search(r"seed=(\d+)", topology.description or "")
    return {
        **(shared if shared is not None else record_without_lab()),
        "topology": topology.name,
        "topology_source": str(topology.source or "built in code"),
        "topology_hash": topology_hash(topology),
        "seed": seed.group(1) if seed else "none (not generated)",
        "process_model": str(lab.process_model),
        "mrai_s": str(lab.mrai),
        "hold_time_s": str(lab.plan.hold_time),
        "update_delay": "on" if lab.update_delay else "off",
        "merge_pages": "on" if lab.merge_pages else "off",
        "lab_id": str(lab.id),
        "routers": str(len(lab.plan.routers)),
        "sessions": str(len(lab.plan.sessions)),
    }
