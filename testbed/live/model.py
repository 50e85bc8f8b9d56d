"""What the live page shows, kept up to date, and who may see it.

``LiveState`` holds every router's Loc-RIB and sessions in the report's
compact form (``testbed.report.state.compact_route``) and the event log.
It is fed two ways: ``router(name, reply)`` with an agent's ``loc_rib``
answer (the follower's, after each ``watch`` answer), ``record(kind,
payload)`` with the recorder's records (``Recorder.subscribe``) and, for
an exercise's lab, ``set_criteria`` with its criteria's outcomes. Each
returns the message the page needs (None when nothing changed);
``snapshot()`` is the whole state, the first message a page gets. The
page's script applies the messages the same way (``live.js``). ``Access``
checks the access token (a cookie, ``Authorization: Bearer`` or
``?token=``) and the form token an action must carry. Pure: no sockets,
no threads (a lock keeps ``LiveState`` whole under the server's threads).
"""

from __future__ import annotations

import hmac
import secrets
import threading
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlsplit

from testbed.report.state import compact_route

COOKIE = "testbed_live"
LOG_LIMIT = 500          # events kept for a page that opens late


class LiveState:
    """See the module docstring. ``names(asns)`` turns ASNs into AS
    names and ``router_of(address)`` an address into the router that has
    it (the lab's ``names`` and ``plan.router_of``)."""

    def __init__(self, names, router_of, routers):
        self.names = names
        self.router_of = router_of
        self.routers = list(routers)
        self.ribs: dict[str, dict[str, dict]] = {}
        self.sessions: dict[str, dict[str, str]] = {}
        self.gone: dict[str, str] = {}
        self.log: list[dict] = []
        self.criteria: list[dict] = []
        self.seq = 0
        self._lock = threading.Lock()

    def _next(self, message: dict) -> dict:
        self.seq += 1
        return {**message, "seq": self.seq}

    def router(self, name: str, reply: dict) -> dict | None:
        """An agent's ``loc_rib`` (or ``snapshot``) answer: a ``router``
        message with its routes and sessions if either changed."""
        rib = {prefix: compact_route(route, self.names, self.router_of)
               for prefix, route in sorted((reply.get("loc_rib") or {}).items())}
        sessions = {s.get("name", address): s.get("state", "?")
                    for address, s in sorted((reply.get("sessions") or {}).items())}
        with self._lock:
            if self.ribs.get(name) == rib and self.sessions.get(name) == sessions and name not in self.gone:
                return None
            self.ribs[name], self.sessions[name] = rib, sessions
            self.gone.pop(name, None)
            return self._next({"type": "router", "router": name, "rib": rib, "sessions": sessions,
                               "generation": reply.get("generation")})

    def router_gone(self, name: str, why: str) -> dict:
        """A router whose agent stopped answering (crashed): no routes."""
        with self._lock:
            self.gone[name] = why
            self.ribs[name], self.sessions[name] = {}, {}
            return self._next({"type": "router", "router": name, "rib": {}, "sessions": {}, "error": why})

    def record(self, kind: str, payload) -> dict | None:
        """A recorder's record: events and test steps go to the log, a
        recorded state replaces the routers it read, the stop says so."""
        if kind == "event":
            entry = {"type": "log", "t": payload.get("t"), "kind": payload.get("kind"),
                     "text": payload.get("text"), "seconds": payload.get("seconds"),
                     "error": payload.get("error"),
                     "changed": len(payload.get("changed") or []),
                     "routers": sorted({c["router"] for c in payload.get("changed") or []})}
        elif kind == "step":
            entry = {"type": "log", "t": payload.get("t"), "kind": "step",
                     "text": f"{payload.get('name')}: {payload.get('outcome')}", "error": None}
        elif kind == "stopped":
            entry = {"type": "stopped"}
        elif kind == "note":     # the server's own: an action asked, refused or failed
            entry = {"type": "log", **payload}
        elif kind == "state":
            messages = []
            for router in payload.get("ribs", {}):
                message = self._state_router(router, payload)
                if message:
                    messages.append(message)
            return {"type": "batch", "messages": messages} if messages else None
        else:
            return None
        with self._lock:
            message = self._next(entry)
            if message["type"] == "log":
                self.log.append(message)
                del self.log[:-LOG_LIMIT]
            return message

    def _state_router(self, router: str, state: dict) -> dict | None:
        rib, sessions = state["ribs"].get(router, {}), state["sessions"].get(router, {})
        with self._lock:
            if self.ribs.get(router) == rib and self.sessions.get(router) == sessions:
                return None
            self.ribs[router], self.sessions[router] = rib, sessions
            return self._next({"type": "router", "router": router, "rib": rib, "sessions": sessions})

    def set_criteria(self, results: list[dict], t: float | None = None) -> dict:
        """An exercise's criteria (name, description) and, once checked,
        each one's outcome (``passed``, ``seen``, ``hint``; ``passed`` None
        before the first check): a ``criteria`` message."""
        keep = ("name", "description", "passed", "seen", "hint")
        with self._lock:
            self.criteria = [{k: r.get(k) for k in keep} for r in results]
            return self._next({"type": "criteria", "t": t, "criteria": list(self.criteria)})

    def snapshot(self) -> dict:
        with self._lock:
            return {"type": "snapshot", "seq": self.seq, "criteria": list(self.criteria),
                    "ribs": {r: dict(v) for r, v in self.ribs.items()},
                    "sessions": {r: dict(v) for r, v in self.sessions.items()},
                    "errors": dict(self.gone), "log": list(self.log)}


def glass(reply: dict, names, router_of) -> dict:
    """A looking glass of one router from its agent's ``snapshot``: the
    Loc-RIB, sessions and every neighbor's Adj-RIB-In and Adj-RIB-Out,
    neighbors by name, routes in the compact form."""
    by_address = {a: s.get("name", a) for a, s in (reply.get("sessions") or {}).items()}

    def table(rib: dict) -> dict:
        return {p: compact_route(r, names, router_of) for p, r in sorted(rib.items())}

    return {"loc_rib": table(reply.get("loc_rib") or {}),
            "sessions": {by_address[a]: {"state": s.get("state"), "relationship": s.get("relationship"),
                                         "asn": s.get("asn")}
                         for a, s in sorted((reply.get("sessions") or {}).items())},
            "adj_rib_in": {by_address.get(a, a): table(rib) for a, rib in sorted((reply.get("adj_rib_in") or {}).items())},
            "adj_rib_out": {by_address.get(a, a): table(rib)
                            for a, rib in sorted((reply.get("adj_rib_out") or {}).items())}}


class Access:
    """The access token (given by whoever started the view) and the form
    token the page sends back with an action (``X-Testbed-Form``; a page
    of another site can neither read it nor send that header without a
    preflight this server never grants)."""

    def __init__(self, token: str | None = None, form: str | None = None, cookie: str = COOKIE):
        self.token = token or secrets.token_urlsafe(24)
        self.form = form or secrets.token_urlsafe(24)
        # Browsers keep cookies per host, not per port: two views on one
        # machine need two names.
        self.cookie = cookie

    def presented(self, path: str, headers) -> str | None:
        """The token a request carries, wherever it is (a link's token
        first: it replaces an older cookie)."""
        query = parse_qs(urlsplit(path).query)
        if query.get("token"):
            return query["token"][0]
        auth = headers.get("Authorization") or ""
        if auth.startswith("Bearer "):
            return auth[7:].strip()
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("Cookie") or "")
        except Exception:
            pass
        return cookie[self.cookie].value if self.cookie in cookie else None

    def allowed(self, path: str, headers) -> bool:
        given = self.presented(path, headers)
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def form_ok(self, headers) -> bool:
        given = headers.get("X-Testbed-Form") or ""
        return hmac.compare_digest(given.encode(), self.form.encode())

    def cookie_header(self) -> str:
        return f"{self.cookie}={self.token}; Path=/; HttpOnly; SameSite=Strict"


ACTIONS = {"depeer": ("a", "b"), "repeer": ("a", "b"), "announce": ("as", "prefix"),
           "withdraw": ("as", "prefix")}


def parse_action(body: dict, ases: set[str], sessions: set[frozenset]) -> tuple[str, tuple]:
    """An action the page asks for, checked: (name, arguments); raises
    ValueError saying what is wrong."""
    if not isinstance(body, dict):
        raise ValueError("an action is a JSON object")
    op = body.get("op")
    if op not in ACTIONS:
        raise ValueError(f"unknown action {op!r}: use one of {', '.join(ACTIONS)}")
    args = []
    for key in ACTIONS[op]:
        value = body.get(key)
        if not isinstance(value, str) or not value:
            raise ValueError(f"{op}: {key!r} is missing")
        args.append(value)
    if op in ("depeer", "repeer"):
        if frozenset(args) not in sessions:
            raise ValueError(f"{op}: no session between {args[0]!r} and {args[1]!r}")
    else:
        import ipaddress

        if args[0] not in ases:
            raise ValueError(f"{op}: no AS named {args[0]!r}")
        try:
            args[1] = str(ipaddress.ip_network(args[1], strict=False))
        except ValueError:
            raise ValueError(f"{op}: {args[1]!r} is not a prefix") from None
    return op, tuple(args)
