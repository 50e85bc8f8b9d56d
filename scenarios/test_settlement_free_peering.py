"""Settlement-free peering: why A's traffic to B no longer crosses T.

A and B are regional networks. Each buys transit from the Tier-1 network T,
paying for every bit that crosses its transit link. A and B also exchange a
lot of traffic with each other, so they agree to peer: a direct link and a
BGP session over which each announces only its own (and its customers')
routes, with no money changing hands ("sender keeps all").

What to watch:
- A now has two routes to B's prefix: [T, B] from its provider and [B] from
  its peer. It prefers the peer route: routes from a peer get a higher local
  preference than routes from a provider (peering is free, transit is not),
  and the path is shorter too.
- Packets follow that choice: a traceroute from A's customer to B's crosses
  only A and B, never T.
- Peering is not transit: A does not pass B's routes on to its provider T,
  so T never reaches B through A.
- The bytes follow: counted on the routers' interfaces, A's traffic to B
  crossed A's (paid) transit link while there was no peering, and crosses
  the peering link instead once there is.
"""

from testbed.assertions import (assert_as_path, assert_established, assert_reachable, assert_route,
                                assert_traceroute)

TOPOLOGY = "triangle"


def test_all_sessions_are_established(lab):
    assert_established(lab, "A", "B")
    assert_established(lab, "T", "A")
    assert_established(lab, "T", "B")


def test_a_prefers_the_peering_route_to_b(lab):
    for family in (4, 6):
        assert_as_path(lab, "A", "B", ["B"], family=family)
        assert_as_path(lab, "B", "A", ["A"], family=family)
        route = assert_route(lab, "A", "B", family=family)  # also checks A's kernel table
        peer = lab.plan.routers["A"].neighbor("B")
        assert route["next_hop"] == (peer.address if family == 4 else peer.address6)


def test_a_still_has_the_transit_route_as_backup(lab):
    prefix = lab.prefix_of("B")
    via_t = lab.snapshot("A")["adj_rib_in"][lab.plan.routers["A"].neighbor("T").address]
    assert prefix in via_t, f"A did not receive B's prefix {prefix} from T"
    assert lab.names(via_t[prefix]["as_path"]) == ["T", "B"]


def test_traffic_takes_the_peering_link(lab):
    assert_reachable(lab, "A", "B")
    assert_reachable(lab, "A", "B", family=6)
    assert_traceroute(lab, "A", "B", ["A", "B"])
    assert_traceroute(lab, "B", "A", ["B", "A"])
    assert_traceroute(lab, "A", "B", ["A", "B"], family=6)


def test_peering_is_not_transit(lab):
    # A must not announce its peer's routes to its provider (valley-free).
    towards_t = lab.snapshot("A")["adj_rib_out"][lab.plan.routers["A"].neighbor("T").address]
    assert lab.prefix_of("B") not in towards_t, "A leaks its peer B's prefix to its provider T"
    assert lab.prefix_of("A") in towards_t
    assert_as_path(lab, "T", "B", ["B"])


VOLUME = 1000  # datagrams of 1,000 bytes: 1 MB from A's customer to B's


def _sent_per_link(lab) -> dict[str, int]:
    """Bytes A's router sent on its links to T and to B while A's customer
    sent VOLUME kB to B's."""
    before = {peer: lab.counters("A", peer)["tx_bytes"] for peer in ("T", "B")}
    lab.send("A", "B", packets=VOLUME, size=1000)
    return {peer: lab.counters("A", peer)["tx_bytes"] - before[peer] for peer in before}


def test_peering_takes_the_traffic_off_the_transit_link(lab, report):
    lab.depeer("A", "B")  # first, as if A and B had never peered
    try:
        without = _sent_per_link(lab)
    finally:
        lab.repeer("A", "B")
    with_peering = _sent_per_link(lab)
    report("bytes on A's transit link, without peering", without["T"])
    report("bytes on A's transit link, with peering", with_peering["T"])
    report("bytes on the peering link, with peering", with_peering["B"])
    assert without["T"] >= VOLUME * 1000, without
    assert with_peering["B"] >= VOLUME * 1000, with_peering
    # What is left on the transit link is BGP keepalives, not customer traffic.
    assert with_peering["T"] < VOLUME * 1000 * 0.02, with_peering
