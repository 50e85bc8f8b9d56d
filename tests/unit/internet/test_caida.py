"""CAIDA AS-relationship files: both serials, comments, bz2 as published,
errors naming file and line, and the synthetic files' shape."""

import bz2

import pytest

from testbed.internet import caida
from testbed.internet.synthetic import CLIQUE, synthetic, write_synthetic

SERIAL1 = """# source:topology|BGP|20240101|routeviews
# input clique: 3356 174
3356|174|0
3356|64500|-1
174|64501|-1
64500|64501|0
"""


def test_serial_1_plain(tmp_path):
    path = tmp_path / "20240101.as-rel.txt"
    path.write_text(SERIAL1)
    graph, facts = caida.load(path)
    assert facts["serial"] == 1 and facts["clique"] == [3356, 174]
    assert (facts["transit"], facts["peering"]) == (2, 2)
    g = graph.index
    assert graph.relationship(g[3356], g[64500]) == "customer"
    assert graph.relationship(g[64500], g[3356]) == "provider"
    assert graph.relationship(g[64500], g[64501]) == "peer"
    assert [graph.asns[n] for n in caida.clique_of(graph, facts)] == [3356, 174]


def test_serial_2_bz2_by_content(tmp_path):
    path = tmp_path / "20240101.as-rel2.txt.bz2"
    path.write_bytes(bz2.compress(SERIAL1.replace("|0\n", "|0|bgp\n").replace("|-1\n", "|-1|mlp\n").encode()))
    graph, facts = caida.load(path)
    assert facts["serial"] == 2 and len(graph) == 4 and graph.links == 4
    renamed = tmp_path / "plain-name.txt"
    renamed.write_bytes(path.read_bytes())
    assert caida.load(renamed)[0].links == 4


@pytest.mark.parametrize("line, message", [
    ("1|2", "expected 'as1|as2|rel'"),
    ("1|x|0", "must be integers"),
    ("1|2|1", "neither -1"),
    ("5|5|0", "related to itself"),
    ("64501|64500|-1", "already related (line 6)"),
])
def test_bad_lines_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "bad.txt"
    path.write_text(SERIAL1 + line + "\n")
    with pytest.raises(caida.CaidaError) as error:
        caida.load(path)
    assert f"{path}:7:" in str(error.value) and message in str(error.value)


def test_missing_file_says_where_to_get_one(tmp_path):
    with pytest.raises(caida.CaidaError, match="publicdata.caida.org"):
        caida.load(tmp_path / "nothing.bz2")


def test_synthetic_round_trip_and_shape(tmp_path):
    path = tmp_path / "syn.as-rel2.txt.bz2"
    ases, links = write_synthetic(path, 3000, seed=5)
    with open(path, "rb") as raw:
        assert raw.read(3) == b"BZh"
    graph, facts = caida.load(path)
    assert len(graph) == ases == 3000 and graph.links == links
    assert facts["clique"] == list(CLIQUE[:len(facts["clique"])])
    assert graph.transit_cycle() is None
    clique = caida.clique_of(graph, facts)
    assert all(not graph.providers[c] for c in clique)
    assert all(graph.providers[x] for x in range(len(graph)) if x not in clique)
    # heavy tail: a few providers with many customers, most ASes with none
    degrees = sorted((len(c) for c in graph.customers), reverse=True)
    assert degrees[0] > 20 * max(1, degrees[len(degrees) // 10])
    assert sum(1 for d in degrees if d == 0) > 0.7 * len(graph)
    assert synthetic(300, seed=5) == synthetic(300, seed=5)
