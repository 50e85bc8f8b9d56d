"""The kernel table the agent writes through: routes land in its own
namespace, also after its netlink socket is recycled (pyroute2 0.9.7 keeps
~700 bytes per request for the life of a socket)."""

import os
import subprocess
import time

import pytest

from testbed.kernel import KernelTable, read_bgp_routes
from testbed.netns import inside

pytestmark = pytest.mark.emulation


@pytest.fixture
def namespace():
    holder = subprocess.Popen(["unshare", "-n", "sleep", "60"])
    try:
        deadline = time.monotonic() + 5
        while os.stat(f"/proc/{holder.pid}/ns/net").st_ino == os.stat("/proc/self/ns/net").st_ino:
            assert time.monotonic() < deadline, "unshare did not enter a new namespace"
            time.sleep(0.01)
        subprocess.run(["nsenter", "-t", str(holder.pid), "-n", "sh", "-c",
                        "ip link set lo up && ip addr add 10.9.0.1/24 dev lo"], check=True)
        yield holder.pid
    finally:
        holder.kill()
        holder.wait()


def rss_kib() -> int:
    return int(open("/proc/self/statm").read().split()[1]) * 4


def test_routes_stay_in_the_tables_namespace_across_recycling(namespace):
    with inside(namespace):
        table = KernelTable()
    try:
        for i in range(table.RECYCLE * 3):  # called from the root namespace on purpose
            table.replace("198.51.100.0/24", "10.9.0.2" if i % 2 else "10.9.0.3")
        assert table.routes() == {"198.51.100.0/24": "10.9.0.2"}  # the last one written
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
        growth = (rss_kib() - before) * 1024 / 2000
        assert growth < 400, f"{growth:.0f} bytes kept per route change"  # ~700 without recycling
    finally:
        table.close()


def test_a_batch_reports_each_failure_by_its_index(namespace):
    # Requests carry no acknowledgement flag: only failures come back, and
    # they must still be matched to the operations that caused them.
    with inside(namespace):
        table = KernelTable()
    try:
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
    finally:
        table.close()
