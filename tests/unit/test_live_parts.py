"""The live view's pure parts, without root: what the page is told for an
agent's answer and for each recorder record (the page applies the same
messages), the access and form tokens, the 401s of the real HTTP handler
(on loopback, with no lab behind it), actions checked before they run,
and the page self-contained."""

from __future__ import annotations

import re
import threading
import urllib.error
import urllib.request
from http.server import ThreadingHTTPServer
from types import SimpleNamespace

import pytest

from testbed.live.model import Access, LiveState, glass, parse_action
from testbed.live.server import _handler, page

NAMES = {64500: "T", 64501: "A", 64502: "B"}
ADDRESSES = {"10.0.0.1": "T", "10.0.0.2": "A", "10.0.1.2": "B"}


def state() -> LiveState:
    return LiveState(lambda asns: [NAMES[a] for a in asns], ADDRESSES.get, ["A", "B", "T"])


def answer(path, next_hop, session_state="established", generation=1):
    return {"generation": generation,
            "loc_rib": {"192.0.2.128/25": {"as_path": path, "next_hop": next_hop, "neighbor": next_hop}},
            "sessions": {"10.0.1.2": {"name": "B", "state": session_state},
                         "10.0.0.1": {"name": "T", "state": "established"}}}


def test_an_agents_answer_becomes_a_router_message_once():
    s = state()
    first = s.router("A", answer([64502], "10.0.1.2"))
    assert first["type"] == "router" and first["router"] == "A"
    assert first["rib"]["192.0.2.128/25"] == {"path": ["B"], "next": "B"}
    assert first["sessions"] == {"B": "established", "T": "established"}
    assert s.router("A", answer([64502], "10.0.1.2", generation=2)) is None   # nothing the page shows changed
    moved = s.router("A", answer([64500, 64502], "10.0.0.1", session_state="idle", generation=3))
    assert moved["rib"]["192.0.2.128/25"] == {"path": ["T", "B"], "next": "T"}
    assert moved["sessions"]["B"] == "idle" and moved["seq"] > first["seq"]
    snap = s.snapshot()
    assert snap["ribs"]["A"]["192.0.2.128/25"]["path"] == ["T", "B"] and snap["sessions"]["A"]["B"] == "idle"


def test_a_router_that_is_gone_has_no_routes_until_it_answers_again():
    s = state()
    s.router("A", answer([64502], "10.0.1.2"))
    gone = s.router_gone("A", "route agent of router A is gone")
    assert gone["rib"] == {} and gone["error"]
    assert s.snapshot()["errors"] == {"A": "route agent of router A is gone"}
    assert s.router("A", answer([64502], "10.0.1.2")) is not None
    assert s.snapshot()["errors"] == {}


def test_recorder_records_become_log_entries_and_routes():
    s = state()
    event = {"kind": "depeer", "text": "depeer A B", "t": 1.5, "seconds": 0.08, "error": None,
             "changed": [{"router": "A", "prefix": "p", "before": ["B"], "after": ["T", "B"]},
                         {"router": "B", "prefix": "q", "before": ["A"], "after": ["T", "A"]}],
             "_before_state": object()}
    message = s.record("event", event)
    assert message == {"type": "log", "t": 1.5, "kind": "depeer", "text": "depeer A B", "seconds": 0.08,
                       "error": None, "changed": 2, "routers": ["A", "B"], "seq": 1}
    assert s.record("step", {"name": "test_x", "outcome": "passed", "t": 2.0})["text"] == "test_x: passed"
    assert [e["text"] for e in s.snapshot()["log"]] == ["depeer A B", "test_x: passed"]
    recorded = {"ribs": {"A": {"p": {"path": ["T", "B"], "next": "T"}}}, "sessions": {"A": {"B": "idle"}}}
    batch = s.record("state", recorded)
    assert batch["type"] == "batch" and batch["messages"][0]["router"] == "A"
    assert s.record("state", recorded) is None        # the same state again: nothing to tell
    assert s.record("stopped", {})["type"] == "stopped"
    assert s.record("stream", {}) is None


def test_the_looking_glass_names_neighbours():
    reply = {**answer([64502], "10.0.1.2"),
             "adj_rib_in": {"10.0.1.2": {"192.0.2.128/25": {"as_path": [64502], "next_hop": "10.0.1.2",
                                                            "neighbor": "10.0.1.2"}}},
             "adj_rib_out": {"10.0.0.1": {}}}
    g = glass(reply, lambda asns: [NAMES[a] for a in asns], ADDRESSES.get)
    assert g["adj_rib_in"]["B"]["192.0.2.128/25"]["path"] == ["B"]
    assert g["adj_rib_out"] == {"T": {}} and g["sessions"]["B"]["state"] == "established"


def test_tokens():
    access = Access("secret-token", "form-token")
    assert access.allowed("/?token=secret-token", {})
    assert access.allowed("/events", {"Cookie": "other=1; testbed_live=secret-token"})
    assert access.allowed("/", {"Authorization": "Bearer secret-token"})
    assert access.allowed("/?token=secret-token", {"Cookie": "testbed_live=an-older-views"})  # the link wins
    assert not access.allowed("/", {"Cookie": "testbed_live_8081=secret-token"})  # another view's cookie
    for path, headers in (("/", {}), ("/?token=wrong", {}), ("/", {"Cookie": "testbed_live=secret"}),
                          ("/", {"Authorization": "Basic secret-token"}), ("/?token=", {})):
        assert not access.allowed(path, headers), (path, headers)
    assert access.form_ok({"X-Testbed-Form": "form-token"})
    assert not access.form_ok({}) and not access.form_ok({"X-Testbed-Form": "secret-token"})
    assert "HttpOnly" in access.cookie_header() and "SameSite=Strict" in access.cookie_header()
    generated = Access()
    assert len(generated.token) >= 32 and generated.token != Access().token


def test_actions_are_checked_before_they_run():
    ases, sessions = {"A", "B", "T"}, {frozenset("AB"), frozenset("AT")}
    assert parse_action({"op": "depeer", "a": "A", "b": "B"}, ases, sessions) == ("depeer", ("A", "B"))
    assert parse_action({"op": "announce", "as": "A", "prefix": "203.0.113.7/24"}, ases, sessions) == \
        ("announce", ("A", "203.0.113.0/24"))
    for body, said in (({"op": "crash", "a": "A"}, "unknown action"), ({"op": "depeer", "a": "B", "b": "T"},
                       "no session"), ({"op": "repeer", "a": "A"}, "'b' is missing"),
                       ({"op": "withdraw", "as": "Z", "prefix": "10.0.0.0/8"}, "no AS named"),
                       ({"op": "announce", "as": "A", "prefix": "nonsense"}, "not a prefix"), ([], "JSON object")):
        with pytest.raises(ValueError, match=said):
            parse_action(body, ases, sessions)


def test_without_the_token_every_path_is_401():
    view = SimpleNamespace(access=Access("right"))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(view))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{httpd.server_address[1]}"
        for method, path in (("GET", "/"), ("GET", "/events"), ("GET", "/api/state"), ("GET", "/api/router/A"),
                             ("POST", "/api/action"), ("GET", "/?token=wrong")):
            request = urllib.request.Request(base + path, method=method, data=b"{}" if method == "POST" else None)
            with pytest.raises(urllib.error.HTTPError) as caught:
                urllib.request.urlopen(request, timeout=5)
            assert caught.value.code == 401, path
            assert caught.value.headers["WWW-Authenticate"].startswith("Bearer")
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_the_page_carries_everything_and_asks_only_its_server():
    html = page("triangle", '<svg id="x"></svg>', {"index": {}, "prefixes": {}, "control": True, "form": "f",
                                                    "sessions": [["A", "B"]], "ases": ["A"], "title": "t</script>"})
    assert "connect-src 'self'" in html and "default-src 'none'" in html
    assert "const TestbedTree" in html and "/events" in html           # the shared drawing, and the stream
    assert 'id="depeer"' in html
    assert "<\\/script>" in html                                        # data cannot close its element
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
    assert 'id="depeer"' not in page("t", "", {"index": {}, "prefixes": {}, "control": False})


def test_an_exercises_criteria_and_their_state():
    s = state()
    first = s.set_criteria([{"name": "c1", "description": "A reaches B"}])
    assert first["criteria"] == [{"name": "c1", "description": "A reaches B", "passed": None, "seen": None,
                                  "hint": None}]
    checked = s.set_criteria([{"name": "c1", "description": "A reaches B", "passed": False, "seen": "no route",
                               "hint": "peer", "extra": 1}], t=3.0)
    assert checked["type"] == "criteria" and checked["t"] == 3.0
    assert s.snapshot()["criteria"][0]["passed"] is False and "extra" not in s.snapshot()["criteria"][0]
    html = page("t", "", {"index": {}, "prefixes": {}, "control": False, "exercise": True})
    assert 'id="criteria"' in html
    assert 'id="criteria"' not in page("t", "", {"index": {}, "prefixes": {}, "control": False})


def test_a_port_in_use_is_a_clear_error():
    from testbed.errors import LabError
    from testbed.live.server import LiveView

    lab = SimpleNamespace(names=None, plan=SimpleNamespace(router_of=None, routers={}), clients={}, crashed=set())
    with ThreadingHTTPServer(("127.0.0.1", 0), _handler(SimpleNamespace(access=Access()))) as taken:
        with pytest.raises(LabError, match=f"cannot listen on 127.0.0.1:{taken.server_address[1]}"):
            LiveView(lab, recorder=None, port=taken.server_address[1])
