"""Why networks peer: a shorter path and a smaller transit bill.

A and B are regional networks whose customers talk to each other a lot. A
buys transit from the Tier-1 T1, B from T2. Without peering, A's traffic
to B climbs to T1, crosses to T2 and comes down to B: four networks, and A
pays T1 for every byte (typically by the 95th percentile of the Mbit/s on
the transit link), B pays T2 for the same bytes arriving.

With a direct peering, the path is A -> B: fewer AS hops (less latency and
fewer places to fail), and the bytes no longer touch either transit link:
both bills shrink by exactly the traffic the two exchange.
"""

import pytest

from testbed.assertions import assert_as_path, assert_forwarding_follows_bgp

TOPOLOGY = "two_continents"
VOLUME = 2000  # datagrams of 1,000 bytes
MEASURED: dict[str, int] = {}


def _transit_bytes(lab) -> int:
    """Bytes of a VOLUME kB transfer A -> B that crossed A's transit link."""
    before = lab.counters("A", "T1")["tx_bytes"]
    lab.send("A", "B", packets=VOLUME, size=1000)
    return lab.counters("A", "T1")["tx_bytes"] - before


def test_without_peering_the_path_is_long_and_paid(lab, report):
    lab.depeer("A", "B")
    assert_as_path(lab, "A", "B", ["T1", "T2", "B"])
    path = assert_forwarding_follows_bgp(lab, "A", "B")
    assert path == ["A", "T1", "T2", "B"]
    report("AS hops A -> B without peering", len(path) - 1)
    MEASURED["without"] = _transit_bytes(lab)
    report("transit bytes for 2 MB, without peering", MEASURED["without"])
    assert MEASURED["without"] >= VOLUME * 1000


@pytest.mark.lab_state(down=[("A", "B")])
def test_with_peering_the_path_is_short_and_free(lab, report):
    if "without" not in MEASURED:  # run alone: measure what the test before measures
        MEASURED["without"] = _transit_bytes(lab)
    lab.repeer("A", "B")
    assert_as_path(lab, "A", "B", ["B"])
    assert_as_path(lab, "A", "B", ["B"], family=6)
    path = assert_forwarding_follows_bgp(lab, "A", "B")
    assert path == ["A", "B"]
    report("AS hops A -> B with peering", len(path) - 1)
    on_transit = _transit_bytes(lab)
    saved = MEASURED["without"] - on_transit
    report("transit bytes for 2 MB, with peering", on_transit)
    report("transit bytes saved", f"{saved} ({100 * saved / MEASURED['without']:.1f} %)")
    assert saved >= 0.98 * VOLUME * 1000, (MEASURED["without"], on_transit)
