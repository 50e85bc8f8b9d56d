"""Every code block of the README runs in a test (issue 15, item 12).

``COVERED`` maps each block, by its first line, to the test that runs it;
a block the map does not know fails ``test_every_readme_block_is_run_by_a_test``,
so a new example cannot be added without one. The blocks that no other
test runs (the policy example, the commands of the quick start and of
"Check it, run it" that need no root) run here; the README's promises
about signals and the assertions' signatures are checked against the code.
"""

from __future__ import annotations

import inspect
import re
import signal
import subprocess
import sys
from pathlib import Path

from testbed import assertions
from testbed.lab import signals
from testbed.model.addressing import plan
from testbed.model.loader import load
from testbed.routers.exabgp_config import config_tree, render

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
BIN = Path(sys.executable).parent

COVERED = {
    "sudo ./run.sh demo    # the peering and depeering demo, with its outcome":
        ["tests/unit/test_readme_blocks.py::test_the_quick_start_commands_run_the_demo_and_the_suite",
         "scenarios/test_depeering_fallback.py"],
    ".venv/bin/testbed graph triangle -o triangle.svg      # also .png or .dot":
        ["tests/unit/test_view_graph.py::test_the_pictures_in_docs_are_what_the_command_draws",
         "tests/unit/test_view_graph.py::test_graph_command_writes_svg_png_and_dot"],
    '<testsuite name="pytest" tests="58" ...>':
        ["tests/emulation/test_report_browser.py::test_junit_xml_carries_measurements_and_the_reproducibility_record"],
    "# topologies/my_lab.yaml": ["tests/unit/test_yaml_topology.py::test_readme_yaml_example_is_the_python_example"],
    "# topologies/bad.yaml": ["tests/unit/test_yaml_topology.py::test_readme_yaml_error_example_is_what_validate_prints"],
    "error: topology in topologies/bad.yaml is invalid (2 problems):":
        ["tests/unit/test_yaml_topology.py::test_readme_yaml_error_example_is_what_validate_prints"],
    "sudo /vagrant/.venv/bin/testbed exercise start no_transit ~/ex1   # the lab keeps running in the background":
        ["tests/emulation/test_exercise_harness.py::test_start_check_reset_stop"],
    "failed  P1 reaches P2 over its own peering, not through you":
        ["tests/emulation/test_exercise_harness.py::test_start_check_reset_stop",
         "tests/unit/test_exercise_files.py::test_each_exercise_is_complete_and_its_answers_valid"],
    "sudo .venv/bin/testbed exercise grade no_transit answers/*.yaml --out grades/":
        ["tests/emulation/test_exercise_harness.py::test_grade_writes_the_three_reports"],
    'r = topology.add_as(64510, "R", router="bird", config="configs/regional.bird.j2")':
        ["scenarios/test_bring_your_own_bird.py", "tests/emulation/test_byo_lab.py::test_bird_and_frr_beside_exabgp"],
    "from testbed.internet import mrt":
        ["tests/unit/internet/test_mrt.py::test_table_dump_round_trip",
         "tests/emulation/test_mrt_replay.py::test_table_replayed_with_origin_validation"],
    "vagrant up            # Debian 12 box, provisioned by scripts/setup.sh":
        ["tests/unit/test_readme_blocks.py::test_the_vagrant_commands_match_the_vagrantfile"],
    "# topologies/my_lab.py": ["tests/emulation/test_readme_example.py::test_readme_example_passes"],
    "# scenarios/test_my_lab.py": ["tests/emulation/test_readme_example.py::test_readme_example_passes"],
    ".venv/bin/testbed validate my_lab          # no root needed; exit 2 with every problem listed":
        ["tests/unit/test_readme_blocks.py::test_check_it_run_it_commands",
         "tests/emulation/test_readme_example.py::test_readme_example_passes",
         "tests/emulation/test_readme_cli.py::test_every_cli_command_of_the_readme_runs_in_a_terminal"],
    "testbed:my_lab> routes A":
        ["tests/emulation/test_readme_cli.py::test_every_cli_command_of_the_readme_runs_in_a_terminal"],
    "error: topology in topologies/bad.py is invalid (4 problems):":
        ["tests/emulation/test_readme_example.py::test_readme_validation_example_matches_the_real_messages"],
    "AssertionError: at router A, the AS path to 192.0.2.128/25 (B) is ['T', 'B'], expected ['B']. Candidates:":
        ["tests/emulation/test_events_and_cli.py::test_failing_scenario_keeps_logs_and_rib_dumps"],
    "# in topologies/my_lab.py, instead of its line topology.peering(a, b, bandwidth=100):":
        ["tests/unit/test_readme_blocks.py::test_the_policy_example_is_valid_in_the_readme_lab"],
}


# Blocks no test can run here, each with the reason (the guard below still
# fails on a block that is in neither map).
NOT_RUN = {
    "python3 -m venv /tmp/bgpy && /tmp/bgpy/bin/pip install bgpy-pkg==13.0.13":
        "installs another project from PyPI into its own virtualenv and reads a CAIDA file from the network",
}


def blocks() -> list[tuple[str, str]]:
    """(language, body) of every fenced block, in order."""
    return re.findall(r"^```(\w*)\n(.*?)^```", README.read_text(), flags=re.S | re.M)


def block(first_line: str) -> str:
    found = [body for _, body in blocks() if body.splitlines()[0] == first_line]
    assert len(found) == 1, first_line
    return found[0]


def test_every_readme_block_is_run_by_a_test():
    for language, body in blocks():
        first = body.splitlines()[0]
        if first in NOT_RUN:
            continue
        assert first in COVERED, f"README block ({language}) starting {first!r} is run by no test: add one"
        for nodeid in COVERED[first]:
            path, _, name = nodeid.partition("::")
            assert (ROOT / path).is_file(), nodeid
            if name:
                assert re.search(rf"^def {re.escape(name)}\(", (ROOT / path).read_text(), re.M), nodeid


def test_the_quick_start_commands_run_the_demo_and_the_suite():
    # `./run.sh demo` is `testbed run depeering_fallback` (that scenario runs in
    # the suite), `./run.sh test` is the suite itself (CI runs it: .ci/run).
    commands = [line.split("#")[0].split() for line in block(
        "sudo ./run.sh demo    # the peering and depeering demo, with its outcome").splitlines()]
    assert commands == [["sudo", "./run.sh", "demo"], ["sudo", "./run.sh", "test"]]
    script = (ROOT / "run.sh").read_text()
    assert re.search(r'demo\) .*testbed" run depeering_fallback', script)
    assert re.search(r'test\) .*python" -m pytest', script)
    assert "./run.sh test" in (ROOT / ".ci" / "run").read_text()
    usage = subprocess.run([str(ROOT / "run.sh"), "nothing"], capture_output=True, text=True, timeout=30)
    assert usage.returncode == 2 and "demo|test" in usage.stderr


def test_the_vagrant_commands_match_the_vagrantfile():
    body = block("vagrant up            # Debian 12 box, provisioned by scripts/setup.sh")
    vagrantfile = (ROOT / "Vagrantfile").read_text()
    assert "debian/bookworm" in vagrantfile and "scripts/setup.sh" in vagrantfile
    assert '"/vagrant"' in vagrantfile
    for line in body.splitlines()[1:]:
        assert re.fullmatch(r"vagrant ssh -c 'cd /vagrant && sudo \./run\.sh (demo|test)'", line.strip()), line


def test_check_it_run_it_commands(tmp_path):
    # What needs no root runs here; the pytest and `testbed run`/`up` lines
    # run in the emulation tests named in COVERED.
    body = block(".venv/bin/testbed validate my_lab          # no root needed; exit 2 with every problem listed")
    lines = [line.split("#")[0].strip() for line in body.splitlines()]
    assert lines[0] == ".venv/bin/testbed validate my_lab"
    assert "sudo .venv/bin/python -m pytest scenarios/test_my_lab.py" in lines
    assert "sudo .venv/bin/testbed run my_lab" in lines and "sudo .venv/bin/testbed up my_lab" in lines
    assert "sudo .venv/bin/testbed run scenarios/test_my_lab.py" in lines
    path = tmp_path / "topologies" / "my_lab.py"
    path.parent.mkdir()
    path.write_text(block("# topologies/my_lab.py"))
    result = subprocess.run([str(BIN / "testbed"), "validate", str(path)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout and "links and LANs" in result.stdout


def test_the_policy_example_is_valid_in_the_readme_lab(tmp_path):
    lab = block("# topologies/my_lab.py")
    policy = block("# in topologies/my_lab.py, instead of its line topology.peering(a, b, bandwidth=100):")
    line = next(l for l in lab.splitlines() if l.startswith("topology.peering(a, b, bandwidth=100)"))
    path = tmp_path / "my_lab_policy.py"
    path.write_text(lab.replace(line, policy))
    topology = load(path)  # validated: raises TopologyError with every problem
    p = plan(topology)
    assert p.routers["A"].neighbor("B").policy["max_prefix"] == 100
    text = render(config_tree(p.routers["A"], p.hold_time, ["agent"]))
    assert "neighbor" in text


def test_the_readme_names_every_signal_that_stops_a_lab():
    text = " ".join(README.read_text().split())
    section = text[text.index("## What a lab creates, and cleanup"):]
    for signum in (signal.SIGINT, *signals.TERMINATING):
        assert signal.Signals(signum).name in section, signal.Signals(signum).name


def test_the_readme_gives_each_assertions_signature():
    text = README.read_text()
    for name in assertions.__all__:
        if not name.startswith("assert_"):
            continue
        function = getattr(assertions, name)
        parameters = []
        for parameter in inspect.signature(function).parameters.values():
            if parameter.default is inspect.Parameter.empty:
                parameters.append(parameter.name)
            else:
                parameters.append(f"{parameter.name}={parameter.default!r}".replace("'", '"'))
        shown = f"`{name}({', '.join(parameters)})`"
        short = f"`{name}(...)`"
        assert shown in text or short in text, f"README lacks {shown}"
