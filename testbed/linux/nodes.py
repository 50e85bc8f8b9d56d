"""Mininet nodes of a lab: the host class and the links it records.

Every router, end host and IXP is a Mininet ``Host`` in its own network
namespace (``LabNode``), and every process it starts carries the lab's id
in its environment (``TESTBED_LAB``, ``testbed.linux.processes``), which is
how ``testbed clean`` finds what a killed lab left. The veth pairs between
nodes are made by ``testbed.linux.namespaces.create_veths``; Mininet only
records them (``PrebuiltLink``), so that it, and its CLI, still knows every
link and interface. The lab creates nodes through ``node_class(lab_id)``.
"""

from __future__ import annotations

import os

from mininet.link import Intf, Link
from mininet.node import Host

from testbed.linux.processes import LAB_ENV

SHELL_MNEXEC_OPTIONS = "-d"  # Mininet's "-cd" without closing descriptors in mnexec ("n" is added)


class LabNode(Host):
    """A Mininet host whose processes carry the lab id in their environment.

    Its shell starts without ``mnexec -c``, which closes every descriptor
    number up to the open-files limit one ``close()`` at a time (~3.5 ms of
    CPU per node at a limit of 20,000, a third of the CPU of building a
    lab's namespaces); Python closes the inherited ones instead, with one
    ``close_range()``, before ``mnexec`` runs. Its prompt comes from the
    environment rather than through ``env``."""

    lab_id = ""

    def startShell(self, mnopts=None):  # noqa: N802 - Mininet's name
        return super().startShell(mnopts=SHELL_MNEXEC_OPTIONS if mnopts is None else mnopts)

    def _popen(self, cmd, **params):
        env = dict(params.pop("env", None) or os.environ)
        env[LAB_ENV] = self.lab_id
        if cmd[:1] == ["mnexec"] and cmd[1] in (SHELL_MNEXEC_OPTIONS, SHELL_MNEXEC_OPTIONS + "n"):
            params["close_fds"] = True  # what mnexec -c did (the shell's pty is its stdio)
            if cmd[2] == "env" and cmd[3].startswith("PS1=") and cmd[4] == "bash":
                # bash takes its prompt from the environment: one exec (env) less per node
                env["PS1"] = cmd[3][len("PS1="):]
                cmd = cmd[:2] + cmd[4:]
        return super()._popen(cmd, env=env, **params)


def node_class(lab_id: str) -> type[LabNode]:
    """A ``LabNode`` subclass bound to one lab id."""
    return type(f"LabNode_{lab_id}", (LabNode,), {"lab_id": lab_id})


class PrebuiltIntf(Intf):
    """An interface ``create_veths`` made: Mininet only records it (its
    ``config`` would run three ``ifconfig`` commands in the node's shell)."""

    def config(self, **params):
        return {}


class PrebuiltLink(Link):
    """A Mininet link over a veth pair ``create_veths`` already made, so
    that ``Mininet`` (and its CLI) still knows every link and interface."""

    def __init__(self, node1, node2, **params):
        params["intf"] = PrebuiltIntf  # Mininet's addLink passes its default
        super().__init__(node1, node2, **params)

    @classmethod
    def makeIntfPair(cls, *args, **kwargs):  # noqa: N802 - Mininet's name
        pass
