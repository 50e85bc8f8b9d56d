"""Everything that reaches into ExaBGP's internals, behind one gate
(``compat``: the version and a digest of every original patched): the
zygote that forks speakers (``zygote``, ``child``, ``helpers``, with its
harness side in ``client``), the reactor's waits and turns (``reactor``),
the in-process transport between ExaBGP and the agent (``inprocess`` on the
agent's side, ``handover`` on ExaBGP's), the speed-ups of ExaBGP's
per-route path (``speedups``) and the packing of UPDATEs (``packing``)."""

# The name of the ExaBGP ``process`` block that runs the route agent: the
# ExaBGP configuration (testbed.routers.exabgp_config) names it so, and a
# zygote speaker runs that block as the agent.
AGENT_PROCESS = "agent"
