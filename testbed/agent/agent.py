"""The route agent: ExaBGP's API process on every lab router.

ExaBGP speaks BGP but chooses no routes and programs no kernel. It starts
this agent (``python -m testbed.agent <config.json>``) inside the router's
network namespace and talks to it over stdin/stdout: JSON events in (session
state, parsed UPDATEs, NOTIFICATIONs), text commands out (``neighbor X
announce route ...``). The agent feeds the events to the pure
``RouterEngine`` (Adj-RIB-In, import policy, decision process, valley-free
export), turns the engine's actions into ExaBGP commands and kernel routes
(``testbed.linux.routes``), and answers the harness on its control socket
(``testbed.lab.control``). One event loop, no threads.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import signal
import socket
import sys
import time
from collections import deque

from testbed.bgp import (Announce, InstallRoute, Neighbor, Origin, Relationship, RemoveRoute, Route,
                  RouterEngine, RouteServerEngine, Teardown, Withdraw, parse_policy, parse_roas)
from testbed.bgp.community import community_text, large_text
from testbed.bgp.engine import kernel_target
from testbed.model.igp import kernel_next_hop

log = logging.getLogger("testbed.agent.agent")


def parse_as_path(attribute: object) -> tuple[int, ...]:
    """ExaBGP's JSON AS path (``{"0": {"element": "as-sequence", "value":
    [...]}}`` or a plain list) as a flat tuple of ASNs."""
    if isinstance(attribute, list):
        return tuple(int(a) for a in attribute)
    path: list[int] = []
    if isinstance(attribute, dict):
        for key in sorted(attribute, key=int):
            path.extend(int(a) for a in attribute[key].get("value", []))
    return tuple(path)


OTC_CODE = 35
"""The Only-to-Customer path attribute of RFC 9234: optional transitive,
four octets, an ASN. ExaBGP 5.0.15 has no support for it, so it travels as
a generic attribute: sent with ``attribute [ 0x23 0xc0 0x<asn> ]`` and
reported back as ``"attribute-0x23-0xC0": "0x<asn>"``."""


def _community(item) -> int:
    if isinstance(item, (list, tuple)):
        return int(item[0]) << 16 | int(item[1])
    high, low = str(item).split(":")
    return int(high) << 16 | int(low)


def _otc(attributes: dict) -> int | None:
    for key, value in attributes.items():
        if key.startswith(f"attribute-0x{OTC_CODE:02X}-"):
            return int(str(value), 16)
    return None


def engine_from_config(config: dict) -> RouterEngine:
    """The engine of the router an agent configuration describes (a route
    server's for ``route_server``): its neighbors with their relationship
    and session policy, its ROA table. ``testbed.model.prediction`` builds its model
    with this very function, so lab and model never disagree."""
    neighbors = [Neighbor(address=n["address"], asn=n["asn"],
                          relationship=Relationship(n["relationship"]),
                          router_id=n["router_id"], local_address=n["local_address"],
                          local_address6=n.get("local_address6"),
                          policy=parse_policy(n.get("policy"), f"policy towards {n['name']}")
                          if n.get("policy") else None)
                 for n in config["neighbors"]]
    roas = parse_roas(config.get("roas") or [])
    if config.get("route_server"):
        return RouteServerEngine(config["asn"], config["router_id"], neighbors, roas)
    igp = {address: entry["cost"] for address, entry in (config.get("igp") or {}).items()}
    return RouterEngine(config["asn"], config["router_id"], neighbors, roas, igp)


def parse_update(message: dict) -> tuple[list[Route], list[str]]:
    """Routes announced and prefixes withdrawn in one ExaBGP ``update`` event."""
    update = message.get("update", {})
    attributes = update.get("attribute", {})
    path = parse_as_path(attributes.get("as-path", {}))
    origin = Origin.parse(attributes.get("origin", "igp"))
    med = attributes.get("med")
    local_pref = attributes.get("local-preference")
    communities = tuple(_community(c) for c in attributes.get("community") or ())
    large = tuple(tuple(int(x) for x in c) if isinstance(c, (list, tuple)) else c
                  for c in attributes.get("large-community") or ())
    otc = _otc(attributes)
    announced: list[Route] = []
    for family, by_next_hop in update.get("announce", {}).items():
        if family not in ("ipv4 unicast", "ipv6 unicast"):
            continue
        for next_hop, entries in by_next_hop.items():
            for entry in entries:
                announced.append(Route(prefix=entry["nlri"], next_hop=next_hop, as_path=path,
                                       origin=origin, med=med, local_pref=local_pref,
                                       communities=communities, large_communities=large, otc=otc))
    withdrawn = [entry["nlri"] for family, entries in update.get("withdraw", {}).items()
                 if family in ("ipv4 unicast", "ipv6 unicast") for entry in entries]
    return announced, withdrawn


def command_for(action, announced: Route | None = None) -> str:
    """The ExaBGP API command of an Announce or Withdraw action.

    A withdrawal carries the attributes of the route last announced to that
    neighbor (``announced``) when there is one: ExaBGP 5.0.15 queues pending
    changes by attribute set, and a bare withdrawal that follows an
    announcement of the same prefix within one burst can be sent before it,
    leaving the peer with the announced route (reproduced in a two-speaker
    lab while ExaBGP kept its own Adj-RIB-Out; with the same attributes both
    land in one queue, in order)."""
    if isinstance(action, Withdraw):
        if announced is None:
            return f"neighbor {action.neighbor} withdraw route {action.prefix}"
        return command_for(Announce(action.neighbor, announced)).replace(" announce route ", " withdraw route ", 1)
    route = action.route
    text = (f"neighbor {action.neighbor} announce route {route.prefix} next-hop {route.next_hop} "
            f"origin {Origin(route.origin).name.lower()} as-path [ {' '.join(map(str, route.as_path))} ]")
    if route.med is not None:
        text += f" med {route.med}"
    if route.local_pref is not None:
        text += f" local-preference {route.local_pref}"
    if route.communities:
        text += f" community [ {' '.join(community_text(c) for c in route.communities)} ]"
    if route.large_communities:
        text += f" large-community [ {' '.join(large_text(c) for c in route.large_communities)} ]"
    if route.otc is not None:
        text += f" attribute [ 0x{OTC_CODE:02x} 0xc0 0x{route.otc:08x} ]"
    return text


MRAI_DEFAULT = 0.02
"""Seconds an announcement to an eBGP neighbor is held (see ``Agent.hold``):
the lab's MinRouteAdvertisementInterval, far below RFC 4271's suggested
30 s, which would make every lab wait for timers."""


class Agent:
    """State and event loop of one router's agent."""

    def __init__(self, config: dict, kernel=None, out=None):
        self.config = config
        self.name = config["router"]
        self.engine = engine_from_config(config)
        self.neighbors = self.engine.neighbors
        self.names = {n["address"]: n["name"] for n in config["neighbors"]}
        if config.get("route_server"):
            # A route server forwards nothing: its next hops are the members'.
            if kernel is not None and hasattr(kernel, "close"):
                kernel.close()
            kernel = None
        self.kernel = kernel
        # BGP next hop (another router's loopback) -> the directly connected
        # address to forward to, from the IGP.
        self.resolve = {address: entry["via"] for address, entry in (config.get("igp") or {}).items()}
        self.out = out if out is not None else sys.stdout
        self.kernel_routes: dict[str, str] = {}
        self._reconcile_again = False  # the last reconcile_kernel left routes out
        self.errors: list[str] = []
        self.sessions = {address: {"state": "idle", "since": time.time(), "reason": None,
                                   "last_notification": None, "admin_down": False, "flaps": 0}
                         for address in self.neighbors}
        self.generation = 0
        self._pending: dict[tuple, object] = {}
        self._announced: dict[tuple[str, str], Route] = {}  # last sent, for withdrawals
        self._batching = False
        # MRAI-like hold (RFC 4271 §9.2.1.1): announcements to eBGP
        # neighbors wait ``mrai`` seconds from a route's first change, and
        # only the last best path of that window is sent; see ``hold``.
        self.mrai = float(config.get("mrai") or 0.0)  # the lab sets it (MRAI_DEFAULT)
        self._ebgp = {address for address, n in self.neighbors.items() if n.asn != config["asn"]}
        self._held: dict[tuple[str, str], list] = {}     # (neighbor, prefix) -> [due, action]
        self._held_order: deque = deque()                # (due, key), due ascending
        # Update delay (a router's "bgp update-delay" after it starts): no
        # UPDATE is sent until the lab says every session is up, or for
        # ``update_delay`` seconds at most; see ``end_update_delay``.
        delay = config.get("update_delay")
        self.update_delay_until = None if not delay else time.monotonic() + float(delay)
        self.update_delay_ended: dict | None = None  # when (wall clock) and why it ended
        self._delayed: dict[tuple, object] = {}
        self.watchers: list[tuple[socket.socket, int]] = []
        self.stopping = False
        # What this router received and sent, for the benchmark's count of
        # path exploration: UPDATE events in, routes and withdrawals in,
        # announcements and withdrawals out, kernel operations.
        self.stats = dict.fromkeys(("updates_in", "routes_in", "withdrawn_in", "announced_out",
                                    "withdrawn_out", "kernel_ops"), 0)

    # -- engine actions ----------------------------------------------------
    def apply(self, actions) -> None:
        """Carry out engine actions: commands to ExaBGP, routes to the kernel.

        Inside ``batch()`` only the last action per (neighbor, prefix) and
        per kernel prefix is kept and carried out when the batch ends: while
        a burst of UPDATEs is being read, intermediate best paths are never
        sent or installed (what an MRAI timer achieves, without the wait)."""
        pending = self._pending
        for action in actions:
            kind = type(action)
            if kind is InstallRoute or kind is RemoveRoute:
                pending[("kernel", action.prefix)] = action
            elif kind is Announce:
                pending[("bgp", action.neighbor, action.route.prefix)] = action
            elif kind is Withdraw:
                pending[("bgp", action.neighbor, action.prefix)] = action
            elif kind is Teardown:
                # After what the engine sent before it (withdrawals to others).
                pending[("teardown", action.neighbor, len(pending))] = action
            else:
                raise TypeError(f"not an engine action: {action!r}")
        if not self._batching:
            self.flush()
        self.changed()

    @contextlib.contextmanager
    def batch(self):
        """Coalesce the actions of several events (see ``apply``)."""
        self._batching = True
        try:
            yield
        finally:
            self._batching = False
            self.flush()

    def hold(self, action, now: float) -> bool:
        """Whether ``action`` waits for the neighbor's MRAI window instead of
        going out now (then it is kept, replacing what was held for the same
        neighbor and prefix).

        An announcement to an eBGP neighbor is held until ``mrai`` seconds
        after the first change of that route; whatever best path holds then
        is sent, and the paths explored meanwhile never are (RFC 4271's
        MinRouteAdvertisementIntervalTimer, per destination, applied from
        the first change). Withdrawals are not delayed (the RFC exempts
        them): one replaces a held announcement, and goes out at once
        unless the neighbor never heard of the route."""
        key = (action.neighbor, action.route.prefix if isinstance(action, Announce) else action.prefix)
        held = self._held.get(key)
        if isinstance(action, Withdraw):
            if held is not None:
                del self._held[key]
                if key not in self._announced:
                    return True  # announced to nobody: nothing to withdraw
            return False
        if self.mrai <= 0 or action.neighbor not in self._ebgp:
            if held is not None:
                del self._held[key]
            return False
        if held is not None:
            held[1] = action
        else:
            due = now + self.mrai
            self._held[key] = [due, action]
            self._held_order.append((due, key))
        return True

    def release(self, now: float | None = None) -> float | None:
        """Send the held announcements whose window has ended; return the
        seconds until the next one ends (None if nothing is held)."""
        now = time.monotonic() if now is None else now
        order = self._held_order
        due_actions = []
        while order and order[0][0] <= now:
            due, key = order.popleft()
            held = self._held.get(key)
            if held is not None and held[0] == due:
                del self._held[key]
                due_actions.append(held[1])
        if due_actions:
            self._send_bgp(due_actions)
        while order and self._held.get(order[0][1], (None,))[0] != order[0][0]:
            order.popleft()  # replaced or dropped since
        return max(0.0, order[0][0] - now) if order else None

    def drop_held(self, neighbor: str) -> None:
        """Forget what was held for a neighbor whose session went down (on
        the next session the engine announces its whole Adj-RIB-Out)."""
        for key in [k for k in self._held if k[0] == neighbor]:
            del self._held[key]

    def check_update_delay(self, now: float) -> float | None:
        """End the update delay if its longest wait has passed; the seconds
        it may still last (None: not delaying)."""
        if self.update_delay_until is None:
            return None
        if now >= self.update_delay_until:
            self.end_update_delay("its longest wait passed")
            return None
        return self.update_delay_until - now

    def end_update_delay(self, why: str) -> None:
        """Send what the update delay kept back, the last action per
        neighbor and prefix (a withdrawal of what a neighbor was never sent
        is dropped), and from now on send at once."""
        if self.update_delay_until is None:
            return
        self.update_delay_until = None
        self.update_delay_ended = {"at": time.time(), "reason": why}
        delayed, self._delayed = self._delayed, {}
        for key, action in list(delayed.items()):
            if isinstance(action, Withdraw) and (action.neighbor, action.prefix) not in self._announced:
                del delayed[key]
        log.info("update delay over (%s): %d UPDATE(s) to send", why, len(delayed))
        self._pending = {**delayed, **self._pending}
        if not self._batching:
            self.flush()
        self.changed()

    def flush(self) -> None:
        pending, self._pending = self._pending, {}
        if self.update_delay_until is not None:
            # Only the kernel hears of routes during the update delay.
            for key in [key for key in pending if key[0] != "kernel"]:
                self._delayed[key] = pending.pop(key)
        kernel = []
        bgp = []
        now = time.monotonic()
        resolve = self.resolve
        for action in pending.values():
            kind = type(action)
            if kind is InstallRoute:
                next_hop = "blackhole" if action.blackhole else kernel_next_hop(resolve, action.next_hop)
                kernel.append(("replace", action.prefix, next_hop))
            elif kind is RemoveRoute:
                kernel.append(("delete", action.prefix, None))
            elif kind is Announce or kind is Withdraw:
                if not self.hold(action, now):
                    bgp.append(action)
            else:
                bgp.append(action)
        # The kernel first: a router forwards a route before it tells anyone
        # about it, so no neighbor sends traffic it cannot yet carry.
        if kernel:
            self.stats["kernel_ops"] += len(kernel)
            self._kernel_batch(kernel)
        if bgp:
            self._send_bgp(bgp)

    def _send_bgp(self, actions) -> None:
        self._write([self._outgoing(action) for action in actions])

    def _outgoing(self, action):
        """What to tell ExaBGP for one Announce, Withdraw or Teardown (the
        command text), with the bookkeeping of what each neighbor was sent."""
        if isinstance(action, Announce):
            self.stats["announced_out"] += 1
            self._announced[(action.neighbor, action.route.prefix)] = action.route
            return command_for(action)
        if isinstance(action, Withdraw):
            self.stats["withdrawn_out"] += 1
            return command_for(action, self._announced.pop((action.neighbor, action.prefix), None))
        # A Teardown. Cease, subcode 1: maximum number of prefixes reached (RFC 4486).
        log.warning("tearing down the session with %s: %s", action.neighbor, action.reason)
        self.sessions[action.neighbor]["reason"] = action.reason
        return f"neighbor {action.neighbor} teardown {action.subcode}"

    def _write(self, lines: list) -> None:
        if lines:
            self.out.write("\n".join(lines) + "\n")
            self.out.flush()

    def _kernel_batch(self, operations: list[tuple[str, str, str | None]]) -> None:
        """Carry out kernel operations in one netlink batch if the table
        can (``KernelTable.apply``), else one by one."""
        apply = getattr(self.kernel, "apply", None)
        if apply is None:
            for op, prefix, next_hop in operations:
                self._kernel(op, prefix, next_hop)
            return
        try:
            failed = apply(operations)
        except Exception as exc:  # the socket itself failed: try each on its own
            log.error("kernel batch failed (%s): one by one", exc)
            for op, prefix, next_hop in operations:
                self._kernel(op, prefix, next_hop)
            return
        routes = self.kernel_routes
        for index, (op, prefix, next_hop) in enumerate(operations):
            if failed and index in failed:
                message = f"kernel {op} {prefix} via {next_hop}: {failed[index]}"
                log.error(message)
                self.errors.append(message)
            elif op == "replace":
                routes[prefix] = next_hop
            else:
                routes.pop(prefix, None)

    def _kernel(self, op: str, prefix: str, next_hop: str | None) -> None:
        try:
            if self.kernel is not None:
                if op == "replace":
                    self.kernel.replace(prefix, next_hop)
                else:
                    self.kernel.delete(prefix)
            if op == "replace":
                self.kernel_routes[prefix] = next_hop
            else:
                self.kernel_routes.pop(prefix, None)
        except Exception as exc:  # keep routing; report it in the state
            message = f"kernel {op} {prefix} via {next_hop}: {exc}"
            log.error(message)
            self.errors.append(message)

    def reconcile_kernel(self) -> bool:
        """Put back Loc-RIB routes the kernel dropped; whether every one is
        there now.

        When a link goes down the kernel deletes every route through it, BGP
        or not. If the link comes back before the hold timer expires, the
        session never dropped and the Loc-RIB never changed, so nothing
        would reinstall them: the router would blackhole its best paths.
        Called when a link comes up, as a routing daemon's kernel interface
        does."""
        if self.kernel is None:
            return True
        try:
            actual = self.kernel.routes()
        except Exception as exc:  # keep routing; the next event retries
            log.error("reading the kernel table failed: %s", exc)
            return False
        fixed, complete = 0, True
        for prefix, route in self.engine.loc_rib().items():
            target = kernel_next_hop(self.resolve, kernel_target(route))
            if target is None or actual.get(prefix) == target:
                continue
            try:
                self.kernel.replace(prefix, target)
                self.kernel_routes[prefix] = target
                fixed += 1
            except Exception:  # the next hop's link is still down: the next event retries
                self.kernel_routes.pop(prefix, None)
                complete = False
        if fixed:
            log.info("reinstalled %d route(s) the kernel had dropped", fixed)
            self.changed()
        return complete

    def changed(self) -> None:
        self.generation += 1

    # -- ExaBGP events -----------------------------------------------------
    def on_event(self, event: dict) -> None:
        kind = event.get("type")
        neighbor = event.get("neighbor", {})
        peer = neighbor.get("address", {}).get("peer")
        if peer not in self.neighbors:
            return
        if kind == "state":
            self.on_state(peer, neighbor.get("state"), neighbor.get("reason"))
        elif kind == "update":
            message = neighbor.get("message", {})
            if "update" in message:
                self.on_update(peer, *parse_update(message))
        elif kind == "notification":
            note = neighbor.get("notification", {})
            self.sessions[peer]["last_notification"] = {
                "direction": neighbor.get("direction"), "code": note.get("code"),
                "subcode": note.get("subcode"), "data": note.get("data"),
                "message": note.get("message")}
            self.changed()

    def on_update(self, peer: str, announced: list[Route], withdrawn: list[str]) -> None:
        """Routes received from ``peer`` (also called by ``testbed.speaker.inprocess``)."""
        if peer in self.neighbors:
            stats = self.stats
            stats["updates_in"] += 1
            stats["routes_in"] += len(announced)
            stats["withdrawn_in"] += len(withdrawn)
            self.apply(self.engine.receive(peer, announced, withdrawn))

    def on_state(self, peer: str, state: str | None, reason: str | None) -> None:
        session = self.sessions[peer]
        was = session["state"]
        name = "established" if state == "up" else (state or "unknown")
        session.update(state=name, since=time.time(), reason=reason)
        log.info("session %s (%s): %s -> %s%s", peer, self.names[peer], was, name,
                 f" ({reason})" if reason else "")
        if state == "up":
            self.apply(self.engine.session_up(peer))
        elif state == "down":
            self.drop_held(peer)
            if was == "established":
                session["flaps"] += 1
            self.apply(self.engine.session_down(peer))
        else:
            self.changed()

    # -- control requests --------------------------------------------------
    def summary(self) -> dict:
        return {"router": self.name, "pid": os.getpid(), "generation": self.generation,
                "update_delay": {"active": self.update_delay_until is not None,
                                 **(self.update_delay_ended or {})},
                "sessions": self.sessions_json(), "loc_rib_size": self.engine.loc_rib_size(),
                "state_digest": self.engine.fingerprint(),
                "shut": dict(self.engine.shut),
                "stats": dict(self.stats),
                "errors": self.errors[-20:]}

    def sessions_json(self) -> dict:
        return {address: {**state, "name": self.names[address], "shut": self.engine.shut.get(address),
                          "asn": self.neighbors[address].asn,
                          "relationship": self.neighbors[address].relationship.value}
                for address, state in self.sessions.items()}

    def snapshot(self) -> dict:
        return {
            **self.summary(),
            "loc_rib": {p: r.to_json() for p, r in self.engine.loc_rib().items()},
            "adj_rib_in": {a: {p: r.to_json() for p, r in self.engine.adj_rib_in(a).items()}
                           for a in self.neighbors},
            "adj_rib_out": {a: {p: r.to_json() for p, r in self.engine.adj_rib_out(a).items()}
                            for a in self.neighbors},
            "kernel": dict(self.kernel_routes),
        }

    def handle(self, request: dict) -> dict | None:
        """The reply to a control request; None for a watch that must wait."""
        op = request.get("op")
        if op == "summary":
            return self.summary()
        if op == "snapshot":
            return self.snapshot()
        if op == "loc_rib":  # the summary and the Loc-RIB, without the Adj-RIBs (reports)
            return {**self.summary(),
                    "loc_rib": {p: r.to_json() for p, r in self.engine.loc_rib().items()}}
        if op == "watch":
            return self.summary() if self.generation > int(request.get("after", -1)) else None
        if op == "end_update_delay":
            self.end_update_delay("the lab's sessions are up")
            return self.summary()
        if op == "originate":
            self.apply(self.engine.originate(request["prefix"],
                                             communities=request.get("communities") or (),
                                             large_communities=request.get("large_communities") or ()))
            return self.summary()
        if op == "withdraw":
            self.apply(self.engine.stop_originating(request["prefix"]))
            return self.summary()
        if op == "policy":
            address = request["neighbor"]
            if address not in self.neighbors:
                return {"error": f"no neighbor {address}"}
            data = request.get("policy")
            new = parse_policy(data, f"policy towards {self.names[address]}") if data else None
            self.apply(self.engine.set_policy(address, new))
            return self.summary()
        if op == "memory":
            # Diagnosis of this process's growth: its live Python heap after
            # a full collection and the object types that grew since the
            # previous call; with PYTHONTRACEMALLOC set, also the allocations
            # that grew, by line.
            import tracemalloc

            limit = int(request.get("limit", 15))
            heap = python_heap()
            counts = heap.pop("types")
            seen, self._seen_types = getattr(self, "_seen_types", {}), counts
            heap["grown"] = sorted(([name, counts.get(name, 0) - seen.get(name, 0)] for name in {*counts, *seen}
                                    if counts.get(name, 0) != seen.get(name, 0)),
                                   key=lambda item: (-abs(item[1]), item[0]))[:limit]
            if not tracemalloc.is_tracing():
                return {"tracing": False, "heap": heap}
            snapshot = tracemalloc.take_snapshot()
            previous, self._memory_snapshot = getattr(self, "_memory_snapshot", None), snapshot
            stats = snapshot.compare_to(previous, "lineno") if previous else snapshot.statistics("lineno")
            return {"tracing": True, "heap": heap,
                    "top": [[str(st.traceback), getattr(st, "size_diff", st.size),
                             getattr(st, "count_diff", st.count)] for st in stats[:limit]]}
        if op == "exabgp":
            # Raw API commands, behind the engine's back: for diagnosing
            # ExaBGP itself (the tests use it to replay bursts).
            self.out.write("".join(f"{line}\n" for line in request["lines"]))
            self.out.flush()
            return {"sent": len(request["lines"])}
        if op == "admin":
            address = request["neighbor"]
            if address not in self.sessions:
                return {"error": f"no neighbor {address}"}
            self.sessions[address]["admin_down"] = bool(request["down"])
            if not request["down"]:
                self.engine.clear_shut(address)  # a re-peer also clears a max-prefix shutdown
            self.changed()
            return self.summary()
        return {"error": f"unknown request {op!r}"}

    # -- event loop --------------------------------------------------------
    def run(self, stdin_fd: int = 0) -> None:
        path = self.config["control_socket"]
        if os.path.exists(path):
            os.unlink(path)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(path)
        os.chmod(path, 0o600)
        server.listen(16)
        server.setblocking(False)
        selector = selectors.DefaultSelector()
        selector.register(stdin_fd, selectors.EVENT_READ, "stdin")
        selector.register(server, selectors.EVENT_READ, "server")
        links = link_watch() if self.kernel is not None else None
        if links is not None:
            selector.register(links, selectors.EVENT_READ, "links")
        buffers: dict[int, bytes] = {}
        pending = b""
        events = BurstReader(stdin_fd)

        for prefix in self.config.get("prefixes", []):
            self.apply(self.engine.originate(prefix))

        def stop(*_):
            self.stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        wait = self.release() if self._held_order else None
        backlog = getattr(self.out, "pending", None)  # a non-blocking command pipe's unsent bytes
        writing = False
        while not self.stopping:
            if backlog is not None and bool(backlog) != writing:
                # Wait for room in the command pipe while reading on: ExaBGP
                # may itself be blocked writing events to us.
                writing = bool(backlog)
                (selector.register if writing else selector.unregister)(
                    *((self.out.fd, selectors.EVENT_WRITE, "stdout") if writing else (self.out.fd,)))
            if self.update_delay_until is not None:
                left = self.check_update_delay(time.monotonic())
                if left is None:
                    wait = self.release() if self._held_order else None
                else:
                    wait = left if wait is None else min(wait, left)
            for key, _ in selector.select(timeout=1.0 if wait is None else min(1.0, wait)):
                if key.data == "stdout":
                    self.out.flush()
                elif key.data == "stdin":
                    chunk = events.read()
                    if not chunk:
                        log.info("ExaBGP closed our stdin: exiting")
                        self.stopping = True
                        break
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    with self.batch():
                        for line in lines:
                            self._stdin_line(line)
                elif key.data == "links":
                    # A link that came up may need the routes the kernel
                    # dropped with it; a reconciliation that could not put
                    # every one back tries again on the next event.
                    if links.came_up() or self._reconcile_again:
                        self._reconcile_again = not self.reconcile_kernel()
                elif key.data == "server":
                    conn, _ = server.accept()
                    conn.setblocking(False)
                    buffers[conn.fileno()] = b""
                    selector.register(conn, selectors.EVENT_READ, "client")
                else:
                    conn = key.fileobj
                    try:
                        chunk = conn.recv(1 << 16)
                    except OSError:
                        chunk = b""
                    if not chunk:
                        selector.unregister(conn)
                        buffers.pop(conn.fileno(), None)
                        self.watchers = [(c, g) for c, g in self.watchers if c is not conn]
                        conn.close()
                        continue
                    data = buffers[conn.fileno()] + chunk
                    *requests, buffers[conn.fileno()] = data.split(b"\n")
                    for raw in requests:
                        self._request(conn, raw)
            wait = self.release() if self._held_order else None
            self._answer_watchers()
        selector.close()
        server.close()
        if links is not None:
            links.close()
        try:
            os.unlink(path)
        except OSError:
            pass

    def _stdin_line(self, line: bytes) -> None:
        line = line.strip()
        if not line.startswith(b"{"):
            if line and line not in (b"done",):
                log.info("exabgp: %s", line.decode(errors="replace"))
            return
        try:
            self.on_event(json.loads(line))
        except Exception as exc:  # one bad event must not stop routing
            log.exception("event failed: %s", line[:500])
            self.errors.append(f"event handling failed: {type(exc).__name__}: {exc}")
            self.changed()

    def _request(self, conn: socket.socket, raw: bytes) -> None:
        try:
            request = json.loads(raw)
            reply = self.handle(request)
        except Exception as exc:
            reply = {"error": f"{type(exc).__name__}: {exc}"}
            request = {}
        if reply is None:
            self.watchers.append((conn, int(request.get("after", -1))))
            return
        self._send(conn, reply)

    def _answer_watchers(self) -> None:
        if not self.watchers:
            return
        waiting = []
        for conn, after in self.watchers:
            if self.generation > after:
                self._send(conn, self.summary())
            else:
                waiting.append((conn, after))
        self.watchers = waiting

    @staticmethod
    def _send(conn: socket.socket, reply: dict) -> None:
        data = json.dumps(reply).encode() + b"\n"
        conn.setblocking(True)
        try:
            conn.sendall(data)
        except OSError:
            pass
        finally:
            conn.setblocking(False)


class NonBlockingOutput:
    """The agent's command pipe to ExaBGP in the exec model, written
    without ever blocking. ExaBGP blocks writing events to the agent when
    that pipe is full; an agent blocked writing commands to ExaBGP's full
    pipe at the same time is a deadlock (seen on Tier-1s of a 300-AS lab).
    What the pipe cannot take now stays in ``pending``, which the event loop
    sends when the pipe has room, reading events meanwhile."""

    def __init__(self, fd: int):
        self.fd = fd
        os.set_blocking(fd, False)
        self.pending = bytearray()

    def write(self, text: str) -> int:
        self.pending += text.encode()
        self.flush()
        return len(text)

    def flush(self) -> None:
        while self.pending:
            try:
                sent = os.write(self.fd, self.pending)
            except BlockingIOError:
                return
            del self.pending[:sent]


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


class BurstReader:
    """Reads the agent's events from ExaBGP, letting a burst gather first.

    ExaBGP hands over every UPDATE on its own, and a converging router
    receives them in bursts, one every few hundred microseconds. Woken for
    each, the agent pays its fixed costs (a wake-up, a read, deciding, a
    kernel batch, and in a zygote speaker taking the interpreter lock from
    ExaBGP's thread and giving it back) once per UPDATE: measured on one
    router taking 10,000 one-route UPDATEs, 116 us of the agent's CPU per
    UPDATE and 183 us of its ExaBGP's. Once the last ``reads`` reads all
    fell within ``burst`` seconds, the next one waits ``gather`` seconds
    for more of the burst to arrive: 35 and 140 us. A short run of events
    (the few UPDATEs of a withdrawal passing through) is read as it comes,
    so it is not delayed hop after hop. ``TESTBED_AGENT_GATHER`` sets
    ``gather`` in seconds (0: read each event as it comes, for an A/B)."""

    GATHER = float(os.environ.get("TESTBED_AGENT_GATHER", "0.002"))
    BURST = 0.02
    READS = 4

    def __init__(self, fd: int, gather: float = GATHER, burst: float = BURST, reads: int = READS,
                 clock=time.monotonic, sleep=time.sleep):
        self.fd = fd
        self.gather, self.burst = gather, burst
        self._clock, self._sleep = clock, sleep
        self._recent: deque = deque(maxlen=reads)  # when the last reads were made

    def read(self) -> bytes:
        recent = self._recent
        if self.gather and len(recent) == recent.maxlen and self._clock() - recent[0] < self.burst:
            self._sleep(self.gather)
        chunk = os.read(self.fd, 1 << 20)
        recent.append(self._clock())
        return chunk


def link_watch():
    """A ``testbed.linux.routes.LinkWatch`` of this namespace, or None if netlink
    refuses one."""
    from testbed.linux.routes import LinkWatch

    try:
        return LinkWatch()
    except OSError as exc:
        log.error("cannot watch link events (%s): routes dropped by a link flap stay dropped", exc)
        return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    with open(argv[0]) as handle:
        config = json.load(handle)
    logging.basicConfig(filename=config.get("log"), level=logging.INFO,
                        format="%(asctime)s.%(msecs)03d %(levelname)s %(message)s", datefmt="%H:%M:%S")
    from testbed.linux.routes import KernelTable

    agent = Agent(config, kernel=KernelTable(), out=NonBlockingOutput(sys.stdout.fileno()))
    log.info("agent of router %s (AS%s) started, pid %d", agent.name, config["asn"], os.getpid())
    agent.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
