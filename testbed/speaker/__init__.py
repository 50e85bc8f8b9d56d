"""Everything that reaches into ExaBGP's internals: the zygote that forks
speakers, the in-process transport between ExaBGP and the agent, and the
speed-ups of ExaBGP's reactor."""
