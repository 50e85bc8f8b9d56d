"""Route leak: a customer passes one provider's routes to the other.

C buys transit from P1 and P2. Its routers should announce to each provider
only C's own prefixes. One day an engineer at C applies an export policy to
P2 that also lets through the routes C learned from P1 for P1's customers
(leaks of this kind took down large parts of the Internet in 2015, 2017
and 2019). P2 receives from its customer C X's prefix with the path
[C, P1, X].

P2 prefers routes from customers (they pay), so it now sends Y's traffic
for X through C, a small network never built to carry it, instead of
through its Tier-1 provider. That is the leak: a valley in the path
(P1 -> C -> P2 goes down to a customer and up again).

Two defences, each shown here against the leak, which stays configured:

- **RFC 9234 roles and Only-to-Customer (OTC)**: P1 and P2 run BGP roles.
  P1 marks every route it gives its customer C with the OTC attribute
  (value: P1's AS); C, which knows nothing about it, passes the attribute on
  with the leak; P2 sees a route from a customer that carries OTC, so it
  was meant only for customers: a leak, dropped. (ExaBGP carries OTC as a
  generic optional transitive path attribute, type 35, on the wire.)
- **prefix filters**: P2 accepts from C only C's own prefixes, as every
  provider should for its customers.
"""

import pytest

from testbed.assertions import (assert_as_path, assert_forwarding_follows_bgp, assert_no_leak,
                                assert_valley_free, leaks)

TOPOLOGY = "route_leak"
# Routes learned from P1 (AS 64601) whose path is P1 and one customer of
# P1. (Leaking everything would also work, but then BGP has two stable
# states for some prefixes, a "wedgie" (RFC 4264), and which one the lab
# lands in depends on timing; this leak has one outcome.)
LEAK_ALL = {"export": [{"match": {"from_asn": [64601], "as_path": "^64601 [0-9]+$"},
                        "action": "accept"}]}


def filtered(lab) -> dict:
    """The state after P2 filtered C's routes by prefix (C still leaking)."""
    only_c = [lab.prefix_of("C", 4), lab.prefix_of("C", 6)]
    return {"policies": {("C", "P2"): LEAK_ALL, ("P2", "C"): {"import": [
        {"match": {"prefix": only_c}, "action": "accept"}, {"action": "reject"}]}}}


def test_without_the_leak_traffic_goes_through_the_tier1s(lab):
    assert_as_path(lab, "P2", "X", ["T2", "T1", "P1", "X"])
    assert_forwarding_follows_bgp(lab, "Y", "X")
    assert_no_leak(lab)
    assert_valley_free(lab)


def test_the_leak_detours_traffic_through_the_customer(lab, report):
    lab.set_policy("C", "P2", LEAK_ALL)
    assert_as_path(lab, "P2", "X", ["C", "P1", "X"])
    assert_as_path(lab, "P2", "X", ["C", "P1", "X"], family=6)
    path = assert_forwarding_follows_bgp(lab, "Y", "X")
    assert "C" in path, path
    report("Y -> X during the leak", " -> ".join(path))
    found = leaks(lab)
    assert any(line.strip().startswith("C sent") and "to its provider P2" in line for line in found), found
    try:
        assert_valley_free(lab)
    except AssertionError as exc:
        assert "at P2" in str(exc)
    else:
        raise AssertionError("the leaked path at P2 was not reported as a valley")


@pytest.mark.lab_state(policies={("C", "P2"): LEAK_ALL})
def test_rfc9234_only_to_customer_stops_the_leak(lab, report):
    lab.set_policy("P1", "C", {"otc": True})
    lab.set_policy("P2", "C", {"otc": True})
    assert lab.policy("C", "P2") == LEAK_ALL  # C still leaks
    # C received X's route marked Only-to-Customer by P1...
    from_p1 = lab.snapshot("C")["adj_rib_in"][lab.plan.routers["C"].neighbor("P1").address]
    assert from_p1[lab.prefix_of("X")]["otc"] == lab.plan.routers["P1"].asn
    # ...passed it on to P2, which recognised the leak and dropped it.
    from_c = lab.snapshot("P2")["adj_rib_in"][lab.plan.routers["P2"].neighbor("C").address]
    leaked = from_c[lab.prefix_of("X")]
    assert leaked["rejected"] and "RFC 9234" in leaked["rejected"], leaked
    report("P2 on the leaked route", leaked["rejected"])
    assert_as_path(lab, "P2", "X", ["T2", "T1", "P1", "X"])
    assert_as_path(lab, "P2", "X", ["T2", "T1", "P1", "X"], family=6)
    assert "C" not in assert_forwarding_follows_bgp(lab, "Y", "X")
    # C's own routes still reach P2 through C.
    assert_as_path(lab, "P2", "C", ["C"])


@pytest.mark.lab_state(policies={("C", "P2"): LEAK_ALL, ("P1", "C"): {"otc": True}, ("P2", "C"): {"otc": True}})
def test_customer_prefix_filter_stops_the_leak(lab):
    lab.set_policy("P1", "C", None)
    only_c = [lab.prefix_of("C", 4), lab.prefix_of("C", 6)]
    lab.set_policy("P2", "C", {"import": [{"match": {"prefix": only_c}, "action": "accept"},
                                          {"action": "reject"}]})
    assert_as_path(lab, "P2", "X", ["T2", "T1", "P1", "X"])
    assert_as_path(lab, "P2", "C", ["C"])
    from_c = lab.snapshot("P2")["adj_rib_in"][lab.plan.routers["P2"].neighbor("C").address]
    assert from_c[lab.prefix_of("X")]["rejected"] == "rejected by an import term"


@pytest.mark.lab_state(state=filtered)
def test_fixing_the_export_policy_ends_the_leak(lab):
    lab.set_policy("P2", "C", None)
    lab.set_policy("C", "P2", None)
    assert_no_leak(lab)
    assert_valley_free(lab)
    assert_as_path(lab, "P2", "X", ["T2", "T1", "P1", "X"])
