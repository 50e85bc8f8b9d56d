"""Every way a person starts, stops, interrupts or mistypes a lab through
the ``testbed`` command ends in one clear sentence and a clean machine
(issue 15, items 1-4, 11, 15): each terminating signal stops ``testbed up``
and ``testbed run``; Ctrl-C in ``testbed run`` exits 130 and names the step
it cut short; without root ``testbed run`` exits 3 like ``testbed up``; a
start-up failure is one message naming what failed, exit 1, nothing left.
Each child is stopped however its test ends (``testbed.testing.children``)."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pexpect
import pytest

from testbed.lab import cleanup
from testbed.testing.children import default_signals, owned_child, stop_child

pytestmark = pytest.mark.emulation
BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]

TOPOLOGY = textwrap.dedent("""\
    from testbed import Topology

    topology = Topology("duo", hold_time=3)
    topology.add_as(64500, "T")
    topology.add_as(64501, "A")
    topology.transit("T", "A")
""")

SCENARIO = textwrap.dedent("""\
    \"\"\"Two ASes; the second step waits to be interrupted.\"\"\"
    import os
    import time
    from pathlib import Path

    TOPOLOGY = Path(__file__).parent / "duo.py"


    def test_transit_carries_the_route(lab, report):
        assert lab.as_path("A", "T") == ["T"]
        report("path length", 1, " AS")


    def test_a_long_measurement(lab):
        Path(os.environ["MARKER"]).write_text("started")
        time.sleep(120)
""")


@pytest.fixture
def files(tmp_path):
    (tmp_path / "duo.py").write_text(TOPOLOGY)
    (tmp_path / "test_duo.py").write_text(SCENARIO)
    return tmp_path


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def lab_ids(root: Path) -> list[str]:
    return sorted(os.listdir(root)) if root.exists() else []


def assert_nothing_left(root: Path, lab_id: str) -> None:
    wait_for(lambda: not cleanup.tagged_processes().get(lab_id), 10, f"the processes of lab {lab_id} to end")
    assert not (root / lab_id).exists(), f"work directory of lab {lab_id} left"
    assert not [r.id for r in cleanup.labs(root) if r.workdir is not None]  # no other lab of this root


# Each signal is tested on a library lab (test_lab_lifecycle's
# test_interrupted_harness_leaves_nothing: SIGINT, SIGTERM, SIGHUP, SIGQUIT);
# here the command's own handling, which installs all three at once: SIGHUP
# (a closed terminal) on `up`, SIGQUIT on `run`, Ctrl-C on `run` in a pty.
@pytest.mark.parametrize("sig", [signal.SIGHUP])
def test_a_terminating_signal_stops_testbed_up(files, sig):
    root = files / "labs"
    with owned_child([str(BIN / "testbed"), "up", str(files / "duo.py")], root, stdin=subprocess.PIPE,
                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as child:
        out = []
        for line in child.stdout:
            out.append(line)
            if "converged in" in line:
                break
        lab_id = re.search(r"lab (\w+) of topology", "".join(out)).group(1)
        assert cleanup.tagged_processes().get(lab_id)
        child.send_signal(sig)
        assert child.wait(timeout=30) == 128 + sig, "".join(out) + child.stdout.read()
        out.append(child.stdout.read())
    text = "".join(out)
    assert f"lab {lab_id} stopped" in text, text
    # The start's stages and the speakers' count were shown (item 11).
    assert "done building namespaces and links" in text and "BGP speakers started: 2/2" in text, text
    assert_nothing_left(root, lab_id)


@pytest.mark.parametrize("sig", [signal.SIGQUIT])
def test_a_terminating_signal_stops_testbed_run_and_names_the_step(files, sig):
    root, marker = files / "labs", files / "marker"
    with owned_child([str(BIN / "testbed"), "run", str(files / "test_duo.py")], root,
                     env={**os.environ, "MARKER": str(marker)}, stdout=subprocess.PIPE,
                     stderr=subprocess.STDOUT, text=True) as child:
        wait_for(marker.exists, 60, "the scenario's second step")
        lab_id = lab_ids(root)[0]
        child.send_signal(sig)
        assert child.wait(timeout=30) == 128 + sig
        text = child.stdout.read()
    flat = " ".join(text.replace("│", " ").split())
    assert f"a long measurement interrupted: cut short by {sig.name}" in flat, text
    assert text.count("path length") == 1, text  # measurements once, in the outcome table
    assert_nothing_left(root, lab_id)


def test_ctrl_c_in_testbed_run_exits_130_and_shows_the_step_it_cut_short(files):
    root, marker = files / "labs", files / "marker"
    child = pexpect.spawn(str(BIN / "testbed"), ["run", str(files / "test_duo.py")], encoding="utf-8",
                          env={**os.environ, "MARKER": str(marker), "TESTBED_WORKDIR": str(root),
                               "COLUMNS": "120"},
                          preexec_fn=default_signals, timeout=60, dimensions=(50, 120))
    child.logfile_read = transcript = io.StringIO()
    try:
        # Read the terminal while waiting, as a terminal does (a full pty blocks the writer).
        wait_for(lambda: child.expect([pexpect.TIMEOUT, pexpect.EOF], timeout=0.05) == 0 and marker.exists(),
                 60, "the scenario's second step")
        lab_id = lab_ids(root)[0]
        child.sendcontrol("c")  # what the terminal sends on Ctrl-C
        child.expect(pexpect.EOF, timeout=30)
        child.close()
        text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", transcript.getvalue())
        assert child.exitstatus == 130, text
        # The start was shown while pytest captured its output (item 11).
        assert "done building namespaces and links" in text and "BGP speakers started: 2/2" in text, text
        flat = " ".join(text.replace("│", " ").split())
        assert "transit carries the route passed" in flat, text
        assert "a long measurement interrupted: cut short by Ctrl-C" in flat, text
    finally:
        stop_child(child, root)
    assert_nothing_left(root, lab_id)


def test_a_child_that_ignores_ctrl_c_is_killed_and_its_lab_removed(files):
    # As any child of a background job: SIGINT is ignored, so Ctrl-C alone
    # never stops it; the test's own stop must, and remove its lab.
    root = files / "labs"
    script = ("import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
              "from testbed.lab.lab import Lab\n"
              f"lab = Lab({str(files / 'duo.py')!r}); lab.start(); print(lab.id, flush=True); time.sleep(120)\n")
    with owned_child([sys.executable, "-c", script], root, stdout=subprocess.PIPE, text=True) as child:
        lab_id = child.stdout.readline().strip()
        assert lab_id and cleanup.tagged_processes().get(lab_id)
        child.send_signal(signal.SIGINT)
        with pytest.raises(subprocess.TimeoutExpired):
            child.wait(timeout=1)
        assert stop_child(child, root, grace=0.5) is True  # had to be killed
    assert_nothing_left(root, lab_id)


def as_nobody(*args: str, root: Path | None = None) -> subprocess.CompletedProcess:
    """``testbed ARGS`` as user nobody. The clone may sit in a directory
    nobody may enter (root's home is 0700): the child keeps only the
    capability to read and search files (CAP_DAC_READ_SEARCH), so it can
    run the clone's programs and is still not root (uid 65534, no other
    capability)."""
    argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
            "--inh-caps=-all,+dac_read_search", "--ambient-caps=+dac_read_search",
            str(BIN / "testbed"), *args]
    env = {**os.environ, "TESTBED_WORKDIR": str(root)} if root else None
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd="/", env=env)


def test_without_root_testbed_run_and_up_exit_3_with_one_sentence(files):
    root = files / "labs"
    os.chmod(files, 0o777)  # nobody could make its labs' work directories here: it must not try
    for command in (["run", "settlement_free_peering"], ["up", "triangle", "--no-cli"]):
        result = as_nobody(*command, root=root)
        assert result.returncode == 3, (command, result.stdout + result.stderr)
        assert result.stderr.strip() == "error: a lab needs root (network namespaces): run it with sudo", command
        assert "skipped" not in result.stdout, result.stdout
    assert not root.exists()  # nothing created
    assert as_nobody("validate", "triangle").returncode == 0  # validation needs no root


def test_a_work_directory_that_cannot_be_made_is_one_sentence_and_exit_1(files):
    blocker = files / "not-a-directory"
    blocker.write_text("")
    result = subprocess.run([str(BIN / "testbed"), "up", str(files / "duo.py"), "--no-cli"],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "TESTBED_WORKDIR": str(blocker)})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: lab of topology 'duo' failed to start"), lines
    assert str(blocker) in lines[0] and "File exists" in lines[0], lines[0]


CLASH = textwrap.dedent("""\
    import dataclasses, sys
    from testbed import cli
    from testbed.model import addressing

    plan = addressing.plan

    def clashing(topology):
        # Two of A's interfaces get one name: the kernel refuses the second.
        made = plan(topology)
        links = [dataclasses.replace(l, ifname1="to-T") if (l.node1, l.ifname1) == ("A", "to-B") else
                 dataclasses.replace(l, ifname2="to-T") if (l.node2, l.ifname2) == ("A", "to-B") else l
                 for l in made.links]
        return dataclasses.replace(made, links=tuple(links) if isinstance(made.links, tuple) else links)

    import testbed.lab.lab
    testbed.lab.lab.plan = clashing
    sys.exit(cli.main(["up", "triangle", "--no-cli"]))
""")


def test_a_kernel_refusal_while_building_names_the_router_and_link_and_leaves_nothing(files):
    root = files / "labs"
    result = subprocess.run([sys.executable, "-c", CLASH], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "TESTBED_WORKDIR": str(root)})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert re.search(r"router [AT]: the kernel refused veth to-\w -- to-\w: File exists", message), message
    assert "building namespaces and links" in message and "rename the AS" in message, message
    lab_id = re.search(r"error: lab (\w+) of topology 'triangle' failed to start", message).group(1)
    assert_nothing_left(root, lab_id)
