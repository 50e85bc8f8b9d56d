"""Criteria of the exercise route_server (see exercise.yaml)."""

from testbed.assertions import assert_as_path
from testbed.exercise import criterion


@criterion("A reaches you over the exchange, through the route server",
           hint="A has no route to you from the route server: your announcement to RS must "
                "still reach A. 0:PEER-AS keeps one member out, 0:64700 keeps everyone out.")
def a_over_the_ixp(lab):
    assert_as_path(lab, "A", "You", ["You"])


@criterion("B reaches you through T, not over the exchange",
           hint="B still receives your route from the route server (a path of [You], preferred "
                "as a peer route to T's transit route): tag what you send to RS with 0:64520, "
                "'do not announce to AS64520' (64700:64520 means 'announce to AS64520').")
def b_not_over_the_ixp(lab):
    assert_as_path(lab, "B", "You", ["T", "You"])
