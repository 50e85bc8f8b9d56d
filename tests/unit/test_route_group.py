"""An UPDATE's routes as a ``RouteGroup`` (one set of attributes, many
prefixes) give the engine exactly what the same routes given one by one
give: the actions, every Adj-RIB-In, the Loc-RIB and every Adj-RIB-Out,
whatever the session's import policy (the group is imported once only
where the policy cannot depend on the prefix) and however bad a prefix."""

from __future__ import annotations

import dataclasses

import pytest

from testbed.bgp import BLACKHOLE, Neighbor, Relationship, Route, RouterEngine, parse_policy, parse_roas
from testbed.bgp.route import RouteGroup, with_prefix

ASN = 65001
C, P, I = "10.0.1.2", "10.0.2.2", "10.0.4.2"
ROAS = [{"prefix": "203.0.113.0/24", "asn": 65011}, {"prefix": "198.51.100.0/22", "asn": 65010,
                                                      "max_length": 23}]
PREFIXES = ["203.0.113.0/24", "198.51.100.0/23", "198.51.100.0/24", "10.1.0.0/16",
            "10.1.2.3/16",       # host bits: kept under its text, rejected
            "not a prefix",      # rejected
            "2001:DB8::/32",     # not canonical: normalised
            "2001:db8:1::/48", "203.0.113.0/24"]  # a prefix twice in one UPDATE: the last wins
POLICIES = [None, {"rov": True}, {"local_pref": 150},
            {"import": [{"match": {"prefix": ["198.51.100.0/22 le 24"]}, "action": "reject"}]},
            {"import": [{"match": {"prefix": ["10.0.0.0/8 le 16"]}, "set": {"local_pref": 10}}]},
            {"blackhole": True}]


def engine(policy) -> RouterEngine:
    neighbors = [
        Neighbor(C, 65010, Relationship.CUSTOMER, "10.255.0.10", "10.0.1.1", "fd00::1",
                 policy=parse_policy(policy)),
        Neighbor(P, 65020, Relationship.PEER, "10.255.0.20", "10.0.2.1", "fd00::2"),
        Neighbor(I, ASN, Relationship.INTERNAL, "10.255.0.2", "10.0.4.1", "fd00::4",
                 policy=parse_policy(policy)),
    ]
    return RouterEngine(ASN, "10.255.0.1", neighbors, parse_roas(ROAS), igp={C: 7, I: 12})


def state(e: RouterEngine) -> tuple:
    return (e.loc_rib(), {n: e.adj_rib_in(n) for n in (C, P, I)},
            {n: e.adj_rib_out(n) for n in (C, P, I)}, e.fingerprint())


TEMPLATES = [
    Route("0.0.0.0/0", C, (65010,)),
    Route("0.0.0.0/0", C, (65010, 65011), med=5, communities=(65010 << 16 | 7,)),
    Route("0.0.0.0/0", C, (65010, ASN)),                 # AS path loop: every route rejected
    Route("0.0.0.0/0", C, (65099,)),                     # wrong first AS
    Route("0.0.0.0/0", C, (65010,), communities=(BLACKHOLE,)),
    Route("0.0.0.0/0", I, (65020,), local_pref=120),     # iBGP: IGP cost by next hop
]


@pytest.mark.parametrize("policy", POLICIES, ids=str)
@pytest.mark.parametrize("template", TEMPLATES, ids=str)
def test_a_group_is_received_as_its_routes_one_by_one(policy, template):
    grouped, single = engine(policy), engine(policy)
    for e in (grouped, single):
        e.session_up(C), e.session_up(P), e.session_up(I)
    neighbor = I if template.next_hop == I else C
    group = RouteGroup(template, PREFIXES)
    routes = [dataclasses.replace(template, prefix=prefix) for prefix in PREFIXES]
    assert list(group) == routes and len(group) == len(routes)
    assert grouped.receive(neighbor, group) == single.receive(neighbor, routes)
    assert state(grouped) == state(single)
    # and again over what is there now, with some withdrawn
    group = RouteGroup(with_prefix(template, "0.0.0.0/0"), PREFIXES[::-1])
    assert (grouped.receive(neighbor, group, ["10.1.0.0/16"])
            == single.receive(neighbor, list(group), ["10.1.0.0/16"]))
    assert state(grouped) == state(single)


def test_with_prefix_is_replace():
    route = Route("10.0.0.0/8", C, (65010, 65011), med=5, local_pref=90, neighbor=C, neighbor_asn=65010,
                  relationship=Relationship.CUSTOMER, communities=(1, 2), otc=65010, igp_cost=3)
    copy = with_prefix(route, "10.1.0.0/16")
    assert copy == dataclasses.replace(route, prefix="10.1.0.0/16")
    assert hash(copy) == hash(dataclasses.replace(route, prefix="10.1.0.0/16"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        copy.prefix = "10.2.0.0/16"
