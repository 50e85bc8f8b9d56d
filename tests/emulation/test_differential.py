"""The differential check in CI: the same topologies with ExaBGP routers and
with BIRD and FRR routers (generated configurations with the same
relationship policy), every router's best path and next hop compared.

Covers transit, private peering, multihoming and IXP bilateral sessions
(a generated Internet of 10 ASes), and a hand-made topology for what a
generated one lacks: ASes with PoPs (iBGP, hot potato, IGP cost), MEDs,
prepending and an IXP route server (BIRD only: the FRR generator has no
iBGP or route server). The agreement is printed (``-s``) and
reported; any difference fails (no tie-break rule differs: see
``testbed.bench.differential``)."""

from pathlib import Path

import pytest

from testbed.model.generate import internet
from testbed.model.loader import load
from testbed.bench.differential import run

pytestmark = pytest.mark.emulation
MIX = Path(__file__).parent.parent / "topologies" / "differential_mix.py"


@pytest.mark.parametrize("name, kinds", [("internet-10", ("bird", "frr")), ("mix", ("bird",))])
def test_bird_and_frr_routers_choose_what_exabgp_routers_choose(name, kinds, report):
    topology = internet(10, seed=1).validate() if name == "internet-10" else load(MIX)
    for comparison in run(topology, kinds):
        print(comparison.summary())
        report(f"{name} agreement, exabgp vs {comparison.kind}",
               f"{comparison.agreed}/{comparison.compared}")
        assert comparison.compared >= 80  # every router, every prefix: not an empty comparison
        assert not comparison.differences, comparison.summary() + "\n" + "\n".join(comparison.differences)
