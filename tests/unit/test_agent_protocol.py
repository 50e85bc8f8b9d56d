"""The route agent's side of the ExaBGP API (testbed.agent.agent), without sockets.

The agent under test is router "R" of AS65002 with a provider (AS65001 at
10.0.0.1), a customer (AS65003 at 10.0.1.2) and a peer (AS65004 at 10.0.2.2).
Events are ExaBGP 5 JSON lines, written out below as ExaBGP 5.0.15 emits
them (``test_templates_are_what_exabgp_emits`` checks that against ExaBGP's
own encoder) and fed through ``Agent.on_api_line`` as the event loop does.
The commands the agent writes back are asserted as exact ExaBGP text.
"""

from __future__ import annotations

import io
import json
import re

import pytest

from testbed.agent.agent import Agent
from testbed.agent.codec import command_for, parse_as_path, parse_update

ASN, ROUTER_ID = 65002, "10.0.0.2"   # ExaBGP reports the local router id in every event
PROVIDER, CUSTOMER, PEER = "10.0.0.1", "10.0.1.2", "10.0.2.2"
PFX, PFX6 = "198.51.100.0/24", "2001:db8:1::/48"

NEIGHBORS = [
    # name, address, address6, asn, relationship, router_id, local_address, local_address6
    ("P", PROVIDER, "fd00::1", 65001, "provider", "10.255.0.1", "10.0.0.2", "fd00::2"),
    ("C", CUSTOMER, "fd00:0:0:1::2", 65003, "customer", "10.255.0.3", "10.0.1.1", "fd00:0:0:1::1"),
    ("Q", PEER, "fd00:0:0:2::2", 65004, "peer", "10.255.0.4", "10.0.2.1", "fd00:0:0:2::1"),
]
BY_ADDRESS = {n[1]: n for n in NEIGHBORS}
KEYS = ("name", "address", "address6", "asn", "relationship", "router_id", "local_address",
        "local_address6")


def config() -> dict:
    """As ``testbed.routers.exabgp_config.agent_config`` writes it."""
    return {
        "router": "R", "asn": ASN, "router_id": ROUTER_ID,
        "prefixes": ["192.0.2.0/24", "2001:db8:2::/48"],
        "control_socket": "/nonexistent/R/agent.sock", "log": "/nonexistent/R/agent.log",
        "neighbors": [dict(zip(KEYS, n)) for n in NEIGHBORS],
    }


# -- ExaBGP 5 event lines ------------------------------------------------------------

HEAD = ('{ "exabgp": "5.0.0", "time": 1795460261.1, "host" : "vm", "pid" : 2996, '
        '"ppid" : 2978, "counter": 3, ')


def _neighbor(peer: str) -> str:
    n = BY_ADDRESS[peer]
    return (f'"neighbor": {{ "address": {{ "local": "{n[6]}", "peer": "{peer}" }}, '
            f'"asn": {{ "local": {ASN}, "peer": {n[3]} }}, "router-id": "{ROUTER_ID}" ')


def state(peer: str, what: str, reason: str | None = None) -> bytes:
    extra = f', "reason": "{reason}"' if reason is not None else ""
    return (HEAD + '"type": "state", ' + _neighbor(peer) + f', "state": "{what}"{extra} }} }}').encode()


def _update(peer: str, message: str) -> bytes:
    return (HEAD + '"type": "update", ' + _neighbor(peer)
            + ', "direction": "receive", "message": { ' + message + " } } }").encode()


def announce(peer: str, prefix: str, next_hop: str, path: list[int], med: int | None = None) -> bytes:
    family = "ipv6 unicast" if ":" in prefix else "ipv4 unicast"
    values = ", ".join(map(str, path))
    attrs = f'"origin": "igp", "as-path": {{"0": {{"element": "as-sequence", "value": [{values}]}}}}'
    if med is not None:
        attrs += f', "med": {med}'
    return _update(peer, f'"update": {{ "attribute": {{ {attrs} }}, "announce": {{ "{family}": '
                         f'{{ "{next_hop}": [ {{ "nlri": "{prefix}" }} ] }} }} }}')


def withdraw(peer: str, prefix: str) -> bytes:
    family = "ipv6 unicast" if ":" in prefix else "ipv4 unicast"
    return _update(peer, f'"update": {{ "withdraw": {{ "{family}": [ {{ "nlri": "{prefix}" }} ] }} }}')


def eor(peer: str, afi: str = "ipv4") -> bytes:
    return _update(peer, f'"eor": {{ "afi" : "{afi}", "safi" : "unicast" }}')


def notification(peer: str, code: int, subcode: int, data: bytes) -> bytes:
    return (HEAD + '"type": "notification", ' + _neighbor(peer)
            + f', "direction": "receive", "notification": {{ "code": {code}, "subcode": {subcode}, '
            f'"data": "0x{data.hex().upper()}", "message": "{data.decode()}" }}  }} }}').encode()


# The update line of the task description, verbatim.
DOCUMENTED_UPDATE = (
    '{ "exabgp": "5.0.0", "time": 1795460261.1, "host" : "vm", "pid" : 2996, "ppid" : 2978, '
    '"counter": 3, "type": "update", "neighbor": { "address": { "local": "10.0.0.2", "peer": '
    '"10.0.0.1" }, "asn": { "local": 65002, "peer": 65001 }, "router-id": "10.0.0.2" , '
    '"direction": "receive", "message": { "update": { "attribute": { "origin": "igp", "as-path": '
    '{"0": {"element": "as-sequence", "value": [65001, 65009]}} }, "announce": { "ipv4 unicast": '
    '{ "10.0.0.1": [ { "nlri": "198.51.100.0/24" } ] } } } } } }')


# -- helpers ---------------------------------------------------------------------------

@pytest.fixture
def agent() -> Agent:
    return Agent(config(), kernel=None, out=io.StringIO())


def sent(agent: Agent) -> list[str]:
    """The commands written to ExaBGP since the last call."""
    out = agent.transport.output
    text = out.getvalue()
    out.seek(0)
    out.truncate()
    return text.splitlines()


def feed(agent: Agent, *lines: bytes) -> list[str]:
    for line in lines:
        agent.on_api_line(line)
    return sent(agent)


def up(agent: Agent, *peers: str) -> None:
    feed(agent, *(state(p, "up") for p in peers))


def loc_rib(agent: Agent) -> dict:
    return agent.handle({"op": "snapshot"})["loc_rib"]


# -- the event lines are real ------------------------------------------------------------

def test_update_template_is_the_documented_line():
    assert announce(PROVIDER, PFX, PROVIDER, [65001, 65009]).decode() == DOCUMENTED_UPDATE


def _exabgp_lines() -> list[tuple[str, bytes, str]]:
    """(kind, our template, ExaBGP's own encoding) of every kind of event used here."""
    from exabgp.bgp.message import Action
    from exabgp.bgp.message.notification import Notify
    from exabgp.bgp.message.update import Update
    from exabgp.bgp.message.update.attribute.aspath import SEQUENCE, ASPath
    from exabgp.bgp.message.update.attribute.attributes import Attributes
    from exabgp.bgp.message.update.attribute.med import MED
    from exabgp.bgp.message.update.attribute.origin import Origin
    from exabgp.bgp.message.update.eor import EOR
    from exabgp.bgp.message.update.nlri.cidr import CIDR
    from exabgp.bgp.message.update.nlri.inet import INET
    from exabgp.protocol.family import AFI, SAFI
    from exabgp.protocol.ip import IP
    from exabgp.reactor.api.response.json import JSON

    class Peer(dict):
        uid = "test"

    peer = Peer({"local-address": "10.0.0.2", "peer-address": PROVIDER, "local-as": ASN,
                 "peer-as": 65001, "router-id": ROUTER_ID})

    def nlri(prefix, next_hop, action):
        ip, length = prefix.split("/")
        made = INET(AFI.ipv6 if ":" in ip else AFI.ipv4, SAFI.unicast, action)
        made.cidr = CIDR(IP.pton(ip), int(length))
        if next_hop:
            made.nexthop = IP.create(next_hop)
        return made

    def attributes(path, med=None):
        made = Attributes()
        made.add(Origin(Origin.IGP))
        made.add(ASPath([SEQUENCE(path)]))
        if med is not None:
            made.add(MED(med))
        return made

    encoder = JSON("5.0.0")
    return [
        ("up", state(PROVIDER, "up"), encoder.up(peer)),
        ("down", state(PROVIDER, "down", "peer reset"), encoder.down(peer, "peer reset")),
        ("connected", state(PROVIDER, "connected"), encoder.connected(peer)),
        ("announce", announce(PROVIDER, PFX, PROVIDER, [65001, 65009]),
         encoder.update(peer, "receive", Update([nlri(PFX, PROVIDER, Action.ANNOUNCE)],
                                                attributes([65001, 65009])), None, b"", b"")),
        ("announce6", announce(PROVIDER, PFX6, "fd00::1", [65001], med=5),
         encoder.update(peer, "receive", Update([nlri(PFX6, "fd00::1", Action.ANNOUNCE)],
                                                attributes([65001], 5)), None, b"", b"")),
        ("withdraw", withdraw(PROVIDER, PFX),
         encoder.update(peer, "receive", Update([nlri(PFX, None, Action.WITHDRAW)], Attributes()),
                        None, b"", b"")),
        ("eor", eor(PROVIDER), encoder.update(peer, "receive", EOR(AFI.ipv4, SAFI.unicast),
                                              None, b"", b"")),
        ("notification", notification(PROVIDER, 6, 2, b"shut down"),
         encoder.notification(peer, "receive", Notify(6, 2, b"shut down"), None, b"", b"")),
    ]


def test_templates_are_what_exabgp_emits():
    volatile = re.compile(r'"time": [0-9.]+, "host" : "[^"]*", "pid" : \d+, "ppid" : \d+, "counter": \d+, ')
    fixed = '"time": 0, "host" : "h", "pid" : 1, "ppid" : 1, "counter": 1, '
    lines = _exabgp_lines()
    assert len(lines) == 8
    for kind, ours, theirs in lines:
        assert volatile.search(theirs), theirs
        assert volatile.sub(fixed, ours.decode()) == volatile.sub(fixed, theirs), kind


# -- parsing -------------------------------------------------------------------------------

def test_parse_as_path():
    assert parse_as_path({"0": {"element": "as-sequence", "value": [65001, 65009]}}) == (65001, 65009)
    assert parse_as_path({"1": {"value": [3]}, "0": {"value": [1, 2]}}) == (1, 2, 3)
    assert parse_as_path({"10": {"value": [10]}, "9": {"value": [9]}}) == (9, 10)   # numeric order
    assert parse_as_path([65001, "65002"]) == (65001, 65002)
    assert parse_as_path({}) == ()


def test_parse_update_of_the_documented_line():
    message = json.loads(DOCUMENTED_UPDATE)["neighbor"]["message"]
    [route], withdrawn = parse_update(message)
    assert (route.prefix, route.next_hop, route.as_path, route.med) == (PFX, PROVIDER, (65001, 65009), None)
    assert withdrawn == []
    message = json.loads(withdraw(PROVIDER, PFX6))["neighbor"]["message"]
    assert parse_update(message) == ([], [PFX6])


# -- commands ---------------------------------------------------------------------------

def test_originated_prefixes_are_announced_to_every_neighbor(agent):
    reply = agent.handle({"op": "originate", "prefix": "192.0.2.0/24"})
    assert sent(agent) == [
        "neighbor 10.0.0.1 announce route 192.0.2.0/24 next-hop 10.0.0.2 origin igp as-path [ 65002 ]",
        "neighbor 10.0.1.2 announce route 192.0.2.0/24 next-hop 10.0.1.1 origin igp as-path [ 65002 ]",
        "neighbor 10.0.2.2 announce route 192.0.2.0/24 next-hop 10.0.2.1 origin igp as-path [ 65002 ]",
    ]
    assert reply["loc_rib_size"] == 1
    agent.handle({"op": "originate", "prefix": "2001:db8:2::/48"})
    assert sent(agent) == [
        "neighbor 10.0.0.1 announce route 2001:db8:2::/48 next-hop fd00::2 origin igp as-path [ 65002 ]",
        "neighbor 10.0.1.2 announce route 2001:db8:2::/48 next-hop fd00:0:0:1::1 origin igp as-path [ 65002 ]",
        "neighbor 10.0.2.2 announce route 2001:db8:2::/48 next-hop fd00:0:0:2::1 origin igp as-path [ 65002 ]",
    ]
    agent.handle({"op": "withdraw", "prefix": "192.0.2.0/24"})
    # A withdrawal carries the attributes last announced (see agent.command_for).
    nh = {PROVIDER: "10.0.0.2", CUSTOMER: "10.0.1.1", PEER: "10.0.2.1"}
    assert sent(agent) == [f"neighbor {a} withdraw route 192.0.2.0/24 next-hop {nh[a]} origin igp as-path [ 65002 ]"
                           for a in (PROVIDER, CUSTOMER, PEER)]


def test_provider_route_goes_to_customers_only(agent):
    up(agent, PROVIDER, CUSTOMER, PEER)
    assert feed(agent, announce(PROVIDER, PFX, PROVIDER, [65001, 65009])) == [
        "neighbor 10.0.1.2 announce route 198.51.100.0/24 next-hop 10.0.1.1 origin igp "
        "as-path [ 65002 65001 65009 ]"]
    route = loc_rib(agent)[PFX]
    assert (route["as_path"], route["next_hop"], route["neighbor"], route["relationship"],
            route["local_pref"]) == ([65001, 65009], PROVIDER, PROVIDER, "provider", 50)
    assert agent.kernel_routes == {PFX: PROVIDER}


def test_peer_route_goes_to_customers_only(agent):
    up(agent, PROVIDER, CUSTOMER, PEER)
    assert feed(agent, announce(PEER, PFX, PEER, [65004])) == [
        "neighbor 10.0.1.2 announce route 198.51.100.0/24 next-hop 10.0.1.1 origin igp as-path [ 65002 65004 ]"]


def test_customer_route_goes_to_everyone_else(agent):
    up(agent, PROVIDER, CUSTOMER, PEER)
    assert feed(agent, announce(CUSTOMER, "203.0.113.0/24", CUSTOMER, [65003, 65030])) == [
        "neighbor 10.0.0.1 announce route 203.0.113.0/24 next-hop 10.0.0.2 origin igp as-path [ 65002 65003 65030 ]",
        "neighbor 10.0.2.2 announce route 203.0.113.0/24 next-hop 10.0.2.1 origin igp as-path [ 65002 65003 65030 ]",
    ]
    assert loc_rib(agent)["203.0.113.0/24"]["local_pref"] == 200


def test_ipv6_route_uses_the_ipv6_next_hop_and_drops_med(agent):
    up(agent, PROVIDER, CUSTOMER, PEER)
    assert feed(agent, announce(PROVIDER, PFX6, "fd00::1", [65001], med=5)) == [
        "neighbor 10.0.1.2 announce route 2001:db8:1::/48 next-hop fd00:0:0:1::1 origin igp as-path [ 65002 65001 ]"]
    route = loc_rib(agent)[PFX6]
    assert (route["next_hop"], route["med"], route["as_path"]) == ("fd00::1", 5, [65001])
    assert agent.kernel_routes == {PFX6: "fd00::1"}


def test_withdraw_is_passed_on(agent):
    up(agent, PROVIDER, CUSTOMER, PEER)
    feed(agent, announce(PROVIDER, PFX, PROVIDER, [65001, 65009]))
    assert feed(agent, withdraw(PROVIDER, PFX)) == [
        "neighbor 10.0.1.2 withdraw route 198.51.100.0/24 next-hop 10.0.1.1 origin igp as-path [ 65002 65001 65009 ]"]
    assert PFX not in loc_rib(agent)
    assert agent.kernel_routes == {}
    assert feed(agent, withdraw(PROVIDER, PFX)) == []   # withdrawing again changes nothing


def test_customer_route_wins_over_provider_route(agent):
    up(agent, PROVIDER, CUSTOMER, PEER)
    feed(agent, announce(PROVIDER, PFX, PROVIDER, [65001, 65009]))
    assert feed(agent, announce(CUSTOMER, PFX, CUSTOMER, [65003, 65009])) == [
        "neighbor 10.0.0.1 announce route 198.51.100.0/24 next-hop 10.0.0.2 origin igp as-path [ 65002 65003 65009 ]",
        "neighbor 10.0.1.2 withdraw route 198.51.100.0/24 next-hop 10.0.1.1 origin igp as-path [ 65002 65001 65009 ]",
        "neighbor 10.0.2.2 announce route 198.51.100.0/24 next-hop 10.0.2.1 origin igp as-path [ 65002 65003 65009 ]",
    ]
    assert loc_rib(agent)[PFX]["neighbor"] == CUSTOMER
    assert agent.kernel_routes == {PFX: CUSTOMER}


def test_end_of_rib_changes_nothing(agent):
    up(agent, PROVIDER)
    generation = agent.generation
    assert feed(agent, eor(PROVIDER), eor(PROVIDER, "ipv6")) == []
    assert agent.errors == []
    assert agent.generation == generation
    assert loc_rib(agent) == {}


def test_route_with_own_asn_is_rejected_with_a_reason(agent):
    up(agent, PROVIDER, CUSTOMER, PEER)
    assert feed(agent, announce(PROVIDER, PFX, PROVIDER, [65001, 65002, 65009])) == []
    snapshot = agent.handle({"op": "snapshot"})
    assert snapshot["adj_rib_in"][PROVIDER][PFX]["rejected"] == "AS path loop: 65002 in [65001 65002 65009]"
    assert PFX not in snapshot["loc_rib"]
    assert snapshot["kernel"] == {}
    assert snapshot["adj_rib_out"][CUSTOMER] == {}


def test_route_not_starting_with_the_neighbor_asn_is_rejected(agent):
    up(agent, PROVIDER, CUSTOMER)
    assert feed(agent, announce(PROVIDER, PFX, PROVIDER, [65009])) == []
    rejected = agent.handle({"op": "snapshot"})["adj_rib_in"][PROVIDER][PFX]["rejected"]
    assert rejected == "first AS 65009 is not the neighbor's AS 65001"


def test_command_for_keeps_med_and_local_pref_when_set():
    from testbed.bgp import Announce, Route, Withdraw
    route = Route(prefix=PFX, next_hop="10.0.4.1", as_path=(65002,), origin="egp", med=7, local_pref=300)
    assert command_for(Announce("10.0.4.2", route)) == (
        "neighbor 10.0.4.2 announce route 198.51.100.0/24 next-hop 10.0.4.1 origin egp as-path [ 65002 ] "
        "med 7 local-preference 300")
    assert command_for(Withdraw("10.0.4.2", PFX6)) == "neighbor 10.0.4.2 withdraw route 2001:db8:1::/48"


# -- sessions ---------------------------------------------------------------------------

def sessions(agent: Agent) -> dict:
    return agent.handle({"op": "summary"})["sessions"]


def test_session_state_and_flaps(agent):
    assert sessions(agent)[PROVIDER]["state"] == "idle"
    feed(agent, state(PROVIDER, "connected"))
    assert sessions(agent)[PROVIDER]["state"] == "connected"
    feed(agent, state(PROVIDER, "up"))
    s = sessions(agent)[PROVIDER]
    assert (s["state"], s["flaps"], s["name"], s["asn"], s["relationship"]) == (
        "established", 0, "P", 65001, "provider")
    feed(agent, state(PROVIDER, "down", "peer reset the connection"))
    s = sessions(agent)[PROVIDER]
    assert (s["state"], s["reason"], s["flaps"]) == ("down", "peer reset the connection", 1)
    feed(agent, state(PROVIDER, "down", "connection refused"))   # not established: no flap
    assert sessions(agent)[PROVIDER]["flaps"] == 1
    feed(agent, state(PROVIDER, "connected"), state(PROVIDER, "up"), state(PROVIDER, "down", "hold timer expired"))
    s = sessions(agent)[PROVIDER]
    assert (s["state"], s["reason"], s["flaps"]) == ("down", "hold timer expired", 2)
    assert sessions(agent)[CUSTOMER]["flaps"] == 0


def test_session_up_sends_the_adj_rib_out(agent):
    agent.handle({"op": "originate", "prefix": "192.0.2.0/24"})
    agent.handle({"op": "originate", "prefix": "2001:db8:2::/48"})
    sent(agent)
    assert feed(agent, state(PEER, "up")) == [
        "neighbor 10.0.2.2 announce route 192.0.2.0/24 next-hop 10.0.2.1 origin igp as-path [ 65002 ]",
        "neighbor 10.0.2.2 announce route 2001:db8:2::/48 next-hop fd00:0:0:2::1 origin igp as-path [ 65002 ]",
    ]


def test_session_down_forgets_the_neighbor_routes(agent):
    up(agent, PROVIDER, CUSTOMER)
    feed(agent, announce(PROVIDER, PFX, PROVIDER, [65001, 65009]))
    assert feed(agent, state(PROVIDER, "down", "peer reset")) == [
        "neighbor 10.0.1.2 withdraw route 198.51.100.0/24 next-hop 10.0.1.1 origin igp as-path [ 65002 65001 65009 ]"]
    snapshot = agent.handle({"op": "snapshot"})
    assert snapshot["adj_rib_in"][PROVIDER] == {}
    assert snapshot["loc_rib"] == {} and snapshot["kernel"] == {}


def test_notification_is_recorded(agent):
    feed(agent, notification(PROVIDER, 6, 2, b"shut down"))
    assert sessions(agent)[PROVIDER]["last_notification"] == {
        "direction": "receive", "code": 6, "subcode": 2, "data": "0x7368757420646F776E",
        "message": "shut down"}


def test_events_of_unknown_peers_are_ignored(agent):
    line = announce(PROVIDER, PFX, PROVIDER, [65001]).replace(b'"peer": "10.0.0.1"', b'"peer": "10.9.9.9"')
    assert b"10.9.9.9" in line
    generation = agent.generation
    assert feed(agent, line) == []
    assert (agent.errors, agent.generation, loc_rib(agent)) == ([], generation, {})


# -- control requests --------------------------------------------------------------------

def test_watch_waits_for_the_generation_to_move(agent):
    generation = agent.handle({"op": "summary"})["generation"]
    assert agent.handle({"op": "watch", "after": generation}) is None
    assert agent.handle({"op": "watch", "after": generation}) is None
    feed(agent, state(PROVIDER, "up"))
    reply = agent.handle({"op": "watch", "after": generation})
    assert reply is not None and reply["generation"] > generation
    assert reply["sessions"][PROVIDER]["state"] == "established"
    assert agent.handle({"op": "watch", "after": reply["generation"]}) is None


def test_snapshot_is_plain_json(agent):
    up(agent, PROVIDER, CUSTOMER)
    feed(agent, announce(PROVIDER, PFX, PROVIDER, [65001, 65009]))
    snapshot = agent.handle({"op": "snapshot"})
    assert json.loads(json.dumps(snapshot)) == snapshot
    assert snapshot["router"] == "R"
    assert snapshot["loc_rib_size"] == 1
    assert sorted(snapshot["adj_rib_in"]) == sorted([PROVIDER, CUSTOMER, PEER])
    assert snapshot["adj_rib_out"][CUSTOMER][PFX]["as_path"] == [65002, 65001, 65009]
    assert snapshot["adj_rib_out"][PEER] == {}


def test_unknown_op_is_an_error(agent):
    assert agent.handle({"op": "frobnicate"}) == {"error": "unknown request 'frobnicate'"}
    assert agent.handle({}) == {"error": "unknown request None"}


def test_admin_request(agent):
    assert agent.handle({"op": "admin", "neighbor": "10.9.9.9", "down": True}) == {
        "error": "no neighbor 10.9.9.9"}
    reply = agent.handle({"op": "admin", "neighbor": PEER, "down": True})
    assert reply["sessions"][PEER]["admin_down"] is True
    assert reply["sessions"][PROVIDER]["admin_down"] is False


# -- robustness ---------------------------------------------------------------------------

def test_malformed_events_are_recorded_not_fatal(agent):
    up(agent, PROVIDER, CUSTOMER)
    generation = agent.generation
    feed(agent, b'{ "exabgp": "5.0.0", "type": "update", "neighbor": ')          # cut short
    feed(agent, announce(PROVIDER, PFX, PROVIDER, [65001]).replace(b'"nlri"', b'"prefix"'))
    feed(agent, announce(PROVIDER, PFX, PROVIDER, [65001]).replace(b'"origin": "igp"', b'"origin": "banana"'))
    feed(agent, b'{"type": "update", "neighbor": "10.0.0.1"}')
    assert len(agent.errors) == 4, agent.errors
    assert agent.errors[0].startswith("event handling failed: JSONDecodeError: ")
    assert agent.errors[1] == "event handling failed: KeyError: 'nlri'"
    assert agent.errors[2].startswith("event handling failed: ValueError: unknown BGP origin 'banana'")
    assert agent.errors[3].startswith("event handling failed: AttributeError: ")
    assert agent.generation == generation + 4
    assert agent.handle({"op": "summary"})["errors"] == agent.errors
    # and the agent still routes
    assert feed(agent, announce(PROVIDER, PFX, PROVIDER, [65001])) == [
        "neighbor 10.0.1.2 announce route 198.51.100.0/24 next-hop 10.0.1.1 origin igp as-path [ 65002 65001 ]"]


def test_non_json_lines_are_ignored(agent):
    generation = agent.generation
    assert feed(agent, b"done", b"", b"   ", b"some text from exabgp") == []
    assert (agent.errors, agent.generation) == ([], generation)


class FakeKernel:
    def __init__(self, fail: bool = False):
        self.calls: list[tuple] = []
        self.fail = fail

    def replace(self, prefix, next_hop):
        self.calls.append(("replace", prefix, next_hop))
        if self.fail:
            raise OSError("Operation not permitted")

    def delete(self, prefix):
        self.calls.append(("delete", prefix))


def test_kernel_is_programmed():
    kernel = FakeKernel()
    agent = Agent(config(), kernel=kernel, out=io.StringIO())
    up(agent, PROVIDER, CUSTOMER)
    feed(agent, announce(PROVIDER, PFX, PROVIDER, [65001]), announce(CUSTOMER, PFX, CUSTOMER, [65003]),
         withdraw(CUSTOMER, PFX), withdraw(PROVIDER, PFX))
    assert kernel.calls == [("replace", PFX, PROVIDER), ("replace", PFX, CUSTOMER),
                            ("replace", PFX, PROVIDER), ("delete", PFX)]


def test_kernel_failure_is_reported_and_routing_goes_on():
    agent = Agent(config(), kernel=FakeKernel(fail=True), out=io.StringIO())
    up(agent, PROVIDER, CUSTOMER)
    assert feed(agent, announce(PROVIDER, PFX, PROVIDER, [65001])) == [
        "neighbor 10.0.1.2 announce route 198.51.100.0/24 next-hop 10.0.1.1 origin igp as-path [ 65002 65001 ]"]
    assert agent.errors == [f"kernel replace {PFX} via {PROVIDER}: Operation not permitted"]
    assert agent.kernel_routes == {}


def test_loc_rib_request_is_the_snapshot_without_the_adj_ribs(agent):
    agent.handle({"op": "originate", "prefix": "192.0.2.0/24"})
    snapshot, light = agent.handle({"op": "snapshot"}), agent.handle({"op": "loc_rib"})
    assert light["loc_rib"] == snapshot["loc_rib"] and "192.0.2.0/24" in light["loc_rib"]
    assert light["sessions"] == snapshot["sessions"] and light["stats"] == snapshot["stats"]
    assert "adj_rib_in" not in light and "adj_rib_out" not in light
