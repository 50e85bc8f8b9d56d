"""What-if answers: hijacks under route origin validation and route leaks
checked against the event simulation of the project's BGP engines; a
depeering's pruned set of origins against every origin; withdrawals."""

import random

from hypothesis import given, settings, strategies as st

from testbed.model.addressing import plan
from testbed.bgp.configure import engine_from_config
from testbed.bgp.rules import parse_policy
from testbed.bgp.simulate import Network, Session, SessionEnd
from testbed.model.agent_config import agent_config
from testbed.model.prediction import Expectation
from testbed.model.generate import internet
from testbed.internet import caida, whatif
from testbed.model.fast_prediction import Prediction
from testbed.internet.propagate import propagate
from testbed.internet.synthetic import synthetic


def lab_graph(topology):
    expectation = Expectation(plan(topology))
    return expectation, Prediction(expectation).graph


def paths_by_event_simulation(expectation, prefix):
    expectation.fast = False
    return {router: tuple(table[prefix]["as_path"]) if prefix in table else None
            for router, table in expectation.loc_ribs().items()}


@settings(max_examples=12, deadline=None)
@given(n=st.integers(6, 40), seed=st.integers(0, 10**6), data=st.data())
def test_hijack_under_rov_matches_the_engines(n, seed, data):
    topology = internet(n, seed)
    rng = random.Random(seed)
    validating = [s for s in topology.systems if rng.random() < 0.4]
    for system in validating:
        system.rov = True
    names = sorted(s.name for s in topology.systems)
    victim = data.draw(st.sampled_from(names))
    attacker = data.draw(st.sampled_from([x for x in names if x != victim]))
    the_plan = plan(topology)
    prefix = the_plan.routers[victim].prefixes[0]
    topology.roa(prefix, topology.system(victim).asn)
    expectation, graph = lab_graph(topology.validate())
    expectation.set_origin(attacker, prefix, True)
    expected = paths_by_event_simulation(expectation, prefix)
    node = graph.by_name
    outcome = whatif.hijack(graph, node[attacker], node[victim], rov=[node[s.name] for s in validating])
    routing = propagate(graph, [node[victim], node[attacker]],
                        {node[s.name]: {node[attacker]} for s in validating})
    for router, path in expected.items():
        x = node[router]
        mine = None if not routing.has_route(x) else routing.as_path(x)
        assert mine == path, router
    fooled = {r for r, p in expected.items() if p and p[-1] == topology.system(attacker).asn}
    assert {graph.names[x] for x in outcome.fooled} == fooled


def leaked_after_convergence(the_plan, leaker):
    """Every router's Loc-RIB once the lab has converged and then
    ``leaker`` starts sending every route to every neighbor (an export
    term that accepts everything), by the event simulation."""
    engines = {r.name: engine_from_config(agent_config(the_plan, r, "", "")) for r in the_plan.routers.values()}
    for router in the_plan.routers.values():
        for prefix in router.prefixes:
            engines[router.name].originate(prefix)
    network = Network(engines, [Session(SessionEnd(s.a, s.address_b), SessionEnd(s.b, s.address_a))
                                for s in the_plan.sessions])
    for neighbor in the_plan.routers[leaker].neighbors:
        policy = parse_policy({"export": [{"action": "accept"}]}, "leak")
        network.apply(leaker, engines[leaker].set_policy(neighbor.address, policy))
    return network.loc_ribs()


@settings(max_examples=12, deadline=None)
@given(n=st.integers(6, 40), seed=st.integers(0, 10**6), data=st.data())
def test_leak_matches_the_engines(n, seed, data):
    """A leak can have several stable states (the leaker's two providers
    can each end up preferring the other's leaked route); the model gives
    the one a leak of converged routes reaches, which the engines reach
    when the leak starts after convergence."""
    topology = internet(n, seed).validate()
    names = sorted(s.name for s in topology.systems)
    leaker = data.draw(st.sampled_from(names))
    origin = data.draw(st.sampled_from([x for x in names if x != leaker]))
    the_plan = plan(topology)
    graph = Prediction(Expectation(the_plan)).graph
    prefix = the_plan.routers[origin].prefixes[0]
    expected = {router: tuple(rib[prefix].as_path) if prefix in rib else None
                for router, rib in leaked_after_convergence(the_plan, leaker).items()}
    node = graph.by_name
    outcome = whatif.leak(graph, node[leaker], origins=[node[origin]], show=[node[n] for n in names])
    base = propagate(graph, [node[origin]])
    for router, path in expected.items():
        x = node[router]
        old = None if not base.has_route(x) else base.as_path(x)
        shown = [entry for entry in outcome.shown.get(x, ()) if entry[0] == node[origin]]
        if shown:
            new = shown[0][2]
            assert (None if new is None else tuple(graph.asns[y] for y in new)) == path, router
        else:
            assert old == path, router


def plain_graph(n, seed):
    transit, peering, _ = synthetic(n, seed=seed)
    graph, _ = caida.parse_lines([f"{a}|{b}|-1" for a, b in transit] + [f"{a}|{b}|0" for a, b in peering])
    return graph


@settings(max_examples=8, deadline=None)
@given(n=st.integers(30, 300), seed=st.integers(0, 10**6), data=st.data())
def test_depeering_examines_every_origin_it_changes(n, seed, data):
    graph = plain_graph(n, seed)
    links = [(a, b) for a in range(len(graph)) for b in graph.peers[a] if a < b]
    a, b = data.draw(st.sampled_from(links))
    pruned = whatif.depeer(graph, a, b, show=[a, b])
    everything = whatif._run(whatif.Outcome("all", "", len(graph)), graph, list(range(len(graph))),
                             lambda g: g.remove_link(a, b), [a, b])
    assert (pruned.changed, pruned.lost, pruned.gained) == (everything.changed, everything.lost, everything.gained)
    assert pruned.lost_by_as == everything.lost_by_as
    assert pruned.shown == everything.shown
    assert pruned.origins_examined <= len(graph)


def test_single_homed_customer_cut_off():
    graph = plain_graph(200, 4)
    stub = next(x for x in range(len(graph)) if len(graph.providers[x]) == 1
                and not graph.peers[x] and not graph.customers[x])
    provider = graph.providers[stub][0]
    outcome = whatif.depeer(graph, provider, stub, show=[stub])
    assert outcome.lost_by_as[stub] == len(graph) - 1            # it reaches nobody
    assert outcome.lost_by_origin[stub] == len(graph) - 1        # nobody reaches it
    assert outcome.lost == 2 * (len(graph) - 1)


def test_withdraw_everywhere_and_to_one_neighbor():
    graph = plain_graph(200, 6)
    origin = next(x for x in range(len(graph)) if len(graph.providers[x]) == 2
                  and not graph.customers[x])
    everywhere = whatif.withdraw(graph, origin)
    assert everywhere.lost == len(graph) - 1
    one = whatif.withdraw(graph, origin, [graph.providers[origin][0]])
    assert one.lost == 0 and one.changed > 0
