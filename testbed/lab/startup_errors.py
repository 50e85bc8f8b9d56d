"""What a user reads when a lab fails to start: one sentence, not a traceback.

``Lab.start`` calls ``explain(exc, lab, stage)`` with whatever an unexpected
failure raised (an ``OSError`` from a netlink request or a file, an error of
Mininet or of a process) once the lab is stopped, and raises the
``LabError`` it returns: it names the lab, the stage, the router, link or
file concerned and what to do. Errors the project raises on purpose
(``TestbedError``), Ctrl-C and exits pass through unchanged (``None``).
"""

from __future__ import annotations

import errno
import re

from testbed.errors import LabError, TestbedError

ROOT_NEEDED = "a lab needs root (network namespaces): run it with sudo"

ADVICE = {
    errno.EEXIST: "a name in the lab's address plan collides with another in the same namespace or "
                  "directory: rename the AS, IXP or PoP concerned, or report the topology as a bug",
    errno.EINVAL: "the kernel refused a value of the lab's plan: check the link's settings in the "
                  "topology, or report the topology as a bug",
    errno.EPERM: "the kernel refused the operation: run as root, outside a container that drops "
                 "network capabilities",
    errno.EACCES: "permission denied: run as root, and check the work directory (TESTBED_WORKDIR)",
    errno.ENOMEM: "the machine ran out of memory: stop other labs or start a smaller one",
    errno.ENOSPC: "the machine ran out of space or of a kernel table: stop other labs or start a smaller one",
    errno.EMFILE: "too many open files: raise the limit (ulimit -n) or start a smaller lab",
    errno.ENFILE: "too many open files on the machine: stop other labs or start a smaller one",
    errno.ENOTDIR: "a path of the work directory is not a directory: point TESTBED_WORKDIR elsewhere",
}


def _node_of(message: str, lab) -> str | None:
    match = re.search(r"namespace of pid (\d+)", message)
    if not match:
        return None
    pid = int(match.group(1))
    for name, node in getattr(lab, "nodes", {}).items():
        if getattr(node, "pid", None) == pid:
            return name
    return None


def _kind(name: str, lab) -> str:
    plan = lab.plan
    if name in plan.routers:
        return f"router {name}"
    if name in plan.hosts:
        return f"host {name}"
    if name in plan.ixps:
        return f"IXP {name}"
    return name


def explain(exc: BaseException, lab, stage: str | None) -> LabError | None:
    """The ``LabError`` to raise instead of ``exc``, or ``None`` to let it through."""
    if isinstance(exc, TestbedError) or not isinstance(exc, Exception):
        return None
    head = f"lab {lab.id + ' ' if lab.id else ''}of topology {lab.topology.name!r} failed to start"
    if stage:
        head += f" ({stage})"
    if isinstance(exc, OSError):
        code = exc.errno
        text = exc.strerror if exc.strerror else str(exc)
        if exc.filename:
            what = f"{exc.filename}: {text}"
        else:
            node = _node_of(str(exc), lab)
            detail = re.sub(r"^netlink in the namespace of pid \d+: ", "", str(exc))
            what = f"{_kind(node, lab)}: the kernel refused {detail}" if node else detail
            if code is None:
                codes = [c for c, word in ((errno.EEXIST, "File exists"), (errno.EINVAL, "Invalid argument"),
                                           (errno.EPERM, "Operation not permitted"),
                                           (errno.ENOMEM, "Cannot allocate memory"))
                         if word in detail]
                code = codes[0] if codes else None
        advice = ADVICE.get(code, "nothing of the lab was left behind; report the topology and this "
                                  "message if the cause is not clear")
        return LabError(f"{head}: {what}. {advice[0].upper()}{advice[1:]}.")
    return LabError(f"{head}: {type(exc).__name__}: {exc}. Nothing of the lab was left behind; report "
                    "the topology and this message if the cause is not clear.")


class Stage:
    """A lab's progress callback that remembers the last stage reported
    (what a failed start was doing, for ``explain``)."""

    def __init__(self, report):
        self.report = report
        self.last: str | None = None

    def __call__(self, stage: str) -> None:
        self.last = stage
        self.report(stage)
