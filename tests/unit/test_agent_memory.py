"""The agent's memory diagnosis request."""

import io
import tracemalloc

from testbed.agent import Agent

CONFIG = {"router": "A", "asn": 65001, "router_id": "10.255.0.1", "prefixes": [], "control_socket": "/nonexistent",
          "log": None, "neighbors": []}


def test_memory_reports_growth_by_line_only_when_tracing():
    agent = Agent(CONFIG, kernel=None, out=io.StringIO())
    assert agent.handle({"op": "memory"}) == {"tracing": False}
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
