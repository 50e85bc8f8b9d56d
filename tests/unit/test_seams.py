"""The seams between the agent, its transports, the zygote and the harness:
the JSON-lines framing both control protocols use, the agent's command line
the zygote reads, the transports' common interface, and the prediction's
independence from the agent runtime."""

from __future__ import annotations

import socket
import sys

import pytest

from testbed import jsonlines
from testbed.agent.main import config_path
from testbed.agent.transport import TextTransport, Transport
from testbed.speaker.inprocess import Channel, InProcessTransport


def test_lines_are_cut_whole_and_a_partial_line_waits():
    lines = jsonlines.Lines()
    assert lines.feed(b'{"op": "a"}\n{"op"') == [b'{"op": "a"}']
    assert lines.feed(b': "b"}\n\n') == [b'{"op": "b"}', b""]
    assert lines.feed(b"") == []


def test_a_request_gets_its_reply_over_a_socket():
    server, client = socket.socketpair()
    try:
        connection = jsonlines.Connection(client)
        connection.send({"op": "ping", "n": 1})
        server.setblocking(False)
        lines = jsonlines.Lines()
        assert jsonlines.read(server, lines) == [b'{"op": "ping", "n": 1}']
        assert jsonlines.send(server, {"pong": 1}) and jsonlines.send(server, {"pong": 2})
        assert server.getblocking() is False  # given its mode back
        assert connection.receive(1.0) == {"pong": 1}
        assert connection.receive(1.0) == {"pong": 2}  # the second line, from the buffer
        with pytest.raises(socket.timeout):
            connection.receive(0.05)
        server.close()
        with pytest.raises(jsonlines.ConnectionClosed):
            connection.receive(1.0)
        assert jsonlines.read(client, lines) is None
    finally:
        server.close()
        client.close()


def test_the_agent_command_line_names_its_configuration():
    assert config_path([sys.executable, "-m", "testbed.agent", "/run/x/A/agent.json"]) == "/run/x/A/agent.json"
    assert config_path(f"{sys.executable} -m testbed.agent '/run/x y/agent.json'") == "/run/x y/agent.json"
    with pytest.raises(ValueError, match="not a route agent's command line"):
        config_path(["/usr/bin/python3", "-m", "something.else", "agent.json"])


@pytest.mark.parametrize("transport", [TextTransport(output=None), InProcessTransport(Channel(), None, -1)],
                         ids=["text", "inprocess"])
def test_both_transports_implement_the_interface(transport):
    for name in [n for n in dir(Transport) if not n.startswith("_")] + ["input_fd"]:
        assert hasattr(transport, name), name


def _module_imports(name: str) -> set[str]:
    """The testbed modules ``name`` imports when it is imported (its
    module-level import statements)."""
    import ast
    import importlib.util

    spec = importlib.util.find_spec(name)
    tree = ast.parse(open(spec.origin).read())
    found = set()
    for node in tree.body:
        for sub in ast.walk(node) if not isinstance(node, (ast.FunctionDef, ast.ClassDef)) else ():
            if isinstance(sub, ast.Import):
                found.update(alias.name for alias in sub.names)
            elif isinstance(sub, ast.ImportFrom) and sub.module:
                found.add(sub.module)
                found.update(f"{sub.module}.{alias.name}" for alias in sub.names)
    def is_module(candidate: str) -> bool:
        try:
            return importlib.util.find_spec(candidate) is not None
        except ModuleNotFoundError:  # a name inside a module, not a module
            return False

    return {m for m in found if m.startswith("testbed") and is_module(m)}


def test_the_prediction_does_not_import_the_agent_runtime():
    # Everything the prediction imports, short of the lab (a layer above it,
    # reached through testbed.routers' import of testbed.lab.cleanup).
    seen, todo = set(), ["testbed.model.prediction"]
    while todo:
        name = todo.pop()
        if name in seen or name.startswith("testbed.lab"):
            continue
        seen.add(name)
        todo.extend(_module_imports(name))
    assert "testbed.bgp.configure" in seen
    assert not [m for m in seen if m.startswith(("testbed.agent", "testbed.speaker"))]
