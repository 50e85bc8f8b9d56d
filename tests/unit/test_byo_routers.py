"""BIRD and FRR routers, the pure parts: configurations rendered from the
plan (golden files, each accepted by the daemon's own parser), users'
templates, parse errors with file:line, the topology's router kinds and
their validation, and the adapters' parsers on text captured from real
daemons (tests/unit/data)."""

import os
import shutil
from pathlib import Path

import pytest

from testbed.errors import LabError, TopologyError
from testbed.model.addressing import plan
from testbed.model.loader import load
from testbed.model.router_kinds import Choice, choices
from testbed.model.topology import Topology
from testbed.routers import bird_config, frr_config
from testbed.routers.bird import parse_protocols, parse_routes
from testbed.routers.configs import RouterConfigError, check, config_text, template_values
from testbed.routers.frr import routes_from_json

DATA = Path(__file__).parent / "data"
GOLDEN = DATA / "golden"
TOPOLOGIES = Path(__file__).parent.parent.parent / "topologies"

CASES = [("triangle", "A", "bird"), ("two_pops", "A-east", "bird"), ("route_server", "RS", "bird"),
         ("triangle", "A", "frr")]


def _need(program: str) -> None:
    if shutil.which(program) is None:
        if os.geteuid() == 0:  # CI installs them (scripts/setup-routers.sh): a skip would hide a failure
            pytest.fail(f"{program} is not installed: run scripts/setup-routers.sh")
        pytest.skip(f"{program} is not installed (scripts/setup-routers.sh)")


@pytest.mark.parametrize("topology, router, kind", CASES)
def test_generated_configuration_matches_its_golden_file(topology, router, kind):
    p = plan(load(topology))
    text = (bird_config if kind == "bird" else frr_config).render(p.routers[router], p.hold_time)
    golden = GOLDEN / f"{topology}_{router}.{kind}.conf"
    if os.environ.get("TESTBED_REGOLD"):
        golden.write_text(text)
    assert text == golden.read_text()


@pytest.mark.parametrize("topology, router, kind", CASES)
def test_golden_files_pass_the_daemons_own_parser(topology, router, kind):
    _need("bird" if kind == "bird" else "vtysh")
    check(kind, GOLDEN / f"{topology}_{router}.{kind}.conf", router)


def test_generated_bird_policy_is_the_relationship_policy():
    p = plan(load("triangle"))
    text = bird_config.render(p.routers["A"], p.hold_time)
    # T is A's provider, B its peer: local_pref 50 and 100, and only
    # originated and customer-marked routes go to either.
    assert "bgp_local_pref = 50;" in text.split("filter import_T")[1].split("}")[0]
    assert "bgp_local_pref = 100;" in text.split("filter import_B")[1].split("}")[0]
    for peer in ("T", "B"):
        export = text.split(f"filter export_{peer}")[1].split("\n}")[0]
        assert "bgp_large_community !~ [(LOCAL_AS, 1, 0..1)] then reject" in export
    assert text.count("deterministic med on;") == 2


def test_unsupported_session_policies_are_refused_not_ignored():
    t = Topology("rov")
    t.add_as(64500, "A", rov=True)  # route origin validation: not mirrored
    t.add_as(64501, "B")
    t.transit("A", "B")
    p = plan(t.validate())
    with pytest.raises(bird_config.Unsupported, match="rov"):
        bird_config.render(p.routers["A"], p.hold_time)
    bird_config.render(p.routers["B"], p.hold_time)
    with pytest.raises(frr_config.Unsupported, match="iBGP"):
        two = plan(load("two_pops"))
        frr_config.render(two.routers["A-east"], two.hold_time)


@pytest.mark.parametrize("kind, broken, line", [("bird", "protocol device { scan tme 10; }", 7),
                                                ("frr", " bgp determinstic-med", 16)])
def test_a_parse_error_names_the_file_and_line(tmp_path, kind, broken, line):
    _need("bird" if kind == "bird" else "vtysh")
    text = (GOLDEN / f"triangle_A.{kind}.conf").read_text().splitlines()
    text[line - 1] = broken
    path = tmp_path / f"A.{kind}.conf"
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(RouterConfigError) as error:
        check(kind, path, "A", source=Path("/x/A.j2"))
    message = str(error.value)
    assert message.startswith(f"{path}:{line}: {kind} refused the configuration of router A (rendered from /x/A.j2)")
    assert broken.strip() in message


def test_the_teams_template_renders_and_parses_and_the_slip_is_one_line():
    _need("bird")
    topology = load("bird_regional")
    p = plan(topology)
    choice = choices(topology)["R"]
    assert choice.kind == "bird" and choice.template
    text = config_text(choice, p, p.routers["R"])
    assert "define CUSTOMER_AS = 64530;" in text and "receive limit 10 action disable" in text
    assert f"neighbor {p.routers['R'].neighbor('T1').address} as 64500;" in text


def test_template_errors_name_the_template(tmp_path):
    p = plan(load("triangle"))
    bad = tmp_path / "bad.bird.j2"
    bad.write_text("router id {{ router_id }};\n{% if %}\n")
    with pytest.raises(RouterConfigError, match=rf"{bad}:2: template error"):
        config_text(Choice("bird", bad), p, p.routers["A"])
    bad.write_text("router id {{ router_idd }};\n")
    with pytest.raises(RouterConfigError, match="'router_idd' is undefined .*router_id"):
        config_text(Choice("bird", bad), p, p.routers["A"])


def test_template_values_come_from_the_plan():
    p = plan(load("triangle"))
    values = template_values(p, p.routers["A"])
    assert values["asn"] == 64501 and values["router_id"] == p.routers["A"].router_id
    assert values["neighbor"]["T"]["relationship"] == "provider"
    assert values["neighbor"]["B"]["address"] == p.routers["A"].neighbor("B").address
    assert values["prefixes4"] == ["192.0.2.0/25"]
    assert values["neighbor"]["T"]["prefixes4"] == ["198.51.100.0/24"]


def test_router_kinds_are_validated_with_file_and_line(tmp_path):
    t = Topology("kinds")
    t.add_as(64500, "A", router="quagga")
    t.add_as(64501, "B", router="bird", config=tmp_path / "missing.conf")
    t.add_as(64502, "C", config="c.conf")
    rs_config = tmp_path / "rs.conf"
    rs_config.write_text("")
    ix = t.add_ixp("ix")
    rs = t.add_route_server(64700, "RS", ix, router="bird", config=rs_config)
    t.transit("A", "B")
    t.transit("A", "C")
    t.route_server_client("B", rs)
    with pytest.raises(TopologyError) as error:
        t.validate()
    here = f"{Path(__file__).name}:"
    problems = [p for p in error.value.problems if "router kind" in p or "config" in p]
    assert len(problems) == 3, error.value.problems
    assert here in problems[0] and "unknown router kind 'quagga'" in problems[0]
    assert "config file" in problems[1] and "not found" in problems[1]
    assert "for a BIRD or FRR router" in problems[2]
    assert choices(t)["RS"] == Choice("bird", rs_config, t.systems[3].where)


def test_birdc_output_becomes_routes():
    routes = parse_routes((DATA / "birdc_show_route_all.txt").read_text())
    best = {r["prefix"]: r for r in routes if r["best"]}
    assert best["198.51.100.0/24"]["as_path"] == [64500]
    assert best["198.51.100.0/24"]["next_hop"] == "10.0.0.1"
    assert best["198.51.100.0/24"]["local_pref"] == 50
    assert best["192.0.2.0/25"]["kind"] == "unreachable"          # originated: a static route
    other = [r for r in routes if r["prefix"] == "192.0.2.128/25" and not r["best"]]
    assert other and other[0]["as_path"] == [64500, 64502] and other[0]["proto"] == "n_T"
    six = best["2001:db8:b::/48"]
    assert six["next_hop"] == "fd00:0:0:2::2"                     # the global one, not the link-local
    protocols = parse_protocols((DATA / "birdc_show_protocols_all.txt").read_text())
    assert protocols["n_T"]["neighbor"] == "10.0.0.1" and protocols["n_T"]["asn"] == 64500
    assert protocols["n_B"]["bgp_state"] == "Established"


def test_frr_json_becomes_routes():
    import json

    routes = routes_from_json(json.loads((DATA / "frr_show_bgp_ipv6_unicast.json").read_text()))
    best = {r["prefix"]: r for r in routes if r["best"]}
    assert best["2001:db8:a::/48"]["peer"] is None and best["2001:db8:a::/48"]["as_path"] == []
    assert best["2001:db8:b::/48"]["as_path"] == [64502] and best["2001:db8:b::/48"]["local_pref"] == 100
    assert best["2001:db8:b::/48"]["next_hop"] == "fd00:0:0:2::2"
    assert len([r for r in routes if r["prefix"] == "2001:db8:b::/48"]) == 2


def test_yaml_topologies_name_router_kinds_too(tmp_path):

    (tmp_path / "r.bird.j2").write_text("router id {{ router_id }};\n")
    path = tmp_path / "t.yaml"
    path.write_text("name: yaml-kinds\nases:\n"
                    "  - {asn: 64500, name: T}\n"
                    "  - {asn: 64501, name: R, router: bird, config: r.bird.j2}\n"
                    "  - {asn: 64502, name: X, router: frr, config: missing.conf}\n"
                    "relationships:\n  - transit: [T, R]\n  - transit: [T, X]\n")
    with pytest.raises(TopologyError) as error:
        load(path)
    assert [p for p in error.value.problems if "config" in p] == [
        f"{path}:5: AS 'X': config file 'missing.conf' not found ({tmp_path / 'missing.conf'})"]
    path.write_text(path.read_text().replace("missing.conf", "r.bird.j2"))
    kinds = choices(load(path))
    assert kinds["R"] == Choice("bird", tmp_path / "r.bird.j2", kinds["R"].where) and kinds["T"].kind == "exabgp"


def test_a_control_client_answer_and_its_failures_name_the_router_and_the_command():
    from testbed.routers.configs import control

    assert control("r1", ["sh", "-c", "echo up"], "birdc show status", 5.0) == "up\n"
    with pytest.raises(LabError, match=r"^router r1: birdc show status: no such protocol$"):
        control("r1", ["sh", "-c", "echo 'no such protocol' >&2; exit 8"], "birdc show status", 5.0)
    with pytest.raises(LabError, match=r"^router r2: vtysh -c 'show bgp' timed out$"):
        control("r2", ["sleep", "5"], "vtysh -c 'show bgp'", 0.2)


DOWN = """BIRD 2.0.12 ready.
Name       Proto      Table      State  Since         Info
device1    Device     ---        up     13:24:53.594

n_X        BGP        ---        start  13:25:01.002  Active        Socket: Connection refused
  BGP state:          Active
    Neighbor address: 10.0.0.9
    Neighbor AS:      64509
    Last error:       Socket: Connection refused
  Channel ipv4
    State:          DOWN
"""


def test_a_session_that_is_down_reads_the_same_to_both_readers_of_show_protocols():
    from testbed.routers.bird_control import parse_channels, protocol_sections

    assert [head.split()[0] for head, _ in protocol_sections(DOWN)] == ["BIRD", "Name", "device1", "n_X"]
    protocols = parse_protocols(DOWN)
    assert set(protocols) == {"device1", "n_X"}
    assert protocols["n_X"] == {"proto": "BGP", "state": "start", "info": "Active Socket: Connection refused",
                                "bgp_state": "Active", "neighbor": "10.0.0.9", "asn": 64509,
                                "last_error": "Socket: Connection refused"}
    session = parse_channels(DOWN)["n_X"]
    assert (session.state, session.bgp_state, session.neighbor, session.since) == \
        ("start", "Active", "10.0.0.9", "13:25:01.002")
