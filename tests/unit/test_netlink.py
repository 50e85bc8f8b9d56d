"""The namespace configuration's netlink requests, packed by
testbed.linux.netlink, are byte for byte what pyroute2's message classes
encode for the same request (an independent encoder), and the batch
sender reports each refused request by its position."""

from __future__ import annotations

import socket
import struct

import pytest

from testbed.linux import netlink
from testbed.linux.namespaces import address_request, bridge_request, route_request, up_request, veth_request


def framed(message, seq: int = 7) -> bytes:
    kind, flags, body = message
    return netlink.request(kind, netlink.NLM_F_REQUEST | netlink.NLM_F_ACK | flags, seq, body)


def pyroute2_encoded(msg, kind: int, flags: int, seq: int = 7) -> bytes:
    msg["header"]["type"] = kind
    msg["header"]["flags"] = netlink.NLM_F_REQUEST | netlink.NLM_F_ACK | flags
    msg["header"]["sequence_number"] = seq
    msg.encode()
    return bytes(msg.data)


def test_a_veth_pair_encodes_as_pyroute2_encodes_it():
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

    msg = ifinfmsg()
    msg["index"] = 100
    msg["attrs"] = [("IFLA_IFNAME", "AS1-eth0"), ("IFLA_ADDRESS", "02:00:00:00:01:02"),
                    ("IFLA_LINKINFO", {"attrs": [
                        ("IFLA_INFO_KIND", "veth"),
                        ("IFLA_INFO_DATA", {"attrs": [("VETH_INFO_PEER", {"index": 101, "attrs": [
                            ("IFLA_IFNAME", "AS2-eth10"), ("IFLA_ADDRESS", "02:00:00:00:02:0a"),
                            ("IFLA_NET_NS_PID", 4242)]})]})]})]
    expected = pyroute2_encoded(msg, netlink.RTM_NEWLINK, netlink.NLM_F_CREATE | netlink.NLM_F_EXCL)
    assert framed(veth_request("AS1-eth0", "02:00:00:00:01:02", "AS2-eth10", "02:00:00:00:02:0a", 4242,
                               index=100, peer_index=101)) == expected


def test_a_bridge_encodes_as_pyroute2_encodes_it():
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

    msg = ifinfmsg()
    msg["attrs"] = [("IFLA_IFNAME", "peering"),
                    ("IFLA_LINKINFO", {"attrs": [
                        ("IFLA_INFO_KIND", "bridge"),
                        ("IFLA_INFO_DATA", {"attrs": [("IFLA_BR_STP_STATE", 0), ("IFLA_BR_FORWARD_DELAY", 0),
                                                      ("IFLA_BR_MCAST_SNOOPING", 0)]})]})]
    expected = pyroute2_encoded(msg, netlink.RTM_NEWLINK, netlink.NLM_F_CREATE | netlink.NLM_F_EXCL)
    assert framed(bridge_request("peering")) == expected


@pytest.mark.parametrize("master", [None, 12])
def test_a_link_up_encodes_as_pyroute2_encodes_it(master):
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

    msg = ifinfmsg()
    msg["index"] = 5
    msg["flags"] = msg["change"] = netlink.IFF_UP
    if master is not None:
        msg["attrs"] = [("IFLA_MASTER", master)]
    assert framed(up_request(5, master)) == pyroute2_encoded(msg, netlink.RTM_NEWLINK, 0)


@pytest.mark.parametrize("address", ["10.0.0.1/30", "fd00::1/64"])
def test_an_address_encodes_as_pyroute2_encodes_it(address):
    from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg

    ip, _, length = address.partition("/")
    msg = ifaddrmsg()
    msg["family"] = socket.AF_INET6 if ":" in ip else socket.AF_INET
    msg["prefixlen"] = int(length)
    msg["index"] = 3
    msg["flags"] = netlink.IFA_F_NODAD if ":" in ip else 0  # no duplicate address detection
    msg["attrs"] = [("IFA_ADDRESS", ip)] + ([] if ":" in ip else [("IFA_LOCAL", ip)])
    expected = pyroute2_encoded(msg, netlink.RTM_NEWADDR, netlink.NLM_F_CREATE | netlink.NLM_F_EXCL)
    assert framed(address_request(3, address)) == expected


@pytest.mark.parametrize("dst, gateway, kind", [
    ("10.255.0.2/32", "10.0.0.2", "unicast"), ("0.0.0.0/0", "10.1.0.1", "unicast"),
    ("::/0", "fd00::1", "unicast"), ("198.51.100.0/24", None, "blackhole"),
])
def test_a_static_route_encodes_as_pyroute2_encodes_it(dst, gateway, kind):
    from pyroute2.netlink.rtnl.rtmsg import rtmsg

    address, _, length = dst.partition("/")
    msg = rtmsg()
    msg["family"] = socket.AF_INET6 if ":" in dst else socket.AF_INET
    msg["dst_len"] = int(length)
    msg["table"] = netlink.RT_TABLE_MAIN
    msg["proto"] = netlink.RTPROT_STATIC
    msg["scope"] = netlink.RT_SCOPE_UNIVERSE
    msg["type"] = netlink.RTN_BLACKHOLE if kind == "blackhole" else netlink.RTN_UNICAST
    msg["attrs"] = ([("RTA_TABLE", netlink.RT_TABLE_MAIN)] + ([("RTA_DST", address)] if int(length) else [])
                    + ([("RTA_GATEWAY", gateway)] if gateway else []))
    expected = pyroute2_encoded(msg, netlink.RTM_NEWROUTE, netlink.NLM_F_CREATE | netlink.NLM_F_REPLACE)
    assert framed(route_request(dst, gateway, kind)) == expected


class Replies:
    """A socket stand-in holding the kernel's replies to one batch."""

    def __init__(self, data: bytes):
        self.data, self.sent = data, b""

    def sendall(self, data: bytes) -> None:
        self.sent += data

    def recv(self, size: int, flags: int = 0) -> bytes:
        if not self.data:
            raise BlockingIOError
        data, self.data = self.data, b""
        return data


def ack(seq: int, code: int) -> bytes:
    return struct.pack("=IHHII", 36, netlink.NLMSG_ERROR, 0, seq, 1) + struct.pack("=i", -code) + b"\0" * 16


@pytest.mark.parametrize("acked", [True, False])
def test_a_batch_reports_each_refused_request_by_its_position(acked):
    channel = netlink.Channel.__new__(netlink.Channel)
    replies = (ack(10, 0) + ack(11, 17) + ack(12, 0) + ack(13, 101)) if acked else (ack(11, 17) + ack(13, 101))
    channel.sock = Replies(replies + ack(99, 1))  # and one that is not of this batch
    assert channel.send(b"requests", 10, 4, acked=acked) == {1: 17, 3: 101}
    assert channel.sock.sent == b"requests"
