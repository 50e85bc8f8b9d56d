"""Traffic through a running lab: ping, traceroute, probe streams, volumes.

``Probes`` resolves a host name, an AS name (its first host) or an address
to a host namespace and an address of the plan, and hands the work to
``testbed.traffic`` (made on first use, closed by ``close``). Traceroutes
come back as routers or ASes, by the owner of each answering address.
"""

from __future__ import annotations

import socket

from testbed.errors import LabError
from testbed.linux import netns
from testbed.model.addressing import Plan


class Probes:
    """The traffic a lab sends between its hosts."""

    def __init__(self, plan: Plan, nodes: dict):
        self.plan = plan
        self.nodes = nodes
        self._traffic = None

    @property
    def traffic(self):
        if self._traffic is None:
            from testbed.traffic.traffic import Traffic

            self._traffic = Traffic()
        return self._traffic

    def close(self) -> None:
        if self._traffic is not None:
            self._traffic.close()

    def host(self, ref: str):
        """A host by host name or AS name (its first host)."""
        if ref in self.plan.hosts:
            return self.plan.hosts[ref]
        hosts = self.plan.hosts_of(ref)
        if hosts:
            return hosts[0]
        raise LabError(f"no host or AS with hosts named {ref!r}")

    def address(self, ref: str, family: int = 4) -> str:
        """An address for a host name, an AS name (its first host) or an address."""
        if ref in self.plan.hosts or self.plan.hosts_of(ref):
            host = self.host(ref)
            address = host.ip4 if family == 4 else host.ip6
            if address is None:
                raise LabError(f"host {host.name} has no IPv{family} address")
            return address
        return ref

    def src_pid(self, src: str) -> int:
        return self.nodes[self.host(src).name].pid

    def send(self, src: str, dst: str, packets: int = 100, size: int = 1000, family: int = 4) -> int:
        """Send ``packets`` UDP datagrams of ``size`` payload bytes from host
        (or AS) ``src`` to ``dst``'s discard port, as fast as the host can;
        returns the payload bytes sent. The traffic goes one way (at most a
        rate-limited ICMP error comes back), for measuring volumes and
        ratios on the links it crosses."""
        address = self.address(dst, family)
        with netns.inside(self.src_pid(src)):
            sock = socket.socket(socket.AF_INET if family == 4 else socket.AF_INET6, socket.SOCK_DGRAM)
        sent = 0
        payload = bytes(size)
        try:
            for _ in range(packets):
                try:
                    sent += sock.sendto(payload, (address, 9))
                except OSError:  # an ICMP error from an earlier datagram, or no route
                    continue
        finally:
            sock.close()
        return sent

    def ping(self, src: str, dst: str, family: int = 4, count: int = 3, timeout: float = 1.0):
        """ICMP echo from host/AS ``src`` to host/AS/address ``dst``."""
        return self.traffic.ping(self.src_pid(src), self.address(dst, family), count=count, timeout=timeout)

    def reachable(self, src: str, dst: str, family: int = 4, timeout: float = 1.0) -> bool:
        return self.traffic.reachable(self.src_pid(src), self.address(dst, family), timeout=timeout)

    def traceroute(self, src: str, dst: str, family: int = 4, max_hops: int = 16):
        """Router-level hops from ``src`` to ``dst`` (ICMP time exceeded)."""
        return self.traffic.traceroute(self.src_pid(src), self.address(dst, family), max_hops=max_hops)

    def as_traceroute(self, src: str, dst: str, family: int = 4) -> list[str]:
        """The ASes the packets really crossed, from ``src``'s AS to ``dst``'s,
        by the owner of each answering address; '?' for a silent hop."""
        hops = self.traffic.traceroute(self.src_pid(src), self.address(dst, family))
        path = [self.host(src).system]
        for hop in hops:
            owner = self.plan.owner_of(hop.address) if hop.address else None
            owner = owner or "?"
            if path[-1] != owner:
                path.append(owner)
        return path

    def router_traceroute(self, src: str, dst: str, family: int = 4) -> list[str]:
        """The routers the packets from ``src`` to ``dst`` crossed, by the
        router each answering address belongs to, and the destination host
        if it answered ('?' for a silent hop)."""
        hops = self.traffic.traceroute(self.src_pid(src), self.address(dst, family))
        hosts = {h.ip4: h.name for h in self.plan.hosts.values()}
        hosts.update({h.ip6: h.name for h in self.plan.hosts.values()})
        path: list[str] = []
        for hop in hops:
            router = (self.plan.router_of(hop.address) or hosts.get(hop.address)
                      if hop.address else None) or "?"
            if not path or path[-1] != router:
                path.append(router)
        return path

    def stream(self, src: str, dst: str, family: int = 4, rate: float = 200.0):
        """A sequenced probe stream (context manager) to count loss during an event."""
        return self.traffic.stream(self.src_pid(src), self.address(dst, family), rate=rate)
