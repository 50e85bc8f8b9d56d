"""Router backends: what runs on an AS router and how a lab drives it.

``base`` is the contract a lab drives (``RouterBackend``); ``exabgp`` is
today's backend, ExaBGP with the route agent (``exabgp_config`` renders its
files); ``startup`` starts any backend's daemons passive sides first."""
