"""``testbed exercise`` as a participant uses it, with a real lab.

``start`` must return with the lab still running, owned by a harness
process in its own session, reachable over a socket in the lab's 0700 work
directory; ``check`` applies answers (refusing an invalid one and leaving
the lab as it was), ``reset`` puts the router back, ``stop`` leaves
nothing, and a harness killed with SIGKILL is cleaned by ``testbed clean``
like any lab. ``grade`` grades answer files against fresh labs and writes
the three reports.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testbed.lab import cleanup
from testbed.linux.processes import tagged_processes
from testbed.exercise import harness
from testbed.exercise.model import load_exercise

pytestmark = pytest.mark.emulation
TESTBED = str(Path(sys.executable).parent / "testbed")
EXERCISE = load_exercise("no_transit")


def run(*args, cwd, timeout=120):
    return subprocess.run([TESTBED, "exercise", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def lab_processes(lab_id: str) -> list[int]:
    return tagged_processes().get(lab_id, [])


def lab_policy(workspace: Path, neighbor: str):
    """The policy the running lab's router You applies towards ``neighbor``."""
    return harness.request(workspace, "status", policy_of=neighbor)["policy"]


@pytest.fixture()
def workspace(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("emulation test: needs root")
    yield tmp_path
    info = harness.state(tmp_path)
    if info is not None:  # a failed test must not leave the lab behind
        run("stop", cwd=tmp_path)
        cleanup.clean(lab_id=info["lab"])


def test_start_check_reset_stop(workspace):
    started = run("start", "no_transit", cwd=workspace)
    assert started.returncode == 0, started.stdout + started.stderr
    info = harness.state(workspace)
    assert info and (workspace / "answer.yaml").is_file() and (workspace / "instructions.md").is_file()
    # The command has returned; the harness, in its own session, keeps the lab.
    assert os.getsid(info["pid"]) == info["pid"]
    assert lab_processes(info["lab"])
    sock = Path(info["socket"])
    assert stat.S_IMODE(sock.parent.stat().st_mode) == 0o700 and sock.parent.name == info["lab"]

    empty = run("check", cwd=workspace)
    assert empty.returncode == 1, empty.stdout
    assert "failed  P2 reaches P1 over its own peering" in empty.stdout
    assert "seen: at router P2, the AS path to 203.0.113.0/25 (P1) is ['You', 'P1']" in empty.stdout
    assert "hint: your export to P2 accepts routes you learned from P1" in empty.stdout

    (workspace / "answer.yaml").write_text(EXERCISE.solution.read_text())
    solved = run("check", cwd=workspace)
    assert solved.returncode == 0, solved.stdout
    assert "3 of 3 criteria passed" in solved.stdout

    # An invalid answer is refused with its line, and the solution stays applied.
    (workspace / "bad.yaml").write_text("policy:\n  P1:\n    export: [{action: reject}]\n  P9: {}\n")
    refused = run("check", "bad.yaml", cwd=workspace)
    assert refused.returncode == 2
    assert "bad.yaml:4: policy.P9: You has no session with 'P9'" in refused.stdout
    status = harness.request(workspace, "status")
    assert status["applied"] == str(workspace / "answer.yaml")
    assert lab_policy(workspace, "P1") == {"export": [{"match": {"learned_from": ["provider"]},
                                                       "action": "reject"}]}

    reset = run("reset", cwd=workspace)
    assert reset.returncode == 0, reset.stdout + reset.stderr
    assert harness.request(workspace, "status")["applied"] is None
    assert lab_policy(workspace, "P1") == {"export": [{"action": "accept"}]}  # the gap is back

    stopped = run("stop", cwd=workspace)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    deadline = time.monotonic() + 10
    while lab_processes(info["lab"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not lab_processes(info["lab"])
    assert not sock.parent.exists() and harness.state(workspace) is None
    assert run("check", cwd=workspace).returncode != 0


def test_a_killed_harness_is_cleaned_like_any_lab(workspace):
    assert run("start", "no_transit", cwd=workspace).returncode == 0
    info = harness.state(workspace)
    os.kill(info["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 5
    while Path(f"/proc/{info['pid']}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    removed = cleanup.clean()
    assert info["lab"] in [r.id for r in removed]
    assert not lab_processes(info["lab"]) and not Path(info["socket"]).parent.exists()
    (workspace / harness.STATE_FILE).unlink()


def test_grade_writes_the_three_reports(tmp_path):
    answers = tmp_path / "answers"
    answers.mkdir()
    (answers / "alice.yaml").write_text(EXERCISE.solution.read_text())
    (answers / "bob.yaml").write_text((EXERCISE.directory / "wrong" / "only_p2.yaml").read_text())
    (answers / "carol.yaml").write_text("policy: [\n")
    result = run("grade", "no_transit", *sorted(str(p) for p in answers.iterdir()), "--out",
                 str(tmp_path / "out"), cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "participants a minute" in result.stdout
    rows = {row["participant"]: row for row in csv.DictReader((tmp_path / "out" / "grades.csv").open())}
    assert rows["alice"]["passed"] == "3"
    assert rows["bob"]["p1_not_through_you"] == "0" and rows["bob"]["passed"] == "2"
    assert rows["carol"]["passed"] == "0"
    assert "YAML syntax" in (tmp_path / "out" / "grades.html").read_text()
    assert (tmp_path / "out" / "grades.xml").read_text().count("<testcase") == 9
