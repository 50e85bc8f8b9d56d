"""The in-process transport (testbed.speaker.inprocess) means exactly what the text
and JSON it replaces mean: every command the agent writes becomes the
ExaBGP change ExaBGP's own parser makes of it, and every UPDATE becomes the
routes the agent reads from ExaBGP's own JSON of it; anything else is left
to the text/JSON way. Also the netlink messages of the kernel table."""

from __future__ import annotations

import dataclasses
import io
import json
import os

import pytest

from testbed.agent import codec
from testbed.agent.agent import Agent
from testbed.agent.codec import command_for, parse_update
from testbed.speaker import handover, inprocess
from testbed.bgp import Announce, Origin, Route, Withdraw
from testbed.linux.routes import BLACKHOLE, link_changes, nexthop_message, parse_acks, parse_route, route_message

ROUTES = [
    Route(prefix="198.51.100.0/24", next_hop="10.0.0.1", as_path=(65001, 65009), origin=Origin.IGP),
    Route(prefix="198.51.100.0/24", next_hop="10.0.0.1", as_path=(), origin=Origin.EGP, med=7),
    Route(prefix="2001:db8:1::/48", next_hop="fd00::1", as_path=(65001,), origin=Origin.INCOMPLETE,
          med=0, local_pref=200),
    Route(prefix="10.0.0.0/8", next_hop="10.0.0.1", as_path=(4200000001, 65001), origin=Origin.IGP,
          local_pref=50),
]


def commands() -> list[str]:
    lines = []
    for route in ROUTES:
        lines.append(command_for(Announce("10.0.0.2", route)))
        lines.append(command_for(Withdraw("10.0.0.2", route.prefix), route))
        lines.append(command_for(Withdraw("10.0.0.2", route.prefix)))
    return lines


@pytest.fixture(scope="module")
def exabgp_api(exabgp_env):
    """ExaBGP's API command parser, as a speaker runs it."""
    from exabgp.reactor.api import API

    return API(None)


def test_commands_the_agent_writes_are_parsed():
    for line in commands():
        parsed = codec.parse_command(line)
        assert parsed is not None, line
        assert parsed[0] == "10.0.0.2"
    assert codec.parse_command(command_for(Announce("10.0.0.2", ROUTES[2]))) == (
        "10.0.0.2", True, "2001:db8:1::/48", "fd00::1", "incomplete", (65001,), 0, 200)
    assert codec.parse_command("neighbor 10.0.0.2 withdraw route 198.51.100.0/24") == (
        "10.0.0.2", False, "198.51.100.0/24", None, None, None, None, None)


@pytest.mark.parametrize("line", [
    "neighbor 10.0.0.2 announce route 198.51.100.0/24 next-hop 10.0.0.1 origin igp as-path [ 65001 ] "
    "community [ 65001:1 ]",
    "neighbor 10.0.0.2 announce route 198.51.100.0/24",                       # no next hop
    "neighbor 10.0.0.2 announce route 2001:db8::/32 next-hop 10.0.0.1 origin igp as-path [ ]",
    "neighbor 10.0.0.2 teardown 2",
    "announce route 198.51.100.0/24 next-hop 10.0.0.1 origin igp as-path [ ]",
    "",
])
def test_anything_else_is_left_to_exabgp(line):
    assert codec.parse_command(line) is None


def test_changes_are_what_exabgp_parses(exabgp_api):
    next_hops: dict = {}  # shared between the changes, as in one batch
    extra = [Route(prefix=prefix, next_hop="10.0.0.1", as_path=(65001,))  # multicast ranges, edges
             for prefix in ("224.0.0.0/4", "239.1.0.0/16", "223.255.255.0/24", "240.0.0.0/4", "0.0.0.0/0")]
    for line in commands() + [command_for(Announce("10.0.0.2", route)) for route in extra]:
        parsed = codec.parse_command(line)
        ours = handover.make_change(*parsed)
        batched = handover.make_change(*parsed, next_hops=next_hops)
        assert (batched.index(), batched.extensive()) == (ours.index(), ours.extensive()), line
        command = line.split(" ", 2)[2]               # what API.api_route gets
        (theirs,) = exabgp_api.api_route(command)
        if not parsed[1]:
            from exabgp.bgp.message import Action
            from exabgp.bgp.message.update.attribute import NextHop
            from exabgp.protocol.ip import NoNextHop

            theirs.nlri.action = Action.WITHDRAW          # as withdraw_route does
            if theirs.nlri.nexthop is NoNextHop:
                theirs.nlri.nexthop = NextHop("0.0.0.0")
        else:
            from exabgp.bgp.message import Action

            theirs.nlri.action = Action.ANNOUNCE
        assert ours.nlri.action == theirs.nlri.action, line
        assert ours.index() == theirs.index(), line
        assert ours.extensive() == theirs.extensive(), line
        assert ours.attributes.index() == theirs.attributes.index(), line
        assert str(ours.nlri.nexthop) == str(theirs.nlri.nexthop), line
        assert list(ours.attributes) == list(theirs.attributes), line  # same attributes, same order
        assert ours.nlri.family().afi_safi() == theirs.nlri.family().afi_safi()
        # built as ExaBGP builds it: the same attributes, set in the same order, of the same values
        assert type(ours.nlri) is type(theirs.nlri), line
        assert list(vars(ours.nlri)) == list(vars(theirs.nlri)), line
        assert (ours.nlri.afi, ours.nlri.safi, ours.nlri.path_info) == (
            theirs.nlri.afi, theirs.nlri.safi, theirs.nlri.path_info), line
        assert ours.nlri.afi is theirs.nlri.afi and ours.nlri.safi is theirs.nlri.safi, line


def _peer():
    class Peer(dict):
        uid = "test"

    return Peer({"local-address": "10.0.0.2", "peer-address": "10.0.0.1", "local-as": 65002,
                 "peer-as": 65001, "router-id": "10.0.0.2"})


def _update(lines, exabgp_api):
    """An ExaBGP Update of the routes of ``lines`` (parsed by ExaBGP)."""
    from exabgp.bgp.message.update import Update

    changes = [exabgp_api.api_route(line.split(" ", 2)[2])[0] for line in lines]
    from exabgp.bgp.message import Action

    for line, change in zip(lines, changes):
        change.nlri.action = Action.ANNOUNCE if " announce " in line else Action.WITHDRAW
    return Update([c.nlri for c in changes], changes[0].attributes)


def test_updates_read_as_from_exabgps_json(exabgp_api):
    from exabgp.reactor.api.response.json import JSON

    encoder = JSON("5.0.0")
    for route in ROUTES:
        for lines in ([command_for(Announce("10.0.0.2", route))],
                      [command_for(Announce("10.0.0.2", route)),
                       command_for(Announce("10.0.0.2", dataclasses.replace(route, prefix=_other(route))))],
                      [command_for(Withdraw("10.0.0.2", route.prefix), route)]):
            update = _update(lines, exabgp_api)
            event = json.loads(encoder.update(_peer(), "receive", update, None, b"", b""))
            announced, withdrawn = handover.routes_of_update(update)
            assert (list(announced), withdrawn) == parse_update(event["neighbor"]["message"]), lines


def _other(route: Route) -> str:
    return "2001:db8:2::/48" if ":" in route.prefix else "192.0.2.0/24"


def test_updates_with_other_attributes_take_the_json_way(exabgp_api):
    line = ("announce route 198.51.100.0/24 next-hop 10.0.0.1 origin igp as-path [ 65001 ] "
            "community [ 65001:1 ]")
    (change,) = exabgp_api.api_route(line)
    from exabgp.bgp.message.update import Update
    from exabgp.bgp.message.update.eor import EOR
    from exabgp.protocol.family import AFI, SAFI

    assert handover.routes_of_update(Update([change.nlri], change.attributes)) is None
    assert handover.routes_of_update(EOR(AFI.ipv4, SAFI.unicast)) is None


def test_writer_keeps_other_lines_in_their_place():
    read, write = os.pipe()
    try:
        channel = inprocess.Channel()
        transport = inprocess.InProcessTransport(channel, None, write)
        a, b, c = commands()[:3]
        transport.send([a, b, "neighbor 10.0.0.2 teardown 2", c])
        transport.flush()
        assert os.read(read, 1 << 16).decode().splitlines() == [
            inprocess.MARK_OUT, "neighbor 10.0.0.2 teardown 2", inprocess.MARK_OUT]
        assert [len(batch) for batch in channel.outbound] == [2, 1]
        assert channel.outbound[1][0] == codec.parse_command(c)
    finally:
        os.close(read)
        os.close(write)


def test_agent_reads_handed_over_updates():
    from tests.unit.test_agent_protocol import CUSTOMER, PFX, PROVIDER, config, state

    read, write = os.pipe()
    try:
        channel = inprocess.Channel()
        agent = Agent(config(), transport=inprocess.InProcessTransport(channel, None, write))
        os.set_blocking(read, False)
        for peer in (PROVIDER, CUSTOMER):
            agent.on_api_line(state(peer, "up"))
        assert not channel.outbound  # nothing originated, nothing received yet
        route = Route(prefix=PFX, next_hop=PROVIDER, as_path=(65001,), origin=Origin.IGP)
        channel.inbound.append((PROVIDER, [route], []))
        with agent.batch():
            agent.receive(agent.transport.items([inprocess.MARK_IN.encode()]))
        assert agent.engine.loc_rib()[PFX].next_hop == PROVIDER
        assert os.read(read, 1 << 16).decode().splitlines() == [inprocess.MARK_OUT]
        (batch,) = channel.outbound
        assert batch[0][:3] == (CUSTOMER, True, PFX)
        assert not channel.inbound
    finally:
        os.close(read)
        os.close(write)


class BatchKernel:
    def __init__(self, fail: set[str] = frozenset()):
        self.batches: list[list] = []
        self.fail = fail

    def apply(self, operations):
        self.batches.append(list(operations))
        return {i: OSError(101, "Network is unreachable") for i, (_, prefix, _) in enumerate(operations)
                if prefix in self.fail}


def test_kernel_changes_of_a_burst_go_in_one_batch():
    from tests.unit.test_agent_protocol import CUSTOMER, PFX, PFX6, PROVIDER, config, up

    kernel = BatchKernel(fail={PFX6})
    agent = Agent(config(), kernel=kernel, out=io.StringIO())
    up(agent, PROVIDER, CUSTOMER)
    kernel.batches.clear()
    with agent.batch():
        agent.on_update(PROVIDER, [Route(prefix=PFX, next_hop=PROVIDER, as_path=(65001,), origin=Origin.IGP),
                                   Route(prefix=PFX6, next_hop="fd00::1", as_path=(65001,), origin=Origin.IGP)],
                        [])
    assert kernel.batches == [[("replace", PFX, PROVIDER), ("replace", PFX6, "fd00::1")]]
    assert agent.kernel_routes == {PFX: PROVIDER}
    assert agent.errors == [f"kernel replace {PFX6} via fd00::1: [Errno 101] Network is unreachable"]


def test_route_messages_decode_as_rtnetlink():
    from pyroute2.netlink.rtnl.rtmsg import rtmsg

    for op, prefix, hop in (("replace", "198.51.100.0/24", "10.0.0.1"), ("delete", "2001:db8::/32", None),
                            ("replace", "2001:db8:1::/48", "fd00::1"), ("delete", "0.0.0.0/0", None)):
        data = route_message(op, prefix, hop, 7)
        msg = rtmsg(data)
        msg.decode()
        assert msg["header"]["length"] == len(data) and msg["header"]["sequence_number"] == 7
        assert msg["header"]["type"] == (24 if op == "replace" else 25)
        assert msg["proto"] == 186 and msg["table"] == 254
        assert f"{msg.get_attr('RTA_DST')}/{msg['dst_len']}" == prefix
        assert msg.get_attr("RTA_GATEWAY") == hop
        assert bool(msg["header"]["flags"] & 0x100) == (op == "replace")  # NLM_F_REPLACE


def _attributes(data: bytes, offset: int) -> list[tuple[int, bytes]]:
    """(type, payload) of the netlink attributes from ``offset`` on, read
    by hand (rtnetlink(7)): pyroute2 0.9 knows neither RTA_NH_ID nor
    nexthop messages."""
    import struct

    found = []
    while offset + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, offset)
        found.append((kind, data[offset + 4:offset + length]))
        offset += (length + 3) & ~3
    return found


def test_routes_through_a_nexthop_object_decode_as_rtnetlink():
    import struct

    from pyroute2.netlink.rtnl.rtmsg import rtmsg

    for prefix in ("198.51.100.0/24", "0.0.0.0/0", "2001:db8:1::/48"):
        data = route_message("replace", prefix, "10.0.0.1", 9, nhid=0x40000003)
        msg = rtmsg(data)
        msg.decode()
        assert msg["header"]["length"] == len(data) and msg["header"]["sequence_number"] == 9
        assert msg["header"]["type"] == 24 and msg["header"]["flags"] & 0x500 == 0x500  # REPLACE, CREATE
        assert msg["proto"] == 186 and msg["table"] == 254 and msg["type"] == 1
        assert msg["family"] == (10 if ":" in prefix else 2)
        assert f"{msg.get_attr('RTA_DST')}/{msg['dst_len']}" == prefix
        attributes = _attributes(data, 16 + 12)  # nlmsghdr, rtmsg
        assert [kind for kind, _ in attributes] == [1, 30]  # RTA_DST, RTA_NH_ID; no RTA_GATEWAY
        assert struct.unpack("=I", attributes[1][1]) == (0x40000003,)
    # A deletion names no next hop, whatever it is given.
    assert route_message("delete", "198.51.100.0/24", None, 9, nhid=5) == route_message(
        "delete", "198.51.100.0/24", None, 9)


def test_nexthop_objects_decode_as_rtnetlink():
    import socket
    import struct

    for family, gateway in ((socket.AF_INET, "10.0.0.1"), (socket.AF_INET6, "fd00::1")):
        data = nexthop_message(0x40000001, family, socket.inet_pton(family, gateway), 7, 12)
        length, kind, flags, seq, _port = struct.unpack_from("=IHHII", data)
        assert (length, kind, seq) == (len(data), 104, 12)  # RTM_NEWNEXTHOP
        assert flags == 0x1 | 0x4 | 0x200 | 0x400  # request, ack, excl, create: never someone else's id
        nh_family, scope, protocol, _reserved, nh_flags = struct.unpack_from("=BBBBI", data, 16)
        assert (nh_family, scope, protocol, nh_flags) == (family, 0, 186, 0)
        assert _attributes(data, 16 + 8) == [
            (1, struct.pack("=I", 0x40000001)),             # NHA_ID
            (5, struct.pack("=i", 7)),                      # NHA_OIF
            (6, socket.inet_pton(family, gateway))]         # NHA_GATEWAY


def test_a_route_through_a_nexthop_object_reads_back_with_its_gateway():
    import struct

    from pyroute2.netlink.rtnl.rtmsg import rtmsg

    def encoded(nhid, gateway=None):
        msg = rtmsg()
        msg["header"]["type"] = 24
        msg.update({"family": 2, "dst_len": 24, "proto": 186, "table": 254, "type": 1,
                    "attrs": [("RTA_TABLE", 254), ("RTA_DST", "198.51.100.0")]
                    + ([("RTA_GATEWAY", gateway)] if gateway else [])})
        msg.encode()
        data = bytes(msg.data) + struct.pack("=HHI", 8, 30, nhid)  # RTA_NH_ID, appended by hand
        return struct.pack("=I", len(data)) + data[4:]

    ids = {0x40000001: "10.0.0.9"}
    # The kernel's default (nexthop_compat_mode 1): the gateway comes along, and wins.
    both = encoded(0x40000001, "10.0.0.1")
    assert parse_route(both, 16, len(both), ids) == ("198.51.100.0/24", "10.0.0.1")
    # Without it: the id says which gateway, if it is one of ours.
    alone = encoded(0x40000001)
    assert parse_route(alone, 16, len(alone), ids) == ("198.51.100.0/24", "10.0.0.9")
    assert parse_route(alone, 16, len(alone), {}) == ("198.51.100.0/24", None)
    assert parse_route(alone, 16, len(alone)) == ("198.51.100.0/24", None)


def test_a_large_injected_batch_lets_the_peers_send_between_turns(exabgp_api):
    # ExaBGP runs 50 steps of its async queue per turn of its loop; a batch
    # must not be injected whole before the first UPDATE can leave.
    from exabgp.reactor.asynchronous import ASYNC

    class Api:
        def process(self, reactor, service, command):
            return False

    class Processes:
        def _start(self, name):
            pass

    class Async(ASYNC):
        pass

    handover.install(Api, Async, lambda handle: None)

    class Outgoing:
        def __init__(self):
            self.added = 0
            self._new_nlri = {}  # nothing queued: what queue_change looks at first

        def add_to_rib(self, change):
            self.added += 1

    class Neighbor(dict):
        def __init__(self):
            super().__init__({"peer-address": "10.0.0.2"})
            self.rib = type("Rib", (), {"outgoing": Outgoing()})()

        def families(self):
            from exabgp.protocol.family import AFI, SAFI
            return [(AFI.ipv4, SAFI.unicast)]

    neighbor = Neighbor()
    reactor = type("Reactor", (), {"configuration": type("C", (), {"neighbors": {"n": neighbor}})(),
                                   "peers": lambda self, service: ["n"]})()
    count = 2 * handover.INJECT_TURN + 100
    batch = [("10.0.0.2", True, f"{20 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}.0/24", "10.0.0.1",
              "igp", (65001,), None, None) for i in range(count)]
    queue = Async()
    queue.schedule("service", "testbed-inject", handover._inject(reactor, "service", batch))
    per_turn = []
    while True:
        before = neighbor.rib.outgoing.added
        more = queue.run()
        per_turn.append(neighbor.rib.outgoing.added - before)
        if not more:
            break
    assert per_turn == [handover.INJECT_TURN, handover.INJECT_TURN, 100]


def test_acks_are_read_with_their_errors():
    import struct

    def ack(seq, code):
        return struct.pack("=IHHII", 36, 2, 0, seq, 1) + struct.pack("=i", code) + b"\0" * 16

    assert list(parse_acks(ack(3, 0) + ack(4, -3) + ack(5, -101))) == [(3, 0), (4, 3), (5, 101)]


def test_routes_of_a_dump_are_parsed_as_pyroute2_encodes_them():
    from pyroute2.netlink.rtnl.rtmsg import rtmsg

    def encoded(family, dst, dst_len, gateway=None, proto=186, table=254, rtype=1):
        msg = rtmsg()
        msg["header"]["type"] = 24
        msg.update({"family": family, "dst_len": dst_len, "proto": proto, "table": min(table, 255),
                    "type": rtype, "attrs": [("RTA_TABLE", table)]})
        if dst is not None:
            msg["attrs"].append(("RTA_DST", dst))
        if gateway is not None:
            msg["attrs"].append(("RTA_GATEWAY", gateway))
        msg.encode()
        return bytes(msg.data)

    for data, expected in (
            (encoded(2, "198.51.100.0", 24, "10.0.0.1"), ("198.51.100.0/24", "10.0.0.1")),
            (encoded(10, "2001:db8::", 32, "fd00::1"), ("2001:db8::/32", "fd00::1")),
            (encoded(2, None, 0, "10.0.0.1"), ("0.0.0.0/0", "10.0.0.1")),
            (encoded(10, "2001:db8:6::", 48, rtype=6), ("2001:db8:6::/48", BLACKHOLE)),
            (encoded(2, "192.0.2.0", 24, "10.0.0.1", proto=4), None),     # not ours
            (encoded(2, "192.0.2.0", 24, "10.0.0.1", table=1000), None)):  # not the main table
        assert parse_route(data, 16, len(data)) == expected


def test_only_a_known_link_coming_up_counts_as_one():
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

    def link(index, flags, kind=16):
        msg = ifinfmsg()
        msg["header"]["type"] = kind
        msg.update({"index": index, "flags": flags, "attrs": [("IFLA_IFNAME", f"eth{index}")]})
        msg.encode()
        return bytes(msg.data)

    UP, CARRIER = 0x1, 0x10000
    up: dict = {}
    assert link_changes(link(2, UP | CARRIER) + link(3, UP) + link(4, 0), up) is False  # first seen
    assert up == {2: True, 3: False, 4: False}
    assert link_changes(link(2, UP | CARRIER | 0x2), up) is False       # still up: a flag that does not matter
    assert link_changes(link(4, UP), up) is False                       # up, but no carrier yet
    assert link_changes(link(4, UP | CARRIER) + link(2, 0), up) is True  # 4 came up (2 went down)
    assert link_changes(link(2, UP | CARRIER, kind=17), up) is False and 2 not in up  # deleted
    assert link_changes(link(2, UP | CARRIER), up) is False             # a new link, not a known one
    assert link_changes(b"", up) is False


def test_announce_attributes_lines_are_one_route_per_prefix(exabgp_api):
    line = ("neighbor 10.0.0.2 announce attributes next-hop 10.0.0.1 origin igp as-path [ 65001 ] med 3 "
            "nlri 20.0.0.0/24 20.0.1.0/24")
    parsed = codec.parse_line(line)
    assert parsed == [("10.0.0.2", True, p, "10.0.0.1", "igp", (65001,), 3, None)
                      for p in ("20.0.0.0/24", "20.0.1.0/24")]
    theirs = exabgp_api.api_attributes(line.split(" ", 2)[2], [])
    assert [c.index() for c in theirs] == [handover.make_change(*p).index() for p in parsed]
    assert [c.attributes.index() for c in theirs] == [handover.make_change(*p).attributes.index()
                                                      for p in parsed]
    assert codec.parse_line(line.replace("10.0.0.1", "fd00::1")) is None  # families differ


OTHER = [
    Route(prefix="198.51.100.0/24", next_hop="10.0.0.1", as_path=(65001,), origin=Origin.IGP,
          communities=((65001 << 16) | 7,)),
    Route(prefix="2001:db8::/32", next_hop="10.0.0.1", as_path=(65001,), origin=Origin.IGP),
]


def test_the_agent_hands_over_what_parsing_its_text_would_give():
    """The in-process transport builds route changes without writing and
    parsing command text: they must be what parse_command makes of
    command_for's text, announcements and withdrawals (with and without the
    attributes last sent), and anything else must still be the text."""
    from tests.unit.test_agent_protocol import config

    read, write = os.pipe()
    try:
        transport = inprocess.InProcessTransport(inprocess.Channel(), None, write)
        agent = Agent(config(), transport=transport)
        for route in ROUTES + OTHER:
            announce = Announce("10.0.0.2", route)
            expected = codec.parse_command(command_for(announce))
            got = transport.change(agent._outgoing(announce))
            assert got == (expected if expected is not None else command_for(announce)), route
            withdraw = Withdraw("10.0.0.2", route.prefix)
            expected = codec.parse_command(command_for(withdraw, route))
            got = transport.change(agent._outgoing(withdraw))  # carries the attributes just announced
            assert got == (expected if expected is not None else command_for(withdraw, route)), route
            assert ("10.0.0.2", route.prefix) not in agent._announced
            assert transport.change(agent._outgoing(withdraw)) == codec.parse_command(command_for(withdraw))
        assert agent.stats["announced_out"] == len(ROUTES + OTHER)
        assert agent.stats["withdrawn_out"] == 2 * len(ROUTES + OTHER)
    finally:
        os.close(read)
        os.close(write)


def _sent(rib) -> list[tuple[str, str, str]]:
    """(prefix, action, AS path) of every route in the UPDATEs the RIB sends now, in order."""
    sent = []
    for update in rib.updates(True):
        for nlri in update.nlris:
            path = update.attributes.get(2)  # AS_PATH
            sent.append((str(nlri).split()[0], nlri.action.name.lower() if hasattr(nlri.action, "name")
                         else str(nlri.action), str(path) if path is not None else ""))
    return sent


@pytest.mark.parametrize("queue", ["exabgp", "ours"])
def test_the_last_change_queued_for_a_route_is_the_last_sent(exabgp_api, queue):
    """ExaBGP's outgoing RIB sends its queued changes grouped by attribute
    set, in the order each set was first queued: A, B, A for one prefix
    sends A then B. ``queue_change`` drops the older change first."""
    from exabgp.protocol.family import AFI, SAFI
    from exabgp.rib.outgoing import OutgoingRIB

    def change(path, announce=True, prefix="2001:db8:3a::/48"):
        return handover.make_change("10.0.0.2", announce, prefix, "fd00::1", "igp", path, None, None)

    add = (lambda rib, c: rib.add_to_rib(c)) if queue == "exabgp" else handover.queue_change
    rib = OutgoingRIB(False, [(AFI.ipv4, SAFI.unicast), (AFI.ipv6, SAFI.unicast)])
    superseded, misordered = handover.superseded, handover.misordered
    for path in ((5, 53), (5, 1, 53), (5, 53)):
        add(rib, change(path))
    # Each change after the first replaced one queued under other attributes;
    # the third would have gone out first, before the second it replaced.
    assert handover.superseded - superseded == (2 if queue == "ours" else 0)
    assert handover.misordered - misordered == (1 if queue == "ours" else 0)
    add(rib, change((7, 9), prefix="2001:db8:7::/48"))
    sent = _sent(rib)
    last = [entry for entry in sent if entry[0] == "2001:db8:3a::/48"][-1]
    if queue == "exabgp":  # the fault this works around: the peer keeps the replaced path
        assert "5 1 53" in last[2]
        return
    assert "5 53" in last[2] and "5 1 53" not in last[2]
    assert [entry[0] for entry in sent] == ["2001:db8:3a::/48", "2001:db8:7::/48"]
    # A withdrawal (sent with the attributes last announced) queued after an
    # announcement under other attributes: ExaBGP would send the withdrawal
    # first, in the set queued first, and the announcement after it.
    add(rib, change((5, 1, 53)))
    add(rib, change((5, 53)))
    add(rib, change((5, 1, 53), announce=False))
    assert [(p, a) for p, a, _ in _sent(rib)] == [("2001:db8:3a::/48", "withdraw")]
    assert handover.superseded - superseded == 4 and handover.misordered - misordered == 2
