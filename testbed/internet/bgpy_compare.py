"""The rank-order model against BGPy, an independent Internet-scale simulator.

``python -m testbed.internet.bgpy_compare GRAPH [--origins N] [--seed S]``
reads a CAIDA as-rel file, and for N origins (a seeded sample; all with
``--origins 0``) runs both BGPy's Gao-Rexford BGP (``bgpy-pkg``, its
``ValidPrefix`` scenario: the origin announces one prefix) and
``propagate``, then compares every AS's best path. BGPy breaks ties
between equally preferred, equally long routes by the lowest neighbor ASN,
as the model does on CAIDA graphs (its rank is the ASN), so no decision is
excluded as a tie-break defined differently; a difference is still
classified as "tie" (same relationship class and length on both sides, so
only the tie-break differs) or "decision" (anything else), and the
agreement figure printed counts the (AS, origin) pairs whose paths are
equal. BGPy is not a dependency of the testbed: it pins pytest 9.0.2,
against the testbed's 9.2.0, so it runs from its own virtualenv with the
testbed on ``PYTHONPATH`` (README: "Comparing with BGPy").
"""

from __future__ import annotations

import argparse
import random
import time

from . import caida
from .propagate import NONE, propagate

PREFIX = "1.2.0.0/16"   # BGPy's ValidPrefix scenario announces this prefix


def _bgpy_engine(graph):
    from bgpy.as_graphs import ASGraph, ASGraphInfo, CustomerProviderLink, PeerLink
    from bgpy.simulation_engine import BGP, SimulationEngine

    asns = graph.asns
    cp = frozenset(CustomerProviderLink(customer_asn=asns[c], provider_asn=asns[p])
                   for p in range(len(graph)) for c in graph.customers[p])
    peers = frozenset(PeerLink(asns[a], asns[b]) for a in range(len(graph)) for b in graph.peers[a] if a < b)
    info = ASGraphInfo(customer_provider_links=cp, peer_links=peers)
    return SimulationEngine(ASGraph(info, BasePolicyCls=BGP))


def _bgpy_paths(engine, origin_asn: int) -> dict[int, tuple[int, ...]]:
    from frozendict import frozendict
    from bgpy.simulation_engine import BGP
    from bgpy.simulation_framework import ScenarioConfig, ValidPrefix

    config = ScenarioConfig(ScenarioCls=ValidPrefix, BasePolicyCls=BGP,
                            override_victim_asns=frozenset({origin_asn}),
                            override_attacker_asns=frozenset(),
                            hardcoded_asn_cls_dict=frozendict())
    scenario = ValidPrefix(scenario_config=config, engine=engine)
    scenario.setup_engine(engine)
    engine.run(propagation_round=0, scenario=scenario)
    found = {}
    for as_obj in engine.as_graph:
        for ann in as_obj.policy.local_rib.values():
            found[as_obj.asn] = tuple(ann.as_path[1:])   # BGPy's path starts with the AS itself
    return found


def compare(graph, origins) -> dict:
    """Counts over (AS, origin) pairs: equal, different by tie-break only,
    different decisions; with a few examples."""
    engine = _bgpy_engine(graph)
    counts = {"pairs": 0, "equal": 0, "tie": 0, "decision": 0, "examples": []}
    for origin in origins:
        theirs = _bgpy_paths(engine, graph.asns[origin])
        ours = propagate(graph, [origin])
        for x in range(len(graph)):
            if x == origin:
                continue
            counts["pairs"] += 1
            mine = ours.as_path(x) if ours.cls[x] != NONE else None
            other = theirs.get(graph.asns[x])
            if mine == other:
                counts["equal"] += 1
                continue
            same_length = mine is not None and other is not None and len(mine) == len(other)
            counts["tie" if same_length else "decision"] += 1
            if len(counts["examples"]) < 5:
                counts["examples"].append((graph.asns[x], graph.asns[origin], mine, other))
    return counts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testbed.internet.bgpy_compare",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("graph")
    parser.add_argument("--origins", type=int, default=100, help="how many origins (0: all)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    graph, _ = caida.load(args.graph)
    everyone = list(range(len(graph)))
    origins = everyone if not args.origins else sorted(
        random.Random(args.seed).sample(everyone, min(args.origins, len(everyone))))
    started = time.perf_counter()
    counts = compare(graph, origins)
    took = time.perf_counter() - started
    share = counts["equal"] / max(1, counts["pairs"])
    print(f"{args.graph}: {len(graph)} ASes, {graph.links} links; {len(origins)} origins, "
          f"{counts['pairs']} (AS, origin) best paths compared in {took:.1f} s")
    print(f"agreement with BGPy: {counts['equal']} of {counts['pairs']} ({100 * share:.3f} %); "
          f"differences settled by the tie-break alone: {counts['tie']}, other decisions: "
          f"{counts['decision']}")
    for asn, origin, mine, other in counts["examples"]:
        print(f"  AS{asn} to AS{origin}: model {mine}, BGPy {other}")
    return 0 if counts["decision"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
