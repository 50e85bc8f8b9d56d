"""Criteria of the exercise max_prefix (see exercise.yaml)."""

from testbed.assertions import assert_as_path, assert_established, assert_session_down
from testbed.exercise import criterion


@criterion("your traffic to BigT goes through T",
           hint="Leaky sends you BigT's routes (a leak) and you prefer them: a peer's route has "
                "local_pref 100, your provider's 50. A maximum-prefix limit on the session with "
                "Leaky, a little above the 2 routes it normally sends, stops that.")
def bigt_not_through_leaky(lab):
    assert_as_path(lab, "You", "BigT", ["T", "BigT"])


@criterion("the session with Leaky was closed by the limit",
           hint="the session with Leaky is still up while it leaks: its limit must be below the "
                "number of routes it sends now and above the 2 it normally sends.")
def leaky_session_closed(lab):
    assert_session_down(lab, "You", "Leaky")


@criterion("your transit session with T stays up",
           hint="your session with T is down: T sends you every route it has, far more than 2; "
                "a limit belongs on each session at that neighbor's own usual count.")
def transit_untouched(lab):
    assert_established(lab, "You", "T")
