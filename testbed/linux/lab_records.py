"""The labs on this host: their work directories and tagged processes.

Every lab has a work directory ``<root>/<id>`` (``DEFAULT_ROOT``, or
``TESTBED_WORKDIR``) holding ``manifest.json``, which names the process
that owns the lab (``owner_pid``, ``owner_start``), and its processes carry
its id (``testbed.linux.processes``). ``labs(root)`` lists them as
``LabRecord``s, which say whether a lab is still in use; the cleanup
(``testbed.lab.cleanup``) removes those that are not, and the host-wide
settings a lab raised (``neigh_limits``, ``ksm``) are put back only when
no other lab of the root is in use.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from testbed.linux.processes import lab_of, process_start_time, proc_stat, tagged_processes

DEFAULT_ROOT = Path(os.environ.get("TESTBED_WORKDIR", "/run/testbed"))
MANIFEST_GRACE = 10.0  # seconds a new work directory may lack its manifest


@dataclass
class LabRecord:
    """A lab known from its manifest or from tagged processes."""

    id: str
    workdir: Path | None = None
    manifest: dict = field(default_factory=dict)
    pids: list[int] = field(default_factory=list)

    @property
    def starting(self) -> bool:
        """A work directory so new that its manifest may not be written yet."""
        if self.manifest or self.workdir is None:
            return False
        try:
            return time.time() - self.workdir.stat().st_mtime < MANIFEST_GRACE
        except OSError:
            return False

    @property
    def owner_alive(self) -> bool:
        owner = self.manifest.get("owner_pid")
        if not owner:
            return False
        return process_start_time(owner) == self.manifest.get("owner_start")

    @property
    def parented(self) -> bool:
        """Whether a process outside the lab still parents one of its
        processes. The harness that runs a lab is the parent of its node
        shells and its zygote; once it is gone they are adopted by init
        (pid 1). For a lab known only from its processes (its work
        directory is under another root, or was removed) this is the only
        sign of a live owner. A subreaper that adopts orphans makes them
        look owned: then only ``clean(lab_id=...)`` removes them."""
        mine = set(self.pids)
        for pid in self.pids:
            fields = proc_stat(pid)
            if fields is None:
                continue
            parent = int(fields[1])
            if parent > 1 and parent not in mine and lab_of(parent) != self.id:
                return True
        return False

    @property
    def in_use(self) -> bool:
        """Whether a plain ``clean()`` must leave this lab alone: its owner
        lives, it is still being created, or (known only from its
        processes) something outside it still parents them."""
        return self.owner_alive or self.starting or (self.workdir is None and self.parented)


def labs(root: Path = DEFAULT_ROOT) -> list[LabRecord]:
    """Every lab with a work directory under ``root`` or a tagged process."""
    records: dict[str, LabRecord] = {}
    if root.is_dir():
        for workdir in root.iterdir():
            if not workdir.is_dir():
                continue  # the labs' shared files (testbed.linux.neigh_limits)
            manifest_path = workdir / "manifest.json"
            try:
                manifest = json.loads(manifest_path.read_text())
            except (OSError, ValueError):
                manifest = {}
            records[workdir.name] = LabRecord(workdir.name, workdir, manifest)
    for lab, pids in tagged_processes().items():
        records.setdefault(lab, LabRecord(lab)).pids = pids
    return sorted(records.values(), key=lambda r: r.id)
