"""Checks of the machine before a lab creates anything.

``preflight(topology, backend)`` raises ``MissingDependency`` with one
sentence saying what is missing and how to get it: root, Mininet's
``mnexec``, the router backend's software, and the kernel features the
topology asks for (``tc`` for bandwidth, TCP MD5 for session passwords,
netem for delay and loss). It reads the topology and probes the kernel
(a throwaway socket, a throwaway namespace); it changes nothing.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess

from testbed.errors import MissingDependency
from testbed.model.topology import Topology
from testbed.routers.base import RouterBackend


def preflight(topology: Topology, backend: RouterBackend) -> None:
    """Check the machine before anything is created; one sentence per lack."""
    if os.geteuid() != 0:
        raise MissingDependency("a lab needs root (network namespaces): run it with sudo")
    if not shutil.which("mnexec"):
        raise MissingDependency("mnexec is missing: install Debian's 'mininet' package "
                                "(apt-get install --no-install-recommends mininet)")
    backend.check_machine()
    shaped = [r for r in topology.relationships if r.bandwidth is not None]
    if shaped and not shutil.which("tc"):
        raise MissingDependency("tc is missing (link bandwidth needs it): apt-get install iproute2")
    protected = [r for r in topology.relationships if r.password is not None]
    if protected and not tcp_md5_available():
        raise MissingDependency(f"{protected[0].where}: session passwords need TCP MD5 (RFC 2385), which "
                                "this kernel lacks (CONFIG_TCP_MD5SIG); remove the passwords to run here")
    emulated = [r for r in topology.relationships if r.delay is not None or r.loss is not None]
    if emulated and not netem_available():
        where = emulated[0]
        raise MissingDependency(
            f"{where.where}: link delay/loss needs the netem qdisc, which this kernel lacks "
            "(modprobe sch_netem, or install linux-modules-extra); remove delay/loss to run here")


def tcp_md5_available() -> bool:
    """Whether the kernel supports TCP MD5 signatures (set a key on an
    unconnected socket, as a listening BGP speaker does)."""
    addr = struct.pack("=H2s4s", socket.AF_INET, b"\0\0", socket.inet_aton("127.0.0.1")).ljust(128, b"\0")
    option = addr + struct.pack("=BBHI", 0, 0, 1, 0) + b"k".ljust(80, b"\0")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.setsockopt(socket.IPPROTO_TCP, 14, option)  # TCP_MD5SIG
        except OSError:
            return False
    return True


def netem_available() -> bool:
    """Whether the kernel has the netem qdisc (tried in a throwaway namespace)."""
    result = subprocess.run(["unshare", "-n", "tc", "qdisc", "add", "dev", "lo", "root",
                             "netem", "delay", "1ms"], capture_output=True)
    return result.returncode == 0
