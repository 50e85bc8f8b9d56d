"""A peering agreement, checked against the network.

Settlement-free peering is a contract. Two clauses appear in most of them,
and both can be checked from the routers:

- **traffic ratio**: the traffic in the heavier direction may be at most
  (say) twice the traffic in the other. Peering is "fair" when both sides
  carry about as much for the other; a network that mostly *sends* (a
  content network) is asked to pay. The ratio is measured here from the
  interface counters of every interconnection between A and X.
- **consistent announcements**: each side announces the same routes at
  every interconnection point. Otherwise the other side cannot hand traffic
  over at the nearest point and must carry it across its own network to the
  one point where the route is heard: the announcer rides for free (see the
  hot-potato scenario).

A and X are present in two cities and peer in both.
"""

import contextlib
import socket

import pytest

from testbed.assertions import (assert_consistent_announcements, assert_traffic_ratio,
                                exchanged_bytes)
from testbed.linux.netns import inside

TOPOLOGY = "two_pops"
MAX_RATIO = 2.0
MB = 1000  # datagrams of 1,000 bytes


@contextlib.contextmanager
def _discarding(lab, *systems: str):
    """A UDP socket on the discard port of each AS's host, so that the
    datagrams are taken without an answer. Else each host answers the first
    ones with ICMP port-unreachable errors (up to six, ~3.5 kB, the kernel's
    burst per peer, refilled one a second), which count on the links too:
    measured first, or alone, 3,000 against 1,000 datagrams came out 2.99:1."""
    sockets = []
    try:
        for system in systems:
            with inside(lab.nodes[lab.host(system).name].pid):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sockets.append(sock)
            sock.bind(("0.0.0.0", 9))
        yield
    finally:
        for sock in sockets:
            sock.close()


def _measure(lab, a_to_x: int, x_to_a: int) -> tuple[int, int]:
    with _discarding(lab, "A", "X"):
        before = exchanged_bytes(lab, "A", "X")
        lab.send("A", "X", packets=a_to_x, size=1000)
        lab.send("X", "A", packets=x_to_a, size=1000)
        after = exchanged_bytes(lab, "A", "X")
    return after[0] - before[0], after[1] - before[1]


def test_balanced_traffic_meets_the_ratio_clause(lab, report):
    sent, received = _measure(lab, 1 * MB, 1 * MB)
    ratio = assert_traffic_ratio(sent, received, MAX_RATIO, "A", "X")
    report("A -> X / X -> A (balanced)", f"{sent} / {received} bytes, {ratio:.2f}:1")
    assert sent >= 1 * MB * 1000 and received >= 1 * MB * 1000


def test_a_heavy_sender_breaks_the_ratio_clause(lab, report):
    sent, received = _measure(lab, 3 * MB, 1 * MB)
    report("A -> X / X -> A (A sends more)", f"{sent} / {received} bytes")
    with pytest.raises(AssertionError, match=r"traffic ratio 3\.\d+:1 exceeds the agreed 2:1.*heavier: A -> X"):
        assert_traffic_ratio(sent, received, MAX_RATIO, "A", "X")


def test_announcements_are_consistent_at_both_points(lab, report):
    for a, b in (("A", "X"), ("X", "A")):
        prefixes = assert_consistent_announcements(lab, a, b)
        assert set(lab.plan.prefixes_of(a)) <= prefixes
    report("A announces at west and east", ", ".join(sorted(assert_consistent_announcements(lab, "A", "X"))))


def test_withholding_routes_at_one_point_is_caught(lab, report):
    mine = list(lab.plan.prefixes_of("A"))
    lab.set_policy("A-east", "X-east", {"export": [{"match": {"prefix": mine}, "action": "reject"}]})
    with pytest.raises(AssertionError, match="at A-east -> X-east: missing") as caught:
        assert_consistent_announcements(lab, "A", "X")
    report("agreement check", str(caught.value).splitlines()[0])
    # The effect X complains about: all its traffic to A must now cross X's
    # own network to the west, whatever the hot-potato choice would be.
    assert lab.router_traceroute("X", "A")[:3] == ["X-east", "X-west", "A-west"]
    lab.set_policy("A-east", "X-east", None)
    assert_consistent_announcements(lab, "A", "X")
