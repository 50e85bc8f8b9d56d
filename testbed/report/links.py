"""Traffic on a lab's links: which are paid for, how much crossed them, and
the 95th-percentile rate a transit bill would use.

``links(plan)`` lists the inter-AS ports of a plan with their settlement
class (transit, peering, paid peering; an IXP port carries every session
of its member on the LAN, so it is its own class; links inside an AS are
"internal"). ``CounterSampler`` reads every router's interface byte
counters over netlink at a fixed interval in a thread of its own (one
dump per router per sample, on a plain rtnetlink socket opened once in
each namespace).
``summarise`` turns the samples into bytes per link and class for each
phase between events and a 95th-percentile rate per link.
"""

from __future__ import annotations

import math
import os
import socket
import struct
import threading
import time
from dataclasses import dataclass

SETTLEMENT = {"transit": "transit", "partial-transit": "transit", "peering": "peering",
              "paid-peering": "paid peering", "internal": "internal"}
CLASSES = ("transit", "paid peering", "peering", "IXP port", "internal")


@dataclass(frozen=True)
class Link:
    id: str          # "<router>:<ifname>", the end whose counters are read
    router: str
    ifname: str
    peer: str        # the router (or IXP) at the other end
    kind: str        # relationship kind, "ixp" or "internal"
    settlement: str  # one of CLASSES


def links(plan) -> list[Link]:
    """The inter-AS and internal links of a plan, read at one end each."""
    found = []
    for link in plan.links:
        if link.kind == "lan":
            continue
        if link.kind == "ixp":
            found.append(Link(f"{link.node1}:{link.ifname1}", link.node1, link.ifname1,
                              f"IXP {link.node2}", "ixp", "IXP port"))
            continue
        try:
            kind = plan.session(link.node1, link.node2).kind
        except KeyError:
            kind = link.kind
        found.append(Link(f"{link.node1}:{link.ifname1}", link.node1, link.ifname1, link.node2, kind,
                          SETTLEMENT.get(kind, "internal")))
    return found


def percentile95(rates: list[float]) -> float:
    """The nearest-rank 95th percentile: sort, drop the top 5 %, take the
    highest left (how a burstable transit contract bills)."""
    if not rates:
        return 0.0
    ordered = sorted(rates)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


class CounterSampler:
    """Samples every listed link's byte counters (rx + tx) every
    ``interval`` seconds until ``stop()``; ``times`` and ``series`` hold
    the samples (seconds since ``t0``, cumulative bytes per link id)."""

    def __init__(self, pids: dict[str, int], wanted: list[Link], t0: float, interval: float = 1.0):
        self.pids, self.links, self.t0, self.interval = pids, wanted, t0, interval
        self.times: list[float] = []
        self.series: dict[str, list[int]] = {link.id: [] for link in wanted}
        self.error: str | None = None
        self._stop = threading.Event()
        self._sockets: dict[str, socket.socket] = {}  # router -> netlink socket in its namespace
        self._sampling = threading.Lock()  # the sampler thread and the lab's events share them
        self._thread = threading.Thread(target=self._run, name="report-counters", daemon=True)

    def start(self) -> "CounterSampler":
        self._thread.start()
        return self

    def sample(self) -> None:
        """One sample now (also called at every event, from the recorder)."""
        from ..linux import netns

        readings: dict[str, int] = {}
        with self._sampling:
            for router in sorted({link.router for link in self.links}):
                sock = self._sockets.get(router)
                if sock is None:
                    with netns.inside(self.pids[router]):
                        sock = self._sockets[router] = open_rtnetlink()
                counters = link_bytes(sock)
                for link in self.links:
                    if link.router == router:
                        readings[link.id] = counters.get(link.ifname, 0)
            self.times.append(round(time.monotonic() - self.t0, 4))
            for link in self.links:
                self.series[link.id].append(readings.get(link.id, 0))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sample()
            except Exception as exc:  # a router gone (crash, stop): keep what we have
                self.error = f"{type(exc).__name__}: {exc}"
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        with self._sampling:
            for sock in self._sockets.values():
                sock.close()
            self._sockets.clear()


RTM_NEWLINK, RTM_GETLINK = 16, 18
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST_DUMP = 0x1 | 0x300
IFLA_IFNAME, IFLA_STATS64 = 3, 23


def open_rtnetlink() -> socket.socket:
    """A plain rtnetlink socket in the calling thread's namespace."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    sock.bind((0, 0))
    return sock


def link_bytes(sock: socket.socket) -> dict[str, int]:
    """Interface name -> received plus sent bytes, from one RTM_GETLINK dump
    (a plain message and its parsing: pyroute2's request machinery costs
    milliseconds per dump, and this runs at every event of a report)."""
    sock.send(struct.pack("=IHHII", 32, RTM_GETLINK, NLM_F_REQUEST_DUMP, 1, 0) + bytes(16))
    found: dict[str, int] = {}
    while True:
        data = sock.recv(1 << 16)
        offset = 0
        while offset + 16 <= len(data):
            length, kind = struct.unpack_from("=IH", data, offset)
            if kind == NLMSG_DONE:
                return found
            if kind == NLMSG_ERROR:
                error = -struct.unpack_from("=i", data, offset + 16)[0]
                raise OSError(error, f"RTM_GETLINK dump failed: {os.strerror(error)}")
            if kind == RTM_NEWLINK:
                name, total = None, 0
                at = offset + 32  # nlmsghdr (16) + ifinfomsg (16)
                while at + 4 <= offset + length:
                    size, attr = struct.unpack_from("=HH", data, at)
                    if size < 4:
                        break
                    if attr == IFLA_IFNAME:
                        name = data[at + 4:at + size].split(b"\0", 1)[0].decode()
                    elif attr == IFLA_STATS64:
                        _, _, rx_bytes, tx_bytes = struct.unpack_from("=4Q", data, at + 4)
                        total = rx_bytes + tx_bytes
                    at += (size + 3) & ~3
                if name is not None:
                    found[name] = total
            offset += (length + 3) & ~3 if length else len(data)


def summarise(wanted: list[Link], times: list[float], series: dict[str, list[int]],
              boundaries: list[tuple[str, float]], interval: float | None = None) -> dict:
    """Bytes per link and settlement class in each phase (between the
    boundaries: (label, seconds since start)), and each link's peak and
    95th-percentile rate in bit/s over the sampling intervals."""
    phases = []
    edges = [("start", 0.0), *boundaries, ("end", times[-1] if times else 0.0)]
    for (label, t_from), (_, t_to) in zip(edges, edges[1:]):
        phases.append({"label": label, "from": t_from, "to": t_to})

    def at(values: list[int], t: float) -> int:
        """The counter at the last sample not after t (0 before the first)."""
        last = 0
        for when, value in zip(times, values):
            if when > t + 1e-9:
                break
            last = value
        return last

    per_link = []
    for link in wanted:
        values = series.get(link.id, [])
        base = values[0] if values else 0
        rates = [(b - a) * 8 / (t2 - t1) for (t1, a), (t2, b) in
                 zip(zip(times, values), list(zip(times, values))[1:]) if t2 > t1]
        bytes_by_phase = [max(0, at(values, p["to"]) - (at(values, p["from"]) if p["from"] > 0 else base))
                          for p in phases]
        per_link.append({"id": link.id, "router": link.router, "peer": link.peer, "kind": link.kind,
                         "settlement": link.settlement, "bytes": bytes_by_phase,
                         "p95_bps": round(percentile95(rates)), "peak_bps": round(max(rates, default=0)),
                         "samples": len(rates)})
    by_class = {c: [sum(l["bytes"][i] for l in per_link if l["settlement"] == c) for i in range(len(phases))]
                for c in CLASSES}
    if interval is None:  # the mean spacing of the samples
        interval = (times[-1] - times[0]) / (len(times) - 1) if len(times) > 1 else 0.0
    return {"phases": phases, "links": per_link, "by_class": by_class, "samples": len(times),
            "interval": round(interval, 3)}
