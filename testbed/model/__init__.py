"""The model a lab is made from, all pure Python (no root, no I/O but reading
topology files): the topology users write (``topology``), how it is loaded
and checked (``validate``), the address plan (``addressing``), the
prediction of every router's converged routes (``prediction``) and seeded
Internet-like topologies (``generate``)."""
