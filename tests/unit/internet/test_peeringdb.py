"""PeeringDB dumps: exchanges, their LANs and route-server members become
IXPs, route servers and clients of an imported sub-graph; the topology
validates and the rank-order model agrees with the event simulation on it."""

import json

import pytest

from testbed import cli
from testbed.internet import caida, peeringdb
from testbed.internet.synthetic import write_synthetic
from testbed.model.addressing import plan
from testbed.model.loader import load
from testbed.model.prediction import Expectation
from testbed.model.topology import Kind


def dump_for(members, rs, outsider):
    """An API-shaped dump: AMS-IX with ``members`` (``rs`` of them on the
    route server) and an outsider; a second exchange with one member."""
    nets = [{"id": 100 + k, "asn": asn, "name": f"net{asn}"} for k, asn in enumerate(members + [outsider])]
    net_id = {n["asn"]: n["id"] for n in nets}
    ports = [{"id": 1000 + k, "net_id": net_id[asn], "ix_id": 1, "ixlan_id": 10,
              "ipaddr4": f"80.249.208.{k + 1}", "ipaddr6": f"2001:7f8:1::{k + 1}",
              "is_rs_peer": asn in rs, "speed": 10000} for k, asn in enumerate(members + [outsider])]
    ports.append({"id": 2000, "net_id": net_id[members[0]], "ix_id": 2, "ixlan_id": 20,
                  "ipaddr4": "10.9.9.1", "ipaddr6": None, "is_rs_peer": True, "speed": 1000})
    return {"net": {"data": nets},
            "ix": {"data": [{"id": 1, "name": "AMS-IX"}, {"id": 2, "name": "Lonely IX"}]},
            "ixlan": {"data": [{"id": 10, "ix_id": 1}, {"id": 20, "ix_id": 2}]},
            "ixpfx": {"data": [{"id": 5, "ixlan_id": 10, "protocol": "IPv4", "prefix": "80.249.208.0/21"},
                               {"id": 6, "ixlan_id": 10, "protocol": "IPv6", "prefix": "2001:7f8:1::/64"}]},
            "netixlan": {"data": ports}}


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    work = tmp_path_factory.mktemp("pdb")
    graph_file = work / "as-rel2.txt.bz2"
    write_synthetic(graph_file, 800, seed=4)
    graph, _ = caida.load(graph_file)
    around = graph.index[3356]
    plain = work / "plain.py"
    assert cli.main(["import", "caida", str(graph_file), "--around", "3356", "--max-ases", "10",
                     "-o", str(plain)]) == 0
    kept = sorted(s.asn for s in load(plain).systems)
    peers = sorted(graph.asns[q] for q in graph.peers[around] if graph.asns[q] in kept)
    members = [3356] + peers[:2] + [a for a in kept if a not in peers and a != 3356][:2]
    rs = members[1:4]
    outsider = next(a for a in graph.asns if a not in kept)
    dump = work / "peeringdb.json"
    dump.write_text(json.dumps(dump_for(members, rs, outsider)))
    out = work / "with_ixps.py"
    assert cli.main(["import", "caida", str(graph_file), "--around", "3356", "--max-ases", "10",
                     "--peeringdb", str(dump), "-o", str(out)]) == 0
    return load(out), members, rs, peers[:2], dump


def test_exchange_route_server_and_members(imported):
    topology, members, rs, peers, _ = imported
    assert [(x.name, x.lan4, x.lan6) for x in topology.ixps] == [("ams-ix", "80.249.208.0/21", "2001:7f8:1::/64")]
    servers = [s for s in topology.systems if s.route_server]
    assert [(s.asn, s.name) for s in servers] == [(peeringdb.ROUTE_SERVER_ASN_BASE + 1, "rs-ams-ix")]
    by_name = {s.name: s.asn for s in topology.systems}
    clients = sorted(by_name[r.a] for r in topology.relationships if r.kind == Kind.ROUTE_SERVER)
    assert clients == sorted(rs)
    moved = {frozenset((by_name[r.a], by_name[r.b])) for r in topology.relationships
             if r.kind == Kind.PEERING and r.via == "ams-ix"}
    assert {frozenset((3356, p)) for p in peers} <= moved


def test_the_model_agrees_with_the_engines_on_it(imported):
    topology = imported[0]
    fast, events = Expectation(plan(topology)), Expectation(plan(topology))
    events.fast = False
    assert fast.digests() == events.digests()
    assert fast.model == "rank-order propagation"
    prefixes = {p for r in plan(topology).routers.values() for p in r.prefixes}
    for router, rib in fast.loc_ribs().items():
        if not plan(topology).routers[router].route_server:
            assert set(rib) == prefixes, router


def test_directory_form_and_errors(tmp_path, imported):
    dump = json.loads(imported[4].read_text())
    for kind, objects in dump.items():
        (tmp_path / f"{kind}.json").write_text(json.dumps(objects))
    found = peeringdb.exchanges(peeringdb.load(tmp_path), imported[1])
    assert [(x.name, sorted(x.members)) for x in found] == [("AMS-IX", sorted(imported[1]))]
    (tmp_path / "ixpfx.json").write_text('{"data": [{"id": 1, "ixlan_id": 10, "prefix": "80.249.300.0/21"}]}')
    with pytest.raises(peeringdb.PeeringDBError, match="ixpfx object 1: bad prefix"):
        peeringdb.exchanges(peeringdb.load(tmp_path), imported[1])
    (tmp_path / "ix.json").unlink()
    with pytest.raises(peeringdb.PeeringDBError, match="no ix.json"):
        peeringdb.load(tmp_path)
    broken = tmp_path / "one.json"
    broken.write_text('{"net": []}')
    with pytest.raises(peeringdb.PeeringDBError, match=r"one.json: no 'ix' objects"):
        peeringdb.load(broken)


def test_the_yaml_form_declares_the_same(imported, tmp_path):
    topology, members, rs, peers, dump = imported
    graph_file = dump.parent / "as-rel2.txt.bz2"
    out = tmp_path / "with_ixps.yaml"
    assert cli.main(["import", "caida", str(graph_file), "--around", "3356", "--max-ases", "10",
                     "--peeringdb", str(dump), "-o", str(out)]) == 0
    from_yaml = load(out)

    def shape(t):
        return (sorted((s.asn, s.name, s.route_server) for s in t.systems),
                sorted((x.name, x.lan4, x.lan6) for x in t.ixps),
                sorted((r.kind.value, r.a, r.b, r.via) for r in t.relationships))
    assert shape(from_yaml) == shape(topology)
    assert out.read_text().startswith("# Sub-graph of")
