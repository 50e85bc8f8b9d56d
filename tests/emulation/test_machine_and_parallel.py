"""What the user sees on a machine that lacks something, and labs run in
parallel by pytest-xdist."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from testbed import Topology
from testbed.lab import cleanup
from testbed.errors import MissingDependency
from testbed.lab.lab import Lab, netem_available

pytestmark = pytest.mark.emulation
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run_cli(*args, env=None, user=None):
    argv = [str(BIN / "testbed"), *args]
    if user:
        # Not root, but able to read and search the clone wherever it is (root's
        # home is 0700): the capability CAP_DAC_READ_SEARCH and nothing else.
        argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups",
                "--inh-caps=-all,+dac_read_search", "--ambient-caps=+dac_read_search", *argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)


def test_not_root_is_one_clear_sentence_and_creates_nothing(tmp_path):
    # A work root of its own: other labs come and go under the default one meanwhile.
    root = tmp_path / "labs"
    os.chmod(tmp_path, 0o777)
    result = run_cli("up", "triangle", "--no-cli", user=65534, env={**os.environ, "TESTBED_WORKDIR": str(root)})
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stderr.strip() == "error: a lab needs root (network namespaces): run it with sudo"
    assert not root.exists()
    # validation alone needs no root
    assert run_cli("validate", "triangle", user=65534).returncode == 0


def test_missing_mnexec_says_which_package():
    env = {**os.environ, "PATH": str(BIN)}  # no /usr/bin: no mnexec
    result = run_cli("up", "triangle", "--no-cli", env=env)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "mnexec is missing: install Debian's 'mininet' package" in result.stderr


def delayed_topology():
    topo = Topology("delay")
    topo.add_as(64500, "T")
    topo.add_as(64501, "A")
    topo.transit("T", "A", delay="20ms")
    return topo


def test_link_delay_needs_netem_and_says_so():
    if netem_available():
        with Lab(delayed_topology()) as lab:  # the kernel can: the delay is real
            rtt = min(lab.ping("A", "T-h1", count=3).rtts)
            assert rtt >= 0.040, rtt
    else:
        before = set(cleanup.tagged_processes())
        with pytest.raises(MissingDependency, match="netem qdisc"):
            Lab(delayed_topology()).start()
        assert set(cleanup.tagged_processes()) == before


# A scenario module of the shape users write: one lab, tests that depend on
# the ones before them (depeer, look, re-peer), so they must run in order on
# one worker. Two of them, each on its own small topology.
SCENARIO_MODULE = """
from testbed import Topology

TOPOLOGY = Topology("{name}")
TOPOLOGY.add_as({asn}, "P")
TOPOLOGY.add_as({asn} + 1, "C")
TOPOLOGY.add_as({asn} + 2, "D")
TOPOLOGY.transit("P", "C")
TOPOLOGY.transit("P", "D")
TOPOLOGY.peering("C", "D")


def test_peering_is_the_path(lab):
    assert lab.as_path("C", "D") == ["D"]


def test_depeer_falls_back_to_the_provider(lab):
    lab.depeer("C", "D")
    assert lab.as_path("C", "D") == ["P", "D"]


def test_still_depeered(lab):
    assert lab.as_path("D", "C") == ["P", "C"]


def test_repeer_restores_the_peering(lab):
    lab.repeer("C", "D")
    assert lab.as_path("C", "D") == ["D"] and lab.reachable("C", "D")
"""


def test_two_scenario_modules_in_parallel_with_xdist(tmp_path):
    modules = []
    for name, asn in (("one", 64600), ("two", 64700)):
        module = tmp_path / f"test_scenario_{name}.py"
        module.write_text(SCENARIO_MODULE.format(name=name, asn=asn))
        modules.append(module.name)
    result = subprocess.run([sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "-n", "2",
                             *modules], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "8 passed" in result.stdout, result.stdout[-500:]
    # Each module (one lab, tests in order) ran on one worker; both workers worked.
    workers = {}
    for line in result.stdout.splitlines():
        if " PASSED test_scenario_" in line and line.startswith("[gw"):
            module = line.split("PASSED ")[1].split("::")[0]
            workers.setdefault(module, set()).add(line.split("]")[0])
    assert len(workers) == 2 and all(len(w) == 1 for w in workers.values()), workers
    assert len(set().union(*workers.values())) == 2, workers


def test_link_bandwidth_is_shaped_in_the_kernel():
    topo = Topology("shaped")
    topo.add_as(64500, "T")
    topo.add_as(64501, "A")
    topo.transit("T", "A", bandwidth=10)
    with Lab(topo) as lab:
        for router, peer in (("A", "T"), ("T", "A")):
            ifname = lab.plan.routers[router].neighbor(peer).ifname
            qdisc = subprocess.run(["nsenter", "-t", str(lab.nodes[router].pid), "-n", "tc", "class", "show",
                                    "dev", ifname], capture_output=True, text=True).stdout
            assert "htb" in qdisc and "rate 10Mbit" in qdisc, qdisc
        assert lab.reachable("A", "T")
