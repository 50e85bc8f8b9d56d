"""A lab node's shell (``testbed.linux.nodes.LabNode.startShell``) starts
with fewer processes than Mininet's, and is still the shell Mininet's
``cmd`` and the lab's CLI expect: in the node's own network namespace, no
echo of what it is sent, no job control, no history file, the lab's tag in
its environment."""

import os

import pytest

from testbed.linux.netns import netns_inode
from testbed.linux.nodes import node_class

pytestmark = pytest.mark.emulation


def test_a_node_shell_answers_mininets_commands_as_before():
    node = node_class("feed01")("shelltest", ip=None, inNamespace=True)
    try:
        assert netns_inode(node.pid) != netns_inode(os.getpid())  # a namespace of its own
        assert node.cmd("echo hello") == "hello\r\n"  # what was sent is not echoed back
        flags = node.cmd("echo $-").strip()
        assert "i" in flags and "m" not in flags  # interactive, no job control
        assert node.cmd("echo ${HISTFILE-unset}").strip() == "unset"
        with open(f"/proc/{node.pid}/environ", "rb") as handle:
            assert b"TESTBED_LAB=feed01" in handle.read().split(b"\0")
        assert node.cmd("ip -o link show lo").startswith("1: lo:")
    finally:
        node.terminate()
