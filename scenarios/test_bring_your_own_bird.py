"""Bring your own router: a BIRD configuration tested among ExaBGP networks.

R, a regional network, runs BIRD 2 with the configuration its team wrote
(``topologies/configs/regional.bird.j2``: prefix lists and an AS-path
filter on its customer C, bogon and own-prefix filters, communities that
tag where each route came from and decide what goes to upstreams and
peers, max-prefix limits); the lab fills in its addresses. Everything
around it is the testbed's own: T1 and T2 (Tier-1s), P (R's peer, T2's
customer) and C (R's customer) run ExaBGP with the relationship policy,
and the same relationship assertions read R through birdc.

The lab runs with the team's file, and a second one with that file changed
in one line, the kind of copy-and-paste slip that reaches production
(``regional-leak.bird.j2``: the filter for routes from the peer adds the
customer tag). With the slip, R announces P's routes to its upstreams;
T1 prefers them (a customer route) over the one through its peer T2, and
the assertions name the leak and the valley.
"""

import importlib.util
from pathlib import Path

import pytest

from testbed.assertions import (assert_as_path, assert_established, assert_forwarding_follows_bgp,
                                assert_no_leak, assert_session_down, assert_valley_free)

_path = Path(__file__).parent.parent / "topologies" / "bird_regional.py"
_spec = importlib.util.spec_from_file_location("bird_regional_topology", _path)
regional = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(regional)

TOPOLOGY = regional.build()


def test_the_two_configurations_differ_in_one_line():
    ours = regional.CONFIG.read_text().splitlines()
    slip = regional.LEAKY_CONFIG.read_text().splitlines()
    assert len(ours) == len(slip)
    assert sum(1 for a, b in zip(ours, slip) if a != b) == 1


def test_the_teams_configuration_passes_the_relationship_assertions(lab):
    assert_valley_free(lab)
    assert_no_leak(lab)
    assert_as_path(lab, "T1", "P", ["T2", "P"])
    assert_forwarding_follows_bgp(lab, "T1", "P")


@pytest.mark.emulation
def test_the_one_line_slip_is_caught_as_a_leak(report):
    from testbed.lab import Lab

    with Lab(regional.build(regional.LEAKY_CONFIG, name="bird_regional_leak")) as lab:
        with pytest.raises(AssertionError, match=r"R sent 192\.0\.2\.0/24 .*learned from its peer.* to its "
                                                 r"provider T1") as leak:
            assert_no_leak(lab)
        with pytest.raises(AssertionError, match=r"at T1: 192\.0\.2\.0/24 via R P: R gave T1 \(its "
                                                 r"provider\) a route it learned from a peer"):
            assert_valley_free(lab)
        # T1 now sends P's traffic through R, a customer network.
        assert_as_path(lab, "T1", "P", ["R", "P"])
        assert assert_forwarding_follows_bgp(lab, "T1", "P") == ["T1", "R", "P"]
    report("leak caught", str(leak.value).splitlines()[1].strip())


def test_bird_filters_what_the_customer_may_send(lab):
    # Not in C's prefix list: R drops it; R's other neighbours never see it.
    lab.announce("C", "198.18.7.0/24")
    assert lab.route("R", "198.18.7.0/24") is None
    assert lab.route("T1", "198.18.7.0/24") is None
    # R keeps what it filtered (import keep filtered), and says so.
    held = lab.snapshot("R")["adj_rib_in"][lab.plan.routers["R"].neighbor("C").address]
    assert held["198.18.7.0/24"]["rejected"] == "rejected by the import filter"
    # C's own prefix still goes everywhere, with the path R's AS-path filter allows.
    assert_as_path(lab, "T1", "C", ["R", "C"])
    lab.withdraw("C", "198.18.7.0/24")


def test_a_max_prefix_limit_shuts_the_customer_session_until_repeered(lab):
    assert_established(lab, "R", "C")
    for i in range(11):  # R allows C 10 routes (import limit 10 action disable)
        lab.announce("C", f"198.18.{16 + i}.0/24", wait=False)
    lab.wait_converged()
    assert_session_down(lab, "R", "C")
    assert lab.route("T1", "C") is None
    for i in range(11):
        lab.withdraw("C", f"198.18.{16 + i}.0/24", wait=False)
    lab.repeer("R", "C")
    assert_established(lab, "R", "C")
    assert_as_path(lab, "T1", "C", ["R", "C"])
