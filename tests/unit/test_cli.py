"""The `testbed` command's offline parts: list, validate, and its exit codes."""

import subprocess
import sys
from pathlib import Path

from testbed.model.loader import available

BIN = Path(sys.executable).parent / "testbed"
ROOT = Path(__file__).resolve().parents[2]


def run(*args, cwd=ROOT):
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, timeout=60, cwd=cwd)


def test_list_names_topologies_and_scenarios_with_their_summaries():
    result = run("list")
    assert result.returncode == 0, result.stderr
    for name in ("triangle", "tier1_partition", "ixp", "depeering_fallback", "settlement_free_peering",
                 "depeering_partition"):
        assert name in result.stdout
    assert "Two regional networks that buy transit from one Tier-1" in result.stdout


def test_validate_prints_the_address_plan():
    result = run("validate", "triangle")
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout
    assert "10.255.0.2" in result.stdout and "192.0.2.128/25" in result.stdout  # B's router id, prefix


def test_validate_unknown_topology_exits_2_listing_known_ones():
    result = run("validate", "nonexistent")
    assert result.returncode == 2
    assert f"known topologies: {', '.join(available())}" in result.stderr


def test_run_unknown_scenario_exits_2():
    result = run("run", "no_such_scenario")
    assert result.returncode == 2
    assert "no scenario 'no_such_scenario'" in result.stdout


def test_usage_error_exits_2():
    assert run("frobnicate").returncode == 2


def test_list_shows_each_summary_as_a_whole_sentence():
    from testbed.cli import SCENARIO_DIR, _doc, summary
    from testbed.model.loader import TOPOLOGY_DIR

    result = run("list", cwd=ROOT)
    flat = " ".join(result.stdout.replace("│", " ").split())
    for path in [*TOPOLOGY_DIR.glob("*.py"), *SCENARIO_DIR.glob("test_*.py")]:
        text = summary(_doc(path))
        assert text.endswith((".", "!", "?")), (path, text)
        assert text in flat, (path, text)
    # a first sentence that runs over two lines of its docstring is shown whole
    assert "peer with each other bilaterally across one IXP peering LAN (a Linux bridge)." in flat


def test_validate_shows_the_link_and_lan_addresses():
    result = run("validate", "triangle")
    flat = " ".join(result.stdout.replace("│", " ").split())
    assert "B to-A link 10.0.0.10/30 fd00:0:0:2::2/64" in flat, result.stdout
    assert "A lan hosts' LAN 192.0.2.1/25 2001:db8:a::1/48" in flat
    assert "A-h1 host 192.0.2.10/25 2001:db8:a::a/48" in flat
