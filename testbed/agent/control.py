"""The route agent's control socket: the server side of the harness's
protocol (the client is ``testbed.routers.agent_client.AgentClient``).

``ControlServer`` listens on the Unix socket named in the agent's
configuration, reads one JSON request per line (``testbed.jsonlines``) and
writes one reply per request: ``handle`` answers each from the agent's
state, or changes it (originate, withdraw, policy, admin, end the update
delay, raw ExaBGP commands). A ``watch`` is the long poll the harness waits
on: it is answered only once the agent's state generation has passed the
one the harness last saw (``answer_watchers``, after every event).

Replies are queued per connection and written only as far as the socket
takes them (``writable`` when the loop sees room): a client that pipelines
requests and reads the replies only after sending them all must never find
the agent blocked writing a reply, no longer reading, while it is itself
blocked sending the rest (each side waiting for the other to read). Past
``MAX_QUEUED`` bytes of unread replies the connection's requests wait in
its socket until the client reads (``interest``), so a client that never
reads cannot grow the agent's memory.
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import sys

from testbed import jsonlines
from testbed.bgp import parse_policy


def summary(agent) -> dict:
    return {"router": agent.name, "pid": os.getpid(), "generation": agent.generation,
            "update_delay": {"active": agent.schedule.delaying,
                             **(agent.schedule.update_delay_ended or {})},
            "sessions": sessions_json(agent), "loc_rib_size": agent.engine.loc_rib_size(),
            "state_digest": agent.engine.fingerprint(),
            "shut": dict(agent.engine.shut),
            "stats": {**agent.stats, **agent.transport.stats()},
            "errors": agent.errors[-20:]}


def sessions_json(agent) -> dict:
    return {address: {**state, "name": agent.names[address], "shut": agent.engine.shut.get(address),
                      "asn": agent.neighbors[address].asn,
                      "relationship": agent.neighbors[address].relationship.value}
            for address, state in agent.sessions.items()}


def snapshot(agent) -> dict:
    engine = agent.engine
    return {
        **summary(agent),
        "loc_rib": {p: r.to_json() for p, r in engine.loc_rib().items()},
        "adj_rib_in": {a: {p: r.to_json() for p, r in engine.adj_rib_in(a).items()} for a in agent.neighbors},
        "adj_rib_out": {a: {p: r.to_json() for p, r in engine.adj_rib_out(a).items()} for a in agent.neighbors},
        "kernel": dict(agent.kernel_routes),
    }


def handle(agent, request: dict) -> dict | None:
    """The reply to a control request; None for a watch that must wait."""
    op = request.get("op")
    if op == "summary":
        return summary(agent)
    if op == "snapshot":
        return snapshot(agent)
    if op == "loc_rib":  # the summary and the Loc-RIB, without the Adj-RIBs (reports)
        return {**summary(agent),
                "loc_rib": {p: r.to_json() for p, r in agent.engine.loc_rib().items()}}
    if op == "watch":
        return summary(agent) if agent.generation > int(request.get("after", -1)) else None
    if op == "end_update_delay":
        agent.end_update_delay("the lab's sessions are up")
        return summary(agent)
    if op == "originate":
        agent.apply(agent.engine.originate(request["prefix"],
                                           communities=request.get("communities") or (),
                                           large_communities=request.get("large_communities") or (),
                                           as_path=request.get("as_path") or ()))
        return summary(agent)
    if op == "withdraw":
        agent.apply(agent.engine.stop_originating(request["prefix"]))
        return summary(agent)
    if op == "policy":
        address = request["neighbor"]
        if address not in agent.neighbors:
            return {"error": f"no neighbor {address}"}
        data = request.get("policy")
        new = parse_policy(data, f"policy towards {agent.names[address]}") if data else None
        agent.apply(agent.engine.set_policy(address, new))
        return summary(agent)
    if op == "memory":
        return memory(agent, int(request.get("limit", 15)))
    if op == "exabgp":
        # Raw API commands, behind the engine's back: for diagnosing
        # ExaBGP itself (the tests use it to replay bursts).
        agent.transport.send([str(line) for line in request["lines"]])
        return {"sent": len(request["lines"])}
    if op == "admin":
        address = request["neighbor"]
        if address not in agent.sessions:
            return {"error": f"no neighbor {address}"}
        agent.sessions[address]["admin_down"] = bool(request["down"])
        if not request["down"]:
            agent.engine.clear_shut(address)  # a re-peer also clears a max-prefix shutdown
        agent.changed()
        return summary(agent)
    return {"error": f"unknown request {op!r}"}


def memory(agent, limit: int) -> dict:
    """Diagnosis of this process's growth: its live Python heap after a
    full collection and the object types that grew since the previous
    call; with PYTHONTRACEMALLOC set, also the allocations that grew, by
    line."""
    import tracemalloc

    heap = python_heap()
    counts = heap.pop("types")
    seen, agent._seen_types = getattr(agent, "_seen_types", {}), counts
    heap["grown"] = sorted(([name, counts.get(name, 0) - seen.get(name, 0)] for name in {*counts, *seen}
                            if counts.get(name, 0) != seen.get(name, 0)),
                           key=lambda item: (-abs(item[1]), item[0]))[:limit]
    if not tracemalloc.is_tracing():
        return {"tracing": False, "heap": heap}
    snap = tracemalloc.take_snapshot()
    previous, agent._memory_snapshot = getattr(agent, "_memory_snapshot", None), snap
    stats = snap.compare_to(previous, "lineno") if previous else snap.statistics("lineno")
    return {"tracing": True, "heap": heap,
            "top": [[str(st.traceback), getattr(st, "size_diff", st.size),
                     getattr(st, "count_diff", st.count)] for st in stats[:limit]]}


def python_heap() -> dict:
    """This process's live Python heap after a full collection: ``blocks``
    (small-object allocations in use, ``sys.getallocatedblocks``),
    ``objects`` (objects the collector tracks, frozen ones excepted: in a
    speaker forked from the zygote, the objects made since the fork) and
    ``types`` (name -> count of those). Measured at the same routing state,
    a leak of Python objects makes ``blocks`` grow with every event, where
    the process's RSS also moves with the allocator's own state."""
    import gc

    gc.collect()
    types: dict[str, int] = {}
    objects = gc.get_objects()
    for obj in objects:
        name = type(obj).__qualname__
        types[name] = types.get(name, 0) + 1
    return {"blocks": sys.getallocatedblocks(), "objects": len(objects), "types": types}


MAX_QUEUED = 4 << 20   # bytes of replies a connection may leave unread before its requests wait


class ControlServer:
    """The agent's listening socket and its connections (non-blocking,
    driven by the agent's event loop)."""

    def __init__(self, path: str, agent):
        self.path = path
        self.agent = agent
        if os.path.exists(path):
            os.unlink(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        os.chmod(path, 0o600)
        self.sock.listen(16)
        self.sock.setblocking(False)
        self.lines: dict[socket.socket, jsonlines.Lines] = {}
        self.output: dict[socket.socket, bytearray] = {}   # replies the socket has not taken yet
        self.watched: dict[socket.socket, int] = {}        # the selector events the loop watches for
        self.watchers: list[tuple[socket.socket, int]] = []

    def accept(self) -> socket.socket:
        conn, _ = self.sock.accept()
        conn.setblocking(False)
        self.lines[conn] = jsonlines.Lines()
        self.output[conn] = bytearray()
        self.watched[conn] = selectors.EVENT_READ
        return conn

    def readable(self, conn: socket.socket) -> bool:
        """Answer what ``conn`` sent; False once it closed (then ``drop`` it)."""
        requests = jsonlines.read(conn, self.lines[conn])
        if requests is None:
            return False
        for raw in requests:
            self.request(conn, raw)
        return True

    def writable(self, conn: socket.socket) -> bool:
        """Write what the socket takes of ``conn``'s queued replies, without
        blocking; False once the peer is gone (then ``drop`` it)."""
        out = self.output.get(conn)
        while out:
            try:
                sent = conn.send(out)
            except BlockingIOError:
                return True
            except OSError:
                out.clear()
                return False
            del out[:sent]
        return out is not None

    def interest(self) -> list[tuple[socket.socket, int]]:
        """The connections whose selector events changed, with the events
        each needs now: room to write while replies are queued; requests
        to read unless more than ``MAX_QUEUED`` bytes of replies wait (a
        client that sends and never reads is held back by its socket, not
        by the agent's memory)."""
        changes = []
        for conn, out in self.output.items():
            events = ((selectors.EVENT_READ if len(out) <= MAX_QUEUED else 0)
                      | (selectors.EVENT_WRITE if out else 0))
            if events != self.watched.get(conn):
                changes.append((conn, events))
                self.watched[conn] = events
        return changes

    def reply(self, conn: socket.socket, message: dict) -> None:
        """Queue ``message`` for ``conn`` and write what the socket takes now."""
        out = self.output.get(conn)
        if out is not None:
            out += jsonlines.encode(message)
            self.writable(conn)

    def drop(self, conn: socket.socket) -> None:
        self.lines.pop(conn, None)
        self.output.pop(conn, None)
        self.watched.pop(conn, None)
        self.watchers = [(c, g) for c, g in self.watchers if c is not conn]
        conn.close()

    def request(self, conn: socket.socket, raw: bytes) -> None:
        try:
            request = json.loads(raw)
            reply = handle(self.agent, request)
        except Exception as exc:
            reply = {"error": f"{type(exc).__name__}: {exc}"}
            request = {}
        if reply is None:
            self.watchers.append((conn, int(request.get("after", -1))))
            return
        self.reply(conn, reply)

    def answer_watchers(self) -> None:
        if not self.watchers:
            return
        generation, waiting = self.agent.generation, []
        for conn, after in self.watchers:
            if generation > after:
                self.reply(conn, summary(self.agent))
            else:
                waiting.append((conn, after))
        self.watchers = waiting

    def close(self) -> None:
        for conn in self.lines:
            conn.close()
        self.sock.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass
