"""Find and remove what labs left behind, by lab id only.

Every process a lab starts (node shells, ExaBGP speakers, route agents)
carries ``TESTBED_LAB=<id>`` in its environment, and every lab has a work
directory ``<root>/<id>`` with a manifest naming the process that owns it.
Since a lab's namespaces, veths and bridges all live inside namespaces held
by those processes, killing a lab's processes removes everything it
created. A lab whose owner is alive is never touched unless named.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

LAB_ENV = "TESTBED_LAB"  # the environment variable that tags a lab's processes
_TAG = LAB_ENV.encode() + b"="
DEFAULT_ROOT = Path(os.environ.get("TESTBED_WORKDIR", "/run/testbed"))


def proc_stat(pid: int) -> list[bytes] | None:
    """The fields of /proc/<pid>/stat after the command name (field 3, the
    state, is index 0); None if the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    return data[data.rindex(b")") + 2:].split()


def process_start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (tells pid reuse apart)."""
    fields = proc_stat(pid)
    return None if fields is None else int(fields[19])


def lab_of(pid: int) -> str | None:
    """The lab id in the environment of ``pid``, if any."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            environ = handle.read()
    except OSError:
        return None
    for entry in environ.split(b"\0"):
        if entry.startswith(_TAG):
            return entry[len(_TAG):].decode(errors="replace")
    return None


def tagged_processes() -> dict[str, list[int]]:
    """lab id -> pids of every live process tagged with it."""
    found: dict[str, list[int]] = {}
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        lab = lab_of(int(entry))
        if lab:
            found.setdefault(lab, []).append(int(entry))
    return found


def kill(pids: list[int], grace: float = 2.0) -> list[int]:
    """SIGTERM, wait up to ``grace`` seconds, then SIGKILL. Returns the pids
    that had to be killed."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if _alive(p)]
        if alive:
            time.sleep(0.02)
    for pid in alive:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 2.0
    while any(_alive(p) for p in alive) and time.monotonic() < deadline:
        time.sleep(0.01)
    return alive


def alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie counts as gone)."""
    return _alive(pid)


def _alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (reap our children)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return False
    except ChildProcessError:
        pass
    fields = proc_stat(pid)
    return fields is not None and fields[0] != b"Z"


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
        from testbed.linux import ksm
        from testbed.linux import neigh_limits as neighbours

        neighbours.restore(root)
        ksm.restore(root)
    return removed
