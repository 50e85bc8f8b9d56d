"""Fewer, fuller UPDATEs (``testbed.speaker.packing``): what a speaker's
Adj-RIB-Out sends, built with ExaBGP's own classes (``OutgoingRIB``, the
changes ``handover.make_change`` makes) and read back with ExaBGP's own
UPDATE parser, as the receiving speaker reads it: both families in one
UPDATE with their own next hops and the attributes stock ExaBGP sends,
every UPDATE within the negotiated size, only the negotiated families,
and the peer left with the last change queued for each prefix."""

from __future__ import annotations

import io

import pytest

from testbed.speaker import handover, packing

PEER = "10.0.0.2"
HOP4, HOP6 = "10.0.0.1", "fd00::1"
V4, V6 = "198.51.100.0/24", "2001:db8:64::/48"


def negotiated(families=("ipv4", "ipv6"), msg_size=4096):
    """A session's ``Negotiated`` as ExaBGP fills it for an eBGP session
    with four-octet ASNs and the given families."""
    from exabgp.bgp.message.open.asn import ASN
    from exabgp.bgp.message.open.capability import Negotiated
    from exabgp.bgp.neighbor import Neighbor
    from exabgp.protocol.family import AFI, SAFI

    found = Negotiated(Neighbor())
    found.local_as, found.peer_as, found.asn4 = ASN(65002), ASN(65001), True
    found.families = [(AFI.ipv4 if name == "ipv4" else AFI.ipv6, SAFI.unicast) for name in families]
    found.msg_size = msg_size
    return found


def rib(cache: bool = False):
    from exabgp.protocol.family import AFI, SAFI
    from exabgp.rib.outgoing import OutgoingRIB

    return OutgoingRIB(cache, [(AFI.ipv4, SAFI.unicast), (AFI.ipv6, SAFI.unicast)])


def announce(outgoing, prefix, path=(65002, 65009), med=None):
    hop = HOP6 if ":" in prefix else HOP4
    handover.queue_change(outgoing, handover.make_change(PEER, True, prefix, hop, "igp", path, med, None))


def withdraw(outgoing, prefix, path=None):
    """A withdrawal as the agent sends it: with the attributes last
    announced (``path``), or bare."""
    hop = (HOP6 if ":" in prefix else HOP4) if path else None
    handover.queue_change(outgoing, handover.make_change(PEER, False, prefix, hop, "igp" if path else None,
                                                         path, None, None))


def drain(outgoing, mode="mixed", session=None, include_withdraw=True):
    return [message for message, _ in packing.drain(outgoing, session or negotiated(), True, include_withdraw,
                                                    mode)]


def decode(message, session=None):
    """What the receiving ExaBGP reads: ``(announced {prefix: next hop},
    withdrawn [prefix], attributes {code: text} without NEXT_HOP, fields)``;
    ``fields``: which of withdrawn routes, NLRI, MP_UNREACH_NLRI and
    MP_REACH_NLRI the UPDATE carries."""
    from exabgp.bgp.message import Action
    from exabgp.bgp.message.direction import Direction
    from exabgp.bgp.message.update import Update

    assert message[:16] == b"\xff" * 16 and message[18] == 2
    assert int.from_bytes(message[16:18], "big") == len(message)
    body = message[19:]
    withdrawn_length = int.from_bytes(body[:2], "big")
    attribute_length = int.from_bytes(body[2 + withdrawn_length:4 + withdrawn_length], "big")
    has_nlri = len(body) > 4 + withdrawn_length + attribute_length
    session = session or negotiated()
    session.cached_attributes, session.cached_wire = None, b""
    update = Update.unpack_message(body, Direction.IN, session)
    announced, withdrawn = {}, []
    for nlri in update.nlris:
        if nlri.action == Action.ANNOUNCE:
            announced[nlri.cidr.prefix()] = str(nlri.nexthop)
        else:
            withdrawn.append(nlri.cidr.prefix())
    fields = {name for name, present in (("withdrawn", withdrawn_length > 0), ("nlri", has_nlri),
                                         ("mp_unreach", b"\x0f" in _codes(body, withdrawn_length)),
                                         ("mp_reach", b"\x0e" in _codes(body, withdrawn_length))) if present}
    attributes = {int(code): str(value) for code, value in update.attributes.items() if code != 3}
    return announced, withdrawn, attributes, fields, update


def _codes(body, withdrawn_length) -> bytes:
    """The type codes of the path attributes of an UPDATE body, in order."""
    start = 4 + withdrawn_length
    end = start + int.from_bytes(body[2 + withdrawn_length:start], "big")
    codes, at = b"", start
    while at < end:
        flags, code = body[at], body[at + 1]
        length = int.from_bytes(body[at + 2:at + 4], "big") if flags & 0x10 else body[at + 2]
        codes += bytes((code,))
        at += (4 if flags & 0x10 else 3) + length
    return codes


def test_a_dual_stack_route_goes_in_one_update_with_both_next_hops(exabgp_env):
    outgoing = rib()
    announce(outgoing, V4, med=5)
    announce(outgoing, V6, med=5)
    stock = [decode(m) for m in drain(_copy(outgoing), "stock")]
    (message,) = drain(outgoing)
    announced, withdrawn, attributes, fields, update = decode(message)
    assert announced == {V4: HOP4, V6: HOP6} and withdrawn == []
    assert fields == {"nlri", "mp_reach"}
    assert str(update.attributes[3]) == HOP4  # the IPv4 NEXT_HOP; the IPv6 one in MP_REACH_NLRI
    # the path attributes stock ExaBGP sends, in its two UPDATEs
    assert len(stock) == 2 and all(s[2] == attributes for s in stock)
    assert attributes[2] == "( 65002 65009 )" and attributes[4] == "5"
    # MP_REACH_NLRI first, as RFC 7606 5.1 asks
    assert _codes(message[19:], 0)[:1] == b"\x0e"


def _copy(outgoing):
    """A second RIB with the same changes queued (ExaBGP's drain empties one)."""
    other = rib()
    for change in outgoing.queued_changes():
        handover.queue_change(other, change)
    return other


def test_every_change_of_equal_attributes_shares_updates(exabgp_env):
    outgoing = rib()
    v4 = [f"10.{i}.0.0/16" for i in range(40)]
    v6 = [f"2001:db8:{i + 1:x}::/48" for i in range(40)]
    for prefix in v4 + v6:
        announce(outgoing, prefix)
    announce(outgoing, "192.0.2.0/24", path=(65002, 65010))          # other attributes
    for prefix in ("203.0.113.0/24", "2001:db8:ffff::/48"):
        withdraw(outgoing, prefix, path=(65002, 65011))               # carrying attributes
    withdraw(outgoing, "198.18.0.0/15")                               # bare
    withdraw(outgoing, "2001:db8:fffe::/48")
    decoded = [decode(m) for m in drain(outgoing)]
    assert len(decoded) == 2
    (first, second) = decoded
    assert set(first[0]) == set(v4 + v6) and first[2][2] == "( 65002 65009 )"
    assert set(second[0]) == {"192.0.2.0/24"} and second[2][2] == "( 65002 65010 )"
    # the withdrawals filled the room left beside the announcements
    assert sorted(first[1] + second[1]) == sorted(["203.0.113.0/24", "2001:db8:ffff::/48", "198.18.0.0/15",
                                                   "2001:db8:fffe::/48"])
    assert first[3] == {"withdrawn", "nlri", "mp_unreach", "mp_reach"}
    stock = drain(_refill(), "stock")
    assert len(stock) > 40  # one per IPv6 prefix, then the rest


def _refill():
    outgoing = rib()
    for i in range(40):
        announce(outgoing, f"10.{i}.0.0/16")
        announce(outgoing, f"2001:db8:{i + 1:x}::/48")
    return outgoing


@pytest.mark.parametrize("msg_size", [4096, 65535])
def test_updates_fit_the_negotiated_size_and_carry_every_prefix(exabgp_env, msg_size):
    outgoing = rib()
    v4 = [f"10.{i // 256}.{i % 256}.0/24" for i in range(2000)]
    v6 = [f"2001:db8:{i + 1:x}::/48" for i in range(2000)]
    gone = [f"172.{16 + i // 256}.{i % 256}.0/24" for i in range(500)] + \
        [f"2001:db9:{i + 1:x}::/48" for i in range(500)]
    for prefix in v4 + v6:
        announce(outgoing, prefix)
    for prefix in gone:
        withdraw(outgoing, prefix)
    session = negotiated(msg_size=msg_size)
    messages = drain(outgoing, session=session)
    assert all(len(m) <= msg_size for m in messages)
    announced, withdrawn = {}, []
    for message in messages:
        got = decode(message, negotiated(msg_size=msg_size))
        announced.update(got[0])
        withdrawn += got[1]
    assert announced == {**{p: HOP4 for p in v4}, **{p: HOP6 for p in v6}}
    assert sorted(withdrawn) == sorted(gone)
    # full: no more UPDATEs than the bytes need, give or take one per kind of field
    payload = sum(len(m) - 23 for m in messages)
    assert len(messages) <= payload // (msg_size - 23 - 60) + 2, (len(messages), payload)
    if msg_size > 4096:   # an extended message holds what took several
        assert len(messages) == 1 and len(messages[0]) > 4096


def test_a_session_gets_only_the_families_it_negotiated(exabgp_env):
    outgoing = rib()
    announce(outgoing, V4)
    announce(outgoing, V6)
    withdraw(outgoing, "2001:db8:fffe::/48")
    withdraw(outgoing, "198.18.0.0/15")
    only4 = negotiated(families=("ipv4",))
    (message,) = drain(outgoing, session=only4)
    announced, withdrawn, _, fields, _ = decode(message, negotiated(families=("ipv4",)))
    assert announced == {V4: HOP4} and withdrawn == ["198.18.0.0/15"]
    assert fields == {"withdrawn", "nlri"}
    outgoing = rib()
    announce(outgoing, V4)
    announce(outgoing, V6)
    (message,) = drain(outgoing, session=negotiated(families=("ipv6",)))
    announced, _, attributes, fields, update = decode(message, negotiated(families=("ipv6",)))
    assert announced == {V6: HOP6} and fields == {"mp_reach"}
    assert 3 not in update.attributes  # no IPv4 NEXT_HOP without IPv4 NLRI
    assert attributes[2] == "( 65002 65009 )"


def test_no_withdrawal_on_the_first_send_of_a_session(exabgp_env):
    outgoing = rib()
    announce(outgoing, V4)
    withdraw(outgoing, "198.18.0.0/15")
    (message,) = drain(outgoing, include_withdraw=False)
    assert decode(message)[:2] == ({V4: HOP4}, [])


def test_the_peer_is_left_with_the_last_change_queued_for_each_prefix(exabgp_env):
    """Announce, withdraw, announce again under other attributes, in one
    drain and across drains: the peer, applying the UPDATEs in order, ends
    with what was queued last."""
    peer: dict[str, str] = {}

    def apply(messages):
        for message in messages:
            announced, withdrawn, attributes, _, _ = decode(message)
            for prefix in withdrawn:
                peer.pop(prefix, None)
            for prefix in announced:
                peer[prefix] = attributes[2]

    outgoing = rib()
    for prefix in (V4, V6):
        announce(outgoing, prefix, path=(65002, 1))
        withdraw(outgoing, prefix, path=(65002, 1))
        announce(outgoing, prefix, path=(65002, 2))
    announce(outgoing, "192.0.2.0/24", path=(65002, 2))
    withdraw(outgoing, "192.0.2.0/24", path=(65002, 2))
    apply(drain(outgoing))
    assert peer == {V4: "( 65002 2 )", V6: "( 65002 2 )"}
    for prefix in (V4, V6):
        withdraw(outgoing, prefix, path=(65002, 2))
    announce(outgoing, V6, path=(65002, 3))
    apply(drain(outgoing))
    assert peer == {V6: "( 65002 3 )"}


def test_a_prefix_queued_twice_is_sent_as_exabgp_sends_it(exabgp_env):
    """ExaBGP's own queueing (a text API command) can hold a prefix under
    two attribute sets; such a drain is ExaBGP's, message for message."""
    def queued():
        outgoing = rib()
        for path in ((65002, 1), (65002, 2)):
            outgoing.add_to_rib(handover.make_change(PEER, True, V4, HOP4, "igp", path, None, None))
        announce(outgoing, V6)
        return outgoing

    assert drain(queued()) == drain(queued(), "stock")
    # An announcement, then a bare withdrawal of the same prefix (another,
    # empty, attribute set) queued the ExaBGP way: the peer must end without
    # the route, as ExaBGP's order (announcement's set first) leaves it.
    outgoing = rib()
    outgoing.add_to_rib(handover.make_change(PEER, True, V4, HOP4, "igp", (65002, 1), None, None))
    outgoing.add_to_rib(handover.make_change(PEER, False, V4, None, None, None, None, None))
    announce(outgoing, V6)
    held: set[str] = set()
    for message in drain(outgoing):
        announced, withdrawn, *_ = decode(message)
        held = (held - set(withdrawn)) | set(announced)  # withdrawn routes first, as ExaBGP reads them
    assert held == {V6}


def test_a_route_refresh_is_sent_as_exabgp_sends_it(exabgp_env):
    outgoing = rib(cache=True)
    announce(outgoing, V4)
    announce(outgoing, V6)
    drain(outgoing)
    outgoing.resend(False)
    assert outgoing._refresh_changes
    messages = drain(outgoing)
    assert len(messages) == 2  # ExaBGP's: one UPDATE per change


def test_family_mode_keeps_one_field_per_update(exabgp_env):
    outgoing = rib()
    for i in range(20):
        announce(outgoing, f"10.{i}.0.0/16")
        announce(outgoing, f"2001:db8:{i + 1:x}::/48")
    withdraw(outgoing, "198.18.0.0/15")
    withdraw(outgoing, "2001:db8:fffe::/48", path=(65002, 7))
    decoded = [decode(m) for m in drain(outgoing, "family")]
    assert [d[3] for d in decoded] == [{"withdrawn"}, {"mp_unreach"}, {"nlri"}, {"mp_reach"}]
    assert len(decoded[3][0]) == 20  # the IPv6 prefixes of equal attributes share their UPDATE


def test_the_receiving_agent_takes_a_mixed_update_as_one_event(exabgp_env):
    """ExaBGP's parse of the mixed UPDATE, handed to the agent: every route
    in one ``Received`` (what ExaBGP's JSON of it says), one UPDATE counted,
    one decision, one import per next hop's group of prefixes."""
    import json

    from exabgp.reactor.api.response.json import JSON

    from testbed.agent.agent import Agent
    from testbed.agent.codec import parse_update
    from testbed.agent.transport import Received
    from tests.unit.test_agent_protocol import PROVIDER, config, up

    outgoing = rib()
    v4 = [V4, "203.0.113.0/24"]
    v6 = [V6, "2001:db8:65::/48"]
    for prefix in v4 + v6:
        announce(outgoing, prefix, path=(65001, 65009))
    withdraw(outgoing, "192.0.2.0/24")
    (message,) = drain(outgoing)
    update = decode(message)[4]
    announced, withdrawn = handover.routes_of_update(update)
    assert sorted((r.prefix, r.next_hop, r.as_path) for r in announced) == sorted(
        [(p, HOP4, (65001, 65009)) for p in v4] + [(p, HOP6, (65001, 65009)) for p in v6])
    assert len(announced) == 4 and withdrawn == ["192.0.2.0/24"]

    class Peer(dict):
        uid = "test"

    event = json.loads(JSON("5.0.0").update(Peer({"local-address": PEER, "peer-address": HOP4, "local-as": 65002,
                                                  "peer-as": 65001, "router-id": PEER}),
                                            "receive", update, None, b"", b""))
    assert sorted(parse_update(event["neighbor"]["message"])[0], key=repr) == sorted(announced, key=repr)
    agent = Agent(config(), out=io.StringIO())
    up(agent, PROVIDER)
    decisions, imports = [], []
    receive, import_route = agent.engine.receive, agent.engine.import_route
    agent.engine.receive = lambda *args: decisions.append(args) or receive(*args)
    agent.engine.import_route = lambda *args: imports.append(args) or import_route(*args)
    before = dict(agent.stats)
    agent.receive([Received(PROVIDER, announced, withdrawn)])
    assert len(decisions) == 1 and len(imports) == 2
    assert agent.stats["updates_in"] - before["updates_in"] == 1
    assert agent.stats["routes_in"] - before["routes_in"] == 4
    assert set(v4 + v6) <= set(agent.engine.loc_rib())


def test_an_unknown_mode_is_refused_naming_the_variable():
    with pytest.raises(packing.PackingError, match="TESTBED_UPDATE_PACKING='fast'"):
        packing.mode({"TESTBED_UPDATE_PACKING": "fast"})
    assert packing.mode({}) == "mixed"


def test_only_the_labs_exabgp_speakers_are_sent_mixed_updates():
    """A speaker sends mixed UPDATEs to the neighbors whose routers are
    ExaBGP speakers of the lab (the harness names them in the speaker's
    environment); BIRD, FRR and anyone else get one family per UPDATE."""
    from dataclasses import replace

    from testbed.model.addressing import plan
    from testbed.model.topology import Topology

    topo = Topology("packing-peers")
    t = topo.add_as(64500, "T", ["198.51.100.0/24", "2001:db8:64::/48"], hosts=0)
    for asn, name in ((64501, "A"), (64502, "B")):
        topo.transit(t, topo.add_as(asn, name, hosts=0))
    whole = plan(topo.validate())
    own = {name: r for name, r in whole.routers.items() if name != "B"}  # B runs FRR, say
    environment = packing.peers_environment(whole.routers["T"], replace(whole, routers=own).routers)
    peers = packing.mixed_peers(environment)
    a, b = whole.routers["T"].neighbor("A").address, whole.routers["T"].neighbor("B").address
    assert peers == {a}
    assert packing.session_mode("mixed", a, peers) == "mixed"
    assert packing.session_mode("mixed", b, peers) == "family"
    assert packing.session_mode("stock", a, peers) == "stock"
    assert packing.session_mode("family", a, peers) == "family"
