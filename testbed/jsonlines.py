"""One JSON object per line over a Unix stream socket: the framing of both
control protocols (the harness and each route agent, ``testbed.agent.control``
and ``testbed.routers.agent_client``; the harness and the zygote,
``testbed.speaker.zygote`` and ``testbed.speaker.client``).

A request is one object on one line and gets exactly one reply, also one
line. ``encode`` frames an object; ``Lines`` gathers what a non-blocking
server reads into whole lines; ``send`` writes a reply in full whatever the
socket's blocking mode; ``Connection`` is the blocking client side
(``request``: send one object, wait for one). Nothing here knows an op.
"""

from __future__ import annotations

import json
import socket


class ConnectionClosed(OSError):
    """The other end closed the connection before a whole line came."""


def encode(message: dict) -> bytes:
    """``message`` as one line of JSON."""
    return json.dumps(message).encode() + b"\n"


class Lines:
    """Bytes read from a stream, cut into whole lines (the last, partial
    line waits for the rest)."""

    def __init__(self):
        self._partial = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        return lines


def read(sock: socket.socket, lines: Lines) -> list[bytes] | None:
    """One read from a readable (non-blocking) socket: the whole lines it
    completes (none if nothing was there after all), or None once the
    peer closed or the socket failed."""
    try:
        chunk = sock.recv(1 << 16)
    except (BlockingIOError, InterruptedError):
        return []   # a spurious wake-up: nothing to read yet, not a closed peer
    except OSError:
        chunk = b""
    if not chunk:
        return None
    return lines.feed(chunk)


def send(sock: socket.socket, message: dict) -> bool:
    """Write ``message`` in full (blocking for it), then give the socket its
    blocking mode back; False if the peer is gone."""
    blocking = sock.getblocking()
    sock.setblocking(True)
    try:
        sock.sendall(encode(message))
        return True
    except OSError:
        return False
    finally:
        try:
            sock.setblocking(blocking)
        except OSError:
            pass


class Connection:
    """The blocking client end of a JSON-lines socket."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self._lines = Lines()
        self._ready: list[bytes] = []

    @classmethod
    def connect(cls, path: str) -> "Connection":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
        except OSError:
            sock.close()
            raise
        return cls(sock)

    def send(self, message: dict) -> None:
        self.sock.sendall(encode(message))

    def receive(self, timeout: float | None) -> dict:
        """The next object; ``socket.timeout`` after ``timeout`` seconds,
        ``ConnectionClosed`` if the peer closed first."""
        self.sock.settimeout(timeout)
        while not self._ready:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionClosed("the peer closed the connection")
            self._ready.extend(self._lines.feed(chunk))
        return json.loads(self._ready.pop(0))

    def request(self, message: dict, timeout: float | None) -> dict:
        self.sock.settimeout(timeout)
        self.send(message)
        return self.receive(timeout)

    def close(self) -> None:
        self.sock.close()
