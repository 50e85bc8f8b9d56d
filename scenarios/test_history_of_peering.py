"""History of peering: the same customers in three eras of interconnection.

The same seven networks, wired as the Internet was in three eras (the
topologies `history_nap`, `history_ixp` and `history_pni`; the scenario
runs once per era). S1, a university behind the regional network R1, and
S2, a company behind R2, talk to each other and fetch content from C.

- **The NAP era** (mid-1990s). When the NSFNET backbone was retired in
  1995, a few national backbones (B1, B2) exchanged traffic at the Network
  Access Points and the commercial exchanges before them (CIX, MAE-East),
  whose members agreed to exchange traffic without settlement. Everyone
  else bought transit. S1's packets to S2, in the next town, went up to B1,
  across the NAP to B2 and down again: four AS hops, and R2 paid its
  provider for every byte C sent its customers.
- **The IXP era** (2000s and 2010s). Regional exchanges multiplied, with
  route servers that let a member peer with everyone through one session.
  R1, R2 and C peer at the local IXP: S1 reaches S2 in two hops, and C's
  traffic to S2 no longer touches transit.
- **The private-interconnect era** (today). Content networks carry a large
  share of the traffic, and connect to big access networks with dedicated
  private links (PNIs), preferred to the shared IXP port. C's traffic to S2
  crosses the private link; the IXP carries the rest.

What is measured in each era: the AS paths S1 -> S2 and S2 -> C, the
packets' path, and how many of 300 kB sent from C to S2 R2 received over
its transit link, the IXP and the private link.
"""

from __future__ import annotations

import ipaddress

import pytest

from testbed.assertions import assert_as_path, assert_forwarding_follows_bgp, assert_valley_free

TOPOLOGY = ["history_nap", "history_ixp", "history_pni"]

PATHS = {
    "history_nap": {("S1", "S2"): ["R1", "B1", "B2", "R2", "S2"], ("S2", "C"): ["R2", "B2", "B1", "C"]},
    "history_ixp": {("S1", "S2"): ["R1", "R2", "S2"], ("S2", "C"): ["R2", "C"]},
    "history_pni": {("S1", "S2"): ["R1", "R2", "S2"], ("S2", "C"): ["R2", "C"]},
}
SENT = 300 * 1000


def era(lab) -> str:
    return lab.topology.name


@pytest.mark.parametrize("src,dst", [("S1", "S2"), ("S2", "C")])
def test_paths_of_the_era(lab, report, src, dst):
    expected = PATHS[era(lab)][(src, dst)]
    assert_as_path(lab, src, dst, expected)
    report(f"{era(lab)}: AS path {src} -> {dst}", " ".join(expected))
    assert_forwarding_follows_bgp(lab, src, dst)
    assert_valley_free(lab)


def test_where_content_enters_the_access_network(lab, report):
    """R2's next hop towards C: the transit link, the IXP LAN, or the PNI."""
    route = lab.route("R2", lab.prefix_of("C"))
    source = {n.address: n.name for n in lab.plan.routers["R2"].neighbors}.get(route["neighbor"])
    kind = {"B2": "transit link", "RS": "IXP LAN", "C": "private link to C"}.get(source, source)
    if kind == "IXP LAN":  # a route server is transparent: the next hop is C's port on the LAN
        assert ipaddress.ip_address(route["next_hop"]) in ipaddress.ip_network("10.1.0.0/16"), route
    report(f"{era(lab)}: R2 reaches C over", kind)
    wanted = {"history_nap": "transit link", "history_ixp": "IXP LAN", "history_pni": "private link to C"}
    assert kind == wanted[era(lab)], f"R2's route to C: {route}"


def _received(lab) -> dict[str, int]:
    names = [n.name for n in lab.plan.routers["R2"].neighbors]
    ports = {"transit (from B2)": "B2"}
    if "RS" in names:
        ports["IXP port"] = "RS"
    if "C" in names:
        ports["private link to C"] = "C"
    return {label: lab.counters("R2", peer)["rx_bytes"] for label, peer in ports.items()}


def test_transit_bytes_of_the_era(lab, report):
    before = _received(lab)
    sent = lab.send("C", "S2", packets=300, size=1000)
    assert sent == SENT
    after = _received(lab)
    got = {label: after[label] - before[label] for label in after}
    for label, count in got.items():
        report(f"{era(lab)}: bytes R2 received, {label}", count)
    transit = got["transit (from B2)"]
    if era(lab) == "history_nap":
        assert transit >= SENT, f"all of C's traffic should reach R2 through transit: {got}"
    else:
        assert transit < SENT // 20, f"C's traffic should no longer cross R2's transit link: {got}"
        way = "IXP port" if era(lab) == "history_ixp" else "private link to C"
        assert got[way] >= SENT, f"C's traffic should arrive over the {way}: {got}"
        if era(lab) == "history_pni":
            assert got["IXP port"] < SENT // 20, f"the PNI is preferred to the IXP: {got}"
