"""Peering testbed: emulate interconnected autonomous systems on one machine.

A topology (``testbed.model``) is validated and given an address plan
without root; a ``Lab`` (``testbed.lab``) turns it into Mininet namespaces,
ExaBGP speakers and route agents, and ``testbed.traffic`` sends real packets
across it. docs/architecture.md walks through the packages.
"""

__version__ = "0.1.0"

from testbed.model.topology import Topology  # noqa: E402  (the one name topology files need)

__all__ = ["Topology"]
