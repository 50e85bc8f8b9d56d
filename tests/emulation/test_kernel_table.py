"""The kernel table the agent writes through: routes land in its own
namespace, also after its netlink socket is recycled (pyroute2 0.9.7 keeps
~700 bytes per request for the life of a socket)."""

import subprocess
import time

import pytest

from testbed.linux.routes import BLACKHOLE, KernelTable, LinkWatch, read_bgp_routes
from testbed.linux.netns import inside, iproute
from testbed.testing.wait import wait_until

pytestmark = pytest.mark.emulation


@pytest.fixture
def namespace(bare_namespaces):
    pid = bare_namespaces()
    subprocess.run(["nsenter", "-t", str(pid), "-n", "ip", "addr", "add", "10.9.0.1/24", "dev", "lo"], check=True)
    return pid


@pytest.fixture
def table(namespace):
    """A KernelTable made inside the namespace (used from anywhere after)."""
    with inside(namespace):
        made = KernelTable()
    try:
        yield made
    finally:
        made.close()


def rss_kib() -> int:
    return int(open("/proc/self/statm").read().split()[1]) * 4


def test_routes_stay_in_the_tables_namespace_and_read_back_as_pyroute2_reads_them(table, namespace):
    for i in range(600):  # called from the root namespace on purpose
        table.replace("198.51.100.0/24", "10.9.0.2" if i % 2 else "10.9.0.3")
    table.apply([("replace", "203.0.113.0/24", BLACKHOLE), ("replace", "2001:db8:6::/48", BLACKHOLE),
                 ("replace", "0.0.0.0/0", "10.9.0.4")])
    subprocess.run(["nsenter", "-t", str(namespace), "-n", "sh", "-c",
                    "ip route add 192.0.2.0/24 via 10.9.0.5 && "           # not proto bgp
                    "ip route add 198.18.0.0/24 via 10.9.0.5 proto 186 table 7"],  # not main
                   check=True)
    expected = {"198.51.100.0/24": "10.9.0.2", "203.0.113.0/24": BLACKHOLE,
                "2001:db8:6::/48": BLACKHOLE, "0.0.0.0/0": "10.9.0.4"}
    assert table.routes() == expected  # the last one written
    with iproute(namespace) as ipr:
        assert read_bgp_routes(ipr) == expected
    from pyroute2 import IPRoute

    root = IPRoute()
    try:
        assert "198.51.100.0/24" not in read_bgp_routes(root)  # never the host's table
    finally:
        root.close()
    before = rss_kib()
    for i in range(2000):
        table.replace("198.51.100.0/24", "10.9.0.2")
        table.delete("198.51.100.0/24")
        table.routes()
    growth = (rss_kib() - before) * 1024 / 2000
    assert growth < 100, f"{growth:.0f} bytes kept per route change"


def test_a_large_table_reads_back_whole(table):
    # A dump spans many reads of the socket; every route of it is there.
    operations = [("replace", f"10.{100 + (i >> 8)}.{i & 255}.0/24", "10.9.0.2") for i in range(5000)]
    operations += [("replace", f"2001:db8:{i + 1:x}::/48", BLACKHOLE) for i in range(1000)]
    assert table.apply(operations) == {}
    routes = table.routes()
    assert len(routes) == 6000
    assert routes == {prefix: hop for _, prefix, hop in operations}


def test_routes_via_a_neighbour_share_one_nexthop_object_that_heals_after_its_link(table, namespace):
    import json

    def ip(command):
        return subprocess.run(["nsenter", "-t", str(namespace), "-n", "sh", "-c", command],
                              check=True, capture_output=True, text=True).stdout

    def ours():
        return {entry["id"]: entry for entry in json.loads(ip("ip -j nexthop show") or "[]")
                if entry.get("protocol") == "bgp"}

    # Someone else's nexthop object holds the first id the table would pick.
    taken = KernelTable.NEXTHOP_ID_BASE
    ip("ip link add va type veth peer name vb && ip link set va up && ip link set vb up && "
       "ip addr add 10.8.0.1/24 dev va && ip -6 addr add fd00::1/64 dev va nodad && "
       f"ip nexthop add id {taken} blackhole")
    operations = [("replace", f"198.18.{i >> 8}.{i & 255}/32", "10.8.0.2") for i in range(1000)]
    operations += [("replace", f"2001:db8:{i + 1:x}::/48", "fd00::2") for i in range(10)]
    operations += [("replace", "198.51.100.0/24", "10.9.0.2")]  # reached via lo's local range: no object
    assert table.apply(operations) == {}
    objects = ours()
    assert sorted((entry["gateway"], entry["dev"]) for entry in objects.values()) == [
        ("10.8.0.2", "va"), ("fd00::2", "va")]
    assert taken not in objects and json.loads(ip(f"ip -j nexthop show id {taken}"))[0].keys() >= {"blackhole"}
    expected = {prefix: hop for _, prefix, hop in operations}
    assert table.routes() == expected
    with iproute(namespace) as ipr:
        assert read_bgp_routes(ipr) == expected
    by_prefix = {route["dst"]: route for route in json.loads(ip("ip -j route show proto bgp"))}
    assert by_prefix["198.18.0.7"].get("nhid") in objects and "nhid" not in by_prefix["198.51.100.0/24"]

    # The link loses its carrier: the kernel deletes the objects on it and
    # every route through them.
    ip("ip link set vb down")
    wait_until(lambda: not ours(), 5, "the kernel to delete the nexthop objects on vb",
               explain=lambda: f"objects left: {ours()}")
    assert set(table.routes()) == {"198.51.100.0/24"}
    ip("ip link set vb up")
    # Writing the routes again names the dead object, and is retried through a new one.
    assert table.apply(operations[:1] + operations[-11:-10]) == {}
    objects = ours()
    assert len(objects) == 2 and taken not in objects
    assert table.routes() == {prefix: expected[prefix]
                              for prefix in ("198.18.0.0/32", "2001:db8:1::/48", "198.51.100.0/24")}


def test_the_link_watch_reports_a_link_coming_up_and_nothing_else(namespace):
    def ip(command):
        subprocess.run(["nsenter", "-t", str(namespace), "-n", "sh", "-c", command], check=True)

    def settle(watch):
        time.sleep(0.05)
        return watch.came_up()

    # a0-b0 down at one end, a1-b1 up at both.
    ip("ip link add a0 type veth peer name b0 && ip link add a1 type veth peer name b1 && "
       "ip link set b0 up && ip link set a1 up && ip link set b1 up")
    with inside(namespace):
        watch = LinkWatch()
    try:
        assert settle(watch) is False   # the initial states: nothing came up
        ip("ip link set a1 mtu 1400 && ip addr add 10.8.0.1/24 dev a1")
        assert settle(watch) is False   # changes, but no link came up
        ip("ip link set a0 up")
        assert settle(watch) is True    # a0 and b0 were not up with a carrier, now they are
        assert settle(watch) is False   # reported once
        ip("ip link set a1 down")
        assert settle(watch) is False   # going down drops routes; the way back is what matters
        ip("ip link set a1 up")
        assert settle(watch) is True
    finally:
        watch.close()


def test_a_batch_reports_each_failure_by_its_index(table):
    # Requests carry no acknowledgement flag: only failures come back, and
    # they must still be matched to the operations that caused them.
    operations = []
    for i in range(300):
        if i % 3 == 0:
            operations.append(("replace", f"198.18.{i}.0/24" if i < 256 else f"198.19.{i - 256}.0/24",
                               "10.9.0.2"))
        elif i % 3 == 1:
            operations.append(("replace", f"203.0.{i % 256}.0/24", "192.0.2.1"))  # no route to the gateway
        else:
            operations.append(("delete", f"100.64.{i % 256}.0/24", None))  # absent: not an error
    failed = table.apply(operations)
    assert sorted(failed) == [i for i in range(300) if i % 3 == 1]
    assert all(error.errno == 101 for error in failed.values()), set(failed.values())
    installed = table.routes()
    assert sorted(installed) == sorted(prefix for op, prefix, hop in operations[::3])
    assert table.apply([("delete", prefix, None) for prefix in installed]) == {}
    assert table.routes() == {}
