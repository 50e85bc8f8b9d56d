"""Benchmark of the Internet-scale routing model: ``python -m testbed.bench.internet``.

Prints, on this machine: the prediction of every router of a generated
1,000-AS lab (the rank-order model's routes, then the state digests the lab
compares, optionally the event simulation for comparison), one origin over
a synthetic CAIDA-shaped graph of 75,000 ASes and ~500,000 links (written
to and read back from a bz2 file in CAIDA's serial-2 format), and all
origins of that graph with the batch model (``--all``; by default a sample
of origins, with the whole graph's time extrapolated and said so), with the
peak memory. Nothing is downloaded; numbers go to stdout.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import resource
import statistics
import tempfile
import time
from pathlib import Path

from testbed.internet import batch, caida
from testbed.internet.propagate import propagate
from testbed.internet.synthetic import write_synthetic


def _rss_mb(who=resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def lab_prediction(n: int, events: bool) -> None:
    from testbed.model.addressing import plan
    from testbed.model.prediction import Expectation
    from testbed.model.generate import internet
    from testbed.model.fast_prediction import Prediction

    the_plan = plan(internet(n, 1).validate())
    expectation = Expectation(the_plan)
    start = time.perf_counter()
    prediction = Prediction(expectation)
    routes = time.perf_counter() - start
    prediction.digests()
    digests = time.perf_counter() - start - routes
    print(f"{n}-AS generated lab, {len(the_plan.routers)} routers, "
          f"{sum(len(r.prefixes) for r in the_plan.routers.values())} prefixes:")
    print(f"  rank-order model, best route of every router to every prefix: {routes:.2f} s")
    print(f"  state digests of every Loc-RIB and Adj-RIB-In (what wait_converged compares): "
          f"{digests:.2f} s (total {routes + digests:.2f} s)")
    if events:
        slow = Expectation(the_plan)
        slow.fast = False
        start = time.perf_counter()
        slow.digests()
        took = time.perf_counter() - start
        same = slow.digests() == expectation.digests()
        print(f"  event simulation of the same lab: {took:.1f} s; digests equal: {same}")


def _work(args):
    path, origins, size = args
    graph, _ = caida.load(path)
    compiled = batch.compile_graph(graph)
    reached = hops = 0
    for lo in range(0, len(origins), size):
        result = batch.run_batch(compiled, origins[lo:lo + size])
        routed = result.cls != batch.NONE
        reached += int(routed.sum())
        hops += int(result.length()[routed].sum())
    return reached, hops, _rss_mb()


def internet_scale(n: int, all_origins: bool, sample: int, workers: int, size: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "synthetic.as-rel2.txt.bz2"
        start = time.perf_counter()
        ases, links = write_synthetic(path, n)
        made = time.perf_counter() - start
        graph, facts = caida.load(path)
        loaded = time.perf_counter() - start - made
        print(f"synthetic CAIDA-shaped graph: {ases} ASes, {links} links "
              f"({facts['transit']} transit, {facts['peering']} peering); "
              f"made and written {made:.1f} s, read back {loaded:.1f} s")
        rng = random.Random(1)
        times = []
        for origin in rng.sample(range(len(graph)), 20):
            start = time.perf_counter()
            routing = propagate(graph, [origin])
            times.append(time.perf_counter() - start)
        print(f"  one origin (rank-order propagation, pure Python), 20 origins: median "
              f"{statistics.median(times):.3f} s, max {max(times):.3f} s "
              f"(last reached {routing.reached()} ASes)")
        origins = list(range(len(graph)))
        if not all_origins:
            origins = rng.sample(origins, min(sample, len(origins)))
        chunks = [(str(path), origins[i::workers], size) for i in range(workers)]
        start = time.perf_counter()
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            results = pool.map(_work, chunks)
        took = time.perf_counter() - start
        reached = sum(r[0] for r in results)
        hops = sum(r[1] for r in results)
        worker_rss = max(r[2] for r in results)
        what = "all" if all_origins else f"a sample of {len(origins)}"
        print(f"  {what} origins, batch model ({workers} processes, {size} origins a batch): "
              f"{took:.1f} s, {took / len(origins) * 1000:.2f} ms per origin; "
              f"{reached} (AS, origin) routes, mean AS path length {hops / max(1, reached):.2f}")
        if not all_origins:
            print(f"  all {len(graph)} origins, extrapolated from the sample: "
                  f"{took / len(origins) * len(graph) / 60:.1f} min")
        print(f"  peak memory: {_rss_mb():.0f} MB this process, {worker_rss:.0f} MB a worker "
              f"(each batch: about 9 bytes x {len(graph)} ASes x {size} origins = "
              f"{9 * len(graph) * size / 2**20:.0f} MB, freed after it)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testbed.bench.internet", description=__doc__)
    parser.add_argument("--lab-size", type=int, default=1000)
    parser.add_argument("--events", action="store_true",
                        help="also time the event simulation of the lab (minutes at 1,000 ASes)")
    parser.add_argument("--ases", type=int, default=75_000)
    parser.add_argument("--all", action="store_true", help="every origin of the graph")
    parser.add_argument("--sample", type=int, default=2048)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args(argv)
    lab_prediction(args.lab_size, args.events)
    internet_scale(args.ases, args.all, args.sample, args.workers, args.batch)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
