"""A dual-stack route crosses a real session in one UPDATE
(``testbed.speaker.packing``): T re-peers with its customer B, and B's
namespace sees, on the wire, the UPDATE that brings A's IPv4 and IPv6
prefixes (equal path attributes) in one message, IPv4 NLRI beside
MP_REACH_NLRI; B's kernel then holds both. With
``TESTBED_UPDATE_PACKING=stock`` the speakers send ExaBGP's two UPDATEs
and the test fails."""

from __future__ import annotations

import socket
import struct

import pytest

from testbed.lab.lab import Lab
from testbed.linux import netns
from testbed.model.topology import Topology

pytestmark = pytest.mark.emulation

A4, A6 = "192.0.2.0/25", "2001:db8:a::/48"
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def line() -> Topology:
    topo = Topology("packing-line", hold_time=3)
    t = topo.add_as(64500, "T", ["198.51.100.0/24", "2001:db8:64::/48"], hosts=0)
    a = topo.add_as(64501, "A", [A4, A6], hosts=0)
    b = topo.add_as(64502, "B", ["192.0.2.128/25", "2001:db8:b::/48"], hosts=0)
    topo.transit(t, a)
    topo.transit(t, b)
    return topo.validate()


@pytest.fixture(scope="module")
def lab():
    with Lab(line()) as running:
        yield running


class Capture:
    """TCP payload a router's namespace receives from ``source`` on a BGP session,
    read off a packet socket (every interface of the namespace)."""

    def __init__(self, pid: int, source: str):
        self.source = socket.inet_aton(source)
        with netns.inside(pid):
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.setblocking(False)
        self.segments: dict[int, bytes] = {}
        self.start: int | None = None

    def read(self) -> None:
        while True:
            try:
                frame, address = self.sock.recvfrom(1 << 17)
            except BlockingIOError:
                return
            if address[2] == PACKET_OUTGOING or frame[12:14] != b"\x08\x00":
                continue
            ip = frame[14:]
            if ip[9] != 6 or ip[12:16] != self.source:
                continue
            tcp = ip[(ip[0] & 0x0F) * 4:int.from_bytes(ip[2:4], "big")]
            if 179 not in (int.from_bytes(tcp[0:2], "big"), int.from_bytes(tcp[2:4], "big")):
                continue
            seq = int.from_bytes(tcp[4:8], "big")
            if tcp[13] & 0x02:      # SYN: a new connection, the stream starts after it
                self.start, self.segments = (seq + 1) & 0xFFFFFFFF, {}
                continue
            payload = tcp[(tcp[12] >> 4) * 4:]
            if payload and self.start is not None:
                self.segments[(seq - self.start) & 0xFFFFFFFF] = payload

    def messages(self) -> list[bytes]:
        """The BGP messages of the last connection, in order."""
        stream = b""
        for offset in sorted(self.segments):
            if offset <= len(stream):
                stream += self.segments[offset][len(stream) - offset:]
        found = []
        while len(stream) >= 19:
            length = struct.unpack("!H", stream[16:18])[0]
            if len(stream) < length:
                break
            found.append(stream[:length])
            stream = stream[length:]
        return found

    def close(self) -> None:
        self.sock.close()


def updates(messages: list[bytes]):
    """``(announced prefixes, path attributes)`` of each UPDATE, as ExaBGP reads it."""
    import exabgp.environment.setup  # noqa: F401 - ExaBGP's environment, as a speaker reads it
    from exabgp.bgp.message import Action
    from exabgp.bgp.message.direction import Direction
    from exabgp.bgp.message.open.capability import Negotiated
    from exabgp.bgp.message.update import Update
    from exabgp.bgp.neighbor import Neighbor
    from exabgp.environment import getenv
    from exabgp.logger import log
    from exabgp.protocol.family import AFI, SAFI

    env = getenv()
    env.log.destination, env.log.level = "stderr", "CRITICAL"
    log.init(env)
    session = Negotiated(Neighbor())
    session.asn4 = True
    session.families = [(AFI.ipv4, SAFI.unicast), (AFI.ipv6, SAFI.unicast)]
    for message in messages:
        if message[18] != 2:
            continue
        update = Update.unpack_message(message[19:], Direction.IN, session)
        if hasattr(update, "nlris"):
            yield ({n.cidr.prefix() for n in update.nlris if n.action == Action.ANNOUNCE},
                   str(update.attributes.get(2, "")))


def test_a_dual_stack_route_arrives_in_one_update_and_both_reach_the_kernel(lab):
    t_address = lab.plan.routers["B"].neighbor("T").address
    capture = Capture(lab.nodes["B"].pid, t_address)
    try:
        lab.depeer("T", "B")
        capture.read()
        lab.repeer("T", "B")
        capture.read()
        seen = list(updates(capture.messages()))
    finally:
        capture.close()
    carrying = [(prefixes, path) for prefixes, path in seen if prefixes & {A4, A6}]
    assert carrying, f"no UPDATE from T carried A's prefixes after the re-peering; UPDATEs seen: {seen}"
    assert [prefixes & {A4, A6} for prefixes, _ in carrying] == [{A4, A6}], (
        f"A's dual-stack route came in {len(carrying)} UPDATE(s): {carrying}")
    assert "64500 64501" in carrying[0][1]
    kernel = lab.kernel_routes("B")
    assert A4 in kernel and A6 in kernel, f"B's kernel holds {sorted(kernel)}"
    summary = lab.clients["T"].request("summary")["stats"]
    assert summary["updates_out"] > 0 and summary["prefixes_out"] > summary["updates_out"]
