"""Router backends: what runs on an AS router and how a lab drives it.
Today: ExaBGP with the route agent (``exabgp_config`` renders its files)."""
