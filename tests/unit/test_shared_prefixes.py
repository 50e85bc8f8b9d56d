"""Prefixes shared between neighbors (``testbed.speaker.prefixes``) and a
drain's UPDATEs written in few writes (``packing``, ``TESTBED_COALESCE_WRITES``):
the changes made with shared parts are equal to those made without (NLRI
fields, ``Change`` index), an Adj-RIB-Out fed with them holds the same
changes and sends the same bytes, and a session's socket receives the
same bytes whether the UPDATEs of a drain go out one write each or
gathered (ExaBGP's own ``Connection`` over a real socket pair)."""

from __future__ import annotations

import socket
from collections import Counter

import pytest

from testbed.speaker import handover, packing, prefixes
from tests.unit.test_update_packing import negotiated, rib

PEERS = [("10.0.%d.2" % n, "10.0.%d.1" % n, "fd00:%d::1" % n) for n in range(4)]
ROUTES = ["198.51.100.0/24", "2001:db8:64::/48", "224.1.0.0/16", "10.0.0.0/8", "192.0.2.128/25",
          "2001:db8::/32", "0.0.0.0/0", "::/0", "203.0.113.7/32"]


def changes(parts, announce=True, path=(65002, 65009), routes=ROUTES):
    """Every route for every peer, as ``_inject`` makes them (shared
    attributes per route, shared next hops), with ``parts`` or without."""
    made, hops = [], {}
    for peer, hop4, hop6 in PEERS:
        for prefix in routes:
            hop = hop6 if ":" in prefix else hop4
            attributes = handover.make_attributes(hop, "igp", path, None, None) if announce else None
            made.append((peer, handover.make_change(peer, announce, prefix, hop if announce else None,
                                                    "igp" if announce else None, path if announce else None,
                                                    None, None, attributes=attributes, next_hops=hops,
                                                    prefixes=parts)))
    return made


def fields(change):
    nlri = change.nlri
    return (nlri.afi, nlri.safi, nlri.action, nlri.path_info, nlri.cidr.pack_nlri(), nlri.cidr.prefix(),
            str(nlri.nexthop), nlri.index(), change.index(), change.attributes.index())


@pytest.mark.parametrize("announce", [True, False])
def test_changes_with_shared_parts_equal_those_without(exabgp_env, announce):
    parts = prefixes.PrefixParts()
    shared, plain = changes(parts, announce), changes(None, announce)
    assert [fields(c) for _, c in shared] == [fields(c) for _, c in plain]
    # the later neighbors' changes took the first one's parts, and the
    # index kept is the one Change.index() computes
    by_prefix = {}
    for _, change in shared:
        first = by_prefix.setdefault(change.nlri.cidr.prefix(), change)
        assert change.nlri.cidr is first.nlri.cidr
        fresh = type(change)(change.nlri, change.attributes)
        assert fresh.index() == change.index()
    assert len(parts) == len(ROUTES)


def test_the_kept_parts_are_bounded(exabgp_env):
    parts = prefixes.PrefixParts(limit=3)
    changes(parts)
    assert 0 < len(parts) <= 3
    assert [fields(c) for _, c in changes(parts)] == [fields(c) for _, c in changes(None)]


def fed(parts, cache=True):
    """Adj-RIBs-Out (one per peer) after announcing every route, withdrawing
    two and announcing one again under a longer path."""
    ribs = {peer: rib(cache) for peer, _, _ in PEERS}
    for made in (changes(parts), changes(parts, announce=False, routes=ROUTES[:2]),
                 changes(parts, path=(65002, 65003, 65009), routes=ROUTES[1:2]),
                 changes(parts)):   # again: ExaBGP's cache drops what is already queued
        for peer, change in made:
            handover.queue_change(ribs[peer], change)
    return ribs


def held(outgoing):
    return sorted((index, change.nlri.action, change.attributes.index(), str(change.nlri.nexthop))
                  for index, change in outgoing._new_nlri.items())


@pytest.mark.parametrize("mode", ["mixed", "family", "stock"])
@pytest.mark.parametrize("cache", [True, False])
def test_the_adj_rib_out_holds_and_sends_the_same(exabgp_env, mode, cache):
    shared, plain = fed(prefixes.PrefixParts(), cache), fed(None, cache)
    for peer in shared:
        assert held(shared[peer]) == held(plain[peer])
    for include_withdraw in (True, False):
        for peer in shared:
            a = [m for m, _ in packing.drain(shared[peer], negotiated(), True, include_withdraw, mode)]
            b = [m for m, _ in packing.drain(plain[peer], negotiated(), True, include_withdraw, mode)]
            assert a == b and a
        shared, plain = fed(prefixes.PrefixParts(), cache), fed(None, cache)


class _Peer:
    def __init__(self):
        self.stats = Counter()


def _session(coalesce, monkeypatch, api=None):
    """A Protocol with packing's ``new_update`` (``coalesce``: gathered
    writes or not) over ExaBGP's ``Connection`` on a real socket pair."""
    from exabgp.bgp.neighbor import Neighbor
    from exabgp.reactor.network.connection import Connection
    from exabgp.reactor.protocol import Protocol

    monkeypatch.setenv(packing.WRITE_ENV, "1" if coalesce else "0")

    class Patched(Protocol):
        pass

    packing.install(Patched, "mixed")
    protocol = object.__new__(Patched)
    neighbor = Neighbor()
    neighbor["group-updates"] = True
    neighbor["peer-address"] = "10.0.0.2"
    neighbor.rib = type("Rib", (), {})()
    neighbor.rib.outgoing = fed(prefixes.PrefixParts())[PEERS[0][0]]
    neighbor.api = dict(api or {})
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    connection = Connection(None, "10.0.0.2", "10.0.0.1")
    connection.io = ours
    protocol.neighbor, protocol.negotiated, protocol.connection = neighbor, negotiated(), connection
    protocol.peer = _Peer()
    return protocol, theirs


def _receive(sock) -> bytes:
    sock.setblocking(False)
    data = b""
    while True:
        try:
            chunk = sock.recv(1 << 20)
        except BlockingIOError:
            return data
        if not chunk:
            return data
        data += chunk


def _run(protocol, theirs):
    received = b""
    for _ in protocol.new_update(True):
        received += _receive(theirs)   # the socket's buffer may fill: read as the peer would
    return received + _receive(theirs)


def test_gathered_writes_put_the_same_bytes_on_the_wire(exabgp_env, monkeypatch):
    one, sock_one = _session(False, monkeypatch)
    gathered, sock_gathered = _session(True, monkeypatch)
    expected = b"".join(m for m, _ in packing.drain(fed(prefixes.PrefixParts())[PEERS[0][0]], negotiated(),
                                                    True, True, "family"))   # no mixed peers named
    a, b = _run(one, sock_one), _run(gathered, sock_gathered)
    assert a == b == expected
    assert one.peer.stats == gathered.peer.stats and gathered.peer.stats["send-update"] > 1


def test_gathered_writes_through_a_full_socket_keep_every_update_in_order(exabgp_env, monkeypatch):
    """Writes of a few UPDATEs each (``WRITE_SIZE`` made small) into a
    socket whose buffer fills: the peer reads every UPDATE, in the order
    the drain made them."""
    monkeypatch.setattr(packing, "WRITE_SIZE", 300)
    protocol, theirs = _session(True, monkeypatch)
    protocol.connection.io.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    protocol.neighbor.rib.outgoing = outgoing = rib()
    expected_rib = rib()
    for n in range(400):   # an attribute set each: 400 UPDATEs, ~27 kB
        for target in (outgoing, expected_rib):
            handover.queue_change(target, handover.make_change("10.0.0.2", True, "10.%d.%d.0/24" % (n // 256, n % 256),
                                                               "10.0.0.1", "igp", (65002, n + 1), None, None))
    expected = [m for m, _ in packing.drain(expected_rib, negotiated(), True, True, "family")]
    assert b"".join(expected) == _run(protocol, theirs)
    assert protocol.peer.stats["send-update"] == len(expected) == 400


def test_an_update_the_api_asks_for_still_goes_through_protocol_send(exabgp_env, monkeypatch):
    """A neighbor whose API asked for sent UPDATEs (``send-update``) gets
    each through ExaBGP's ``Protocol.send``, which hands it to the API."""
    protocol, theirs = _session(True, monkeypatch, api={"send-update": True})
    handed = []
    monkeypatch.setattr(type(protocol), "_to_api", lambda self, direction, message, raw: handed.append(raw),
                        raising=False)
    received = _run(protocol, theirs)
    assert b"".join(handed) == received and handed


def test_the_switches_are_on_unless_set_to_0():
    assert prefixes.enabled({}) and prefixes.enabled({prefixes.ENV: "1"})
    assert not prefixes.enabled({prefixes.ENV: "0"})
    assert packing.coalescing({}) and not packing.coalescing({packing.WRITE_ENV: "0"})
