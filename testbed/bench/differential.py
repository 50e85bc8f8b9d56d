"""The differential check: the same topology run with ExaBGP routers and with BIRD (or FRR) routers.

``run(topology, kinds)`` starts the topology once as it is declared
(ExaBGP routers unless it says otherwise) and once per kind with every
router switched to that kind (``"bird"``, ``"frr"``) with the generated configuration (``bird_config`` /
``frr_config``: the same relationship policy and RFC 4271 decision), and
returns, per kind, a ``Comparison`` of every router's best path and next hop for
every prefix. Next hops are compared as the router they belong to (the
address plan's owner of the address, else the neighbour the route came
from): BIRD and FRR send an IPv6 next hop with its link-local address,
which ExaBGP keeps, so the literal addresses differ where the choice does
not. No difference is explained away: the generated configurations set
``deterministic med`` (BIRD) and ``bgp bestpath compare-routerid`` plus
``bgp deterministic-med`` (FRR), which make both follow RFC 4271
9.1.2.2 exactly as ``testbed.bgp.decision`` does, so any difference is a
failure. ``python -m testbed.bench.differential [n] [seed] [bird,frr]``
prints the agreement for a generated topology.
"""

from __future__ import annotations

import copy
import sys
import time
from dataclasses import dataclass, field

__all__ = ["Comparison", "best_paths", "compare", "run", "switched"]


@dataclass
class Comparison:
    """Best paths of every router under two implementations."""

    kind: str
    compared: int = 0
    agreed: int = 0
    differences: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def agreement(self) -> float:
        return self.agreed / self.compared if self.compared else 1.0

    def summary(self) -> str:
        return (f"exabgp vs {self.kind}: {self.agreed}/{self.compared} best paths agree "
                f"({100 * self.agreement:.1f}%), {len(self.differences)} differ; "
                + ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items()))


def switched(topology, kind: str):
    """A copy of ``topology`` with every router running ``kind`` (generated config)."""
    other = copy.copy(topology)
    other.systems = [copy.copy(s) for s in topology.systems]
    for system in other.systems:
        system.router = kind
        system.config = None
    return other


def _next_hop_router(lab, router: str, route: dict) -> str | None:
    hop = route.get("next_hop")
    if hop is None:
        return None
    owner = lab.plan.router_of(hop)
    if owner is not None:
        return owner
    neighbor = route.get("neighbor")
    return lab.plan.router_of(neighbor) if neighbor else hop


def best_paths(lab) -> dict[str, dict[str, tuple]]:
    """router -> prefix -> (AS path, next-hop router) of its best routes
    (route servers: the routes each client received from it instead)."""
    out = {}
    for router, plan in lab.plan.routers.items():
        if plan.route_server:
            continue
        rib = lab.loc_rib(router)
        out[router] = {prefix: (tuple(route["as_path"]), _next_hop_router(lab, router, route))
                       for prefix, route in rib.items()}
    return out


def compare(reference: dict, other: dict, kind: str) -> Comparison:
    """Every (router, prefix) of either side, agreed or described."""
    result = Comparison(kind)
    for router in sorted(set(reference) | set(other)):
        mine, theirs = reference.get(router, {}), other.get(router, {})
        for prefix in sorted(set(mine) | set(theirs)):
            result.compared += 1
            a, b = mine.get(prefix), theirs.get(prefix)
            if a == b:
                result.agreed += 1
            else:
                def show(x):
                    return "no route" if x is None else f"AS path {list(x[0])} next hop {x[1]}"
                result.differences.append(f"{router} {prefix}: exabgp {show(a)}, {kind} {show(b)}")
    return result


def run(topology, kinds=("bird",), progress=None) -> list[Comparison]:
    """Start ``topology`` as declared, then switched to each of ``kinds``;
    one ``Comparison`` per kind against the first run."""
    from testbed.lab import Lab

    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    t0 = time.monotonic()
    with Lab(topology, progress=progress) as lab:
        reference = best_paths(lab)
    reference_seconds = time.monotonic() - t0
    out = []
    for kind in kinds:
        t0 = time.monotonic()
        with Lab(switched(topology, kind), progress=progress) as lab:
            comparison = compare(reference, best_paths(lab), kind)
        comparison.seconds = {"exabgp": reference_seconds, kind: time.monotonic() - t0}
        out.append(comparison)
    return out


def main(argv: list[str]) -> int:
    from testbed.model.generate import internet

    n = int(argv[0]) if argv else 10
    seed = int(argv[1]) if len(argv) > 1 else 1
    kinds = argv[2].split(",") if len(argv) > 2 else ["bird", "frr"]
    failed = False
    for comparison in run(internet(n, seed).validate(), kinds):
        print(comparison.summary())
        for line in comparison.differences:
            print("  " + line)
        failed = failed or bool(comparison.differences)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
