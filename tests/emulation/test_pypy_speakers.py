"""The ``zygote-pypy`` process model in a real lab: the speakers are forks of
a PyPy zygote (``testbed.speaker.pypy``), here one whose JIT was warmed
before the first fork, ExaBGP's internals pass the same sha256 gate under PyPy, and the
lab converges, puts its routes into the kernels and carries packets, also
after a depeering. Needs the environment ``scripts/setup-pypy.sh`` makes
(``./run.sh test`` runs it): without it these tests fail, never skip."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from testbed.lab.lab import Lab
from testbed.speaker import pypy
from testbed.speaker.compat import PATCHES

pytestmark = pytest.mark.emulation
ROOT = Path(__file__).resolve().parents[2]


WARM = 300  # a short JIT warm-up (TESTBED_PYPY_WARM; off by default): its children must route too


@pytest.fixture(scope="module")
def lab():
    saved = os.environ.get("TESTBED_PYPY_WARM")
    os.environ["TESTBED_PYPY_WARM"] = str(WARM)
    try:
        with Lab("triangle", process_model="zygote-pypy") as lab:
            yield lab
    finally:
        if saved is None:
            os.environ.pop("TESTBED_PYPY_WARM", None)
        else:
            os.environ["TESTBED_PYPY_WARM"] = saved


def test_every_speaker_is_a_fork_of_a_warmed_pypy_zygote(lab):
    info = lab.zygote.info
    assert info["python"] == "PyPy" and info["missing"] == []
    assert info["warm_up"]["updates"] == info["warm_up"]["routes"] == WARM
    zygote = info["pid"]
    for router in lab.plan.routers:
        pid = lab.speakers[router].pid
        assert "pypy" in os.path.basename(os.readlink(f"/proc/{pid}/exe")), router
        with open(f"/proc/{pid}/stat") as handle:  # its parent: the zygote, no exec since
            assert int(handle.read().rpartition(")")[2].split()[1]) == zygote, router
        with open(f"/proc/{pid}/environ", "rb") as handle:
            assert f"PYPY_GC_NURSERY={pypy.NURSERY}".encode() in handle.read().split(b"\0")
        assert lab.snapshot(router)["pid"] == pid  # the agent is a thread of the speaker


def test_routes_reach_every_kernel_and_packets_follow_them(lab):
    for router in lab.plan.routers:
        kernel = lab.kernel_routes(router)
        learned = {prefix for prefix, route in lab.loc_rib(router).items() if route.get("neighbor")}
        assert learned and learned <= set(kernel), (router, sorted(learned - set(kernel)))
    assert lab.as_path("A", "B") == ["B"]
    assert lab.reachable("A", "B") and lab.reachable("A", "B", family=6)


def test_a_depeering_reconverges_on_pypy(lab):
    lab.depeer("A", "B")
    try:
        assert lab.as_path("A", "B") == ["T", "B"]
        assert lab.reachable("A", "B", family=6)
    finally:
        lab.repeer("A", "B")
    assert lab.as_path("A", "B") == ["B"]


def test_the_compat_gate_passes_under_pypy():
    # The same source files: every patch's sha256 as on CPython.
    result = subprocess.run([pypy.interpreter(), "-m", "testbed.speaker.compat"], capture_output=True,
                            text=True, timeout=120, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()[1:]
    assert len(lines) == len(PATCHES) and all(line.startswith("ok ") for line in lines), result.stdout
