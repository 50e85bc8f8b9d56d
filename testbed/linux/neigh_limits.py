"""Room in the kernel's neighbour tables (ARP and NDP) for a lab.

The kernel keeps one ARP table and one NDP table for the whole host: every
network namespace's entries count against the same limit,
``net.ipv{4,6}.neigh.default.gc_thresh3`` (1,024 by default). Past it, no
new entry can be made ("neighbour table overflow!" in the kernel log): a
router cannot resolve its peer's address, its BGP session never opens, and
a large lab never converges. A 1,000-AS Internet needs about 3,300 IPv4
entries for its sessions and end hosts alone.

So before a lab is built, ``ensure`` compares what its plan may need with
the room left, and when it is short raises the thresholds, host-wide,
recording the values it found in the labs' root directory. ``restore``
puts them back when no other lab of that root is still in use (``Lab.stop``
and ``testbed.lab.cleanup.clean`` call it). The values are capacities, not behaviour:
raising them changes nothing for the entries that fit already.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path

from testbed.linux import lab_records

SAVED = "neighbour-thresholds.json"   # in the labs' root: the values found before any lab raised them
LOCK = ".neighbour-thresholds.lock"
FAMILIES = {4: ("ipv4", "arp_cache"), 6: ("ipv6", "ndisc_cache")}
ROUND = 1024
MARGIN = 256


def needed(plan) -> dict[int, int]:
    """Neighbour entries the lab of ``plan`` may make, by IP version, at
    most: each router's BGP peers and IGP next hops, each host and its
    gateway, and every pair of members on an IXP's LAN (an entry is made
    when a neighbour is first talked to: the session's peer at once, the
    others with traffic)."""
    count = 0
    for router in plan.routers.values():
        count += len(router.neighbors) + len(router.igp)
    count += 2 * len(plan.hosts)
    for ixp in plan.ixps.values():
        count += len(ixp.members) * (len(ixp.members) - 1)
    return {4: count, 6: count}


def _threshold_path(version: int, level: int) -> Path:
    return Path(f"/proc/sys/net/{FAMILIES[version][0]}/neigh/default/gc_thresh{level}")


def read_thresholds() -> dict[str, int]:
    """``{"4.2": ..., "4.3": ..., "6.2": ..., "6.3": ...}``: gc_thresh2 and
    gc_thresh3 of each family."""
    return {f"{version}.{level}": int(_threshold_path(version, level).read_text())
            for version in FAMILIES for level in (2, 3)}


def _write_thresholds(values: dict[str, int]) -> None:
    for key, value in values.items():
        version, level = (int(part) for part in key.split("."))
        _threshold_path(version, level).write_text(f"{value}\n")


def entries(version: int) -> int:
    """Entries in the host's table of that IP version now (all namespaces)."""
    with open(f"/proc/net/stat/{FAMILIES[version][1]}") as handle:
        handle.readline()
        return int(handle.readline().split()[0], 16)


def plan_thresholds(current: dict[str, int], in_use: dict[int, int], need: dict[int, int]) -> dict[str, int]:
    """The thresholds that leave room for ``need`` more entries on top of
    ``in_use``, with a quarter more and ``MARGIN`` to spare; only raised,
    never lowered. Empty when ``current`` is enough."""
    wanted = {}
    for version in FAMILIES:
        room = in_use[version] + need[version] + need[version] // 4 + MARGIN
        hard = current[f"{version}.3"]
        if room <= hard:
            continue
        hard = -(-room // ROUND) * ROUND
        wanted[f"{version}.3"] = hard
        wanted[f"{version}.2"] = max(current[f"{version}.2"], hard // 2)
    return wanted


@contextlib.contextmanager
def locked(root: Path):
    """Hold the labs' lock on the host settings they change (this module's
    and ``testbed.linux.ksm``'s)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure(plan, root: Path) -> dict[str, tuple[int, int]]:
    """Raise the host's neighbour thresholds if the lab of ``plan`` may not
    fit; ``{"4.3": (old, new), ...}`` of what changed."""
    need = needed(plan)
    if not plan_thresholds(read_thresholds(), {v: entries(v) for v in FAMILIES}, need):
        return {}  # it fits: nothing is written, not even the lock file
    with locked(root):
        current = read_thresholds()
        wanted = plan_thresholds(current, {v: entries(v) for v in FAMILIES}, need)
        if not wanted:
            return {}
        saved = root / SAVED
        if not saved.exists():
            saved.write_text(json.dumps(current))
        _write_thresholds(wanted)
        return {key: (current[key], value) for key, value in wanted.items()}


def restore(root: Path, except_lab: str | None = None) -> dict[str, int]:
    """Put back the thresholds found before the labs under ``root`` raised
    them, unless a lab other than ``except_lab`` is still in use there;
    what was written (empty if nothing)."""
    return restore_saved(root, SAVED, _write_thresholds, except_lab)


def restore_saved(root: Path, name: str, write, except_lab: str | None = None) -> dict[str, int]:
    """Give the host settings saved in ``root / name`` to ``write`` and
    delete the file, unless a lab other than ``except_lab`` is still in use
    under ``root``; the values written (empty if nothing)."""
    saved = root / name
    if not saved.exists():
        return {}
    with locked(root):
        if not saved.exists():
            return {}
        if any(record.in_use for record in lab_records.labs(root) if record.id != except_lab):
            return {}
        try:
            values = {key: int(value) for key, value in json.loads(saved.read_text()).items()}
        except (OSError, ValueError):
            values = {}
        if values:
            write(values)
        os.unlink(saved)
        return values
