"""The ``testbed whatif`` and ``testbed import caida`` commands.

``add_commands(subparsers)`` adds both to the ``testbed`` command
(``testbed.cli``); each reads a CAIDA as-rel file (``testbed.internet.caida``),
asks the model (``whatif``) or cuts a sub-graph (``subgraph``), prints the
answer and writes the topology file asked for. Errors are ``TestbedError``s
(the ``testbed`` command turns them into exit codes).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from testbed.errors import TestbedError
from . import caida, peeringdb, subgraph, whatif

__all__ = ["add_commands"]


class UsageError(TestbedError):
    """A command line the internet commands cannot act on."""


def _node(graph, asn: int, where: str) -> int:
    if asn not in graph.index:
        raise UsageError(f"{where}: AS{asn} is not in the graph")
    return graph.index[asn]


def _emit(graph, facts, around: int, keep, path: str, max_ases: int, depth: int, source: str,
          peeringdb_dump: str | None = None) -> None:
    started = time.perf_counter()
    try:
        sub = subgraph.extract(graph, around, depth=depth, max_ases=max_ases, keep=keep, facts=facts)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    report = _sub_report(sub)
    out = Path(path)
    name = out.stem if out.stem.replace("_", "").isalnum() else "imported"
    found = []
    if peeringdb_dump:
        found = peeringdb.exchanges(peeringdb.load(peeringdb_dump), sub.graph.asns)
        report += "\n" + (f"PeeringDB: {len(found)} exchanges with two or more of these ASes: "
                          + ", ".join(f"{x.name} ({len(x.members)} members, {len(x.rs_clients)} on the "
                                      f"route server)" for x in found) if found
                          else "PeeringDB: no exchange with two or more of these ASes")
    render = subgraph.topology_yaml if out.suffix in (".yaml", ".yml") else subgraph.topology_source
    out.write_text(render(sub, name, source, report, found))
    print(report)
    print(f"wrote {out} ({len(sub.graph)} ASes, {sub.graph.links} links) in "
          f"{time.perf_counter() - started:.1f} s")


def _sub_report(sub) -> str:
    lines = [f"kept {len(sub.graph)} ASes, {sub.graph.links} links around {sub.full.label(sub.around)}"]
    for what, left in sub.dropped.items():
        if isinstance(left, list):
            shown = ", ".join(f"AS{a}" for a in left[:10]) + (" ..." if len(left) > 10 else "")
            lines.append(f"dropped {len(left)} {what} of AS{sub.full.asns[sub.around]}: {shown}")
        else:
            lines.append(f"dropped {left} {what} (no room)")
    if sub.unreachable:
        lines.append(f"WARNING: {len(sub.unreachable)} pairs cannot reach each other in the sub-graph")
    else:
        lines.append("every AS kept reaches every other (valley-free, checked with the model)")
    diff = subgraph.compare(sub)
    lines.append(f"paths against the whole graph: {diff['same']} of {diff['pairs']} (AS, origin) "
                 f"paths unchanged, {diff['different']} changed by the pruning")
    for asn, origin, before, after in diff["examples"][:5]:
        lines.append(f"  AS{asn} to AS{origin}: {_fmt(before)} on the whole graph, {_fmt(after)} here")
    return "\n".join(lines)


def _fmt(path) -> str:
    return "no route" if path is None else "[" + " ".join(map(str, path)) + "]"


def cmd_whatif(args) -> int:
    started = time.perf_counter()
    graph, facts = caida.load(args.graph)
    print(f"{args.graph}: {len(graph)} ASes, {graph.links} links (read in "
          f"{time.perf_counter() - started:.1f} s)")
    show = [_node(graph, a, "--show") for a in args.show]
    involved: list[int] = []
    if args.depeer:
        a, b = (_node(graph, x, "--depeer") for x in args.depeer)
        involved = [a, b]
        try:
            outcome = whatif.depeer(graph, a, b, show, limit=args.limit)
        except ValueError as exc:
            raise UsageError(f"--depeer: {exc}") from None
    elif args.withdraw is not None:
        origin = _node(graph, args.withdraw, "--withdraw")
        neighbors = [_node(graph, x, "--from") for x in args.to]
        for n in neighbors:
            if graph.relationship(origin, n) is None:
                raise UsageError(f"--from: AS{graph.asns[n]} is not a neighbor of AS{args.withdraw}")
        involved = [origin] + neighbors
        outcome = whatif.withdraw(graph, origin, neighbors, show)
    elif args.leak is not None:
        leaker = _node(graph, args.leak, "--leak")
        involved = [leaker]
        outcome = whatif.leak(graph, leaker, show=show, sample=args.limit or 200)
    else:
        attacker, victim = (_node(graph, x, "--hijack") for x in args.hijack)
        rov = [_node(graph, x, "--rov") for x in args.rov]
        involved = [victim, attacker]
        outcome = whatif.hijack(graph, attacker, victim, rov, show)
    _print_outcome(graph, outcome)
    if args.emit_topology:
        _emit(graph, facts, involved[0], involved[1:], args.emit_topology, args.max_ases, 2, args.graph)
    return 0


def _print_outcome(graph, outcome) -> None:
    print(f"what if {outcome.change}?  ({outcome.model}, {outcome.seconds:.1f} s)")
    for note in outcome.notes:
        print(f"  {note}")
    print(f"  origins examined: {outcome.origins_examined} of {outcome.origins_total}")
    print(f"  best paths changed: {outcome.changed} (AS, origin) pairs")
    print(f"  reach lost: {outcome.lost} (AS, origin) pairs; gained: {outcome.gained}")
    if outcome.lost_by_as:
        worst = outcome.lost_by_as.most_common(10)
        print(f"  {len(outcome.lost_by_as)} ASes lose reach; most: "
              + ", ".join(f"AS{graph.asns[x]} ({n} origins)" for x, n in worst))
        hurt = outcome.lost_by_origin.most_common(10)
        print(f"  {len(outcome.lost_by_origin)} origins become unreachable from some ASes; most: "
              + ", ".join(f"AS{graph.asns[o]} (from {n} ASes)" for o, n in hurt))
    if outcome.fooled:
        print(f"  {len(outcome.fooled)} ASes route the victim's prefix to the attacker")
    if outcome.crossing:
        total = sum(outcome.crossing.values())
        print(f"  {total} (AS, origin) routes now cross the leak, over {len(outcome.crossing)} origins")
    for node, entries in outcome.shown.items():
        print(f"  AS{graph.asns[node]}:")
        for origin, before, after in entries:
            print(f"    to AS{graph.asns[origin]}: {_path(graph, before)} -> {_path(graph, after)}")


def _path(graph, nodes) -> str:
    return "no route" if nodes is None else "[" + " ".join(str(graph.asns[x]) for x in nodes) + "]"


def cmd_import_caida(args) -> int:
    graph, facts = caida.load(args.file)
    around = _node(graph, args.around, "--around")
    keep = [_node(graph, asn, "--keep") for asn in args.keep]
    _emit(graph, facts, around, keep, args.output, args.max_ases, args.depth, args.file, args.peeringdb)
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("whatif", help="ask the routing model about a change on a CAIDA AS graph")
    p.add_argument("graph", help="a CAIDA as-rel file (serial-1 or -2, plain or .bz2)")
    change = p.add_mutually_exclusive_group(required=True)
    change.add_argument("--depeer", nargs=2, type=int, metavar=("A", "B"), help="A and B end their link")
    change.add_argument("--withdraw", type=int, metavar="ASN", help="ASN stops announcing its prefix")
    change.add_argument("--leak", type=int, metavar="ASN",
                        help="ASN leaks its provider and peer routes to all neighbors")
    change.add_argument("--hijack", nargs=2, type=int, metavar=("ATTACKER", "VICTIM"))
    p.add_argument("--from", dest="to", nargs="+", type=int, default=[], metavar="ASN",
                   help="with --withdraw: only towards these neighbors")
    p.add_argument("--rov", nargs="+", type=int, default=[], metavar="ASN",
                   help="with --hijack: ASes that validate origins (a ROA for the victim)")
    p.add_argument("--show", nargs="+", type=int, default=[], metavar="ASN",
                   help="print the old and new paths of these ASes")
    p.add_argument("--limit", type=int, help="examine at most this many origins (a seeded sample)")
    p.add_argument("--emit-topology", metavar="FILE", help="write a topology of the neighbourhood to emulate")
    p.add_argument("--max-ases", type=int, default=20)
    p.set_defaults(func=cmd_whatif)
    p = sub.add_parser("import", help="import real-world data (caida)")
    kinds = p.add_subparsers(dest="kind", required=True)
    q = kinds.add_parser("caida", help="a topology file from a CAIDA as-rel file around one AS")
    q.add_argument("file")
    q.add_argument("--around", type=int, required=True, metavar="ASN")
    q.add_argument("--keep", nargs="+", type=int, default=[], metavar="ASN",
                   help="ASes to keep too (with their providers up to the clique)")
    q.add_argument("--depth", type=int, default=2)
    q.add_argument("--peeringdb", metavar="DUMP",
                   help="a PeeringDB JSON dump (a file, or a directory of net.json, ix.json, ...): "
                        "its exchanges, route servers and members for the ASes kept")
    q.add_argument("--max-ases", type=int, default=30)
    q.add_argument("-o", "--output", required=True,
                   help="the topology file to write: .py, or .yaml/.yml for the YAML form")
    q.set_defaults(func=cmd_import_caida)


def build_parser() -> argparse.ArgumentParser:   # for tests of this module alone
    top = argparse.ArgumentParser(prog="testbed")
    add_commands(top.add_subparsers(dest="command", required=True))
    return top
