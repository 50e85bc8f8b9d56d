"""Traffic between real namespaces: h1 -- r -- h2, built here with pyroute2.

Each node is a network namespace held by an ``unshare -n sleep infinity``
process; the veth pairs are created straight into the namespaces, so nothing
ever appears in the host's own namespace, and killing the three processes
removes everything (once the ``Traffic`` sockets are closed).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from testbed.linux.netns import inside, netns_inode, write_sysctl
from testbed.testing import namespaces
from testbed.testing.wait import wait_until
from testbed.traffic.packets import _Echo, _parse
from testbed.traffic.traffic import Hop, Traffic, TrafficError

pytestmark = [
    pytest.mark.emulation,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces and raw sockets"),
    pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (util-linux)"),
]

H1 = {4: "10.0.1.2", 6: "2001:db8:1::2"}
R_H1 = {4: "10.0.1.1", 6: "2001:db8:1::1"}
R_H2 = {4: "10.0.2.1", 6: "2001:db8:2::1"}
H2 = {4: "10.0.2.2", 6: "2001:db8:2::2"}
UNROUTED = {4: "10.99.0.1", 6: "2001:db8:99::1"}
SILENT = {4: "10.98.0.1", 6: "2001:db8:98::1"}  # r drops it without a word
FAMILIES = [pytest.param(4, id="ipv4"), pytest.param(6, id="ipv6")]


def own_sockets() -> set[str]:
    """The sockets this process holds open, as 'socket:[inode]'."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith("socket:"):
                found.add(target)
    return found


@dataclass
class Lab:
    h1: int
    r: int
    h2: int
    netlink: dict[int, object] = field(default_factory=dict)  # pid -> IPRoute

    def state(self) -> str:
        """Links, addresses, routes and neighbours of every node, for a
        failure message."""
        lines = []
        for name, pid in (("h1", self.h1), ("r", self.r), ("h2", self.h2)):
            for what in (["-d", "link"], ["addr"], ["route"], ["-6", "route"], ["neigh"]):
                shown = subprocess.run(["nsenter", "-t", str(pid), "-n", "ip", *what],
                                       capture_output=True, text=True)
                lines.append(f"--- {name}: ip {' '.join(what)}\n{shown.stdout}{shown.stderr}")
        return "".join(lines)

    def set_r_h2_link(self, up: bool) -> None:
        ipr = self.netlink[self.r]
        (index,) = ipr.link_lookup(ifname="r-h2")
        ipr.link("set", index=index, state="up" if up else "down")


def _address(ipr, ifname: str, address: str) -> None:
    (index,) = ipr.link_lookup(ifname=ifname)
    ipr.addr("add", index=index, address=address,
             prefixlen=64 if ":" in address else 24)


@contextlib.contextmanager
def three_node_lab(h2_ipv4: str = H2[4],
                   spawned: dict[int, tuple[int, int]] | None = None) -> Iterator[Lab]:
    """h1 -- r -- h2 with both families; everything is gone on exit, also
    when setup fails half-way. ``spawned`` gets the pid and namespace inode
    of each namespace process as soon as it is in its namespace."""
    from pyroute2 import IPRoute

    processes: list[subprocess.Popen] = []
    lab = None
    try:
        home = netns_inode(os.getpid())
        for _ in range(3):
            processes.append(subprocess.Popen(
                ["unshare", "--net", "sleep", "infinity"], start_new_session=True))
        wait_until(lambda: all(netns_inode(p.pid) != home for p in processes), 5,
                   "the three unshare processes to enter new network namespaces")
        if spawned is not None:
            spawned.update((p.pid, *namespaces.namespaces_of([p.pid])) for p in processes)
        lab = Lab(*(p.pid for p in processes))
        for pid in (lab.h1, lab.r, lab.h2):
            for name, value in (("net.ipv6.conf.all.accept_dad", 0),
                                ("net.ipv6.conf.default.accept_dad", 0),
                                ("net.ipv6.conf.all.keep_addr_on_down", 1),
                                ("net.ipv6.conf.default.keep_addr_on_down", 1)):
                write_sysctl(pid, name, value)
            with inside(pid):
                lab.netlink[pid] = IPRoute()
        for name, value in (("net.ipv4.ip_forward", 1),
                            ("net.ipv6.conf.all.forwarding", 1),
                            ("net.ipv4.icmp_ratelimit", 0),
                            ("net.ipv6.icmp.ratelimit", 0)):
            write_sysctl(lab.r, name, value)
        h1, r, h2 = (lab.netlink[pid] for pid in (lab.h1, lab.r, lab.h2))
        # A veth whose ifindex equals its peer's (both 2 in fresh namespaces)
        # has its carrier changes handled up to 1 s late (linkwatch takes it
        # for a non-stacked device), and IPv6 waits for them: r answered no
        # neighbour solicitation for a second. Here 10 and 11, peers 2.
        h1.link("add", ifname="eth0", index=10, kind="veth",
                peer={"ifname": "r-h1", "net_ns_pid": lab.r})
        r.link("add", ifname="r-h2", index=11, kind="veth",
               peer={"ifname": "eth0", "net_ns_pid": lab.h2})
        for pid, ifname, addresses in ((lab.h1, "eth0", H1), (lab.r, "r-h1", R_H1),
                                       (lab.r, "r-h2", R_H2), (lab.h2, "eth0", H2)):
            # A link coming up races the far end's own carrier handling: an
            # ARP or ND answer lost to it is retried after 100 ms, not 1 s.
            # (A namespace other than the first has no neigh.default.)
            for family in ("ipv4", "ipv6"):
                write_sysctl(pid, f"net.{family}.neigh.{ifname}.retrans_time_ms", 100)
            ipr = lab.netlink[pid]
            for address in (h2_ipv4 if ipr is h2 else addresses[4], addresses[6]):
                _address(ipr, ifname, address)
        for ipr, ifnames in ((h1, ["lo", "eth0"]), (r, ["lo", "r-h1", "r-h2"]),
                             (h2, ["lo", "eth0"])):
            for ifname in ifnames:
                (index,) = ipr.link_lookup(ifname=ifname)
                ipr.link("set", index=index, state="up")
        for ipr, gateways in ((h1, R_H1), (h2, R_H2)):
            ipr.route("add", dst="0.0.0.0/0", gateway=gateways[4])
            ipr.route("add", dst="::/0", gateway=gateways[6], family=10)
        r.route("add", dst="10.98.0.0/16", type="blackhole")
        r.route("add", dst="2001:db8:98::/48", type="blackhole", family=10)
        yield lab
    finally:
        if lab is not None:
            for ipr in lab.netlink.values():
                ipr.close()
        for process in processes:
            process.kill()
        for process in processes:
            process.wait(timeout=5)


def assert_gone(pids: list[int], held: set[tuple[int, int]] = frozenset()) -> None:
    """The processes are reaped and no task on the machine (a thread of ours
    left inside() one, say) is in any of the namespaces (by inode and
    cookie: another lab's new namespace may have the inode number)."""
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}"), f"namespace process {pid} is still there"
    assert not namespaces.left(held), f"tasks still in the lab's namespaces: {namespaces.left(held)}"


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    sockets_before = own_sockets()
    with three_node_lab() as lab:
        pids = [lab.h1, lab.r, lab.h2]
        held = namespaces.namespaces_of(pids)
        yield lab
    # The teardown itself is checked: processes reaped, nothing inside the
    # namespaces, no socket left open (a raw socket keeps its namespace).
    assert_gone(pids, held)
    leaked = own_sockets() - sockets_before
    assert not leaked, f"sockets left open after the lab and Traffic closed: {leaked}"


@pytest.fixture(scope="module")
def traffic(lab: Lab) -> Iterator[Traffic]:
    with Traffic() as traffic:
        for family in (4, 6):
            wait_until(lambda: traffic.reachable(lab.h1, H2[family], timeout=0.3), 5,
                       f"h1 to reach h2 over IPv{family}", explain=lab.state)
        yield traffic


@pytest.mark.parametrize("family", FAMILIES)
def test_ping_reaches_the_far_host(lab: Lab, traffic: Traffic, family: int) -> None:
    result = traffic.ping(lab.h1, H2[family], count=3)
    assert (result.sent, result.received, result.errors) == (3, 3, ())
    assert result.ok and result.loss == 0.0
    assert all(0 < rtt < 0.5 for rtt in result.rtts), result.rtts  # ~0.1 ms unloaded


@pytest.mark.parametrize("family", FAMILIES)
def test_ping_to_an_unrouted_address_fails_within_the_timeout(
        lab: Lab, traffic: Traffic, family: int) -> None:
    started = time.monotonic()
    result = traffic.ping(lab.h1, UNROUTED[family], count=3, timeout=0.5)
    elapsed = time.monotonic() - started
    assert (result.received, result.ok, result.loss) == (0, False, 1.0)
    assert elapsed < 0.5 + 2 * 0.02 + 0.5, f"ping took {elapsed:.3f} s"
    # r has no route and says so. For IPv4 only maybe: it sends at most one
    # such error per second per source (burst 5), a machine-wide setting
    # (net.ipv4.route.error_cost) that a namespace cannot change.
    assert all(e.startswith(R_H1[family] + ":") for e in result.errors), result.errors
    if family == 6:
        assert len(result.errors) == 3, result.errors


@pytest.mark.parametrize("family", FAMILIES)
def test_reachable(lab: Lab, traffic: Traffic, family: int) -> None:
    assert traffic.reachable(lab.h1, H2[family])
    assert traffic.reachable(lab.h2, H1[family])
    assert not traffic.reachable(lab.h1, UNROUTED[family], timeout=0.3)


@pytest.mark.parametrize("family", FAMILIES)
def test_traceroute_goes_through_the_router(lab: Lab, traffic: Traffic, family: int) -> None:
    hops = traffic.traceroute(lab.h1, H2[family], probes=2)
    assert [(h.ttl, h.address, h.reached) for h in hops] == [
        (1, R_H1[family], False), (2, H2[family], True)]
    assert all(h.rtt is not None and len(h.rtts) == 2 for h in hops), hops


@pytest.mark.parametrize("family", FAMILIES)
def test_traceroute_waits_once_for_silent_hops(lab: Lab, traffic: Traffic, family: int) -> None:
    # Every TTL is probed at once: eight silent hops cost one timeout, not
    # eight (2.4 s).
    started = time.monotonic()
    hops = traffic.traceroute(lab.h1, SILENT[family], max_hops=8, timeout=0.3)
    elapsed = time.monotonic() - started
    assert hops == [Hop(ttl, None, None, False) for ttl in range(1, 9)]
    assert 0.3 <= elapsed < 1.5, f"traceroute took {elapsed:.3f} s"


def test_traceroute_stops_where_the_route_ends(lab: Lab, traffic: Traffic) -> None:
    # IPv6 only: an IPv4 router's "net unreachable" is rate-limited per
    # source beyond what a namespace can change (see the ping test above).
    hops = traffic.traceroute(lab.h1, UNROUTED[6], timeout=0.5)
    assert hops == [Hop(ttl=1, address=R_H1[6], rtt=hops[0].rtt, reached=False,
                        rtts=hops[0].rtts, error="no route")]


def test_streams_see_a_link_outage(lab: Lab, traffic: Traffic) -> None:
    rate = 1000.0
    streams = [traffic.stream(lab.h1, H2[family], rate=rate) for family in (4, 6)]
    started = []   # (before, after) each stream's start: its clock begins in between
    for stream in streams:
        before = time.monotonic()
        stream.start()
        started.append((before, time.monotonic()))
    try:
        time.sleep(0.3)
        lab.set_r_h2_link(up=False)
        down_at = time.monotonic()
        time.sleep(0.3)
        lab.set_r_h2_link(up=True)
        down_for = time.monotonic() - down_at
        time.sleep(0.3)
    finally:
        lab.set_r_h2_link(up=True)
        results = [stream.stop() for stream in streams]
    for result, (before, after) in zip(results, started):
        # One outage: the time the link was down plus ARP/ND on recovery
        # (one retry at most, 100 ms), give or take a sender starved of CPU.
        assert result.lost, result
        assert result.lost == tuple(range(result.lost[0], result.lost[-1] + 1)), result
        assert down_for - 0.1 < result.longest_outage < down_for + 0.25, \
            (down_for, result.longest_outage)
        # the first probe lost left when the link went down, on the stream's
        # clock (a busy host sleeps longer than the 0.3 s asked for)
        assert down_at - after - 0.15 < result.first_lost_at < down_at - before + 0.15, \
            (down_at - after, down_at - before, result.first_lost_at)
        assert result.recovered_at is not None
        assert result.recovered_at - result.first_lost_at == pytest.approx(
            result.longest_outage)
        assert result.send_errors == 0
    # While the route was gone, r said so (for IPv4 rate-limited, see above).
    assert results[1].icmp_errors > 0, results[1]


def test_streams_without_an_event_lose_nothing(lab: Lab, traffic: Traffic) -> None:
    rate = 2000.0
    with traffic.stream(lab.h1, H2[4], rate=rate) as v4, \
            traffic.stream(lab.h1, H2[6], rate=rate) as v6:
        # A ping from the same host and family meanwhile must not take the
        # stream's replies, nor the stream the ping's.
        ping = traffic.ping(lab.h1, H2[4], count=5)
        time.sleep(0.5)
    assert ping.received == 5
    for result in (v4.result, v6.result):
        assert result is not None
        assert (result.lost, result.longest_outage, result.first_lost_at) == ((), 0.0, None)
        assert result.received == result.sent
        # Never faster than asked; slower only if this process is starved of
        # CPU (the sender skips ahead rather than burst to catch up), as it
        # is when other labs load this machine's two cores.
        assert 0.2 * rate < result.rate < 1.05 * rate, result
        assert result.max_rtt is not None and result.max_rtt < 0.5


def test_sequence_numbers_survive_the_16_bit_wrap() -> None:
    """Probe 70000 goes out as ICMP seq 4464 and is matched back by the full
    number its payload carries, from a reply or from an error quoting it."""
    probe = bytes(_Echo(socket.AF_INET, "10.0.2.2", ident=4321).render(70_000, 123, ttl=1))
    assert struct.unpack_from("!HH", probe, 24) == (4321, 70_000 & 0xFFFF)
    reply = bytearray(probe)
    reply[20] = 0  # echo reply; the receiver does not check the checksum
    reply[12:16] = socket.inet_aton("10.0.2.2")
    answer = _parse(socket.AF_INET, bytes(reply), "", 1)
    assert answer and (answer.kind, answer.number, answer.seq, answer.sent_ns) == (
        "reply", 70_000, 4464, 123)
    error = bytes(reply[:20]) + bytes([11, 0, 0, 0, 0, 0, 0, 0]) + probe
    answer = _parse(socket.AF_INET, error, "", 1)
    assert answer and (answer.kind, answer.ident, answer.number) == (
        "time-exceeded", 4321, 70_000)
    v6 = bytearray(_Echo(socket.AF_INET6, "2001:db8::1", ident=7).render(2**40, 5))
    v6[0] = 129
    answer = _parse(socket.AF_INET6, bytes(v6), "2001:db8::1", 1)
    assert answer and (answer.kind, answer.number, answer.seq) == ("reply", 2**40, 0)


def test_misuse_is_reported(lab: Lab, traffic: Traffic) -> None:
    with pytest.raises(TrafficError, match="not an IPv4 or IPv6 address"):
        traffic.ping(lab.h1, "h2")
    dead = subprocess.Popen(["true"])
    dead.wait()
    with pytest.raises(TrafficError, match=f"no process {dead.pid}"):
        traffic.ping(dead.pid, H2[4])
    stream = traffic.stream(lab.h1, H2[4])
    with pytest.raises(TrafficError, match="never started"):
        stream.stop()


def test_a_failed_setup_leaves_nothing() -> None:
    sockets_before = own_sockets()
    spawned: dict[int, tuple[int, int]] = {}
    # h2's address is refused after the namespaces and links exist.
    with pytest.raises(OSError, match="IP address"):
        with three_node_lab(h2_ipv4="10.0.2.256", spawned=spawned):
            pytest.fail("the lab started with an invalid address")
    assert len(spawned) == 3
    assert_gone(list(spawned), set(spawned.values()))
    assert own_sockets() - sockets_before == set()
