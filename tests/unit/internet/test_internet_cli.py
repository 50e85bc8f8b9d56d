"""``testbed import caida`` and ``testbed whatif`` on synthetic CAIDA files:
the topology written validates and keeps every AS reachable (the lab's own
model says so), what was dropped and how paths changed is reported, and
bad ASNs are errors naming the option."""

import re

import pytest

from testbed import cli
from testbed.model.addressing import plan
from testbed.model.prediction import Expectation
from testbed.internet import caida
from testbed.internet.synthetic import write_synthetic
from testbed.model.loader import load


@pytest.fixture(scope="module")
def graph_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("caida") / "20250101.as-rel2.txt.bz2"
    write_synthetic(path, 1500, seed=11)
    return path


def busy_customer(path):
    graph, _ = caida.load(path)
    x = max((n for n in range(len(graph)) if graph.providers[n] and graph.customers[n] and graph.peers[n]),
            key=lambda n: len(graph.neighbours(n)))
    return graph, graph.asns[x]


def test_import_writes_a_valid_fully_reachable_topology(graph_file, tmp_path, capsys):
    graph, asn = busy_customer(graph_file)
    out = tmp_path / "neighbourhood.py"
    assert cli.main(["import", "caida", str(graph_file), "--around", str(asn),
                     "--max-ases", "14", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "every AS kept reaches every other" in printed
    assert "paths against the whole graph" in printed and "dropped" in printed
    topology = load(out)            # validates: raises on any problem
    asns = {s.asn for s in topology.systems}
    assert asn in asns and len(asns) <= 14
    assert {graph.asns[p] for p in graph.providers[graph.index[asn]]} <= asns
    expectation = Expectation(plan(topology))
    ribs = expectation.loc_ribs()
    prefixes = {p for r in plan(topology).routers.values() for p in r.prefixes}
    for router, rib in ribs.items():
        assert set(rib) == prefixes, router
    assert expectation.model == "rank-order propagation"


def test_import_refuses_what_does_not_fit(graph_file, tmp_path, capsys):
    graph, asn = busy_customer(graph_file)
    out = tmp_path / "x.py"
    assert cli.main(["import", "caida", str(graph_file), "--around", str(asn),
                     "--max-ases", "1", "-o", str(out)]) == 1
    assert "raise --max-ases" in capsys.readouterr().err and not out.exists()
    assert cli.main(["import", "caida", str(graph_file), "--around", "4199999999", "-o", str(out)]) == 1
    assert "--around: AS4199999999 is not in the graph" in capsys.readouterr().err


def test_whatif_depeer_prints_losses_and_paths(graph_file, capsys, tmp_path):
    graph, _ = caida.load(graph_file)
    a, b = graph.index[3356], graph.index[174]
    single = next(x for x in graph.customers[a] if graph.providers[x] == [a])
    out = tmp_path / "partition.py"
    assert cli.main(["whatif", str(graph_file), "--depeer", "3356", "174", "--show",
                     str(graph.asns[single]), "--emit-topology", str(out), "--max-ases", "8"]) == 0
    printed = capsys.readouterr().out
    assert "what if AS3356 and AS174 end their peering?" in printed
    assert f"AS{graph.asns[single]}:" in printed and "to AS174: [3356 174] -> " in printed
    assert "reach lost: 0 " not in printed
    assert {3356, 174} <= {s.asn for s in load(out).systems}


def test_whatif_hijack_withdraw_leak(graph_file, capsys):
    graph, asn = busy_customer(graph_file)
    assert cli.main(["whatif", str(graph_file), "--hijack", str(asn), "3356"]) == 0
    plain = capsys.readouterr().out
    assert cli.main(["whatif", str(graph_file), "--hijack", str(asn), "3356", "--rov",
                     *[str(graph.asns[c]) for c in caida.clique_of(graph)]]) == 0
    validated = capsys.readouterr().out

    def fooled(text):
        return int(re.search(r"^  (\d+) ASes route the victim's prefix to the attacker$", text, re.M)[1])
    assert fooled(validated) < fooled(plain)
    provider = graph.asns[graph.providers[graph.index[asn]][0]]
    assert cli.main(["whatif", str(graph_file), "--withdraw", str(asn), "--from", str(provider)]) == 0
    assert "best paths changed" in capsys.readouterr().out
    assert cli.main(["whatif", str(graph_file), "--leak", str(asn), "--limit", "20"]) == 0
    assert "cross the leak" in capsys.readouterr().out
    stranger = next(graph.asns[x] for x in range(len(graph))
                    if x != graph.index[3356] and graph.relationship(graph.index[3356], x) is None)
    assert cli.main(["whatif", str(graph_file), "--depeer", "3356", str(stranger)]) == 1
    assert "have no link" in capsys.readouterr().err
