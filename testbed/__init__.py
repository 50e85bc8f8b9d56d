"""Peering testbed: emulate interconnected autonomous systems on one machine.

A topology (``testbed.topology``) is validated and given an address plan
without root; a ``Lab`` (``testbed.lab``) turns it into Mininet namespaces,
ExaBGP speakers and route agents, and ``testbed.traffic`` sends real packets
across it.
"""

__version__ = "0.1.0"

from .topology import Topology  # noqa: E402  (the one name topology files need)

__all__ = ["Topology"]
