"""The report's pure parts: link classes and the 95th percentile, state
differences and churn, the event hooks, the page rendered from a real
run's recorded data (tests/unit/data/report/triangle_run.json, written by
a Recorder on a triangle lab: depeer with a probe stream, traffic, repeer),
the index, and `testbed run --report`'s argument handling."""

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from testbed.cli import _place_reports, _split_report_option
from testbed.model.addressing import plan
from testbed.model.loader import load
from testbed.report.environment import record_without_lab, topology_hash
from testbed.report.hooks import describe, recorded
from testbed.report.html import delta_states, destinations, full_states, render, render_index
from testbed.report.links import links, percentile95, summarise
from testbed.report.pytest_report import write_index
from testbed.report.state import State, changes, churn

DATA = Path(__file__).parent / "data"
RUN = json.loads((DATA / "report" / "triangle_run.json").read_text())


def test_percentile95_is_the_nearest_rank_a_transit_bill_uses():
    assert percentile95([]) == 0.0
    assert percentile95([float(v) for v in range(1, 21)]) == 19.0   # 20 samples: the top one dropped
    assert percentile95([5.0] * 99 + [1000.0]) == 5.0               # one burst in 100 is not billed
    assert percentile95([1.0, 2.0]) == 2.0


def test_links_carry_their_settlement_class():
    found = {l.id: (l.kind, l.settlement) for l in links(plan(load(DATA / "graph" / "showcase.py")))}
    assert found["T-west:to-R"] == ("transit", "transit")
    assert found["P:to-S"] == ("partial-transit", "transit")
    assert found["R:to-S"] == ("paid-peering", "paid peering")
    assert found["A:to-S"] == ("peering", "peering")
    assert found["A:ix-ix"] == ("ixp", "IXP port")
    assert found["T-west:to-T-east"] == ("internal", "internal")
    assert not any(":h" in key or key.endswith("eth0") for key in found)  # host LANs are not links


def test_summarise_splits_bytes_by_phase_and_class():
    wanted = [l for l in links(plan(load("triangle")))]
    ids = {l.settlement: l.id for l in wanted}
    times = [0.0, 1.0, 2.0, 3.0, 4.0]
    series = {l.id: [0] * 5 for l in wanted}
    series[ids["peering"]] = [0, 1000, 2000, 2000, 2000]      # before the depeering at 2 s
    series[ids["transit"]] = [0, 0, 0, 5000, 10000]          # after it, on a transit link
    out = summarise(wanted, times, series, [("depeer A B", 2.0)], interval=1.0)
    assert [p["label"] for p in out["phases"]] == ["start", "depeer A B"]
    assert out["by_class"]["peering"] == [2000, 0]
    assert out["by_class"]["transit"] == [0, 10000]
    transit = next(l for l in out["links"] if l["id"] == ids["transit"])
    assert transit["p95_bps"] == 40000 and transit["samples"] == 4
    assert out["interval"] == 1.0 and out["samples"] == 5


def test_changes_and_churn_between_states():
    before = State("before", 0.0, ribs={"A": {"p": {"path": ["B"], "next": "B"}, "q": {"path": []}}},
                   stats={"A": {"updates_in": 3, "withdrawn_in": 0}})
    after = State("after", 1.0, ribs={"A": {"p": {"path": ["T", "B"], "next": "T"}, "q": {"path": []},
                                            "r": {"path": ["T"], "next": "T"}}},
                  stats={"A": {"updates_in": 7, "withdrawn_in": 2}, "B": {"updates_in": 50}})
    assert changes(before, after) == [
        {"router": "A", "prefix": "p", "before": ["B"], "after": ["T", "B"]},
        {"router": "A", "prefix": "r", "before": None, "after": ["T"]}]
    assert churn(before, after)["updates_in"] == 4 and churn(before, after)["withdrawn_in"] == 2
    assert changes(after, after) == []


class _Notes:
    def __init__(self):
        self.seen = []

    def event_begin(self, lab, kind, text):
        self.seen.append(("begin", kind, text))
        return 7

    def event_end(self, lab, token, result, error):
        self.seen.append(("end", token, result, type(error).__name__ if error else None))


class _Thing:
    recorder = None

    @recorded("depeer")
    def depeer(self, a, b, how="admin", wait=True):
        if how == "bad":
            raise ValueError("no")
        return 0.25


def test_recorded_events_reach_the_recorder_also_when_they_fail():
    thing = _Thing()
    assert thing.depeer("A", "B") == 0.25   # without a recorder: just the method
    thing.recorder = _Notes()
    assert thing.depeer("A", "B", how="link") == 0.25
    with pytest.raises(ValueError):
        thing.depeer("A", "B", how="bad")
    assert thing.recorder.seen == [("begin", "depeer", "depeer A B how=link"), ("end", 7, 0.25, None),
                                   ("begin", "depeer", "depeer A B how=bad"), ("end", 7, None, "ValueError")]
    assert describe("set_policy", ("A", "B", {"export": []}), {"wait": False}) == \
        'set_policy A B {"export": []}'


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.urls, self.ids = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "xlink:href", "action") and value and not value.startswith("#"):
                self.urls.append(value)
            if name == "id":
                self.ids.append(value)


def test_report_page_is_self_contained_and_holds_the_run():
    page = render(RUN)
    parser = _Collect()
    parser.feed(page)
    assert parser.urls == []                     # nothing to fetch: no src, no href out of the page
    assert len(parser.ids) == len(set(parser.ids)), "element ids must be unique"
    assert "default-src 'none'" in page
    assert page.startswith("<!DOCTYPE html>")
    for needle in ('id="as-A"', 'id="session-A-B"', 'id="matrix-4"', 'id="matrix-6"',
                   "expected AS path [B], got [T B]", "depeer A B", "repeer A B", "95th percentile",
                   RUN["environment"]["topology_hash"], RUN["environment"]["git_commit"]):
        assert needle in page, needle
    embedded = json.loads(re.search(r'<script type="application/json" id="report-data">(.*?)</script>',
                                    page, re.S).group(1))
    assert full_states(embedded["states"]) == RUN["states"]
    # The timeline marks every lost probe of the streams (none here) and each event.
    assert page.count('<text x="') >= len(RUN["events"])
    assert len(page) < 200_000


def test_destinations_name_the_origin_of_every_prefix():
    found = {d["prefix"]: d["as"] for d in destinations(RUN)}
    assert found["192.0.2.0/25"] == "A" and found["192.0.2.128/25"] == "B"
    assert found["2001:db8:a::/48"] == "A"


def test_index_links_every_report_in_the_directory(tmp_path):
    for name, passed, failed in (("test_one", 3, 0), ("test_two[x]", 1, 1)):
        meta = json.dumps({"name": name, "topology": "t", "passed": passed, "failed": failed, "skipped": 0})
        (tmp_path / f"{name}.html").write_text(f"<!DOCTYPE html><html></html>\n<!-- testbed-report {meta} -->\n")
    (tmp_path / "other.html").write_text("<html>not a report</html>")
    index = write_index(tmp_path, {"git_commit": "abc"}).read_text()
    assert 'href="test_one.html"' in index and 'href="test_two[x].html"' in index
    assert "other.html" not in index and "abc" in index
    assert render_index([], {}).startswith("<!DOCTYPE html>")


def test_run_command_takes_its_report_option_and_places_reports(tmp_path):
    assert _split_report_option(["-x", "--report", "r.html", "-k", "a"]) == (["-x", "-k", "a"], "r.html")
    assert _split_report_option(["--report=r.html"]) == ([], "r.html")
    assert _split_report_option(["-x"]) == (["-x"], None)
    with pytest.raises(ValueError, match="needs a file name"):
        _split_report_option(["--report"])
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "test_s.html").write_text("one")
    (scratch / "index.html").write_text("index")
    assert _place_reports(scratch, tmp_path / "out" / "demo.html") == [tmp_path / "out" / "demo.html"]
    for name in ("test_p[a].html", "test_p[b].html"):
        (scratch / name).write_text(name)
    placed = _place_reports(scratch, tmp_path / "many.html")
    assert [p.name for p in placed] == ["many[a].html", "many[b].html"]


def test_reproducibility_record_without_a_lab():
    record = record_without_lab()
    for key in ("testbed_version", "git_commit", "exabgp_version", "python_version", "mininet_version",
                "kernel", "machine_probe_ms", "graphviz_version"):
        assert record[key], key
    assert record["exabgp_version"] == "5.0.15"
    assert float(record["machine_probe_ms"]) > 0
    topology = load("triangle")
    assert topology_hash(topology).startswith("sha256:")
    topology.source = None
    assert topology_hash(topology).startswith("sha256(dot):")


def test_link_counters_read_by_the_plain_dump_match_pyroute2():
    from pyroute2 import IPRoute

    from testbed.report.links import link_bytes, open_rtnetlink

    with open_rtnetlink() as sock:
        first = link_bytes(sock)
        with IPRoute() as ipr:
            theirs = {}
            for msg in ipr.get_links():
                stats = msg.get_attr("IFLA_STATS64")
                theirs[msg.get_attr("IFLA_IFNAME")] = stats["rx_bytes"] + stats["tx_bytes"]
        second = link_bytes(sock)
    assert set(first) == set(theirs) == set(second) and "lo" in first
    for name in first:   # counters only grow: pyroute2's reading lies between ours
        assert first[name] <= theirs[name] <= second[name], name


def test_states_travel_as_changes_and_come_back_whole():
    states = RUN["states"]
    delta = delta_states(states)
    assert "ribs" in delta[0] and all("ribs_changed" in s and "ribs" not in s for s in delta[1:])
    assert full_states(delta) == states
    after_depeer = delta[[s["label"] for s in states].index("after depeer A B")]
    assert after_depeer["ribs_changed"]["A"]["192.0.2.128/25"]["path"] == ["T", "B"]
    assert "T" not in after_depeer["ribs_changed"]       # T's routes did not move
    for carried, whole in zip(delta[1:], states[1:]):
        assert len(json.dumps(carried["ribs_changed"])) < len(json.dumps(whole["ribs"])) / 2
