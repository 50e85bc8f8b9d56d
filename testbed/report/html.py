"""One self-contained HTML page from a recorder's data.

``render(data)`` takes ``Recorder.data()`` (plain JSON-ready data) and
returns the page as text: the topology picture inline (SVG), the style and
script inline (``report.css``, ``tree.js`` (drawing shared with the live view) and
``report.js`` beside this module), the data
recorded (all but the picture) embedded as JSON in the element
``#report-data``, which the script reads and other programs can too
(states after the first carry only the routes that changed:
``full_states`` restores them); nothing is fetched from anywhere. The
parts that need no interaction (test steps, events, the timeline plot,
traffic, the reproducibility record) are written here as HTML; the routing
tree, a router's tables and the reachability matrices are drawn by the
script from the embedded states. ``render_index`` writes the page that
links a run's reports. Pure: text in, text out.
"""

from __future__ import annotations

import json
from html import escape
from importlib import resources

CLASS_NOTE = (
    "Transit and paid peering are the links somebody pays for by volume. The 95th percentile is "
    "taken the way a burstable transit bill takes it (sort the rates, drop the top 5 %, bill the "
    "highest left), but over this run's counter samples, every {interval} s and at every event "
    "({samples} samples), where a "
    "real bill uses 5-minute averages over a month (8,640 of them): a burst that a 5-minute average "
    "would flatten counts here in full, and a run this short says nothing about a month.")


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text()


def _fmt_bytes(value: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(value) < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return str(value)


def _fmt_bps(value: float) -> str:
    for unit in ("bit/s", "kbit/s", "Mbit/s", "Gbit/s"):
        if abs(value) < 1000 or unit == "Gbit/s":
            return f"{value:.0f} {unit}" if unit == "bit/s" else f"{value:.1f} {unit}"
        value /= 1000
    return str(value)


def _table(head: list[str] | None, rows: list[list[str]], cls: str = "",
           numeric: set[int] = frozenset()) -> str:
    """A table (no header row for ``head=None``); cells are HTML already
    escaped by the caller."""
    out = [f'<table class="{cls}">' if cls else "<table>"]
    if head is not None:
        out.append("<tr>")
        out += [f'<th class="num">{h}</th>' if i in numeric else f"<th>{h}</th>" for i, h in enumerate(head)]
        out.append("</tr>")
    for row in rows:
        out.append("<tr>" + "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
                                    for i, c in enumerate(row)) + "</tr>")
    out.append("</table>")
    return "".join(out)


def destinations(data: dict) -> list[dict]:
    """Every prefix in any state, with the AS that originates it."""
    owner = {p: name for name, prefixes in data.get("picture", {}).get("prefixes", {}).items()
             for p in prefixes}
    found: dict[str, str] = {}
    for state in data.get("states", []):
        for router, rib in state["ribs"].items():
            for prefix, route in rib.items():
                if prefix not in found:
                    origin = route["path"][-1] if route["path"] else \
                        data["picture"]["index"]["routers"].get(router, router)
                    found[prefix] = owner.get(prefix, origin)
    return [{"prefix": p, "as": found[p]} for p in sorted(found, key=lambda p: (":" in p, found[p], p))]


def delta_states(states: list[dict]) -> list[dict]:
    """States as the page carries them: the first with its Loc-RIBs whole,
    each later one with ``ribs_changed`` instead (router -> prefix -> the
    route, or None where it went), which keeps a large lab's report small;
    ``undelta`` in the page's script (and ``full_states``) undo it."""
    out, previous = [], None
    for state in states:
        if previous is None:
            out.append(state)
        else:
            changed: dict[str, dict] = {}
            for router in sorted(set(previous["ribs"]) | set(state["ribs"])):
                old, new = previous["ribs"].get(router, {}), state["ribs"].get(router, {})
                diff = {p: new.get(p) for p in sorted(set(old) | set(new)) if old.get(p) != new.get(p)}
                if diff:
                    changed[router] = diff
            out.append({**{k: v for k, v in state.items() if k != "ribs"}, "ribs_changed": changed})
        previous = state
    return out


def full_states(states: list[dict]) -> list[dict]:
    """The inverse of ``delta_states``."""
    out: list[dict] = []
    for state in states:
        if "ribs_changed" not in state:
            out.append(state)
            continue
        ribs = {router: dict(rib) for router, rib in out[-1]["ribs"].items()}
        for router, diff in state["ribs_changed"].items():
            rib = ribs.setdefault(router, {})
            for prefix, route in diff.items():
                if route is None:
                    rib.pop(prefix, None)
                else:
                    rib[prefix] = route
        out.append({**{k: v for k, v in state.items() if k != "ribs_changed"}, "ribs": ribs})
    return out


def _first_changed(data: dict) -> str | None:
    """The first prefix an event moved: what the page shows first."""
    for event in data.get("events", []):
        for change in event.get("changed") or []:
            return change["prefix"]
    return None


def _path_text(path: list | None) -> str:
    return "none" if path is None else (" ".join(path) or "(own)")


def _steps(data: dict) -> str:
    steps = data.get("steps", [])
    if not steps:
        return "<p>No test steps were recorded.</p>"
    rows = []
    for step in steps:
        props = "<br>".join(f"{escape(str(k))}: {escape(str(v))}" for k, v in step["properties"])
        message = f"<pre>{escape(step['message'])}</pre>" if step["message"] else ""
        rows.append([escape(step["name"]), f'<span class="{escape(step["outcome"])}">{escape(step["outcome"])}'
                     "</span>", f"{step['duration']:.2f} s", props, message])
    return _table(["step", "verdict", "took", "measured", "assertion"], rows)


def _events(data: dict) -> str:
    events = data.get("events", [])
    if not events:
        return "<p>No events: the lab ran as it started.</p>"
    rows = []
    for i, event in enumerate(events, start=1):
        churn = event.get("churn") or {}
        rate = event.get("per_second") or {}
        changed = event.get("changed") or []
        routers = sorted({c["router"] for c in changed})
        detail = "<br>".join(
            escape(f"{c['router']} {c['prefix']}: {_path_text(c['before'])} \u2192 {_path_text(c['after'])}")
            for c in changed[:40]) + ("<br>\u2026" if len(changed) > 40 else "")
        seconds = event.get("seconds")
        took = f"{seconds:.3f} s" if seconds is not None else f"not waited ({event['wall_seconds']:.3f} s)"
        buttons = "".join(f' <button data-state="{event[k]}">{k}</button>'
                          for k in ("before", "after") if event.get(k) is not None)
        rows.append([
            str(i), f"{event['t']:.2f} s", escape(event["text"]) + buttons
            + (f'<br><span class="error">{escape(event["error"])}</span>' if event.get("error") else ""),
            took,
            f"in: {churn.get('updates_in', 0)} UPDATEs ({rate.get('updates_in', '-')}/s), "
            f"{churn.get('withdrawn_in', 0)} withdrawals ({rate.get('withdrawn_in', '-')}/s)<br>"
            f"out: {churn.get('announced_out', 0)} announcements, {churn.get('withdrawn_out', 0)} withdrawals",
            f"{len(routers)}: {escape(', '.join(routers))}" + (f"<details><summary>paths</summary>{detail}"
                                                                 "</details>" if changed else ""),
        ])
    return _table(["#", "at", "event", "converged in", "churn (lab-wide)", "routers that changed best path"],
                  rows)


def timeline(data: dict, width: int = 900) -> str:
    """The run as a plot: events as numbered lines, each probe stream as a
    bar with its lost probes marked, the link sampling as ticks."""
    events, streams = data.get("events", []), data.get("streams", [])
    ends = [e["t"] + (e.get("wall_seconds") or 0) for e in events]
    ends += [s["t"] + s["duration"] for s in streams]
    ends += [p.get("to", 0) for p in (data.get("traffic") or {}).get("phases", [])[-1:]]
    span = max([1.0, *[e for e in ends if e]]) * 1.02
    left, right = 150, 20
    scale = (width - left - right) / span
    height = 40 + 28 * len(streams) + 20

    def x(t: float) -> float:
        return round(left + t * scale, 1)

    out = [f'<svg class="timeline" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="timeline of events and probe loss">']
    out.append(f'<line x1="{left}" y1="{height - 18}" x2="{width - right}" y2="{height - 18}" stroke="#999"/>')
    step = max(0.5, round(span / 10 * 2) / 2)
    t = 0.0
    while t <= span:
        out.append(f'<text x="{x(t)}" y="{height - 4}" text-anchor="middle">{t:g} s</text>')
        t += step
    for i, event in enumerate(events, start=1):
        took = event.get("seconds") or event.get("wall_seconds") or 0
        out.append(f'<rect x="{x(event["t"])}" y="14" width="{max(1.5, took * scale):.1f}" '
                   f'height="{height - 32}" fill="#e69f00" opacity="0.25"><title>{escape(event["text"])}: '
                   f'{took:.3f} s to converge</title></rect>')
        out.append(f'<line x1="{x(event["t"])}" y1="12" x2="{x(event["t"])}" y2="{height - 18}" '
                   f'stroke="#e69f00"/><text x="{x(event["t"]) + 2}" y="11">{i}</text>')
    out.append(f'<text x="4" y="11">events (shaded: converging)</text>')
    for k, stream in enumerate(streams):
        y = 26 + 28 * k
        label = f"probes {stream['src']}\u2192{stream['dst']}"
        out.append(f'<text x="4" y="{y + 12}">{escape(label)}</text>')
        out.append(f'<rect x="{x(stream["t"])}" y="{y + 2}" width="{max(1.0, stream["duration"] * scale):.1f}" '
                   f'height="14" fill="#56b4e9" opacity="0.6"><title>{stream["received"]}/{stream["sent"]} '
                   f'answered, longest outage {stream["longest_outage"]:.3f} s</title></rect>')
        drawn: set[float] = set()
        for lost in stream.get("lost_at", []):
            px = x(lost)
            if px in drawn:
                continue
            drawn.add(px)
            out.append(f'<rect x="{px}" y="{y}" width="1.5" height="18" fill="#d55e00"/>')
    out.append("</svg>")
    return "".join(out)


def _streams(data: dict) -> str:
    streams = data.get("streams", [])
    if not streams:
        return ""
    rows = [[escape(f"{s['src']} \u2192 {s['dst']} (IPv{s['family']})"), f"{s['t']:.2f} s",
             f"{s['duration']:.2f} s", f"{s['rate']:.0f}/s", f"{s['sent'] - s['received']}/{s['sent']}",
             f"{s['longest_outage']:.3f} s"] for s in streams]
    return _table(["probe stream", "from", "lasted", "rate", "lost", "longest outage"], rows)


def _traffic(data: dict) -> str:
    traffic = data.get("traffic") or {}
    if not traffic.get("links"):
        return "<p>No link counters were sampled.</p>"
    phases = traffic["phases"]
    classes = [c for c, values in traffic["by_class"].items() if any(values)]
    head = ["phase (from the event to the next)", "from", "to"] + [escape(c) for c in classes] + [
        "paid for (transit + paid peering)"]
    rows = []
    for i, phase in enumerate(phases):
        paid = sum(traffic["by_class"].get(c, [0] * len(phases))[i] for c in ("transit", "paid peering"))
        rows.append([escape(phase["label"]), f"{phase['from']:.2f} s", f"{phase['to']:.2f} s"]
                    + [_fmt_bytes(traffic["by_class"][c][i]) for c in classes] + [f"<b>{_fmt_bytes(paid)}</b>"])
    out = [_table(head, rows, numeric=set(range(1, len(head))))]
    link_rows = [[escape(f"{l['router']} \u2014 {l['peer']}"), escape(l["kind"]), escape(l["settlement"]),
                  _fmt_bytes(sum(l["bytes"])), _fmt_bps(l["p95_bps"]), _fmt_bps(l["peak_bps"])]
                 for l in traffic["links"]]
    out.append(_table(["link (counters read at the first end)", "relationship", "class", "bytes (both ways)",
                       "95th percentile", "peak"], link_rows, numeric={3, 4, 5}))
    out.append(f'<p class="note">{escape(CLASS_NOTE.format(**traffic))}</p>')
    return "".join(out)


def _environment(data: dict) -> str:
    rows = [[escape(k), escape(str(v))] for k, v in data.get("environment", {}).items()]
    rows.append(["report_recording_s", escape(str(data.get("recording_seconds")))])
    return _table(None, rows)


def _verdict(data: dict) -> str:
    counts: dict[str, int] = {}
    for step in data.get("steps", []):
        counts[step["outcome"]] = counts.get(step["outcome"], 0) + 1
    return ", ".join(f'<span class="{k}">{v} {k}</span>' for k, v in sorted(counts.items())) or "no steps"


def render(data: dict) -> str:
    """The report page (see the module docstring)."""
    lab = data.get("lab", {})
    dests = destinations(data)
    # Everything recorded but the picture (which is in the page already):
    # the script's input, and the run's figures for any program that
    # reads the report.
    script_data = {
        **{key: value for key, value in data.items() if key not in ("picture", "states")},
        "states": delta_states(data.get("states", [])),
        "picture": {"index": data.get("picture", {}).get("index", {}),
                    "prefixes": data.get("picture", {}).get("prefixes", {})},
        "destinations": dests,
        "defaultDestination": _first_changed(data) or (dests[0]["prefix"] if dests else ""),
    }
    embedded = json.dumps(script_data, separators=(",", ":"), sort_keys=True).replace("</", "<\\/")
    problems = "".join(f"<li>{escape(p)}</li>" for p in data.get("problems", []))
    title = escape(data.get("title", "lab"))
    return "".join([
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>{title}: testbed report</title>",
        # No network: the page may only use what it carries.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">",
        f"<style>{_asset('report.css')}</style></head><body>",
        f"<h1>{title}</h1>",
        f'<p class="sub">topology <b>{escape(lab.get("topology", "?"))}</b>, lab {escape(lab.get("id", "?"))}, '
        f'started {escape(lab.get("started_at", "?"))}, converged in {lab.get("start_seconds", 0):.2f} s; '
        f"steps: {_verdict(data)}</p>",
        f'<details><summary>about this topology</summary><pre>{escape(lab.get("description", "")).strip()}'
        "</pre></details>" if lab.get("description") else "",
        f'<h2>Problems while recording</h2><ul class="error">{problems}</ul>' if problems else "",
        '<h2 id="routes">Topology and routes</h2>',
        '<div class="controls"><label>state <select id="state"></select></label>',
        '<label>destination <select id="destination"></select></label>',
        '<label>router <select id="router"></select></label>',
        '<label><input type="checkbox" id="fit"> fit the picture to the page</label></div>',
        '<p class="note" id="tree-caption"></p>',
        '<div id="explore"><div id="picture">', data.get("picture", {}).get("svg", ""), "</div>",
        '<div id="panel"><b id="router-caption"></b>',
        '<table id="rib"><thead><tr><th>prefix</th><th>AS path</th><th>next hop</th><th>communities</th>'
        "</tr></thead><tbody></tbody></table>",
        '<table id="sessions"><thead><tr><th>session with</th><th>state</th></tr></thead><tbody></tbody>'
        "</table></div></div>",
        '<p class="legend note"><span style="color:#d55e00">\u2501 best path towards the destination</span>'
        '<span style="color:#009e73">\u25a0 destination</span><span>faded: no route</span>'
        '<span style="color:#999">\u2504 session down</span><span>click an AS for its routes</span></p>',
        "<h2>Reachability (control plane: a best route to the AS's first prefix)</h2>",
        '<p class="note"><span class="ok">\u2713</span> route (AS path on hover), '
        '<span class="bad">\u2717</span> none; rows: from, columns: to; for the state chosen above.</p>',
        '<div class="matrices"><div><b>IPv4</b><table class="matrix" id="matrix-4"></table></div>'
        '<div><b>IPv6</b><table class="matrix" id="matrix-6"></table></div></div>',
        "<h2>Test steps</h2>", _steps(data),
        "<h2>Events</h2>", timeline(data), _events(data), _streams(data),
        "<h2>Traffic per link</h2>", _traffic(data),
        "<h2>Reproducibility</h2>", _environment(data),
        f'<script type="application/json" id="report-data">{embedded}</script>',
        f"<script>{_asset('tree.js')}\n{_asset('report.js')}</script>",
        "</body></html>\n",
    ])


def render_index(entries: list[dict], environment: dict) -> str:
    """A page linking reports: entries have name, file, passed, failed, skipped."""
    rows = [[f'<a href="{escape(e["file"])}">{escape(e["name"])}</a>', escape(e.get("topology", "")),
             f'<span class="passed">{e.get("passed", 0)}</span>',
             f'<span class="failed">{e["failed"]}</span>' if e.get("failed") else "0", str(e.get("skipped", 0))]
            for e in entries]
    env = [[escape(k), escape(str(v))] for k, v in environment.items()]
    return "".join([
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>testbed reports</title>",
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        f"<style>{_asset('report.css')}</style></head><body><h1>Testbed reports</h1>",
        _table(["scenario module", "topology", "passed", "failed", "skipped"], rows),
        "<h2>Reproducibility</h2>", _table(None, env), "</body></html>\n"])
