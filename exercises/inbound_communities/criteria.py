"""Criteria of the exercise inbound_communities (see exercise.yaml)."""

from testbed.assertions import assert_as_path
from testbed.exercise import criterion


@criterion("R reaches you through P2 and P1, not over your P2 link",
           hint="P2 prefers the route it has directly from you, its customer (local_pref 200), "
                "to the one through its peer P1 (100), however long you make yours: local "
                "preference is compared before path length. P2 acts on 64520:80 (local_pref 80) "
                "in the routes you send it.")
def r_enters_through_p1(lab):
    assert_as_path(lab, "R", "You", ["P2", "P1", "You"])


@criterion("P2 still has your route directly from you (a backup)",
           hint="P2 received no route to your prefix from you: keep announcing it to P2, only "
                "less preferred, or a failure of P1 cuts you off from P2's customers.")
def p2_keeps_a_backup(lab):
    prefix = lab.prefix_of("You")
    address = lab.plan.routers["P2"].neighbor("You").address
    received = lab.snapshot("P2")["adj_rib_in"].get(address, {}).get(prefix)
    assert received is not None and not received.get("rejected"), (
        f"at router P2, nothing accepted for {prefix} from You "
        f"({'rejected: ' + received['rejected'] if received else 'not received'})")
