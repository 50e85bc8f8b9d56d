"""The route agent: ExaBGP's API process on each router (``python -m
testbed.agent <agent.json>``), which keeps the Adj-RIBs, chooses best paths
with the ``testbed.bgp`` engine, writes kernel routes and answers the
harness on its control socket.

``agent`` (the Agent: engine actions and events), ``codec`` (ExaBGP's API
text and JSON), ``transport`` (how it talks to ExaBGP), ``schedule`` (MRAI
hold, update delay), ``kernel_mirror`` (kernel routes), ``control`` (the
control socket), ``loop`` (the event loop), ``main`` (entry points)."""
