"""A client that pipelines requests to a route agent's control socket and
reads the replies only once it has sent them all (as
``testbed.bench.per_update`` originates its prefixes) must get every reply.
The agent used to write each reply with a blocking write: once the replies
filled the socket, the agent stopped reading while the client, still
sending, waited for it to read, and the client's send timed out ("route
agent of router P is gone (timed out)"). The agent now queues its replies
and reads on (``testbed.agent.control.ControlServer.reply``)."""

from __future__ import annotations

import pytest

from testbed import jsonlines
from testbed.lab.lab import Lab
from testbed.model.topology import Topology
from testbed.testing.wait import wait_until

pytestmark = pytest.mark.emulation

PAD = 1000   # bytes of an ignored field per request: the burst outgrows the socket's buffers in bytes alone


def burst_size() -> int:
    """Requests whose bytes (and so their replies', each longer) are twice
    what a socket buffers by default, so that the client is still sending
    when the replies fill the socket (an agent blocked writing them used to
    stop after about 120 here)."""
    with open("/proc/sys/net/core/wmem_default") as handle:
        return max(400, 2 * int(handle.read()) // PAD)


@pytest.fixture(scope="module")
def lab():
    topo = Topology("pipelining", hold_time=90)
    p, c = topo.add_as(65001, "P"), topo.add_as(65002, "C")
    topo.transit(p, c)
    with Lab(topo.validate(), process_model="zygote") as running:
        yield running


def test_pipelined_originates_are_all_answered_and_carried_out(lab):
    count = burst_size()
    connection = jsonlines.Connection.connect(lab.clients["P"].path)
    try:
        connection.sock.settimeout(10.0)
        before = lab.clients["P"].request("summary")["loc_rib_size"]
        held = lab.clients["C"].request("summary")["loc_rib_size"]
        prefixes = [f"21.{i >> 8}.{i & 255}.0/24" for i in range(count)]
        for i, prefix in enumerate(prefixes):
            try:
                connection.send({"op": "originate", "prefix": prefix, "as_path": [4200000000 + i],
                                 "pad": "x" * PAD})
            except TimeoutError:
                pytest.fail(f"P's agent stopped reading its control socket after {i} of {count} "
                            "pipelined requests (blocked writing replies nobody reads yet?)")
        replies = [connection.receive(10.0) for _ in prefixes]
    finally:
        connection.close()
    assert [r for r in replies if "error" in r] == []
    assert [r["loc_rib_size"] for r in replies] == list(range(before + 1, before + count + 1))
    # ... and the routes went out: C's agent holds them all.
    wait_until(lambda: lab.clients["C"].request("summary")["loc_rib_size"] >= held + count, 20.0,
               f"C to hold P's {count} originated routes")
