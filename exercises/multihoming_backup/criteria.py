"""Criteria of the exercise multihoming_backup (see exercise.yaml)."""

from testbed.assertions import assert_as_path, assert_reachable
from testbed.exercise import criterion


@criterion("the Internet (X) reaches you through P1",
           hint="X has two customer routes to you, [P1, You] and [P2, You], equal in local "
                "preference and length, so the lowest router id decides, and P2's is lower. "
                "Make the path through P2 longer: prepend your AS towards P2.")
def inbound_primary(lab):
    assert_as_path(lab, "X", "You", ["P1", "You"])


@criterion("you reach R through P1",
           hint="your router has two transit routes to R of equal local preference (50) and "
                "length; the tie goes to P2's lower router id. Lower the local preference of "
                "the routes P2 sends you.")
def outbound_primary(lab):
    assert_as_path(lab, "You", "R", ["P1", "X", "R"])


@criterion("with the P1 session down, you and R still reach each other through P2",
           hint="with P1 gone you had no path through P2: a backup must stay in the table, "
                "less preferred, not be rejected (in either direction).")
def backup_works(lab):
    lab.depeer("You", "P1")
    try:
        path = lab.as_path("You", "R")
        assert path and path[0] == "P2", (
            f"with the session to P1 down, your router's path to R is {path or 'missing'}")
        path = lab.as_path("R", "You")
        assert path and "P2" in path, f"with the session to P1 down, R's path to you is {path or 'missing'}"
        assert_reachable(lab, "R", "You")
    finally:
        lab.repeer("You", "P1")
