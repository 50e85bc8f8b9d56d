"""Predict the converged routing state of a set of routers, without a lab.

The engines of every router are wired together by ``Session``s; the
``Announce``/``Withdraw`` actions an engine emits over a session that is up
are delivered to the engine at the other end, one message at a time, first
in first out, until none is pending. Messages for a session that is down are
dropped, as a real speaker would not send them; kernel actions are ignored.
The engines are the very ones the route agents run, so the Loc-RIBs this
reaches are the ones the lab must reach.

``converge(...)`` does this once; a ``Network`` keeps the engines converged
while sessions go up and down and prefixes come and go. Everything is
deterministic: sessions come up in a fixed order, each engine emits actions
in a fixed order, and delivery is FIFO. Under Gao-Rexford policies the stable
state is unique, so it does not depend on the delivery order; where policies
allow several stable states, this finds one of them, and where they allow
none (a dispute wheel), delivery never ends and ``NoConvergence`` is raised.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from testbed.errors import NoConvergence
from testbed.bgp.engine import Action, Announce, RouterEngine, Teardown, Withdraw
from testbed.bgp.route import Origin, Route, address_sort_key, prefix_sort_key

__all__ = ["SessionEnd", "Session", "Network", "converge", "DEFAULT_MAX_MESSAGES"]

DEFAULT_MAX_MESSAGES = 1_000_000
"""How many messages one convergence may deliver before it gives up."""


@dataclass(frozen=True)
class SessionEnd:
    """One end of a BGP session: the router's name and the address that
    router uses for the peer (the key of its ``Neighbor``)."""

    router: str
    neighbor: str

    def __str__(self) -> str:
        return f"{self.router}->{self.neighbor}"


@dataclass(frozen=True)
class Session:
    """A BGP session between two routers."""

    a: SessionEnd
    b: SessionEnd

    def __str__(self) -> str:
        return f"{self.a.router} -- {self.b.router} ({self.a}, {self.b})"


def _session_key(session: Session) -> tuple:
    return (session.a.router, address_sort_key(session.a.neighbor),
            session.b.router, address_sort_key(session.b.neighbor))


class Network:
    """Engines joined by sessions, kept converged.

    Construction brings up the ``up`` sessions (all of them if ``None``)
    and converges; each change method (``bring_up``, ``bring_down``,
    ``originate``, ``withdraw``, ``apply``) converges again and returns how
    many messages that took. ``messages`` is the count of the initial
    convergence. Raises ``ValueError`` if the sessions do not match the
    engines' neighbors, and ``NoConvergence`` if more than ``max_messages``
    messages are needed.
    """

    def __init__(self, engines: dict[str, RouterEngine], sessions: Iterable[Session],
                 up: Iterable[Session] | None = None, *,
                 max_messages: int = DEFAULT_MAX_MESSAGES):
        self.engines = engines
        self.sessions: tuple[Session, ...] = tuple(sorted(set(sessions), key=_session_key))
        self.max_messages = max_messages
        self._other: dict[tuple[str, str], tuple[SessionEnd, Session]] = {}
        self._check()
        wanted = self.sessions if up is None else tuple(sorted(set(up), key=_session_key))
        unknown = [str(s) for s in wanted if s not in self.sessions]
        if unknown:
            raise ValueError("sessions to bring up are not among the sessions: "
                             + "; ".join(unknown))
        self._up: set[Session] = set(wanted)
        self._pending: deque[tuple[str, Action]] = deque()
        # A session that is down has delivered nothing: forget whatever the
        # engines hold from an earlier life, as the real routers would have.
        for session in self.sessions:
            if session not in self._up:
                for end in (session.a, session.b):
                    self._queue(end.router, engines[end.router].session_down(end.neighbor))
        for session in wanted:
            for end in (session.a, session.b):
                self._queue(end.router, engines[end.router].session_up(end.neighbor))
        self.messages = self.converge()

    # -- changes -------------------------------------------------------------
    @property
    def up(self) -> frozenset[Session]:
        """The sessions that are up."""
        return frozenset(self._up)

    def session(self, router_a: str, router_b: str) -> Session:
        """The one session between routers ``router_a`` and ``router_b``
        (raises ``ValueError`` if there is none or more than one)."""
        found = [s for s in self.sessions
                 if {s.a.router, s.b.router} == {router_a, router_b}]
        if len(found) != 1:
            raise ValueError(f"{len(found)} sessions between {router_a} and {router_b}, "
                             f"expected exactly one")
        return found[0]

    def bring_up(self, session: Session) -> int:
        """Establish ``session`` (both ends send their Adj-RIB-Out) and
        converge; nothing happens if it is up already."""
        self._known(session)
        if session in self._up:
            return 0
        self._up.add(session)
        for end in (session.a, session.b):
            self._queue(end.router, self.engines[end.router].session_up(end.neighbor))
        return self.converge()

    def bring_down(self, session: Session) -> int:
        """Tear ``session`` down (both ends forget what the other sent) and
        converge; nothing happens if it is down already."""
        self._known(session)
        if session not in self._up:
            return 0
        self._up.discard(session)
        for end in (session.a, session.b):
            self._queue(end.router, self.engines[end.router].session_down(end.neighbor))
        return self.converge()

    def originate(self, router: str, prefix: str, origin: Origin = Origin.IGP) -> int:
        """``router`` originates ``prefix``; converge."""
        return self.apply(router, self._engine(router).originate(prefix, origin))

    def withdraw(self, router: str, prefix: str) -> int:
        """``router`` stops originating ``prefix``; converge."""
        return self.apply(router, self._engine(router).stop_originating(prefix))

    def apply(self, router: str, actions: Iterable[Action]) -> int:
        """Deliver ``actions`` that ``router``'s engine returned for a change
        made to it directly; converge."""
        self._engine(router)
        self._queue(router, actions)
        return self.converge()

    def converge(self) -> int:
        """Deliver pending messages until none is left; return how many
        were delivered. Raises ``NoConvergence`` past ``max_messages``."""
        delivered = 0
        pending = self._pending
        while pending:
            sender, action = pending.popleft()
            hop = self._other.get((sender, action.neighbor))
            if hop is None or hop[1] not in self._up:
                continue  # no session, or it is down: nothing goes on the wire
            if delivered >= self.max_messages:
                pending.appendleft((sender, action))
                raise NoConvergence(self._giving_up(delivered))
            end = hop[0]
            engine = self.engines[end.router]
            if isinstance(action, Teardown):
                # The sender closed the session and has already forgotten
                # the routes. After a maximum-prefix teardown it keeps the
                # session down; after a configuration change it comes back.
                self._queue(end.router, engine.session_down(end.neighbor))
                if action.neighbor in self.engines[sender].shut:
                    self._up.discard(hop[1])
                else:
                    self._queue(sender, self.engines[sender].session_up(action.neighbor))
                    self._queue(end.router, engine.session_up(end.neighbor))
                continue
            if isinstance(action, Announce):
                out = engine.receive(end.neighbor, [action.route], ())
            else:
                out = engine.receive(end.neighbor, (), [action.prefix])
            delivered += 1
            self._queue(end.router, out)
        return delivered

    # -- queries -------------------------------------------------------------
    def loc_ribs(self) -> dict[str, dict[str, Route]]:
        """Router name -> its Loc-RIB (prefix -> best route)."""
        return {name: self.engines[name].loc_rib() for name in sorted(self.engines)}

    # -- internals -----------------------------------------------------------
    def _queue(self, router: str, actions: Iterable[Action]) -> None:
        self._pending.extend((router, a) for a in actions
                             if isinstance(a, (Announce, Withdraw, Teardown)))

    def _engine(self, router: str) -> RouterEngine:
        try:
            return self.engines[router]
        except KeyError:
            raise ValueError(f"no router named {router!r} "
                             f"(routers: {', '.join(sorted(self.engines))})") from None

    def _known(self, session: Session) -> None:
        if session not in self.sessions:
            raise ValueError(f"unknown session {session}")

    def _check(self) -> None:
        problems = []
        for session in self.sessions:
            ends = ((session.a, session.b), (session.b, session.a))
            for end, other in ends:
                engine = self.engines.get(end.router)
                if engine is None:
                    problems.append(f"session {session}: no router named {end.router!r}")
                    continue
                if (end.router, end.neighbor) in self._other:
                    problems.append(f"session {session}: {end} is already the end of "
                                    f"session {self._other[(end.router, end.neighbor)][1]}")
                    continue
                self._other[(end.router, end.neighbor)] = (other, session)
                neighbor = engine.neighbors.get(end.neighbor)
                if neighbor is None:
                    problems.append(f"session {session}: router {end.router} has no "
                                    f"neighbor {end.neighbor}")
                    continue
                peer = self.engines.get(other.router)
                if peer is None:
                    continue
                if neighbor.asn != peer.asn:
                    problems.append(f"session {session}: router {end.router} expects "
                                    f"AS{neighbor.asn} at {end.neighbor} but router "
                                    f"{other.router} is AS{peer.asn}")
                back = peer.neighbors.get(other.neighbor)
                if back is not None and back.local_address != end.neighbor:
                    problems.append(f"session {session}: router {end.router} talks to "
                                    f"{end.neighbor} but router {other.router} uses "
                                    f"{back.local_address} on this session")
        if problems:
            raise ValueError("sessions do not match the routers:\n  - "
                             + "\n  - ".join(problems))

    def _giving_up(self, delivered: int) -> str:
        changing: dict[str, set[str]] = {}
        for sender, action in self._pending:
            hop = self._other.get((sender, action.neighbor))
            if hop is None or hop[1] not in self._up:
                continue
            if isinstance(action, Teardown):
                continue
            prefix = action.route.prefix if isinstance(action, Announce) else action.prefix
            changing.setdefault(prefix, set()).add(hop[0].router)
        shown = sorted(changing, key=prefix_sort_key)
        listed = ", ".join(f"{p} (at {', '.join(sorted(changing[p]))})" for p in shown[:10])
        more = f" and {len(shown) - 10} more" if len(shown) > 10 else ""
        return (f"routing did not converge: gave up after {delivered} messages "
                f"(max_messages={self.max_messages}); prefixes still changing: "
                f"{listed}{more}. The policies may have no stable state "
                f"(a dispute wheel), or the limit is too low for this network.")


def converge(engines: dict[str, RouterEngine], sessions: Iterable[Session],
             up: Iterable[Session] | None = None,
             max_messages: int = DEFAULT_MAX_MESSAGES) -> int:
    """Bring up the ``up`` sessions (all if ``None``) of ``engines`` and
    deliver messages until none is pending; return how many were delivered.
    The engines are left in the converged state. Raises ``NoConvergence``
    past ``max_messages`` and ``ValueError`` if sessions and engines do not
    match. See ``Network`` to change the state afterwards."""
    return Network(engines, sessions, up, max_messages=max_messages).messages
