"""Criteria of the exercise rpki_origin_validation (see exercise.yaml)."""

from testbed.assertions import assert_as_path
from testbed.exercise import assert_crosses, criterion


@criterion("your route to 192.0.2.0/24 leads to Victim",
           hint="your best route to 192.0.2.0/24 comes from Hijacker and ends at AS64666, which "
                "the ROA does not authorise (RPKI invalid). Validate routes on the session where "
                "the invalid route arrives, the one with Hijacker (rov: true).")
def victim_reached(lab):
    assert_as_path(lab, "You", "Victim", ["T", "Victim"])


@criterion("your packets to Victim reach Victim",
           hint="your packets to 192.0.2.0/24 still go to the hijacker: they follow your best "
                "route, which is still the invalid one.")
def packets_reach_the_victim(lab):
    assert_crosses(lab, "You", "Victim", ["You", "T", "Victim"])


@criterion("your peering with Hijacker still carries its own routes",
           hint="you have no route to Hijacker's own prefix from it: origin validation drops "
                "only the invalid route; rejecting everything from a peer throws away the "
                "peering too.")
def peering_still_useful(lab):
    assert_as_path(lab, "You", "Hijacker", ["Hijacker"])
