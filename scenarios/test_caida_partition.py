"""Depeering partition on a CAIDA-shaped neighbourhood: Level 3 and Cogent, 2005.

The same story as ``depeering_partition``, told on an imported Internet
instead of a drawn one. The module writes an AS-relationship file in
CAIDA's own format (serial-2, bz2-compressed, as CAIDA publishes it; made
up by ``testbed.internet.synthetic``, since tests download nothing: real
files come from https://publicdata.caida.org/datasets/as-relationships/),
then imports it as users do (``testbed import caida FILE --around ASN
--keep ... --max-ases 5``): a customer of Level 3 (AS3356) alone, a
customer of Cogent (AS174) alone, and a customer of both, each with its
providers up to the Tier-1 clique. First the routing model answers on the
whole 600-AS graph (``testbed whatif --depeer 3356 174``): the two
single-homed customers lose each other. Then the emulated neighbourhood,
real speakers and packets, shows it happen, and heal when they peer again.
"""

import atexit
import shutil
import tempfile
from pathlib import Path

import pytest

from testbed import cli
from testbed.assertions import (assert_as_path, assert_no_route, assert_reachable,
                                assert_session_down, assert_unreachable)
from testbed.internet import caida, whatif
from testbed.internet.synthetic import write_synthetic
from testbed.model.loader import load

SEED, SIZE = 2, 600
L3_CUSTOMER, COGENT_CUSTOMER, BOTH = 29819, 59511, 47453   # found in the seeded graph
L3, COGENT = "as3356", "as174"
L3C, COGC, MULTI = f"as{L3_CUSTOMER}", f"as{COGENT_CUSTOMER}", f"as{BOTH}"

_work = Path(tempfile.mkdtemp(prefix="caida-partition-"))
atexit.register(shutil.rmtree, _work, ignore_errors=True)
GRAPH_FILE = _work / "20050101.as-rel2.txt.bz2"
write_synthetic(GRAPH_FILE, SIZE, seed=SEED)
assert cli.main(["import", "caida", str(GRAPH_FILE), "--around", str(L3_CUSTOMER),
                 "--keep", str(COGENT_CUSTOMER), str(BOTH), "--max-ases", "5",
                 "-o", str(_work / "caida_partition.py")]) == 0
TOPOLOGY = load(_work / "caida_partition.py")
DEPEERED = pytest.mark.lab_state(down=[(L3, COGENT)])


def test_the_model_predicts_the_partition_on_the_whole_graph():
    graph, _ = caida.load(GRAPH_FILE)
    node = graph.index
    outcome = whatif.depeer(graph, node[3356], node[174], show=[node[L3_CUSTOMER], node[BOTH]])
    # Each single-homed customer loses the other; the multihomed one loses nothing.
    assert outcome.lost_by_origin[node[COGENT_CUSTOMER]] > 0
    assert outcome.lost_by_origin[node[L3_CUSTOMER]] > 0
    lost = {origin for origin, before, after in outcome.shown[node[L3_CUSTOMER]] if after is None}
    assert node[COGENT_CUSTOMER] in lost
    assert node[BOTH] not in outcome.lost_by_as


def test_before_everyone_reaches_everyone(lab):
    assert {s.asn for s in TOPOLOGY.systems} == {3356, 174, L3_CUSTOMER, COGENT_CUSTOMER, BOTH}
    assert lab.expect.model == "rank-order propagation"   # what wait_converged waited for
    assert_as_path(lab, L3C, COGC, [L3, COGENT, COGC])
    assert_reachable(lab, L3C, COGC)
    assert_reachable(lab, COGC, L3C, family=6)


def test_depeering_partitions_single_homed_customers(lab, report):
    elapsed = lab.depeer(L3, COGENT)
    report("imported partition convergence", f"{elapsed:.3f}", " s")
    assert_session_down(lab, L3, COGENT)
    for family in (4, 6):
        assert_no_route(lab, L3C, COGC, family=family)
        assert_no_route(lab, COGC, L3C, family=family)
        assert_unreachable(lab, L3C, COGC, family=family)


@DEPEERED
def test_multihomed_customer_still_reaches_both_sides(lab):
    assert_as_path(lab, MULTI, L3C, [L3, L3C])
    assert_as_path(lab, MULTI, COGC, [COGENT, COGC])
    assert_reachable(lab, MULTI, L3C)
    assert_reachable(lab, COGC, MULTI)


@DEPEERED
def test_repeering_heals_the_partition(lab):
    lab.repeer(L3, COGENT)
    assert_as_path(lab, L3C, COGC, [L3, COGENT, COGC])
    assert_reachable(lab, L3C, COGC)
