"""Traffic on a lab's links: which are paid for, how much crossed them, and
the 95th-percentile rate a transit bill would use.

``links(plan)`` lists the inter-AS ports of a plan with their settlement
class (transit, peering, paid peering; an IXP port carries every session
of its member on the LAN, so it is its own class; links inside an AS are
"internal"). ``CounterSampler`` reads every router's interface byte
counters over netlink at a fixed interval in a thread of its own (one
dump per router per sample, sockets opened once in each namespace).
``summarise`` turns the samples into bytes per link and class for each
phase between events and a 95th-percentile rate per link.
"""

from __future__ import annotations

import math
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
        # pyroute2's sockets answer only on the thread that made them: one
        # set per thread (the sampler's, and the lab's at events).
        self._local = threading.local()
        self._all_sockets: list = []
        self._thread = threading.Thread(target=self._run, name="report-counters", daemon=True)

    def start(self) -> "CounterSampler":
        self._thread.start()
        return self

    def sample(self) -> None:
        """One sample now (also called at every event, from the recorder)."""
        from pyroute2 import IPRoute

        from ..linux import netns

        readings: dict[str, int] = {}
        sockets = getattr(self._local, "sockets", None)
        if sockets is None:
            sockets = self._local.sockets = {}
        for router in sorted({link.router for link in self.links}):
            sock = sockets.get(router)
            if sock is None:
                with netns.inside(self.pids[router]):
                    sock = sockets[router] = IPRoute()
                with _LOCK:
                    self._all_sockets.append(sock)
            counters = {}
            for msg in sock.get_links():
                stats = msg.get_attr("IFLA_STATS64") or {}
                counters[msg.get_attr("IFLA_IFNAME")] = int(stats.get("rx_bytes", 0)) + int(
                    stats.get("tx_bytes", 0))
            for link in self.links:
                if link.router == router:
                    readings[link.id] = counters.get(link.ifname, 0)
        with _LOCK:
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
        with _LOCK:
            sockets, self._all_sockets = self._all_sockets, []
        for sock in sockets:
            try:
                sock.close()
            except Exception:
                pass


_LOCK = threading.Lock()


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
