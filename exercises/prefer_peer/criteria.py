"""Criteria of the exercise prefer_peer (see exercise.yaml)."""

from testbed.assertions import assert_as_path
from testbed.exercise import assert_crosses, criterion


@criterion("your best route to PC goes through Peer",
           hint="the routes to PC from Peer and from T have the same local preference (your "
                "session with Peer sets 50, like transit) and the same length, so the lowest "
                "router id, T's, decides. Give the routes from Peer a higher local preference.")
def peer_for_its_customers(lab):
    assert_as_path(lab, "You", "PC", ["Peer", "PC"])


@criterion("your packets to PC cross the peering link",
           hint="the packets follow your best route; as long as it goes through T, so does the "
                "traffic you pay for.")
def packets_take_the_peering(lab):
    assert_crosses(lab, "You", "PC", ["You", "Peer", "PC"])


@criterion("T is still your way to the rest of the Internet",
           hint="your router has no route to T's network any more: do not reject your "
                "provider's routes, only rank them below the peer's.")
def transit_still_there(lab):
    assert_as_path(lab, "You", "T", ["T"])
