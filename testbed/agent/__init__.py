"""The route agent: ExaBGP's API process on each router (``python -m
testbed.agent <agent.json>``), which keeps the Adj-RIBs, chooses best paths
with the ``testbed.bgp`` engine, writes kernel routes and answers the
harness on its control socket."""
