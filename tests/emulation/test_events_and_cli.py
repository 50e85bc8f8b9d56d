"""Prefix announcements and withdrawals, the CLI's interactive lab, and the
pytest plugin's promises (artifacts on failure, no silent skips as root)."""

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from testbed.lab import cleanup
from testbed.testing.assertions import assert_as_path, assert_no_route, assert_route

pytestmark = pytest.mark.emulation
TOPOLOGY = "triangle"
BIN = Path(sys.executable).parent


def test_announce_and_withdraw_a_prefix(lab):
    new = "203.0.113.0/24"
    elapsed = lab.announce("B", new)
    assert elapsed < 5
    assert_as_path(lab, "A", new, ["B"])
    assert_as_path(lab, "T", new, ["B"])
    assert_route(lab, "T", new)  # in T's kernel too
    lab.withdraw("B", new)
    for router in ("A", "T"):
        assert_no_route(lab, router, new)
    assert new not in lab.loc_rib("B")


def test_withdrawing_a_prefix_cuts_its_hosts_off(lab):
    prefix = lab.prefix_of("B")
    lab.withdraw("B", prefix)
    try:
        assert_no_route(lab, "A", "B")
        assert not lab.reachable("A", "B", timeout=0.5)
    finally:
        lab.announce("B", prefix)
    assert_as_path(lab, "A", "B", ["B"])
    assert lab.reachable("A", "B")


def test_cli_up_runs_commands_and_stops_the_lab():
    result = subprocess.run([str(BIN / "testbed"), "up", "triangle"], input="routes A\nsessions B\nastrace A-h1 B-h1\nexit\n",
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "routes of A" in out and "192.0.2.128/25" in out
    assert "B -> A (peer): established" in out
    assert "A -> B" in out.replace("\u2192", "->")
    stopped = re.search(r"lab (\w+) stopped", out)
    assert stopped, out
    # That lab's processes only: other labs may start and stop on the machine meanwhile.
    assert not cleanup.tagged_processes().get(stopped.group(1))


def run_pytest(tmp_path: Path, body: str, *options: str) -> subprocess.CompletedProcess:
    (tmp_path / "test_case.py").write_text(textwrap.dedent(body))
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *options,
                           "--rootdir", str(tmp_path), str(tmp_path / "test_case.py")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=180)


def test_failing_scenario_keeps_logs_and_rib_dumps(tmp_path):
    result = run_pytest(tmp_path, """
        from testbed.testing.assertions import assert_as_path
        TOPOLOGY = "triangle"
        def test_wrong_expectation(lab):
            assert_as_path(lab, "A", "B", ["T", "B"])
    """)
    assert result.returncode == 1, result.stdout
    assert "at router A, the AS path to 192.0.2.128/25 (B) is ['B'], expected ['T', 'B']" in result.stdout
    assert "from T: AS path ['T', 'B'], accepted" in result.stdout
    artifacts = list((tmp_path / "test-artifacts").iterdir())
    assert len(artifacts) == 1
    files = {p.name for p in artifacts[0].iterdir()}
    assert {"A.rib.json", "A.exabgp.log", "A.agent.log", "T.exabgp.conf"} <= files
    assert "speaker logs and RIB dumps" in result.stdout
    # The failed test's lab was stopped all the same.
    assert "testbed lab" in result.stdout
    lab_id = result.stdout.split("RIB dumps of lab ")[1].split(":")[0]
    assert lab_id not in cleanup.tagged_processes()
    assert not (cleanup.DEFAULT_ROOT / lab_id).exists()


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_skipped_emulation_test_fails_the_run_as_root(tmp_path, workers):
    # ./run.sh test runs the suite on pytest-xdist workers: the controller,
    # which decides the exit status, must see a worker's skip too.
    result = run_pytest(tmp_path, """
        import pytest
        @pytest.mark.emulation
        def test_needs_something():
            pytest.skip("pretend the lab could not run")

        def test_other():
            pass
    """, *workers)
    assert result.returncode == 1, result.stdout
    assert "SKIPPED AS ROOT (counts as failure)" in result.stdout
    assert "1 passed, 1 skipped" in result.stdout, result.stdout


def test_repeated_depeer_and_repeer_cycles(lab):
    # ExaBGP drops a reload signal that arrives while updates are queued;
    # back-to-back cycles hit that window (the lab must retry, not hang).
    before = {r: lab.loc_rib(r) for r in lab.plan.routers}
    for cycle in range(8):
        a, b = [("A", "B"), ("T", "A"), ("T", "B"), ("B", "A")][cycle % 4]
        lab.depeer(a, b)
        lab.repeer(a, b)
    for router in lab.plan.routers:
        assert lab.loc_rib(router) == before[router], f"router {router} did not return to its initial routes"
