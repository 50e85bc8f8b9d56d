"""Gao-Rexford import and export policy (testbed.bgp.policy) and the route
values it works on (testbed.bgp.route)."""

from __future__ import annotations

import pytest

from testbed.bgp import (
    LOCAL_PREF,
    Neighbor,
    Origin,
    Relationship,
    Route,
    export_route,
    import_route,
    may_export,
    normalise_prefix,
)

LOCAL_ASN = 65001
CUSTOMER = Neighbor("10.0.1.2", 65010, Relationship.CUSTOMER, "10.255.0.10", "10.0.1.1",
                    "fd00:1::1")
PEER = Neighbor("10.0.2.2", 65020, Relationship.PEER, "10.255.0.20", "10.0.2.1",
                "fd00:2::1")
PROVIDER = Neighbor("10.0.3.2", 65030, Relationship.PROVIDER, "10.255.0.30", "10.0.3.1")
INTERNAL = Neighbor("10.0.4.2", LOCAL_ASN, Relationship.INTERNAL, "10.255.0.2", "10.0.4.1",
                    "fd00:4::1")
INTERNAL2 = Neighbor("10.0.5.2", LOCAL_ASN, Relationship.INTERNAL, "10.255.0.3", "10.0.5.1")
BY_REL = {Relationship.CUSTOMER: CUSTOMER, Relationship.PEER: PEER,
          Relationship.PROVIDER: PROVIDER}

PREFIX = "198.51.100.0/24"


def received(path=(65010, 65011), prefix=PREFIX, next_hop="10.0.1.2", **attrs) -> Route:
    return Route(prefix=prefix, next_hop=next_hop, as_path=path, **attrs)


def learned_from(neighbor: Neighbor, path=None, prefix=PREFIX) -> Route:
    path = (neighbor.asn, 65099) if path is None else path
    route = import_route(LOCAL_ASN, neighbor,
                         received(path=path, prefix=prefix, next_hop=neighbor.address))
    assert route.rejected is None, route.rejected
    return route


LOCAL = Route(prefix=PREFIX, next_hop=None)


# -- route values ---------------------------------------------------------------

def test_normalise_prefix():
    assert normalise_prefix("10.1.0.0/16") == "10.1.0.0/16"
    assert normalise_prefix("2001:DB8:0::/32") == "2001:db8::/32"
    for bad in ("10.1.0.1/16", "10.0.0.0/33", "banana", "", None):
        with pytest.raises(ValueError):
            normalise_prefix(bad)


def test_the_fast_ipv4_check_agrees_with_ipaddress():
    import ipaddress
    import random

    from testbed.bgp.route import _fast_ipv4, prefix_sort_key

    def judged(text):
        try:
            net = ipaddress.IPv4Network(text)  # strict: host bits are an error
        except ValueError:
            return None
        if str(net) != text:
            return None  # valid, but not written canonically
        return int(net.network_address), net.prefixlen

    rng = random.Random(7)
    texts = ["0.0.0.0/0", "255.255.255.255/32", "10.1", "10.1/16", "010.0.0.0/8", "10.0.0.0/08",
             "10.0.0.0/+8", "10.0.0.0/ 8", " 10.0.0.0/8", "10.0.0.0/8 ", "10.0.0.0", "10.0.0.0/",
             "1.2.3.4/33", "256.0.0.0/8", "0x0a.0.0.0/8", "1.2.3.4/-1", "::/0", "10.0.0.0/8/8"]
    for _ in range(3000):
        octets = [str(rng.choice([0, 1, 9, 10, 99, 100, 199, 200, 249, 250, 255, 256, rng.randrange(300)]))
                  for _ in range(4)]
        texts.append(".".join(octets) + "/" + str(rng.randrange(35)))
    for text in texts:
        assert _fast_ipv4(text) == judged(text), text
        if judged(text) is not None:
            assert prefix_sort_key(text) == (4, *judged(text), "")


def test_origin_parse():
    assert Origin.parse("igp") is Origin.IGP
    assert Origin.parse("EGP") is Origin.EGP
    assert Origin.parse("incomplete") is Origin.INCOMPLETE
    assert Origin.parse("?") is Origin.INCOMPLETE
    with pytest.raises(ValueError, match="unknown BGP origin 'bgp'"):
        Origin.parse("bgp")


def test_route_json_round_trip():
    route = import_route(LOCAL_ASN, CUSTOMER,
                         received(origin=Origin.EGP, med=7, path=(65010, 65011)))
    data = route.to_json()
    assert data == {
        "prefix": PREFIX, "next_hop": "10.0.1.2", "as_path": [65010, 65011],
        "origin": "egp", "med": 7, "local_pref": 200, "neighbor": "10.0.1.2",
        "neighbor_asn": 65010, "neighbor_router_id": "10.255.0.10",
        "relationship": "customer", "ebgp": True, "rejected": None,
        "communities": [], "large_communities": [], "otc": None, "igp_cost": None,
    }
    assert Route.from_json(data) == route
    assert Route.from_json(LOCAL.to_json()) == LOCAL
    assert Route.from_json({"prefix": PREFIX, "next_hop": "10.0.0.1"}).origin is Origin.IGP


def test_route_family_and_local():
    assert LOCAL.family == 4 and LOCAL.local
    six = Route(prefix="2001:db8::/32", next_hop="fd00::1", neighbor="10.0.0.1")
    assert six.family == 6 and not six.local


# -- import -------------------------------------------------------------------

@pytest.mark.parametrize("neighbor, local_pref", [
    (CUSTOMER, 200), (PEER, 100), (PROVIDER, 50),
])
def test_import_sets_local_pref_by_relationship(neighbor, local_pref):
    # A local_pref sent over eBGP means nothing to us: it is overwritten.
    route = import_route(LOCAL_ASN, neighbor,
                         received(path=(neighbor.asn,), next_hop=neighbor.address,
                                  local_pref=999))
    assert LOCAL_PREF[neighbor.relationship] == local_pref
    assert route.local_pref == local_pref
    assert route.rejected is None
    assert (route.neighbor, route.neighbor_asn, route.neighbor_router_id) == (
        neighbor.address, neighbor.asn, neighbor.router_id)
    assert route.relationship is neighbor.relationship
    assert route.ebgp is True
    assert route.as_path == (neighbor.asn,)


def test_import_over_ibgp_keeps_local_pref_default_100():
    kept = import_route(LOCAL_ASN, INTERNAL, received(path=(65010,), local_pref=200))
    assert kept.local_pref == 200 and kept.ebgp is False and kept.rejected is None
    default = import_route(LOCAL_ASN, INTERNAL, received(path=(65010,)))
    assert default.local_pref == 100
    # An empty path over iBGP is a route originated inside the AS.
    assert import_route(LOCAL_ASN, INTERNAL, received(path=())).rejected is None


def test_import_rejects_as_path_loop():
    route = import_route(LOCAL_ASN, PEER, received(path=(65020, 65001)))
    assert route.rejected == "AS path loop: 65001 in [65020 65001]"
    assert route.neighbor == PEER.address  # still annotated, for the RIB dump
    looped_ibgp = import_route(LOCAL_ASN, INTERNAL, received(path=(65010, 65001)))
    assert looped_ibgp.rejected == "AS path loop: 65001 in [65010 65001]"


def test_import_rejects_path_not_starting_with_neighbor_as():
    route = import_route(LOCAL_ASN, PEER, received(path=(65009, 65020)))
    assert route.rejected == "first AS 65009 is not the neighbor's AS 65020"
    empty = import_route(LOCAL_ASN, PEER, received(path=()))
    assert empty.rejected == "empty AS path from eBGP neighbor AS65020"


def test_import_never_raises_for_bad_routes():
    assert "invalid prefix" in import_route(
        LOCAL_ASN, PEER, received(prefix="10.0.0.1/8", path=(65020,))).rejected
    assert import_route(LOCAL_ASN, PEER,
                        received(next_hop=None, path=(65020,))).rejected == "no next hop"


# -- export: the valley-free matrix ---------------------------------------------

SOURCES = {
    "local": LOCAL,
    "customer": learned_from(CUSTOMER),
    "peer": learned_from(PEER),
    "provider": learned_from(PROVIDER),
}

# (learned from, sent to) -> exported?
MATRIX = {
    ("local", "customer"): True, ("local", "peer"): True, ("local", "provider"): True,
    ("customer", "customer"): True, ("customer", "peer"): True,
    ("customer", "provider"): True,
    ("peer", "customer"): True, ("peer", "peer"): False, ("peer", "provider"): False,
    ("provider", "customer"): True, ("provider", "peer"): False,
    ("provider", "provider"): False,
}


def _other(relationship: Relationship) -> Neighbor:
    # A second neighbor of the same kind, so that "to" is never "from".
    base = BY_REL[relationship]
    return Neighbor("10.0.9.2", base.asn + 5, relationship, "10.255.0.99", "10.0.9.1")


@pytest.mark.parametrize("source, to", sorted(MATRIX))
def test_valley_free_export_matrix(source, to):
    target = _other(Relationship(to))
    assert may_export(SOURCES[source], target) is MATRIX[(source, to)]


def test_never_sent_back_to_the_neighbor_it_came_from():
    assert not may_export(SOURCES["customer"], CUSTOMER)
    # ...even though customer routes go to every other customer.
    assert may_export(SOURCES["customer"], _other(Relationship.CUSTOMER))


def test_never_sent_to_a_neighbor_whose_as_is_in_the_path():
    route = learned_from(CUSTOMER, path=(65010, 65020))
    assert not may_export(route, PEER)
    assert may_export(route, PROVIDER)


def test_rejected_routes_are_never_exported():
    route = import_route(LOCAL_ASN, CUSTOMER, received(path=(65010, 65001)))
    assert route.rejected
    assert not may_export(route, PROVIDER)


def test_ibgp_rules():
    # eBGP-learned routes, whatever their class, go to iBGP neighbors...
    for source in ("local", "customer", "peer", "provider"):
        assert may_export(SOURCES[source], INTERNAL2), source
    # ...but iBGP-learned routes do not (no route reflection).
    from_ibgp = import_route(LOCAL_ASN, INTERNAL, received(path=(65010,), local_pref=200))
    assert not may_export(from_ibgp, INTERNAL2)


@pytest.mark.parametrize("path, local_pref, to_peer", [
    ((), 100, True),            # originated by another router of our AS
    ((65010,), 200, True),      # entered the AS from a customer
    ((65030,), 50, False),      # entered from a provider
    ((65020,), 100, False),     # entered from a peer
])
def test_ibgp_learned_routes_keep_their_class_for_ebgp(path, local_pref, to_peer):
    route = import_route(LOCAL_ASN, INTERNAL, received(path=path, local_pref=local_pref))
    assert may_export(route, _other(Relationship.PEER)) is to_peer
    assert may_export(route, _other(Relationship.CUSTOMER)) is True


def test_ipv6_route_needs_a_local_ipv6_address():
    six = learned_from(CUSTOMER, prefix="2001:db8:10::/48")
    assert may_export(six, PEER)
    assert not may_export(six, PROVIDER)  # PROVIDER has no local_address6
    assert export_route(LOCAL_ASN, six, PEER).next_hop == "fd00:2::1"
    with pytest.raises(ValueError, match="no local IPv6 address"):
        export_route(LOCAL_ASN, six, PROVIDER)


def test_export_over_ebgp_prepends_and_sets_next_hop_self():
    route = import_route(LOCAL_ASN, CUSTOMER,
                         received(path=(65010, 65011), origin=Origin.INCOMPLETE, med=30))
    sent = export_route(LOCAL_ASN, route, PEER)
    assert sent == Route(prefix=PREFIX, next_hop="10.0.2.1", as_path=(65001, 65010, 65011),
                         origin=Origin.INCOMPLETE, med=None, local_pref=None)
    assert sent.neighbor is None and sent.relationship is None and sent.rejected is None
    assert export_route(LOCAL_ASN, LOCAL, PROVIDER).as_path == (65001,)
    assert export_route(LOCAL_ASN, LOCAL, PROVIDER).next_hop == "10.0.3.1"


def test_export_over_ibgp_keeps_path_med_and_local_pref():
    route = import_route(LOCAL_ASN, CUSTOMER, received(path=(65010,), med=30))
    sent = export_route(LOCAL_ASN, route, INTERNAL)
    assert sent == Route(prefix=PREFIX, next_hop="10.0.4.1", as_path=(65010,),
                         origin=Origin.IGP, med=30, local_pref=200)
    assert export_route(LOCAL_ASN, LOCAL, INTERNAL).local_pref == 100
    assert export_route(LOCAL_ASN, LOCAL, INTERNAL).as_path == ()
