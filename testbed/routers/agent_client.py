"""The control channel between the lab harness and each route agent.

Each agent listens on a Unix socket in the lab's private work directory
(mode 0700, so no other lab or user reaches it). The protocol is one JSON
object per line each way: a request ``{"op": ...}`` gets exactly one reply.
``watch`` is the long poll the harness waits on: the agent answers it only
once its state generation has passed the one the harness last saw, so
waiting for convergence is driven by the agents' events, not by sleeps.
"""

from __future__ import annotations

import socket
import time

from testbed import jsonlines
from testbed.bgp.fingerprint import state_fingerprint, table_fingerprint
from testbed.errors import LabError


def state_digest(loc_rib: dict[str, dict], adj_rib_in: dict[str, dict[str, dict]]) -> str:
    """Fingerprint of a router's routing state in JSON form: its Loc-RIB
    (prefix, AS path, next hop, MED) and what every neighbor sent it
    (Adj-RIB-In, refused routes included, with whether they were refused).
    "Converged" means this equals the model's, so routes that lost the
    decision but are still on their way count too; the MED is in it
    because it can decide between paths that look alike (without it, a
    router holding a neighbor's route before its MED arrived looked
    converged). Equal to ``RouterEngine.fingerprint()`` of the same tables,
    which an agent keeps up to date as routes change
    (``testbed.bgp.fingerprint``)."""
    return state_fingerprint(table_fingerprint(loc_rib),
                             {neighbor: table_fingerprint(rib, adj_in=True) for neighbor, rib in adj_rib_in.items()})


class AgentClient:
    """A blocking connection to one route agent's control socket."""

    def __init__(self, path: str, router: str, timeout: float = 10.0):
        self.path = path
        self.router = router
        self.timeout = timeout
        self.connection: jsonlines.Connection | None = None

    @property
    def sock(self) -> socket.socket | None:
        return None if self.connection is None else self.connection.sock

    def connect(self, deadline: float) -> None:
        """Connect, retrying until ``deadline`` while the agent starts."""
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                self.connection = jsonlines.Connection.connect(self.path)
                return
            except OSError as exc:
                last = exc
                time.sleep(0.02)  # the socket file appears when the agent is up
        raise LabError(f"route agent of router {self.router} did not open its control socket "
                       f"{self.path}: {last}")

    def send(self, request: dict) -> None:
        assert self.connection is not None
        try:
            self.connection.send(request)
        except OSError as exc:
            raise LabError(f"route agent of router {self.router} is gone ({exc}): "
                           "did it or its speaker exit?") from exc

    def receive(self, timeout: float | None = None) -> dict:
        assert self.connection is not None
        try:
            reply = self.connection.receive(self.timeout if timeout is None else timeout)
        except socket.timeout as exc:
            raise LabError(f"route agent of router {self.router} did not answer in time") from exc
        except jsonlines.ConnectionClosed as exc:
            raise LabError(f"route agent of router {self.router} closed its control socket "
                           "(did it or its speaker exit?)") from exc
        except OSError as exc:
            raise LabError(f"route agent of router {self.router} is gone ({exc}): "
                           "did it or its speaker exit?") from exc
        if "error" in reply:
            raise LabError(f"router {self.router}: {reply['error']}")
        return reply

    def request(self, op: str, timeout: float | None = None, **fields) -> dict:
        """Send one request and wait for its reply."""
        self.send({"op": op, **fields})
        return self.receive(timeout)

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None
