"""The model a lab is made from, all pure Python (no root, no I/O but reading
topology files): the topology users write (``topology``, with the words it
shares with the plan in ``names``), how it is loaded (``loader``) and
checked (``validate``), the address plan (``addressing``, its data in
``plans``, the IGP and iBGP next hops in ``igp``), the prediction of every
router's converged routes (``prediction``) and seeded Internet-like
topologies (``generate``)."""
