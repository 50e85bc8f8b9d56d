"""Whole-network convergence of engines (testbed.bgp.simulate).

Small networks are built from a list of business relationships with a
deterministic address plan (link i is 10.0.i.0/30 and fd00:0:0:i::/64, the
first named AS takes .1), every AS originates one prefix, and the tests
assert the converged AS paths and next hops router by router.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import replace

import pytest

from testbed.bgp import (
    Announce,
    Neighbor,
    Network,
    Relationship,
    Route,
    RouterEngine,
    Session,
    SessionEnd,
    Withdraw,
    converge,
)
from testbed.errors import NoConvergence, TestbedError

CUSTOMER, PEER, PROVIDER = Relationship.CUSTOMER, Relationship.PEER, Relationship.PROVIDER


def transit(provider: str, customer: str):
    """``provider`` sells transit to ``customer``."""
    return (provider, customer, CUSTOMER, PROVIDER)


def peering(a: str, b: str):
    return (a, b, PEER, PEER)


class Lab:
    """Engines and sessions for ``systems`` (name -> ASN) joined by
    ``links``: (x, y, what y is to x, what x is to y)."""

    def __init__(self, systems: dict[str, int], links, prefixes: dict[str, str],
                 make_engine=RouterEngine):
        router_id = {name: f"10.255.0.{i}" for i, name in enumerate(systems, 1)}
        neighbors: dict[str, list[Neighbor]] = {name: [] for name in systems}
        self.address: dict[tuple[str, str], str] = {}   # (x, y): y's address on x-y
        self.sessions: dict[frozenset, Session] = {}
        for i, (x, y, y_to_x, x_to_y) in enumerate(links, 1):
            x4, y4, x6, y6 = f"10.0.{i}.1", f"10.0.{i}.2", f"fd00:0:0:{i}::1", f"fd00:0:0:{i}::2"
            neighbors[x].append(Neighbor(y4, systems[y], y_to_x, router_id[y], x4, x6))
            neighbors[y].append(Neighbor(x4, systems[x], x_to_y, router_id[x], y4, y6))
            self.address[(x, y)], self.address[(y, x)] = y4, x4
            self.sessions[frozenset((x, y))] = Session(SessionEnd(x, y4), SessionEnd(y, x4))
        self.engines = {name: make_engine(name, systems[name], router_id[name],
                                          neighbors[name]) for name in systems}
        # Originated before any session is up: the actions are dropped, and
        # session_up must re-send them.
        for name, prefix in prefixes.items():
            self.engines[name].originate(prefix)

    def session(self, x: str, y: str) -> Session:
        return self.sessions[frozenset((x, y))]


def _plain(name, asn, router_id, neighbors):
    return RouterEngine(asn, router_id, neighbors)


def routes(engines, router: str) -> dict[str, tuple[tuple[int, ...], str | None]]:
    """Router's Loc-RIB as prefix -> (AS path, next hop)."""
    return {p: (r.as_path, r.next_hop) for p, r in engines[router].loc_rib().items()}


def all_routes(engines) -> dict[str, dict]:
    return {name: routes(engines, name) for name in sorted(engines)}


# -- T provides transit to A and B, A and B peer, C is B's customer ------------------

DIAMOND_AS = {"T": 65000, "A": 65001, "B": 65002, "C": 65003}
DIAMOND_PREFIXES = {"T": "10.100.0.0/16", "A": "10.1.0.0/16", "B": "10.2.0.0/16",
                    "C": "10.3.0.0/16"}
T_PFX, A_PFX, B_PFX, C_PFX = (DIAMOND_PREFIXES[n] for n in "TABC")
A_PFX6 = "2001:db8:1::/48"


def diamond() -> Lab:
    lab = Lab(DIAMOND_AS,
              [transit("T", "A"), transit("T", "B"), peering("A", "B"), transit("B", "C")],
              DIAMOND_PREFIXES, _plain)
    lab.engines["A"].originate(A_PFX6)
    return lab


def test_peer_link_is_preferred_and_carries_only_customer_routes():
    lab = diamond()
    messages = converge(lab.engines, lab.sessions.values())
    assert messages > 0
    t_of_a, b_of_a = lab.address[("A", "T")], lab.address[("A", "B")]
    assert routes(lab.engines, "A") == {
        A_PFX: ((), None),
        A_PFX6: ((), None),
        T_PFX: ((65000,), t_of_a),
        B_PFX: ((65002,), b_of_a),                 # over the peer link, not [T B]
        C_PFX: ((65002, 65003), b_of_a),
    }
    # The IPv6 prefix reaches B with A's IPv6 address on the A-B link.
    assert lab.engines["B"].loc_rib()[A_PFX6].next_hop == "fd00:0:0:3::1"
    assert lab.engines["B"].loc_rib()[A_PFX6].as_path == (65001,)
    # Valley-free: A gives its peer B only its own routes (not T's), and
    # its provider T nothing learned from the peer.
    assert set(lab.engines["B"].adj_rib_in(lab.address[("B", "A")])) == {A_PFX, A_PFX6}
    assert set(lab.engines["T"].adj_rib_in(lab.address[("T", "A")])) == {A_PFX, A_PFX6}
    # C, B's customer, is given the peer route; T reaches C through B.
    assert routes(lab.engines, "C")[A_PFX] == ((65002, 65001), lab.address[("C", "B")])
    assert routes(lab.engines, "T")[C_PFX] == ((65002, 65003), lab.address[("T", "B")])


def test_peer_link_down_falls_back_to_transit_and_back():
    lab = diamond()
    net = Network(lab.engines, lab.sessions.values())
    converged = all_routes(lab.engines)

    assert net.bring_down(lab.session("A", "B")) > 0
    t_of_a = lab.address[("A", "T")]
    assert routes(lab.engines, "A")[B_PFX] == ((65000, 65002), t_of_a)
    assert routes(lab.engines, "A")[C_PFX] == ((65000, 65002, 65003), t_of_a)
    assert routes(lab.engines, "C")[A_PFX] == ((65002, 65000, 65001),
                                                lab.address[("C", "B")])
    assert lab.engines["B"].adj_rib_in(lab.address[("B", "A")]) == {}
    assert net.bring_down(lab.session("A", "B")) == 0   # already down

    # The same state as a network whose peer link never came up.
    fresh = diamond()
    converge(fresh.engines, fresh.sessions.values(),
             up=[s for k, s in fresh.sessions.items() if k != frozenset("AB")])
    assert all_routes(fresh.engines) == all_routes(lab.engines)

    assert net.bring_up(lab.session("A", "B")) > 0
    assert all_routes(lab.engines) == converged
    assert routes(lab.engines, "A")[B_PFX] == ((65002,), lab.address[("A", "B")])


def test_converging_again_with_a_session_down_forgets_what_it_carried():
    lab = diamond()
    converge(lab.engines, lab.sessions.values())
    without_ab = [s for k, s in lab.sessions.items() if k != frozenset("AB")]
    converge(lab.engines, lab.sessions.values(), up=without_ab)
    fresh = diamond()
    converge(fresh.engines, fresh.sessions.values(), up=without_ab)
    assert all_routes(lab.engines) == all_routes(fresh.engines)
    assert routes(lab.engines, "A")[B_PFX][0] == (65000, 65002)


def test_originate_and_withdraw_propagate():
    lab = diamond()
    net = Network(lab.engines, lab.sessions.values())
    assert net.withdraw("C", C_PFX) > 0
    assert all(C_PFX not in routes(lab.engines, name) for name in DIAMOND_AS)
    assert net.originate("C", "10.33.0.0/16") > 0
    assert routes(lab.engines, "A")["10.33.0.0/16"] == ((65002, 65003),
                                                        lab.address[("A", "B")])
    assert net.withdraw("C", C_PFX) == 0    # not originated any more: nothing to do


def test_convergence_is_deterministic():
    first, second = diamond(), diamond()
    assert (converge(first.engines, first.sessions.values())
            == converge(second.engines, second.sessions.values()))
    assert all_routes(first.engines) == all_routes(second.engines)
    for name in DIAMOND_AS:
        for address in first.engines[name].neighbors:
            assert (first.engines[name].adj_rib_out(address)
                    == second.engines[name].adj_rib_out(address))


def test_sessions_that_are_not_up_carry_nothing():
    lab = diamond()
    assert converge(lab.engines, lab.sessions.values(), up=[]) == 0
    assert routes(lab.engines, "A") == {A_PFX: ((), None), A_PFX6: ((), None)}
    assert lab.engines["A"].established() == set()


# -- Tier-1 partition ---------------------------------------------------------------

TIER1_AS = {"T1": 65010, "T2": 65020, "C1": 65011, "C2": 65021, "M": 65030}
TIER1_PREFIXES = {"T1": "10.10.0.0/16", "T2": "10.20.0.0/16", "C1": "10.11.0.0/16",
                  "C2": "10.21.0.0/16", "M": "10.30.0.0/16"}
TIER1_LINKS = [peering("T1", "T2"), transit("T1", "C1"), transit("T2", "C2"),
               transit("T1", "M"), transit("T2", "M")]


def tier1() -> Lab:
    return Lab(TIER1_AS, TIER1_LINKS, TIER1_PREFIXES, _plain)


def test_tier1_depeering_partitions_single_homed_customers():
    lab = tier1()
    net = Network(lab.engines, lab.sessions.values())
    c1, c2, m = TIER1_PREFIXES["C1"], TIER1_PREFIXES["C2"], TIER1_PREFIXES["M"]
    assert routes(lab.engines, "C1")[c2] == ((65010, 65020, 65021),
                                             lab.address[("C1", "T1")])
    assert routes(lab.engines, "M")[c1] == ((65010, 65011), lab.address[("M", "T1")])
    assert routes(lab.engines, "M")[c2] == ((65020, 65021), lab.address[("M", "T2")])

    net.bring_down(lab.session("T1", "T2"))
    # M does not give one provider the other's routes, so nothing bridges.
    assert c2 not in routes(lab.engines, "C1")
    assert c1 not in routes(lab.engines, "C2")
    assert c2 not in routes(lab.engines, "T1")
    assert TIER1_PREFIXES["T2"] not in routes(lab.engines, "T1")
    # The multi-homed customer keeps both halves, and both halves keep it.
    assert routes(lab.engines, "M")[c1] == ((65010, 65011), lab.address[("M", "T1")])
    assert routes(lab.engines, "M")[c2] == ((65020, 65021), lab.address[("M", "T2")])
    assert routes(lab.engines, "C1")[m] == ((65010, 65030), lab.address[("C1", "T1")])
    assert routes(lab.engines, "C2")[m] == ((65020, 65030), lab.address[("C2", "T2")])

    net.bring_up(lab.session("T1", "T2"))
    assert routes(lab.engines, "C1")[c2] == ((65010, 65020, 65021),
                                             lab.address[("C1", "T1")])


def _converge_in_random_order(lab: Lab, up, seed: int) -> None:
    """Deliver messages like real sessions might: FIFO within a session (TCP),
    any interleaving across sessions."""
    rng = random.Random(seed)
    other = {}
    for session in up:
        other[(session.a.router, session.a.neighbor)] = session.b
        other[(session.b.router, session.b.neighbor)] = session.a
    channels: dict[tuple[str, str], deque] = {}

    def queue(router, actions):
        for action in actions:
            if isinstance(action, (Announce, Withdraw)) and (router, action.neighbor) in other:
                channels.setdefault((router, action.neighbor), deque()).append(action)

    for session in sorted(up, key=lambda s: rng.random()):
        for end in (session.a, session.b):
            queue(end.router, lab.engines[end.router].session_up(end.neighbor))
    while any(channels.values()):
        key = rng.choice(sorted(k for k, q in channels.items() if q))
        action = channels[key].popleft()
        end = other[key]
        if isinstance(action, Announce):
            out = lab.engines[end.router].receive(end.neighbor, [action.route], [])
        else:
            out = lab.engines[end.router].receive(end.neighbor, [], [action.prefix])
        queue(end.router, out)


@pytest.mark.parametrize("seed", range(5))
def test_converged_state_does_not_depend_on_message_timing(seed):
    expected = tier1()
    converge(expected.engines, expected.sessions.values())
    shuffled = tier1()
    _converge_in_random_order(shuffled, list(shuffled.sessions.values()), seed)
    assert all_routes(shuffled.engines) == all_routes(expected.engines)


# -- policies with no stable state ------------------------------------------------------

class GadgetEngine(RouterEngine):
    """A router whose import policy ranks whole AS paths, as in Griffin,
    Shepherd and Wilfong's gadgets: ``ranking`` maps a permitted path to
    its local_pref; every other path is refused. Gao-Rexford relationships
    cannot express these preferences, hence the override."""

    def __init__(self, asn, router_id, neighbors, ranking):
        super().__init__(asn, router_id, neighbors)
        self.ranking = ranking

    def import_route(self, neighbor: Neighbor, route: Route) -> Route:
        route = super().import_route(neighbor, route)
        if route.rejected is not None:
            return route
        if route.as_path not in self.ranking:
            return replace(route, rejected=f"path {list(route.as_path)} not permitted")
        return replace(route, local_pref=self.ranking[route.as_path])


GADGET_AS = {"D": 65000, "N1": 65001, "N2": 65002, "N3": 65003}
GADGET_PFX = "203.0.113.0/24"


def gadget(rankings) -> Lab:
    # Each Ni is D's provider; the Ni are each other's customers so that
    # every route they learn may go to every neighbor.
    links = [transit("N1", "D"), transit("N2", "D"), transit("N3", "D"),
             ("N1", "N2", CUSTOMER, CUSTOMER), ("N2", "N3", CUSTOMER, CUSTOMER),
             ("N3", "N1", CUSTOMER, CUSTOMER)]

    def make(name, asn, router_id, neighbors):
        if name == "D":
            return RouterEngine(asn, router_id, neighbors)
        return GadgetEngine(asn, router_id, neighbors, rankings[name])

    return Lab(GADGET_AS, links, {"D": GADGET_PFX}, make)


DIRECT = (65000,)


def test_bad_gadget_never_converges():
    # Each Ni prefers the path through its clockwise neighbor to its direct
    # path: a dispute wheel, so no assignment of routes is stable.
    lab = gadget({"N1": {(65002, 65000): 200, DIRECT: 100},
                  "N2": {(65003, 65000): 200, DIRECT: 100},
                  "N3": {(65001, 65000): 200, DIRECT: 100}})
    with pytest.raises(NoConvergence) as caught:
        converge(lab.engines, lab.sessions.values(), max_messages=3_000)
    message = str(caught.value)
    assert "gave up after 3000 messages" in message
    assert GADGET_PFX in message
    assert isinstance(caught.value, TestbedError)


def test_good_gadget_converges_to_its_unique_stable_state():
    # The same wheel with N3 preferring its direct path is broken: a
    # control case showing that the failure above comes from the policies.
    lab = gadget({"N1": {(65002, 65000): 200, DIRECT: 100},
                  "N2": {(65003, 65000): 200, DIRECT: 100},
                  "N3": {(65001, 65000): 100, DIRECT: 200}})
    converge(lab.engines, lab.sessions.values(), max_messages=3_000)
    assert routes(lab.engines, "N3")[GADGET_PFX] == (DIRECT, lab.address[("N3", "D")])
    assert routes(lab.engines, "N2")[GADGET_PFX] == ((65003, 65000),
                                                     lab.address[("N2", "N3")])
    # N2 announces [N2 N3 D], which N1 does not permit: N1 goes direct.
    assert routes(lab.engines, "N1")[GADGET_PFX] == (DIRECT, lab.address[("N1", "D")])


# -- bad wiring ------------------------------------------------------------------------

def test_sessions_must_match_the_engines():
    lab = diamond()
    ab = lab.session("A", "B")
    wrong_as = Session(ab.a, SessionEnd("C", lab.address[("C", "B")]))
    with pytest.raises(ValueError) as caught:
        converge(lab.engines, [wrong_as])
    assert "expects AS65002" in str(caught.value)
    with pytest.raises(ValueError, match="has no neighbor 10.9.9.9"):
        converge(lab.engines, [Session(SessionEnd("A", "10.9.9.9"), ab.b)])
    with pytest.raises(ValueError, match="not among the sessions"):
        converge(lab.engines, [ab], up=[lab.session("T", "A")])
