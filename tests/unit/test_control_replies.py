"""The agent's control server queues its replies instead of blocking on
them (``testbed.agent.control.ControlServer``): a client may pipeline more
requests than the socket buffers replies for, and the server reads on. On
a real Unix socket; the requests are ones no agent state answers (unknown
ops, answered with an error naming the op), so no agent is needed."""

from __future__ import annotations

import select
import socket
import threading
from selectors import EVENT_READ as READ, EVENT_WRITE as WRITE

from testbed import jsonlines
from testbed.agent import control
from testbed.agent.control import ControlServer

OP = "x" * 1000   # an unknown op of 1 KB: its error reply names it, so each reply is over 1 KB


def test_pipelined_requests_are_read_on_while_their_replies_wait(tmp_path):
    server = ControlServer(str(tmp_path / "agent.sock"), agent=None)
    client = jsonlines.Connection.connect(server.path)
    try:
        conn = server.accept()
        count = 2 * client.sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) // len(OP)  # twice what it buffers
        payload = b"".join(jsonlines.encode({"op": OP}) for _ in range(count))
        client.sock.settimeout(10.0)
        sending = threading.Thread(target=client.sock.sendall, args=(payload,), daemon=True)
        sending.start()
        # The server side as the agent's loop drives it on a readable socket,
        # until every request is read: it must never block.
        reading = threading.Thread(target=_read_all, args=(server, conn, sending), daemon=True)
        reading.start()
        reading.join(10.0)
        assert not reading.is_alive(), "the server blocked writing replies the client does not read yet"
        sending.join(10.0)
        assert not sending.is_alive(), "the server stopped reading the client's requests"
        assert server.interest() == [(conn, READ | WRITE)]      # replies wait: the loop must watch for room
        assert server.interest() == []                          # ... told once
        replies = []
        while len(replies) < count:
            replies.append(client.receive(1.0))
            server.writable(conn)
        assert replies == [{"error": f"unknown request {OP!r}"}] * count
        assert server.interest() == [(conn, READ)]              # all written: no longer watched for room
    finally:
        client.close()
        server.close()


def _read_all(server, conn, sending) -> None:
    while sending.is_alive() or select.select([conn], [], [], 0)[0]:
        if select.select([conn], [], [], 0.05)[0]:
            server.readable(conn)


def test_a_wake_up_with_nothing_to_read_is_not_a_closed_peer():
    a, b = socket.socketpair()
    try:
        a.setblocking(False)
        lines = jsonlines.Lines()
        assert jsonlines.read(a, lines) == []            # nothing there yet: the peer is still here
        b.sendall(b'{"op": "summary"}\n{"op": "wat')
        assert jsonlines.read(a, lines) == [b'{"op": "summary"}']
        b.close()
        assert jsonlines.read(a, lines) is None          # closed: now it is gone
    finally:
        a.close()


def test_past_the_bound_of_unread_replies_requests_wait_until_the_client_reads(tmp_path, monkeypatch):
    monkeypatch.setattr(control, "MAX_QUEUED", 64 << 10)
    server = ControlServer(str(tmp_path / "agent.sock"), agent=None)
    client = jsonlines.Connection.connect(server.path)
    try:
        conn = server.accept()
        client.sock.setblocking(False)
        sent = 0
        # requests while the server still reads them, replies never read
        while server.interest() != [(conn, WRITE)]:
            client.sock.sendall(jsonlines.encode({"op": OP}))
            sent += 1
            server.readable(conn)
            assert sent < 10_000, "the server never stopped reading"
        queued = len(server.output[conn])
        assert control.MAX_QUEUED < queued < control.MAX_QUEUED + 4 * len(OP) + 64 * 1024
        client.sock.setblocking(True)
        for _ in range(sent):      # the client reads: the replies drain, and reading resumes
            client.receive(5.0)
            server.writable(conn)
        assert server.interest() == [(conn, READ)]
    finally:
        client.close()
        server.close()
