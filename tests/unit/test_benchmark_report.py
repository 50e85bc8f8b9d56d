"""The pure parts of the benchmark: the chain and ring topologies, the
ingest commands, the targets verdicts, the tables and the SVG chart."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from testbed.bench.benchmark import Result
from testbed.bench.chart import chart_svg
from testbed.bench.experiments import Extra, chain, ingest_commands, ring
from testbed.bench.report import targets
from testbed.agent.codec import parse_line

SVG = "{http://www.w3.org/2000/svg}"


def results() -> list[Result]:
    made = []
    for size, start, peak in ((10, 1.0, 150.0), (100, 5.0, 1400.0), (1000, 80.0, 14000.0)):
        made.append(Result(size=size, seed=1, model="zygote", start_s=start, peak_pss_mib=peak,
                           pss_per_as_mib=peak / size, idle_cpu_per_as=0.25, stop_s=1.5,
                           leftover_processes=0, leftover_workdir=False))
    made.append(Result(size=10, seed=1, model="exec", start_s=2.0, peak_pss_mib=430.0))
    made.append(Result(size=100, seed=1, model="exec", start_s=30.0, peak_pss_mib=4300.0))
    return made


def test_chain_is_a_line_of_transit():
    topo = chain(10)
    assert len(topo.systems) == 10 and len(topo.relationships) == 9
    assert [(r.a, r.b) for r in topo.relationships][:2] == [("c1", "c2"), ("c2", "c3")]


def test_ring_is_a_circle_of_peerings():
    from testbed.model.addressing import plan
    from testbed.model.topology import Kind

    topo = ring(5)
    assert len(topo.systems) == 5 and len(topo.relationships) == 5
    assert {r.kind for r in topo.relationships} == {Kind.PEERING}
    assert [(r.a, r.b) for r in topo.relationships] == [
        ("p1", "p2"), ("p2", "p3"), ("p3", "p4"), ("p4", "p5"), ("p5", "p1")]
    routers = plan(topo).routers
    assert all(len(router.neighbors) == 2 for router in routers.values())
    for bad in (2, 0, 3.0, True):
        with pytest.raises(ValueError, match="at least 3 ASes"):
            ring(bad)


def test_ingest_commands_cover_every_prefix_once():
    lines = ingest_commands("10.0.0.2", "10.0.0.1", 65001, 2500)
    assert len(lines) == 3
    routes = [route for line in lines for route in parse_line(line)]
    prefixes = [route[2] for route in routes]
    assert len(prefixes) == len(set(prefixes)) == 2500
    assert prefixes[0] == "20.0.0.0/24" and prefixes[256] == "20.1.0.0/24"


def test_targets_say_met_missed_or_not_measured():
    extra = Extra(model="zygote", path_depeer_kernel_s=0.3, ingest_prefixes=100_000, ingest_s=8.0,
                  ingest_rate=12_500.0, traffic_received_pps=20_000.0)
    rows = {metric: (measured, met) for metric, _, measured, met in targets(results(), [extra])}
    assert rows["100 ASes: start to converged"] == ("5.0 s", True)
    assert rows["1,000 ASes: converges, peak memory"] == ("14.7 GB", False)
    assert rows["PSS per AS (1000 ASes)"][1] is False  # 14.7 MB
    assert rows["idle CPU per AS (1000 ASes)"] == ("0.25 %", True)
    assert rows["depeering across a 10-AS path, all kernels"] == ("0.30 s", True)
    assert rows["route ingest by one router"][1] is False
    assert rows["100,000-prefix table"] == ("8.0 s", False)
    assert rows["teardown of 100 ASes, nothing left"] == ("1.50 s", True)
    assert not any("ring of peers" in metric for metric in rows)  # not measured: no row
    empty = {metric: met for metric, _, _, met in targets([], [])}
    assert set(empty.values()) == {None}
    for start, met in ((5.2, True), (6.4, False), (None, None)):
        ringed = Extra(model="zygote", ring_size=100, ring_start_s=start)
        rows = {metric: (measured, ok) for metric, _, measured, ok in targets([], [ringed])}
        assert rows["100-AS ring of peers: start to converged"][1] is met


def test_fixed_size_table_compares_the_models():
    from rich.console import Console

    from testbed.bench.benchmark import extras_table

    ours = Extra(model="zygote", ring_size=100, ring_start_s=5.0, ring_stop_s=0.4,
                 ring_phases={"starting BGP speakers": 2.0}, ingest_rate=60_000.0)
    baseline = Extra(model="exec", ring_size=100, ring_start_s=25.0, ring_stop_s=1.2,
                     ring_phases={"starting BGP speakers": 20.0}, ingest_rate=900.0,
                     errors=["path: boom"])
    console = Console(width=200, record=True)
    console.print(extras_table([ours, baseline]))
    lines = console.export_text().splitlines()

    def row(label):
        return [cell.strip() for cell in next(line for line in lines if label in line).split("│")[1:-1]]

    assert row("100-AS ring of peers: start → converged") == [
        "100-AS ring of peers: start → converged", "5.00 s", "25.00 s", "5.0×"]
    assert row("starting speakers")[1:] == ["2.00 s", "20.00 s", "10.0×"]
    assert row("ingest: prefixes/s")[1:] == ["60,000", "900", "66.7×"]  # more is better
    assert row("ingest: time")[1:] == ["-", "-", "-"]
    assert row("errors")[1:] == ["-", "path: boom", ""]
    console = Console(width=200, record=True)
    console.print(extras_table([Extra(model="zygote", ingest_rate=1.0)]))
    assert "ring of peers" not in console.export_text() and "÷" not in console.export_text()


def test_chart_has_a_line_per_model_and_panel():
    root = ET.fromstring(chart_svg(results(), "test <chart>"))
    lines = root.findall(f"{SVG}polyline")
    assert len(lines) == 4  # two models, two panels
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "test <chart>" in texts and "ours (zygote)" in texts and "baseline (exec)" in texts
    assert {"10", "100", "1000"} <= set(texts)


def test_the_legend_is_under_the_panels_not_over_their_points():
    root = ET.fromstring(chart_svg(results(), ""))
    frames = [r for r in root.iter(f"{SVG}rect")]
    bottom = max(float(r.get("y")) + float(r.get("height")) for r in frames)
    legend = [t for t in root.iter(f"{SVG}text") if t.text in ("ours (zygote)", "baseline (exec)")]
    assert len(legend) == 2   # once for the figure, not once per panel
    assert all(float(t.get("y")) > bottom + 30 for t in legend)  # below the size labels too
    assert float(root.get("height")) > max(float(t.get("y")) for t in legend)
    xs = sorted(float(t.get("x")) for t in legend)
    assert xs[1] - xs[0] > 7 * len("ours (zygote)")  # side by side, not on top of each other


def test_earlier_results_are_shown_and_charted_without_running_anything(tmp_path, capsys):
    import json

    from testbed.bench import benchmark

    result = {"size": 100, "seed": 1, "model": "zygote", "start_s": 17.6, "pss_per_as_mib": 11.9,
              "peak_pss_mib": 1193.0, "stop_s": 0.87, "leftover_processes": 0}
    extra = {"model": "zygote", "ingest_prefixes": 100_000, "ingest_s": 5.0, "ingest_rate": 20_000.0}
    earlier = tmp_path / "earlier.json"
    earlier.write_text(json.dumps({"results": [result], "extras": [extra], "skipped": []}))
    chart = tmp_path / "chart.svg"
    assert benchmark.main(["--sizes", "--include", str(earlier), "--chart", str(chart), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "17.6" in out and "20,000 prefixes/s" in out  # the start time and the included ingest
    assert chart.read_text().startswith("<svg")
    assert benchmark.main(["--sizes"]) == 2  # nothing to run and nothing to show


def test_the_table_shows_session_drops_with_the_hold_time():
    from rich.console import Console

    from testbed.bench.benchmark import table

    console = Console(width=200, record=True)
    console.print(table([Result(size=10, seed=1, session_drops=1234, hold_time=90),
                         Result(size=100, seed=1)]))
    row = next(line for line in console.export_text().splitlines() if "sessions dropped" in line)
    assert "1,234 (90 s)" in row and row.rstrip().endswith("- │")


def test_machine_probe_times_its_loop_in_milliseconds(monkeypatch):
    from testbed.bench import observe

    monkeypatch.setattr(observe, "PROBE_LOOPS", 10)
    short = observe.machine_probe(repeat=1)
    monkeypatch.setattr(observe, "PROBE_LOOPS", 2_000_000)
    long = observe.machine_probe(repeat=1)
    assert 0 < short < long < 60_000


def test_phases_last_until_the_next_progress_line_named_by_its_first_clause():
    from testbed.bench.experiments import phases

    stages = [("building namespaces and links", 10.0), ("raised limits: a -> b", 12.5),
              ("starting BGP speakers", 13.0)]
    assert phases(stages, 16.25) == {"building namespaces and links": 2.5, "raised limits": 0.5,
                                     "starting BGP speakers": 3.25}
    assert phases([], 1.0) == {}


def test_the_table_shows_superseded_changes_and_the_misordered_ones():
    from rich.console import Console

    from testbed.bench.benchmark import table

    console = Console(width=220, record=True)
    console.print(table([Result(size=10, seed=1, superseded=6745, misordered=3),
                         Result(size=100, seed=1)]))  # the exec model counts nothing: "-"
    row = next(line for line in console.export_text().splitlines() if "superseded" in line)
    assert "6,745 (3)" in row and row.rstrip().endswith("- │")


def test_the_table_shows_prefixes_per_update_both_ways():
    from rich.console import Console

    from testbed.bench.benchmark import table

    console = Console(width=220, record=True)
    console.print(table([Result(size=100, seed=1, updates_in=15_000, prefixes_in=30_000, updates_out=14_000,
                                prefixes_out=31_500),
                         Result(size=10, seed=1, updates_in=100, prefixes_in=120)]))  # sent: not counted
    row = next(line for line in console.export_text().splitlines() if "prefixes per UPDATE" in line)
    assert "2.00 / 2.25" in row and "1.20 / -" in row


def test_exploration_sums_what_the_agents_and_their_speakers_counted():
    from types import SimpleNamespace

    from testbed.bench.benchmark import exploration

    stats = {"A": {"updates_in": 3, "routes_in": 5, "withdrawn_in": 1, "updates_out": 2, "prefixes_out": 6},
             "B": {"updates_in": 1, "routes_in": 1, "withdrawn_in": 0, "updates_out": 4, "prefixes_out": 4}}
    clients = {name: SimpleNamespace(request=lambda op, s=s: {"stats": s, "sessions": {}})
               for name, s in stats.items()}
    expect = SimpleNamespace(adj_rib_in_size=lambda: 5)
    lab = SimpleNamespace(plan=SimpleNamespace(routers=stats), clients=clients, expect=expect)
    result = Result(size=2, seed=1)
    exploration(lab, result)
    assert (result.updates_in, result.prefixes_in, result.updates_out, result.prefixes_out) == (4, 7, 6, 10)
    assert (result.routes_in, result.routes_needed) == (6, 5)
