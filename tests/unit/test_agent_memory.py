"""The agent's memory diagnosis request."""

import io
import tracemalloc

from testbed.agent.agent import Agent

CONFIG = {"router": "A", "asn": 65001, "router_id": "10.255.0.1", "prefixes": [], "control_socket": "/nonexistent",
          "log": None, "neighbors": []}


class Retained:
    """Objects of this type are kept alive on purpose, as a leak would."""


def test_memory_reports_growth_by_line_only_when_tracing():
    agent = Agent(CONFIG, kernel=None, out=io.StringIO())
    assert agent.handle({"op": "memory"})["tracing"] is False
    tracemalloc.start()
    try:
        agent.handle({"op": "memory"})
        hoard = [bytearray(1000) for _ in range(200)]  # noqa: F841 (kept alive on purpose)
        reply = agent.handle({"op": "memory", "limit": 5})
    finally:
        tracemalloc.stop()
    assert reply["tracing"] is True and len(reply["top"]) <= 5
    where, grew, count = reply["top"][0]
    assert "test_agent_memory.py" in where and grew >= 200_000 and count >= 200


def test_memory_counts_the_live_heap_and_names_the_types_that_grew():
    agent = Agent(CONFIG, kernel=None, out=io.StringIO())
    before = agent.handle({"op": "memory"})["heap"]
    hoard = [Retained() for _ in range(5000)]
    cycles = []
    for _ in range(300):  # garbage the full collection must not count
        loop: list = []
        loop.append(loop)
        cycles.append(None)
    del loop
    after = agent.handle({"op": "memory", "limit": 3})["heap"]
    assert after["blocks"] - before["blocks"] >= 5000
    assert after["objects"] - before["objects"] >= 5000
    assert ["Retained", 5000] in after["grown"] and len(after["grown"]) <= 3
    assert not any(name == "list" and grew >= 300 for name, grew in after["grown"])
    del hoard
    again = agent.handle({"op": "memory"})["heap"]
    assert ["Retained", -5000] in again["grown"]
    assert again["blocks"] < after["blocks"] - 4000
