"""The batch model (all origins at once, numpy) against ``propagate`` on
synthetic CAIDA-shaped graphs, with paid peerings mixed in."""

import random

import pytest
from hypothesis import given, settings, strategies as st

from testbed.internet import batch, caida
from testbed.internet.propagate import propagate
from testbed.internet.synthetic import synthetic


def graph_of(n, seed, paid=0.1):
    transit, peering, _ = synthetic(n, seed=seed)
    graph, _ = caida.parse_lines([f"{a}|{b}|-1" for a, b in transit] + [f"{a}|{b}|0" for a, b in peering])
    rng = random.Random(seed)
    for x in range(len(graph)):
        for q in graph.peers[x]:
            if rng.random() < paid:
                graph.peer_pref[(x, q)] = 90
    return graph


@settings(max_examples=12, deadline=None)
@given(n=st.integers(3, 400), seed=st.integers(0, 10**6))
def test_every_origin_agrees_with_propagate(n, seed):
    graph = graph_of(n, seed)
    for result in batch.all_origins(graph, size=97):
        nh, length = result.next_hop(), result.length()
        for column, origin in enumerate(result.origins.tolist()):
            routing = propagate(graph, [origin])
            assert nh[:, column].tolist() == [-1 if c in (0, 9) else h
                                              for c, h in zip(routing.cls, routing.nh)]
            assert length[:, column].tolist() == routing.length
            assert result.cls[:, column].tolist() == routing.cls


def test_what_it_does_not_handle():
    graph = graph_of(50, 1)
    graph.add_transit(0, 5, partial=True)
    assert batch.supported(graph) == "partial transit"
    with pytest.raises(ValueError, match="partial transit"):
        batch.compile_graph(graph)
