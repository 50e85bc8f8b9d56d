"""The benchmark's fixed-size experiments.

Besides labs of generated Internets (``testbed.bench.benchmark``), the issue's
targets name four things no generated topology isolates:

- ``measure_ring``: a cold start of a ring of ASes, each peering with the
  next: the shape of the issue's figure for the naive build (17.5 s for
  100 ASes, sessions only), timed until every session is Established and
  every router's routes are as predicted;
- ``measure_path``: a depeering at one end of a 10-AS chain (each AS buys
  transit from the previous one), timed until every router's *kernel*
  table holds what the model predicts (read over netlink), not only the
  Loc-RIBs;
- ``measure_ingest``: one router receives N IPv4 prefixes from its provider
  (sent by the provider's ExaBGP from ``announce attributes ... nlri``
  commands of 1,000 prefixes each), timed until its kernel holds them all
  (counted in ``/proc/<pid>/net/route`` of its namespace);
- ``measure_traffic``: echo-request streams between hosts of the chain, all
  at once; the packets sent and the replies counted per second.

Each fills the fields of an ``Extra`` for one process model; the report
(``testbed.bench.report``) shows them and compares them with the
targets.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from testbed.bench.observe import leftovers, phases
from testbed.model.topology import Topology


@dataclass
class Extra:
    """Results of the fixed-size experiments of one process model."""

    model: str
    ring_size: int | None = None
    ring_start_s: float | None = None           # Lab.start() -> sessions up, routes converged
    ring_phases: dict[str, float] = field(default_factory=dict)
    ring_stop_s: float | None = None
    path_length: int | None = None
    path_depeer_kernel_s: float | None = None   # depeer call -> every kernel as predicted
    path_depeer_rib_s: float | None = None      # what lab.depeer reports (Loc-RIBs)
    ingest_prefixes: int | None = None
    ingest_s: float | None = None               # command sent -> all in the kernel
    ingest_rate: float | None = None            # prefixes/s over the whole ingest
    traffic_streams: int | None = None
    traffic_sent_pps: float | None = None       # streams between neighbouring ASes of the chain
    traffic_received_pps: float | None = None
    traffic_long_sent_pps: float | None = None  # streams across the whole chain
    traffic_long_received_pps: float | None = None
    errors: list[str] = field(default_factory=list)


def chain(length: int = 10, hold_time: int = 9) -> Topology:
    """``length`` ASes in a line, each the transit customer of the one before."""
    topo = Topology(f"chain-{length}", hold_time=hold_time)
    systems = [topo.add_as(65001 + i, f"c{i + 1}") for i in range(length)]
    for provider, customer in zip(systems, systems[1:]):
        topo.transit(provider, customer)
    return topo.validate()


def ring(size: int = 100, hold_time: int = 9) -> Topology:
    """``size`` ASes in a circle, each peering settlement-free with the next."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 3:
        raise ValueError(f"a ring needs a whole number of at least 3 ASes, not {size!r}")
    topo = Topology(f"ring-{size}", hold_time=hold_time)
    systems = [topo.add_as(65001 + i, f"p{i + 1}") for i in range(size)]
    for i, system in enumerate(systems):
        topo.peering(system, systems[(i + 1) % size])
    return topo.validate()


def measure_ring(model: str, size: int = 100, log=lambda text: None, extra: Extra | None = None) -> Extra:
    """Cold start of a ring of ``size`` peering ASes, to converged, and its stop."""
    from testbed.lab.lab import Lab

    extra = extra or Extra(model=model)
    extra.ring_size = size
    stages: list[tuple[str, float]] = []

    lab = Lab(ring(size), process_model=model,
              progress=lambda stage: stages.append((stage, time.monotonic())))
    try:
        log(f"  ring of {size}: starting")
        t0 = time.monotonic()
        lab.start(timeout=60.0 + size)
        converged = time.monotonic()
        extra.ring_start_s = converged - t0
        extra.ring_phases = phases(stages, converged)
    except Exception as exc:
        extra.errors.append(f"ring: {type(exc).__name__}: {exc}")
        log(extra.errors[-1])
    finally:
        t1 = time.monotonic()
        lab.stop()
        if extra.ring_start_s is not None:
            extra.ring_stop_s = time.monotonic() - t1
        left, kept = leftovers(lab)
        if left or kept:
            extra.errors.append(f"ring: stop() left {left} processes" + (f" and {lab.workdir}" if kept else ""))
    return extra


def _kernel_matches(lab, expected: dict[str, dict]) -> bool:
    for router in lab.plan.routers:
        want = {p for p, r in expected[router].items() if r.get("neighbor")}
        if set(lab.kernel_routes(router)) != want:
            return False
    return True


def measure_path(model: str, length: int = 10, log=lambda text: None, extra: Extra | None = None,
                 traffic_streams: int = 4, traffic_rate: float = 50_000.0,
                 traffic_seconds: float = 2.0) -> Extra:
    """Depeering across a chain of ``length`` ASes, then traffic on it."""
    from testbed.lab.lab import Lab

    extra = extra or Extra(model=model)
    extra.path_length = length
    lab = Lab(chain(length), process_model=model)
    try:
        lab.start(timeout=60.0)
        first, second = f"c1", "c2"
        log(f"  chain of {length}: depeering {first} and {second}")
        lab.expect.set_session(first, second, up=False)
        expected = lab.expect.loc_ribs()
        lab.expect.set_session(first, second, up=True)
        t0 = time.monotonic()
        lab.depeer(first, second, wait=False)
        deadline = t0 + 30.0
        while not _kernel_matches(lab, expected):
            if time.monotonic() > deadline:
                raise TimeoutError("kernels did not reach the predicted tables within 30 s")
        extra.path_depeer_kernel_s = time.monotonic() - t0
        extra.path_depeer_rib_s = lab.wait_converged(30.0) + extra.path_depeer_kernel_s
        lab.repeer(first, second)
        _traffic(lab, extra, length, traffic_streams, traffic_rate, traffic_seconds, log)
    except Exception as exc:  # a measurement failed: say so, keep the others
        extra.errors.append(f"path: {type(exc).__name__}: {exc}")
        log(extra.errors[-1])
    finally:
        lab.stop()
    return extra


def _traffic(lab, extra: Extra, length: int, streams: int, rate: float, seconds: float, log) -> None:
    """Echo-request streams, all at once, twice: between neighbouring ASes
    of the chain (host, two routers, host: the harness's own limit shows)
    and across the whole chain (the kernels' forwarding shows: each packet
    crosses every router twice)."""
    neighbours = [(f"c{2 * i + 1}", f"c{2 * i + 2}") for i in range(streams)]
    across = [(f"c{1 + i}", f"c{length - i}") for i in range(streams)]
    for pairs, attrs in ((neighbours, ("traffic_sent_pps", "traffic_received_pps")),
                         (across, ("traffic_long_sent_pps", "traffic_long_received_pps"))):
        log(f"  traffic: {streams} streams of {rate:.0f} packets/s for {seconds:.0f} s, "
            f"{pairs[0][0]} to {pairs[0][1]}, ...")
        running = [lab.stream(src, dst, rate=rate) for src, dst in pairs]
        for stream in running:
            stream.start()
        time.sleep(seconds)
        results = [stream.stop() for stream in running]
        duration = max(r.duration for r in results)
        setattr(extra, attrs[0], sum(r.sent for r in results) / duration)
        setattr(extra, attrs[1], sum(r.received for r in results) / duration)
    extra.traffic_streams = streams


def ingest_commands(neighbor: str, next_hop: str, asn: int, count: int, per_command: int = 1000) -> list[str]:
    """ExaBGP API commands announcing ``count`` /24s from 20.0.0.0 up to
    ``neighbor``, ``per_command`` prefixes each."""
    if count > 1 << 20:
        raise ValueError(f"at most {1 << 20} prefixes (20.0.0.0/24 to 35.255.255.0/24)")
    lines = []
    for start in range(0, count, per_command):
        prefixes = " ".join(f"{20 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}.0/24"
                            for i in range(start, min(count, start + per_command)))
        lines.append(f"neighbor {neighbor} announce attributes next-hop {next_hop} origin igp "
                     f"as-path [ {asn} ] nlri {prefixes}")
    return lines


def _count_routes(pid: int) -> int:
    """IPv4 prefixes in the main FIB of ``pid``'s namespace.

    From the kernel's trie statistics, a few hundred bytes whatever the
    table's size: ``/proc/net/route`` prints every route, ~0.1 s of CPU at
    100,000 routes, which polled would take a core from the lab it measures.
    """
    with open(f"/proc/{pid}/net/fib_triestat", "rb") as handle:
        text = handle.read()
    main = text.split(b"Main:", 1)
    if len(main) < 2:
        raise RuntimeError(f"no main table in /proc/{pid}/net/fib_triestat")
    match = re.search(rb"Prefixes:\s+(\d+)", main[1])
    if match is None:
        raise RuntimeError(f"no prefix count in /proc/{pid}/net/fib_triestat")
    return int(match.group(1))


def measure_ingest(model: str, count: int = 100_000, log=lambda text: None,
                   extra: Extra | None = None) -> Extra:
    """How fast one router takes ``count`` prefixes into its kernel."""
    extra = extra or Extra(model=model)
    lab = ingest_lab(model)
    try:
        lab.start(timeout=60.0)
        lines, before = ingest_prepared(lab, count)
        log(f"  ingest: {count} prefixes from P into R's kernel")
        t0 = time.monotonic()
        ingest_sent(lab, lines, count, before, request_timeout=60.0, patience=300.0, poll=0.01)
        extra.ingest_prefixes = count
        extra.ingest_s = time.monotonic() - t0
        extra.ingest_rate = count / extra.ingest_s
    except Exception as exc:
        extra.errors.append(f"ingest: {type(exc).__name__}: {exc}")
        log(extra.errors[-1])
    finally:
        lab.stop()
    return extra


def ingest_lab(process_model: str):
    """The ingest experiments' lab, not started: provider P, customer R."""
    from testbed.lab.lab import Lab

    topo = Topology("ingest", hold_time=30)
    sender, receiver = topo.add_as(65001, "P"), topo.add_as(65002, "R")
    topo.transit(sender, receiver)
    return Lab(topo.validate(), process_model=process_model)


def ingest_prepared(lab, count: int) -> tuple[list[str], int]:
    """P's ExaBGP commands for ``count`` prefixes to R, and the routes R's
    kernel holds before them."""
    session = lab.plan.routers["P"].neighbor("R")
    lines = ingest_commands(session.address, session.local_address, 65001, count)
    return lines, _count_routes(lab.nodes["R"].pid)


def ingest_sent(lab, lines: list[str], count: int, before: int, request_timeout: float,
                patience: float, poll: float) -> None:
    """Hand P its commands, ten at a time, and wait until R's kernel holds
    ``count`` more routes than ``before`` (reading the count costs ~2 ms at
    100,000 routes: ``poll`` keeps it off the cores the ingest runs on)."""
    pid = lab.nodes["R"].pid
    deadline = time.monotonic() + patience
    for start in range(0, len(lines), 10):
        lab._client("P").request("exabgp", lines=lines[start:start + 10], timeout=request_timeout)
    while _count_routes(pid) - before < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{_count_routes(pid) - before} of {count} prefixes in the kernel "
                               f"after {patience:.0f} s")
        time.sleep(poll)
