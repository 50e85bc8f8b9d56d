"""Find and remove what labs left behind, by lab id only.

Every process a lab starts (node shells, ExaBGP speakers, route agents)
carries ``TESTBED_LAB=<id>`` in its environment, and every lab has a work
directory ``<root>/<id>`` with a manifest naming the process that owns it.
Since a lab's namespaces, veths and bridges all live inside namespaces held
by those processes, killing a lab's processes removes everything it
created. A lab whose owner is alive is never touched unless named.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from testbed.linux import ksm
from testbed.linux import neigh_limits as neighbours
from testbed.linux.lab_records import DEFAULT_ROOT, MANIFEST_GRACE, LabRecord, labs
from testbed.linux.processes import LAB_ENV, alive, kill, lab_of, proc_stat, process_start_time, tagged_processes

__all__ = ["DEFAULT_ROOT", "LAB_ENV", "MANIFEST_GRACE", "LabRecord", "alive", "clean", "kill", "lab_of", "labs",
           "proc_stat", "process_start_time", "tagged_processes"]


def clean(root: Path = DEFAULT_ROOT, lab_id: str | None = None) -> list[LabRecord]:
    """Remove leftovers: of lab ``lab_id`` (even if its owner lives), or of
    every lab whose owner process is gone (``LabRecord.in_use``; a lab
    kept under another root is seen only through its processes, and is
    spared while its harness lives). Returns what was removed."""
    removed = []
    for record in labs(root):
        if lab_id is not None and record.id != lab_id:
            continue
        if lab_id is None and record.in_use:
            continue
        kill(record.pids)
        if record.workdir is not None:
            shutil.rmtree(record.workdir, ignore_errors=True)
        removed.append(record)
    if removed:
        neighbours.restore(root)
        ksm.restore(root)
    return removed
