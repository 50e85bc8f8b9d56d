"""The routing-state fingerprint an agent keeps as routes change equals the
one computed from scratch (the model's side): convergence is judged by it."""

import random

import pytest

from testbed.bgp import Neighbor, Relationship, Route, RouterEngine
from testbed.bgp.fingerprint import FingerprintedTable, table_fingerprint
from testbed.routers.agent_client import state_digest


def route(prefix, rng):
    return Route(prefix, f"10.0.0.{rng.randint(1, 3)}", tuple(rng.randint(64500, 64505) for _ in range(rng.randint(0, 3))),
                 med=rng.choice([None, 0, 10]), rejected=rng.choice([None, None, "policy"]))


@pytest.mark.parametrize("adj_in", [False, True])
def test_a_table_changed_at_random_keeps_the_fingerprint_of_its_contents(adj_in):
    rng = random.Random(7)
    table = FingerprintedTable(adj_in=adj_in)
    prefixes = [f"192.0.2.{i * 8}/29" for i in range(12)]
    for step in range(2000):
        prefix = rng.choice(prefixes)
        operation = rng.random()
        if operation < 0.5:
            table[prefix] = route(prefix, rng)
        elif operation < 0.7:
            table.pop(prefix, None)
        elif operation < 0.8 and prefix in table:
            del table[prefix]
        elif operation < 0.81:
            table.clear()
        expected = table_fingerprint({p: r.to_json() for p, r in table.items()}, adj_in=adj_in)
        assert table.fingerprint == expected, step


def test_what_is_hashed_matters_and_order_does_not():
    a = {"192.0.2.0/24": Route("192.0.2.0/24", "10.0.0.1", (1, 2)).to_json(),
         "198.51.100.0/24": Route("198.51.100.0/24", "10.0.0.1", (1,)).to_json()}
    b = dict(reversed(list(a.items())))
    assert table_fingerprint(a) == table_fingerprint(b)
    for changed in (Route("192.0.2.0/24", "10.0.0.2", (1, 2)), Route("192.0.2.0/24", "10.0.0.1", (1, 3)),
                    Route("192.0.2.0/24", "10.0.0.1", (1, 2), med=5)):
        assert table_fingerprint({**a, "192.0.2.0/24": changed.to_json()}) != table_fingerprint(a), changed
    rejected = {**a, "192.0.2.0/24": Route("192.0.2.0/24", "10.0.0.1", (1, 2), rejected="x").to_json()}
    assert table_fingerprint(rejected, adj_in=True) != table_fingerprint(a, adj_in=True)
    assert table_fingerprint(rejected) == table_fingerprint(a)  # the Loc-RIB never holds rejected routes


def test_a_copy_is_a_table_with_the_same_fingerprint():
    import copy
    import pickle

    table = FingerprintedTable(adj_in=True)
    table["192.0.2.0/24"] = Route("192.0.2.0/24", "10.0.0.1", (1, 2), rejected="x")
    for made in (copy.copy(table), copy.deepcopy(table), pickle.loads(pickle.dumps(table))):
        assert type(made) is FingerprintedTable and made.adj_in
        assert made == table and made.fingerprint == table.fingerprint


def test_only_tracked_mutations_are_allowed():
    table = FingerprintedTable()
    for call in (lambda: table.update({"x": 1}), lambda: table.setdefault("x", 1), table.popitem):
        with pytest.raises(TypeError):
            call()
    with pytest.raises(KeyError):
        table.pop("192.0.2.0/24")
    assert table.fingerprint == 0 and dict(table) == {}


def test_an_engine_reports_the_digest_of_its_tables():
    engine = RouterEngine(64500, "10.255.0.1", [Neighbor("10.0.0.1", 64501, Relationship.PROVIDER, "10.255.0.2", "10.0.0.2"),
                                                  Neighbor("10.0.0.5", 64502, Relationship.CUSTOMER, "10.255.0.3", "10.0.0.6")])
    engine.originate("203.0.113.0/24")
    for step, (neighbor, prefix, path) in enumerate([("10.0.0.1", "192.0.2.0/24", [64501]),
                                                     ("10.0.0.5", "192.0.2.0/24", [64502, 64503]),
                                                     ("10.0.0.5", "198.51.100.0/24", [64502]),
                                                     ("10.0.0.1", "192.0.2.0/24", None)]):
        engine.session_up(neighbor)
        if path is None:
            engine.receive(neighbor, [], withdrawn=[prefix])
        else:
            engine.receive(neighbor, [Route(prefix, neighbor, tuple(path))])
        expected = state_digest({p: r.to_json() for p, r in engine.loc_rib().items()},
                                {a: {p: r.to_json() for p, r in engine.adj_rib_in(a).items()} for a in engine.neighbors})
        assert engine.fingerprint() == expected, step
