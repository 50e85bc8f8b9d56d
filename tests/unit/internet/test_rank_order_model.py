"""The rank-order model (testbed.internet) against the event simulation
(testbed.model.prediction over testbed.bgp engines): the same Loc-RIBs, Adj-RIBs-In
and state digests on generated Internets, also with paid peering, partial
transit and a route server mixed in; and the choice between the two."""

import random

from hypothesis import given, settings, strategies as st

from testbed.model.addressing import plan
from testbed.model.prediction import Expectation
from testbed.model.generate import internet
from testbed.model import fast_prediction as lab_model
from testbed.model.topology import Kind


def variant(n: int, seed: int):
    """``internet(n, seed)`` with some peerings paid (either side paying),
    some transit partial, and a route server at the IXP with a quarter of
    the ASes as clients."""
    topology = internet(n, seed)
    rng = random.Random(seed)
    for rel in topology.relationships:
        if rel.kind == Kind.PEERING and rng.random() < 0.3:
            rel.kind = Kind.PAID_PEERING
            if rng.random() < 0.5:
                rel.a, rel.b = rel.b, rel.a
        elif rel.kind == Kind.TRANSIT and rng.random() < 0.2:
            rel.kind = Kind.PARTIAL_TRANSIT
    if topology.ixps:
        topology.add_route_server(65534, "rs1", topology.ixps[0].name)
        names = [s.name for s in topology.systems if s.name != "rs1"]
        for member in rng.sample(names, min(len(names), max(3, n // 4))):
            topology.route_server_client(member, "rs1")
    return topology.validate()


def both(topology, change=None):
    fast, events = Expectation(plan(topology)), Expectation(plan(topology))
    events.fast = False
    for expectation in (fast, events):
        if change:
            change(expectation)
    return fast, events


def assert_same(fast, events):
    assert fast.digests() == events.digests()
    assert fast.model == lab_model.MODEL_FAST and events.model == lab_model.MODEL_EVENTS
    fast_loc, events_loc = fast.loc_ribs(), events.loc_ribs()
    fast_in, events_in = fast.adj_ribs_in(), events.adj_ribs_in()
    for router in events_loc:
        assert fast_loc[router] == events_loc[router], router
        assert fast_in[router] == events_in[router], router
    # the count the benchmark uses at 1,000 ASes, where building the tables is too slow
    built = sum(len(rib) for ribs in events_in.values() for rib in ribs.values())
    assert fast.adj_rib_in_size() == events.adj_rib_in_size() == built


@settings(max_examples=15, deadline=None)
@given(n=st.integers(2, 60), seed=st.integers(0, 10**6))
def test_generated_internets_agree(n, seed):
    assert_same(*both(internet(n, seed)))


@settings(max_examples=15, deadline=None)
@given(n=st.integers(10, 60), seed=st.integers(0, 10**6))
def test_paid_partial_and_route_server_agree(n, seed):
    topology = variant(n, seed)
    kinds = {rel.kind for rel in topology.relationships}
    assert Kind.ROUTE_SERVER in kinds
    assert_same(*both(topology))


@settings(max_examples=10, deadline=None)
@given(n=st.integers(10, 40), seed=st.integers(0, 10**6), data=st.data())
def test_after_depeering_and_a_hijack_they_agree(n, seed, data):
    topology = variant(n, seed)
    p = plan(topology)
    down = data.draw(st.sampled_from(p.sessions))
    thief = data.draw(st.sampled_from(sorted(r for r in p.routers if not p.routers[r].route_server)))
    victim = data.draw(st.sampled_from(sorted(r for r in p.routers if p.routers[r].prefixes)))

    def change(expectation):
        expectation.set_session(down.a, down.b, up=False)
        expectation.set_origin(thief, p.routers[victim].prefixes[0], True)
    assert_same(*both(topology, change))


def test_the_model_is_the_event_simulation_outside_its_scope():
    topology = internet(12, 3)
    fast = Expectation(plan(topology))
    fast.set_origin("s1", plan(topology).routers["s1"].prefixes[0], True, communities=[(65535 << 16) | 1])
    fast.digests()
    assert fast.model == lab_model.MODEL_EVENTS
    assert "communities" in lab_model.out_of_scope(fast)


def test_scope_reasons():
    topology = internet(12, 3)
    expectation = Expectation(plan(topology))
    assert lab_model.out_of_scope(expectation) is None
    expectation.set_policy("t1", "t2", {"local_pref": 120})
    assert lab_model.out_of_scope(expectation) == "router t1: a session policy towards t2 ({'local_pref': 120})"
    pops = internet(12, 3)
    pops.systems[0].pops = ["west", "east"]
    pops.internal_link(pops.systems[0].name, "west", "east")
    assert "several routers" in lab_model.out_of_scope(Expectation(plan(pops)))
    rov = internet(12, 3)
    rov.systems[2].rov = True
    assert "rov" in lab_model.out_of_scope(Expectation(plan(rov)))
