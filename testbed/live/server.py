"""The live view's web server: the page, its updates and the actions.

``LiveView(lab, recorder, ...)`` starts, beside a started lab, a
``ThreadingHTTPServer`` (standard library) on 127.0.0.1 by default, a
``Follower`` of the lab's agents and a subscription to the lab's
``Recorder``; what they say goes through ``LiveState`` into messages that
every open page receives as server-sent events (``/events``). Every
request needs the access token (``Access``): ``/?token=...`` sets it as a
cookie, anything without it gets 401. ``/`` is the page (the report's
picture, style and drawing script ``tree.js`` inline, with ``live.js``;
a Content-Security-Policy lets it reach this server only);
``/api/state`` the whole state; ``/api/router/NAME`` a looking glass
(the agent's snapshot with the Adj-RIBs, over a connection of the view's
own); an exercise's lab shows its criteria and their state after each
check (``criteria_checked``); ``POST /api/action`` (only with ``control``, and the page's form
token) queues a depeer, repeer, announce or withdraw, run one at a time
on a worker thread under ``lock``, which the CLI holds for its commands
too, since a lab serves one caller at a time. ``stop()`` ends it all and
leaves nothing (no file is written).
"""

from __future__ import annotations

import json
import queue
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import unquote, urlsplit

from testbed.routers.agent_client import AgentClient
from testbed.errors import LabError

from .follow import Follower
from .model import Access, LiveState, glass, parse_action

KEEPALIVE = 15.0   # seconds between comments on an idle event stream


def _asset(package: str, name: str) -> str:
    return resources.files(package).joinpath(name).read_text()


def page(title: str, svg: str, data: dict) -> str:
    """The live page: text in, text out."""
    from html import escape

    embedded = json.dumps(data, separators=(",", ":"), sort_keys=True).replace("</", "<\\/")
    control = data.get("control")
    return "".join([
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>{escape(title)}: live</title>",
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; connect-src 'self'\">",
        f"<style>{_asset('testbed.report', 'report.css')}\n{_asset('testbed.live', 'live.css')}</style>",
        "</head><body>",
        f'<h1>{escape(title)} <span id="status" class="bad">connecting</span></h1>',
        '<div class="controls"><label>destination <select id="destination"></select></label>',
        '<label>router <select id="router"></select></label>',
        '<label><input type="checkbox" id="fit" checked> fit the picture to the page</label></div>',
        '<p class="note" id="tree-caption"></p>',
        '<div id="explore"><div id="picture">', svg, "</div>",
        '<div id="panel"><b id="router-caption"></b>',
        '<table id="rib"><thead><tr><th>prefix</th><th>AS path</th><th>next hop</th><th>communities</th>'
        "</tr></thead><tbody></tbody></table>",
        '<table id="sessions"><thead><tr><th>session with</th><th>state</th></tr></thead><tbody></tbody>'
        "</table>",
        '<details id="glass"><summary>looking glass: Adj-RIB-In and Adj-RIB-Out</summary>'
        '<div id="glass-body"></div></details></div></div>',
        '<p class="legend note"><span style="color:#d55e00">\u2501 best path towards the destination</span>'
        '<span style="color:#009e73">\u25a0 destination</span><span>faded: no route</span>'
        '<span style="color:#999">\u2504 session down</span><span>click an AS for its routes</span></p>',
        ('<h2>Control</h2><div id="control" class="controls">'
         '<label>session <select id="session"></select></label>'
         '<button id="depeer">depeer</button> <button id="repeer">repeer</button> '
         '<label>AS <select id="origin"></select></label><label>prefix <input id="prefix" size="22">'
         '</label><button id="announce">announce</button> <button id="withdraw">withdraw</button></div>'
         if control else ""),
        ('<h2>Exercise criteria</h2><p class="note" id="criteria-caption">not checked yet: '
         "'testbed exercise check' grades the answer</p><table id=\"criteria\"><thead><tr><th>criterion</th>"
         "<th>state</th><th>seen and hint</th></tr></thead><tbody></tbody></table>"
         if data.get("exercise") else ""),
        "<h2>Reachability (control plane: a best route to the AS's first prefix)</h2>",
        '<div class="matrices"><div><b>IPv4</b><table class="matrix" id="matrix-4"></table></div>'
        '<div><b>IPv6</b><table class="matrix" id="matrix-6"></table></div></div>',
        '<h2>Events</h2><table id="log"><thead><tr><th>at</th><th>event</th><th>converged in</th>'
        "<th>routers that changed best path</th></tr></thead><tbody></tbody></table>",
        f'<script type="application/json" id="live-data">{embedded}</script>',
        f"<script>{_asset('testbed.report', 'tree.js')}\n{_asset('testbed.live', 'live.js')}</script>",
        "</body></html>\n",
    ])


class LiveView:
    """See the module docstring. ``port`` 0 takes a free one; ``bind``
    other than a loopback address is the caller's explicit choice."""

    def __init__(self, lab, recorder, port: int = 8080, bind: str = "127.0.0.1", control: bool = False,
                 token: str | None = None, criteria: list[dict] | None = None):
        self.lab, self.recorder = lab, recorder
        self.control = control
        self.access = Access(token)
        self.lock = threading.RLock()       # one caller of the lab at a time
        self.state = LiveState(lab.names, lab.plan.router_of, lab.plan.routers)
        if criteria:
            self.state.set_criteria(criteria)
        self._clients: list[queue.Queue] = []
        self._clients_lock = threading.Lock()
        self._glass: dict[str, AgentClient] = {}
        self._glass_lock = threading.Lock()
        self._actions: queue.Queue = queue.Queue()
        try:
            self.httpd = ThreadingHTTPServer((bind, port), _handler(self))
        except OSError as exc:
            raise LabError(f"the live view cannot listen on {bind}:{port}: {exc.strerror or exc} "
                           "(another port: --web PORT, or 0 for any free one)") from None
        paths = {name: client.path for name, client in lab.clients.items() if name not in lab.crashed}
        self.follower = Follower(paths, self._from_agent, self._agent_gone)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.access.cookie = f"testbed_live_{self.port}"
        self.bind = bind
        self._threads: list[threading.Thread] = []
        self._stopped = False

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.bind in ("0.0.0.0", "") else self.bind
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/?token={self.access.token}"

    # -- life -------------------------------------------------------------------
    def start(self) -> "LiveView":
        try:
            self.follower.connect()
            self.recorder.subscribe(self._from_recorder)
            self.follower.start()
            for target, name in ((self.httpd.serve_forever, "testbed-live-http"),
                                 (self._work, "testbed-live-actions")):
                thread = threading.Thread(target=target, name=name, daemon=True)
                thread.start()
                self._threads.append(thread)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop serving and following; safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        self._actions.put(None)
        self.follower.stop()
        self.broadcast(None)
        if any(t.name == "testbed-live-http" for t in self._threads):
            self.httpd.shutdown()
        self.httpd.server_close()
        with self._glass_lock:
            for client in self._glass.values():
                client.close()
            self._glass.clear()
        for thread in self._threads:
            thread.join(timeout=5.0)

    # -- messages -------------------------------------------------------------
    def broadcast(self, message: dict | None) -> None:
        with self._clients_lock:
            clients = list(self._clients)
        for q in clients:
            q.put(message)

    def _from_agent(self, name: str, reply: dict) -> None:
        message = self.state.router(name, reply)
        if message:
            self.broadcast(message)

    def _agent_gone(self, name: str, why: str) -> None:
        if name in self.lab.plan.routers:
            self.broadcast(self.state.router_gone(name, why))
        else:
            self._note("problem", why, error=why)

    def _from_recorder(self, kind: str, payload) -> None:
        message = self.state.record(kind, payload)
        if message:
            self.broadcast(message)

    def _note(self, kind: str, text: str, error: str | None = None) -> None:
        self._from_recorder("note", {"t": round(self.recorder.now(), 4), "kind": kind, "text": text,
                                     "error": error})

    def criteria_checked(self, results: list[dict]) -> None:
        """An exercise's check ran: show each criterion's outcome."""
        self.broadcast(self.state.set_criteria(results, round(self.recorder.now(), 4)))

    # -- what a request asks ----------------------------------------------------
    def data(self) -> dict:
        index = self.recorder.picture.get("index", {})
        prefixes = self.recorder.picture.get("prefixes", {})
        return {"index": index, "prefixes": prefixes, "control": self.control,
                "form": self.access.form if self.control else "", "title": self.lab.topology.name,
                "sessions": sorted([min(s["a"], s["b"]), max(s["a"], s["b"])]
                                   for s in index.get("sessions", {}).values()),
                "ases": sorted(name for name, a in index.get("ases", {}).items() if a.get("routers")),
                "exercise": bool(self.state.criteria)}

    def page(self) -> str:
        return page(self.lab.topology.name, self.recorder.picture.get("svg", ""), self.data())

    def looking_glass(self, router: str) -> dict:
        if router not in self.lab.plan.routers:
            raise KeyError(router)
        with self._glass_lock:
            client = self._glass.get(router)
            if client is None:
                client = AgentClient(self.lab.clients[router].path, router)
                client.connect(time.monotonic() + 2.0)
                self._glass[router] = client
            try:
                reply = client.request("snapshot", timeout=10.0)
            except LabError:
                client.close()
                del self._glass[router]
                raise
        return glass(reply, self.lab.names, self.lab.plan.router_of)

    def ask(self, body) -> tuple[str, tuple]:
        """Check an action and queue it (ValueError if it is wrong)."""
        op, args = parse_action(body, set(self.data()["ases"]), {s.key for s in self.lab.plan.sessions})
        self._note("asked", f"{op} {' '.join(args)} (from the page)")
        self._actions.put((op, args))
        return op, args

    def _work(self) -> None:
        while True:
            item = self._actions.get()
            if item is None:
                return
            op, args = item
            try:
                with self.lock:
                    if self.lab.stopped:
                        return
                    getattr(self.lab, op)(*args)
            except Exception as exc:  # told on the page; the recorder has the event too
                self._note("failed", f"{op} {' '.join(args)}", error=f"{type(exc).__name__}: {exc}")


def _handler(view: LiveView):
    class Handler(BaseHTTPRequestHandler):
        server_version = "testbed-live"
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):  # no access log on the lab's terminal
            pass

        def _send(self, status: int, body: bytes, kind: str = "application/json", extra: dict | None = None):
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("X-Frame-Options", "DENY")
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, data) -> None:
            self._send(status, json.dumps(data).encode())

        def _denied(self) -> bool:
            if view.access.allowed(self.path, self.headers):
                return False
            self._send(401, b"401: this live view needs its access token (printed when it started)\n",
                       "text/plain; charset=utf-8", {"WWW-Authenticate": 'Bearer realm="testbed"'})
            return True

        def do_GET(self):
            if self._denied():
                return
            url = urlsplit(self.path)
            if url.path == "/" and "token=" in url.query:
                # Keep the token in a cookie, out of the address bar and history.
                self._send(303, b"", "text/plain", {"Location": "/", "Set-Cookie": view.access.cookie_header()})
            elif url.path == "/":
                self._send(200, view.page().encode(), "text/html; charset=utf-8")
            elif url.path == "/api/state":
                self._json(200, view.state.snapshot())
            elif url.path.startswith("/api/router/"):
                router = unquote(url.path[len("/api/router/"):])
                try:
                    self._json(200, view.looking_glass(router))
                except KeyError:
                    self._json(404, {"error": f"no router named {router!r}"})
                except LabError as exc:
                    self._json(503, {"error": str(exc)})
            elif url.path == "/events":
                self._events()
            else:
                self._json(404, {"error": "not found"})

        def do_POST(self):
            if self._denied():
                return
            if urlsplit(self.path).path != "/api/action":
                return self._json(404, {"error": "not found"})
            if not view.control:
                return self._json(403, {"error": "this live view was started without --web-control"})
            if not view.access.form_ok(self.headers):
                return self._json(403, {"error": "the page's form token is missing or wrong"})
            try:
                length = int(self.headers.get("Content-Length") or 0)
                if length > 10_000:
                    raise ValueError("an action is a small JSON object")
                op, args = view.ask(json.loads(self.rfile.read(length) or b"null"))
            except ValueError as exc:
                return self._json(400, {"error": str(exc)})
            self._json(202, {"queued": [op, *args]})

        def _events(self):
            q: queue.Queue = queue.Queue()
            with view._clients_lock:
                view._clients.append(q)
            try:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-store")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                self._event(view.state.snapshot())
                while True:
                    try:
                        message = q.get(timeout=KEEPALIVE)
                    except queue.Empty:
                        self.wfile.write(b": keepalive\n\n")
                        self.wfile.flush()
                        continue
                    if message is None:
                        return
                    self._event(message)
            except OSError:   # the page went away
                return
            finally:
                with view._clients_lock:
                    view._clients.remove(q)

        def _event(self, message: dict) -> None:
            self.wfile.write(b"data: " + json.dumps(message, separators=(",", ":")).encode() + b"\n\n")
            self.wfile.flush()

    return Handler
