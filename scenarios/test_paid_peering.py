"""Paid peering replacing a depeered settlement-free link.

A and B are Tier-1 networks: they buy transit from nobody and peer with each
other for free. B decides the traffic is too unbalanced and depeers. Since
neither has a provider, their single-homed customers CA and CB are cut off
from each other (P, which peers with both, does not carry traffic between
its peers). After a while A agrees to *pay* B for the peering: the same
session comes back, but now it costs A money.

What changes, besides the bill: A's routers should use the paid link only
where no free path exists. A gives routes from the paid peer a local
preference of 90 (a free peer's routes get 100, a provider's 50; this is
what ``Topology.paid_peering`` does). X is reachable both through the paid
peer B and through the free peer P, with paths of the same length: before,
A sent X's traffic through B (a tie broken by router id); now it goes
through P, and only CB's traffic, which has no other way, uses the paid
link.
"""

import pytest

from testbed.assertions import assert_as_path, assert_reachable, assert_unreachable

TOPOLOGY = "paid_peering"
PAID = {"local_pref": 90}  # A's side: routes from the peer it pays


def test_settlement_free_peering_reaches_everything(lab):
    assert_reachable(lab, "CA", "CB")
    assert_as_path(lab, "A", "X", ["B", "X"])  # a tie with [P, X], broken by router id


def test_depeering_partitions_the_single_homed_customers(lab):
    lab.depeer("B", "A")
    assert_unreachable(lab, "CA", "CB")
    assert_unreachable(lab, "CA", "CB", family=6)
    assert lab.route("A", "CB") is None
    assert_as_path(lab, "A", "X", ["P", "X"])


@pytest.mark.lab_state(down=[("B", "A")])
def test_paid_peering_restores_reachability_at_a_price(lab, report):
    lab.set_policy("A", "B", PAID, wait=False)
    elapsed = lab.repeer("B", "A")
    report("paid peering up and converged in", f"{elapsed:.3f}", " s")
    assert_reachable(lab, "CA", "CB")
    assert_reachable(lab, "CA", "CB", family=6)
    assert_as_path(lab, "A", "CB", ["B", "CB"])
    assert lab.route("A", "CB")["local_pref"] == 90
    # Where a free path exists, A avoids the paid one.
    assert_as_path(lab, "A", "X", ["P", "X"])
    assert_as_path(lab, "A", "X", ["P", "X"], family=6)
    # B, which is paid, sees nothing different.
    assert lab.route("B", "CA")["local_pref"] == 100
