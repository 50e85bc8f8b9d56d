"""Law and policy: who pays whom for the same bytes, sender-keeps-all or sending party pays.

Between peers, the Internet has run on **sender-keeps-all**: each network
bills its own customers and nobody pays for the bytes crossing a peering.
In 2016 South Korea made domestic interconnection **sending party network
pays**: an access network pays the other for the traffic it sends it.
Content cached inside one access network (K1) and watched by the users of
another (K2) suddenly cost K1 for every byte, and K1 turned to the content
network for the money. Facebook, whose cache sat in KT's network, moved
the traffic of SK Broadband's and LG U+'s users to its servers abroad in
late 2016; their users saw pages load slowly, the regulator (KCC) fined
Facebook in 2017, and a Seoul court overturned the fine in 2019. The
rule meant to pay access networks left K2 paying for international
transit instead.

Here C's cache is a customer of K1; K1 and K2 peer; all three buy
international transit from G overseas. The scenario sends the same 300 kB
from C to K2's users three times and bills the bytes measured on each
interconnection (transit: the customer pays its provider per byte either
way; a domestic peering: nothing under sender-keeps-all, the sender pays
the receiver under sending party pays; prices are illustrative units per
MB):

1. sender-keeps-all: the bytes go C -> K1 -> K2; only C pays, its provider K1;
2. sending party pays, same paths: K1 now pays K2 for the same bytes;
3. C reroutes its domestic traffic through its overseas presence to spare
   K1 the fee: K2's users now get C's content through G, and K2 pays G for
   it. K2's path to C's content changes from the domestic peering to the
   international link (where the machine has netem, a link delay on G's
   links would show the latency K2's users saw; this one has none).
"""

from __future__ import annotations

from testbed.assertions import assert_as_path, assert_forwarding_follows_bgp

TOPOLOGY = "law_and_policy"

TRANSIT_PRICE = 2.0   # units per MB, paid by a customer to its provider
SPNP_FEE = 5.0        # units per MB, paid by the sender to the receiver on a domestic peering
DOMESTIC = {"K1", "K2", "C"}
LINKS = [("C", "K1"), ("K1", "K2"), ("C", "G"), ("G", "K2")]  # (sender side, receiver side)
NOISE = 15_000        # bytes a link carries anyway while the traffic is sent
MEASURED: dict[str, dict] = {}


def bill(lab, carried: dict[tuple[str, str], int], regime: str) -> dict[tuple[str, str], float]:
    """(payer, payee) -> amount for bytes ``carried`` over each (sender, receiver) link."""
    owed: dict[tuple[str, str], float] = {}
    for (sender, receiver), count in carried.items():
        if not count:
            continue
        mb = count / 1e6
        relation = next(n.relationship for n in lab.plan.routers[sender].neighbors if n.name == receiver)
        if relation == "customer":      # the receiver is the sender's customer
            payer, payee, amount = receiver, sender, mb * TRANSIT_PRICE
        elif relation == "provider":
            payer, payee, amount = sender, receiver, mb * TRANSIT_PRICE
        elif regime == "sending-party-pays" and {sender, receiver} <= DOMESTIC:
            payer, payee, amount = sender, receiver, mb * SPNP_FEE
        else:
            continue                    # sender keeps all: a peering costs nobody per byte
        owed[(payer, payee)] = owed.get((payer, payee), 0.0) + amount
    return owed


def balance(owed: dict[tuple[str, str], float], network: str) -> float:
    return sum(v for (_, payee), v in owed.items() if payee == network) - \
        sum(v for (payer, _), v in owed.items() if payer == network)


def carry(lab) -> dict[tuple[str, str], int]:
    """Send 300 kB from C's host to K2's and count the bytes each link received."""
    before = {link: lab.counters(link[1], link[0])["rx_bytes"] for link in LINKS}
    assert lab.send("C", "K2", packets=300, size=1000) == 300_000
    carried = {link: lab.counters(link[1], link[0])["rx_bytes"] - before[link] for link in LINKS}
    # BGP keepalives and neighbour discovery cross every link meanwhile: not billed.
    return {link: count if count >= NOISE else 0 for link, count in carried.items()}


def domestic(lab) -> dict[tuple[str, str], int]:
    """The bytes of the first test's transfer (C -> K2 through K1 and the
    domestic peering), measured here when that test did not run first."""
    if "domestic" not in MEASURED:
        MEASURED["domestic"] = carry(lab)
    return MEASURED["domestic"]


def show(report, label: str, owed: dict) -> None:
    for (payer, payee), amount in sorted(owed.items()):
        report(f"{label}: {payer} pays {payee}", f"{amount:.2f}", " units")
    for network in ("C", "K1", "K2", "G"):
        report(f"{label}: balance of {network}", f"{balance(owed, network):+.2f}", " units")


def test_sender_keeps_all(lab, report):
    assert_as_path(lab, "C", "K2", ["K1", "K2"])
    carried = MEASURED["domestic"] = carry(lab)
    assert carried[("K1", "K2")] >= 300_000 and carried[("G", "K2")] == 0, carried
    owed = bill(lab, carried, "sender-keeps-all")
    show(report, "sender keeps all", owed)
    assert set(owed) == {("C", "K1")}, owed   # C pays its provider; the peering costs nobody


def test_sending_party_pays_for_the_same_bytes(lab, report):
    owed = bill(lab, domestic(lab), "sending-party-pays")
    show(report, "sending party pays", owed)
    assert owed[("K1", "K2")] > owed[("C", "K1")], owed   # K1 now loses money on C's cache
    assert balance(owed, "K1") < 0 < balance(owed, "K2")


def test_content_network_reroutes_to_avoid_the_fee(lab, report):
    domestic(lab)  # the bytes before rerouting, compared with at the end
    # C ranks routes through its domestic cache provider below its overseas transit.
    lab.set_policy("C", "K1", {"local_pref": 40})
    assert_as_path(lab, "C", "K2", ["G", "K2"])
    assert_forwarding_follows_bgp(lab, "C", "K2")
    report("K2's users get C's content through", " -> ".join(lab.as_traceroute("C", "K2")))
    carried = carry(lab)
    assert carried[("G", "K2")] >= 300_000 and carried[("K1", "K2")] == 0, carried
    owed = bill(lab, carried, "sending-party-pays")
    show(report, "after rerouting", owed)
    assert ("K1", "K2") not in owed, owed            # no domestic fee any more
    assert balance(owed, "K2") < 0, owed             # K2 pays G for its users' content
    before = bill(lab, MEASURED["domestic"], "sending-party-pays")
    report("K2's balance: before rerouting, after", f"{balance(before, 'K2'):+.2f}, {balance(owed, 'K2'):+.2f}")
    lab.set_policy("C", "K1", {"local_pref": 60})
