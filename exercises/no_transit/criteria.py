"""Criteria of the exercise no_transit (see exercise.yaml)."""

from testbed.assertions import assert_as_path
from testbed.exercise import criterion


@criterion("P2 reaches P1 over its own peering, not through you",
           hint="your export to P2 accepts routes you learned from P1, a provider: P2 takes them "
                "as customer routes (local_pref 200) and prefers them to its peering with P1. "
                "Reject routes learned from providers in your export to P2.")
def p2_not_through_you(lab):
    assert_as_path(lab, "P2", "P1", ["P1"])


@criterion("P1 reaches P2 over its own peering, not through you",
           hint="your export to P1 accepts routes you learned from P2, a provider: P1 prefers them "
                "(a customer route) to its peering with P2. Filter the export to P1 as well.")
def p1_not_through_you(lab):
    assert_as_path(lab, "P1", "P2", ["P2"])


@criterion("both providers still carry your prefix",
           hint="a provider has no route to your prefix: your export must still accept your own "
                "routes (a route you originate was learned from nobody).")
def providers_carry_you(lab):
    assert_as_path(lab, "P1", "You", ["You"])
    assert_as_path(lab, "P2", "You", ["You"])
