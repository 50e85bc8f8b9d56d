"""The IPv6 partition: two networks that peer for IPv4 but not for IPv6.

From 2009 on, two large backbones (Cogent and Hurricane Electric) exchanged
IPv4 traffic but never agreed to peer for IPv6, and neither would buy IPv6
transit from anyone: each saw itself as a Tier-1 for IPv6. Their
single-homed customers could reach each other over IPv4 and not at all over
IPv6: the IPv6 Internet was split in two, and it still is.

Here C and H have one BGP session that carries both families, but each
side's export policy refuses IPv6 routes on it. What to watch:

- CC (C's customer) reaches HC (H's customer) over IPv4 and not over IPv6:
  C has no IPv6 route to HC at all, it is not a matter of a slow path.
- D, which buys transit from both, reaches everybody in both families.
  Buying from both sides is how the rest of the Internet copes.
- D does not fix the split for the others: as a customer it does not carry
  traffic between its providers (valley-free).
- When the two finally agree to peer for IPv6, the partition heals.
"""

from testbed.assertions import (assert_no_route, assert_reachability, assert_reachable,
                                assert_unreachable, assert_valley_free)

TOPOLOGY = "ipv6_dispute"


def test_ipv4_works_between_everyone(lab):
    assert_reachability(lab, family=4)


def test_ipv6_is_partitioned(lab, report):
    assert_unreachable(lab, "CC", "HC", family=6)
    assert_unreachable(lab, "HC", "CC", family=6)
    assert_no_route(lab, "C", "HC", family=6)
    assert_no_route(lab, "H", "CC", family=6)
    # Everything on C's side is cut off from everything on H's, and only that.
    split = {(x, y): False for left, right in ((("C", "CC"), ("H", "HC")), (("H", "HC"), ("C", "CC")))
             for x in left for y in right}
    matrix = assert_reachability(lab, family=6, expected=split)
    report("IPv6 pairs that cannot talk", sum(not ok for ok in matrix.values()))


def test_a_customer_of_both_reaches_both(lab):
    for family in (4, 6):
        assert_reachable(lab, "D", "CC", family=family)
        assert_reachable(lab, "D", "HC", family=family)
    assert_valley_free(lab)


def test_peering_for_ipv6_heals_the_partition(lab, report):
    lab.set_policy("C", "H", None, wait=False)
    elapsed = lab.set_policy("H", "C", None)
    report("partition healed, routing converged in", f"{elapsed:.3f}", " s")
    assert_reachability(lab, family=6)
