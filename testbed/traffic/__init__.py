"""Traffic between the lab's hosts: probes, streams and volume, sent and
received by the harness itself through sockets opened in the namespaces."""
