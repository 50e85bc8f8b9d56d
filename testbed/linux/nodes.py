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
import pty
import select
import termios

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
        """Mininet's shell, started with two processes and a round trip
        fewer: its prompt comes from the environment (no ``env``), the
        pty's echo is turned off here before the shell starts, instead of
        by ``stty -echo`` in the shell once its first prompt came (a fork
        and an exec per node), and Mininet's other settings (``unset
        HISTFILE; set +m``, builtins) are typed ahead, not sent after the
        prompt. The shell is the same: Mininet's ``cmd``/``sendCmd`` and
        the lab's CLI talk to it as before."""
        if mnopts is not None or self.shell or not self.inNamespace:
            return super().startShell(mnopts=SHELL_MNEXEC_OPTIONS if mnopts is None else mnopts)
        self.master, self.slave = pty.openpty()
        attrs = termios.tcgetattr(self.slave)
        attrs[3] &= ~termios.ECHO  # lflag: what "stty -echo" clears
        termios.tcsetattr(self.slave, termios.TCSANOW, attrs)
        cmd = ["mnexec", SHELL_MNEXEC_OPTIONS + "n", "bash", "--norc", "--noediting", "-is", "mininet:" + self.name]
        self.shell = self._popen(cmd, stdin=self.slave, stdout=self.slave, stderr=self.slave,
                                 close_fds=False, env=dict(os.environ, PS1=chr(127)))
        self.stdin = os.fdopen(self.master, "r")
        self.stdout = self.stdin
        self.pid = self.shell.pid
        self.pollOut = select.poll()
        self.pollOut.register(self.stdout)
        self.outToNode[self.stdout.fileno()] = self
        self.inToNode[self.stdin.fileno()] = self
        self.execed = False
        self.lastCmd = None
        self.lastPid = None
        self.readbuf = ""
        os.write(self.master, b"unset HISTFILE; set +m\n")
        prompts = 0
        while prompts < 2:  # its first prompt, and the one after the settings
            data = self.read(1024)
            prompts += data.count(chr(127))
            if prompts < 2:
                self.pollOut.poll()
        self.waiting = False

    def _popen(self, cmd, **params):
        env = dict(params.pop("env", None) or os.environ)
        env[LAB_ENV] = self.lab_id
        if cmd[:1] == ["mnexec"] and cmd[1] in (SHELL_MNEXEC_OPTIONS, SHELL_MNEXEC_OPTIONS + "n"):
            params["close_fds"] = True  # what mnexec -c did (the shell's pty is its stdio)
            if len(cmd) > 4 and cmd[2] == "env" and cmd[3].startswith("PS1=") and cmd[4] == "bash":
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
