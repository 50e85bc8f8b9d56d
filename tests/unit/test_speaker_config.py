"""ExaBGP and route-agent configuration (testbed.routers.exabgp_config).

The rendered text of every router of every shipped topology is pinned by
the golden files (``test_golden.py``), and put through ExaBGP's own
``exabgp validate`` here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.model.addressing import plan
from testbed.agent.agent import Agent
from testbed.model.agent_config import agent_config
from testbed.routers.exabgp_config import config_tree, quote_argv, render, speaker_environment
from testbed.model.loader import available, load

GOLDEN_ARGV = ["/venv/bin/python", "-m", "testbed.agent", "/run/testbed/x/A/agent.json"]
EXABGP = Path(sys.executable).parent / "exabgp"


def exabgp_validate(files: list[Path], cwd: Path) -> subprocess.CompletedProcess:
    assert EXABGP.exists(), f"exabgp is not installed next to {sys.executable}"
    return subprocess.run([str(EXABGP), "validate", *map(str, files)], cwd=cwd, capture_output=True,
                          text=True, timeout=60,
                          env={**os.environ, "exabgp_log_destination": "stdout"})


def rendered_configs(directory: Path, disabled: dict[str, list[str]] | None = None) -> list[Path]:
    """Write the ExaBGP configuration of every router of every shipped
    topology under ``directory`` (as the lab does: a real agent argv)."""
    files = []
    for name in available():
        p = plan(load(name))
        for router in p.routers.values():
            folder = directory / name / router.name
            folder.mkdir(parents=True)
            argv = [sys.executable, "-m", "testbed.agent", str(folder / "agent.json")]
            tree = config_tree(router, p.hold_time, argv, (disabled or {}).get(router.name, ()))
            path = folder / "exabgp.conf"
            path.write_text(render(tree))
            files.append(path)
    return files


def test_config_tree_of_triangle_a():
    p = plan(load("triangle"))
    tree = config_tree(p.routers["A"], p.hold_time, GOLDEN_ARGV)
    assert list(tree) == ["process agent", "neighbor 10.0.0.1", "neighbor 10.0.0.10"]
    assert tree["process agent"] == {"run": " ".join(GOLDEN_ARGV), "encoder": "json"}
    to_t = tree["neighbor 10.0.0.1"]
    assert (to_t["local-address"], to_t["local-as"], to_t["peer-as"], to_t["passive"]) == (
        "10.0.0.2", 64501, 64500, "true")
    assert to_t["description"] == '"A to T (provider)"'
    to_b = tree["neighbor 10.0.0.10"]
    assert (to_b["local-address"], to_b["peer-as"], to_b["passive"]) == ("10.0.0.9", 64502, "false")
    assert to_b["api"]["processes"] == "[ agent ]"


# -- ExaBGP's own validator ----------------------------------------------------------

def test_exabgp_accepts_every_shipped_router(tmp_path):
    files = rendered_configs(tmp_path)
    routers = sum(len(plan(load(n)).routers) for n in available())
    assert len(files) == routers >= 12
    result = exabgp_validate(files, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    for path in files:   # every file was loaded, not just the first
        assert f"loading {path}" in result.stdout + result.stderr


def test_exabgp_accepts_configs_with_disabled_sessions(tmp_path):
    files = rendered_configs(tmp_path, disabled={"A": ["B"], "T": ["A", "B", "C"], "Multi": ["Cogent"]})
    result = exabgp_validate(files, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_exabgp_validate_does_refuse_a_broken_config(tmp_path):
    """Without this, a validator that accepts anything would pass the tests above."""
    [good] = [f for f in rendered_configs(tmp_path) if f.parent.name == "A" and f.parent.parent.name == "triangle"]
    broken = tmp_path / "broken.conf"
    broken.write_text(good.read_text().replace("local-as 64501;", "local-as banana;", 1))
    assert broken.read_text() != good.read_text()
    result = exabgp_validate([good, broken], tmp_path)
    assert result.returncode != 0
    assert "banana" in result.stdout + result.stderr


# -- options and errors ---------------------------------------------------------------

def test_disabled_neighbor_is_left_out():
    p = plan(load("triangle"))
    tree = config_tree(p.routers["A"], p.hold_time, GOLDEN_ARGV, disabled=["B"])
    assert [k for k in tree if k.startswith("neighbor")] == ["neighbor 10.0.0.1"]
    text = render(tree)
    assert "10.0.0.10" not in text and "A to B" not in text
    assert "neighbor 10.0.0.1 {" in text
    everything = config_tree(p.routers["A"], p.hold_time, GOLDEN_ARGV, disabled=["B", "T"])
    assert list(everything) == ["process agent"]


@pytest.mark.parametrize("bad", ["/opt/my checkout/python", "a;b", "{x}", "it's", 'say"hi"', "tab\there", ""])
def test_agent_argv_with_exabgp_syntax_is_refused(bad):
    p = plan(load("triangle"))
    with pytest.raises(ValueError, match=r"^router A: agent command argument") as caught:
        config_tree(p.routers["A"], p.hold_time, ["/usr/bin/python3", "-m", "testbed.agent", bad])
    assert repr(bad) in str(caught.value)


def test_render_nests_and_terminates():
    tree = {"a": {"b": 1, "c": None, "d": {"e": "f"}}, "g": "h"}
    assert render(tree) == "a {\n    b 1;\n    c;\n    d {\n        e f;\n    }\n}\ng h;\n"


def test_speaker_environment_binds_the_session_addresses():
    p = plan(load("triangle"))
    env = speaker_environment(p.routers["A"], "lab42")
    assert env["exabgp_tcp_bind"].split() == ["10.0.0.2", "10.0.0.9"]
    assert env["exabgp_tcp_port"] == "179"
    assert env["TESTBED_LAB"] == "lab42"
    assert env["exabgp_daemon_daemonize"] == "false"
    assert all(isinstance(v, str) for v in env.values())
    ixp = plan(load("ixp"))
    # A's three sessions use two local addresses: its end of the link to T and its IXP port
    assert sorted(speaker_environment(ixp.routers["A"], "x")["exabgp_tcp_bind"].split()) == [
        "10.0.0.2", "10.1.0.1"]
    assert sorted(speaker_environment(ixp.routers["T"], "x")["exabgp_tcp_bind"].split()) == [
        "10.0.0.1", "10.0.0.5", "10.0.0.9"]


def test_agent_config_agrees_with_the_exabgp_config():
    p = plan(load("ixp"))
    router = p.routers["A"]
    config = agent_config(p, router, "/run/testbed/x/A/agent.sock", "/run/testbed/x/A/agent.log")
    assert json.loads(json.dumps(config)) == config
    assert (config["router"], config["asn"], config["router_id"]) == ("A", 64601, "10.255.0.2")
    assert config["prefixes"] == ["172.16.1.0/24", "2001:db8:1::/48"]
    assert config["neighbors"][1] == {
        "name": "B", "address": "10.1.0.2", "address6": "fd00:1::2", "asn": 64602,
        "relationship": "peer", "router_id": "10.255.0.3", "local_address": "10.1.0.1",
        "local_address6": "fd00:1::1", "policy": None}
    assert (config["route_server"], config["roas"]) == (False, [])
    tree = config_tree(router, p.hold_time, GOLDEN_ARGV)
    in_exabgp = {key.split()[1]: (v["peer-as"], v["local-address"]) for key, v in tree.items()
                 if key.startswith("neighbor ")}
    in_agent = {n["address"]: (n["asn"], n["local_address"]) for n in config["neighbors"]}
    assert in_exabgp == in_agent
    agent = Agent(config, kernel=None, out=None)   # the agent accepts what it is given
    assert sorted(agent.neighbors) == sorted(in_agent)


def test_quote_argv():
    assert quote_argv(["python", "-c", "print('x y')"]) == "python -c 'print('\"'\"'x y'\"'\"')'"
