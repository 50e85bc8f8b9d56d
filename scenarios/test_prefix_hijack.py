"""Prefix hijack, and route origin validation (RPKI) that stops it.

In February 2008 a national operator, ordered to block a video site in its
country, announced the site's prefix itself, and its upstream passed the
announcement on to the world. Much of the Internet sent the site's traffic
to the operator for about two hours. Here H plays the operator and V the
video site.

- **Exact-prefix hijack**: H announces V's own /24. Every network now has
  two routes to it and picks by policy and path length: H's provider T2
  prefers its customer H (customers pay), and so does everybody behind T2
  (U) and behind H (Z). T1 and its customers keep the real route. The
  Internet is split.
- **More-specific hijack**: H announces the two /25 halves of the /24. The
  longest prefix wins in every forwarding table whatever BGP prefers, so
  now *everybody*, even T1 and W next to V, sends V's traffic to H.
- **Route origin validation** (RFC 6811): V has published a ROA saying
  only AS 64620 may originate its prefix, at most as a /24. When the Tier-1s
  drop RPKI-invalid routes, H's announcements (wrong origin; too specific)
  die at T2, and the world reaches V again. Only H's own customer Z, whose
  provider H does not validate, is still misled.
"""

import pytest

from testbed.assertions import assert_reachable, assert_unreachable

TOPOLOGY = "hijack"
V4, V6 = "198.51.100.0/24", "2001:db8:100::/48"
HALVES = ["198.51.100.0/25", "198.51.100.128/25"]


def test_before_the_hijack_everyone_reaches_the_video_site(lab):
    for src in ("U", "W", "Z"):
        assert_reachable(lab, src, "V")
        assert lab.as_path(src, V4)[-1] == "V"


def test_exact_prefix_hijack_splits_the_internet(lab, report):
    lab.announce("H", V4)
    lab.announce("H", V6)
    for router in ("T2", "U", "Z", "H"):
        assert lab.as_path(router, V4)[-1:] in (["H"], []), (router, lab.as_path(router, V4))
        assert lab.as_path(router, V6)[-1:] in (["H"], []), (router, lab.as_path(router, V6))
    for router in ("T1", "W"):
        assert lab.as_path(router, V4)[-1] == "V"
    assert_unreachable(lab, "U", "V")
    assert "H" in lab.as_traceroute("U", "V")
    assert_reachable(lab, "W", "V")
    paths = {r: lab.as_path(r, V4) for r in lab.plan.routers if r not in ("H", "V")}
    hijacked = sorted(r for r, path in paths.items() if path and path[-1] == "H")
    assert hijacked == ["T2", "U", "Z"], paths
    report("routers whose best route to V's /24 leads to H", ", ".join(hijacked))


@pytest.mark.lab_state(announced=[("H", V4), ("H", V6)])
def test_more_specific_hijack_captures_everyone(lab, report):
    for half in HALVES:
        lab.announce("H", half)
    for router in ("T1", "W", "T2", "U", "Z"):
        assert lab.as_path(router, HALVES[0])[-1] == "H", router
    assert_unreachable(lab, "W", "V")       # even V's neighbour in the Tier-1's cone
    assert "H" in lab.as_traceroute("W", "V")


@pytest.mark.lab_state(announced=[("H", p) for p in (V4, V6, *HALVES)])
def test_route_origin_validation_stops_the_hijack(lab, report):
    for tier1 in ("T1", "T2"):
        for neighbor in lab.plan.routers[tier1].neighbors:
            lab.set_policy(tier1, neighbor.name, {"rov": True}, wait=False)
    elapsed = lab.wait_converged()
    report("converged after the Tier-1s enabled ROV", f"{elapsed:.3f}", " s")
    from_h = lab.snapshot("T2")["adj_rib_in"][lab.plan.routers["T2"].neighbor("H").address]
    for prefix in [V4, V6, *HALVES]:
        assert from_h[prefix]["rejected"] and "RPKI invalid" in from_h[prefix]["rejected"], from_h[prefix]
    for router in ("T1", "T2", "U", "W"):
        assert lab.as_path(router, V4)[-1] == "V", router
        assert lab.route(router, HALVES[0]) is None, router
    for src in ("U", "W"):
        assert_reachable(lab, src, "V")
        assert_reachable(lab, src, "V", family=6)
    # H does not validate its own announcements: its customer is still misled.
    assert lab.as_path("Z", HALVES[0]) == ["H"]
    assert_unreachable(lab, "Z", "V")
    # V's own announcement is RPKI-valid and kept everywhere.
    assert lab.route("T2", V4)["rejected"] is None
