"""BIRD and FRR routers in a lab with ExaBGP ones: a refused configuration
stops the start before anything is built, named by file and line; the
daemons carry the lab's tag, write their own kernel routes (BIRD's
protocol, zebra's ``bgp``), follow a cut link and an admin shutdown, and
leave with the lab."""

import pytest

from testbed.assertions import assert_as_path, assert_route, assert_session_down
from testbed.lab import Lab, cleanup
from testbed.model.topology import Topology
from testbed.routers.configs import RouterConfigError

pytestmark = pytest.mark.emulation


def _triangle(a_router="bird", b_router="frr", a_config=None) -> Topology:
    t = Topology("byo_triangle", hold_time=3)
    t.add_as(64500, "T", ["198.51.100.0/24", "2001:db8:64::/48"])
    t.add_as(64501, "A", ["192.0.2.0/25", "2001:db8:a::/48"], router=a_router, config=a_config)
    t.add_as(64502, "B", ["192.0.2.128/25", "2001:db8:b::/48"], router=b_router)
    t.transit("T", "A")
    t.transit("T", "B")
    t.peering("A", "B")
    return t.validate()


def test_a_refused_configuration_is_named_by_file_and_line_and_nothing_is_built(tmp_path):
    config = tmp_path / "a.bird.conf"
    config.write_text("router id {{ router_id }};\nprotocol device { scan tme 10; }\n")
    config = config.rename(tmp_path / "a.bird.j2")
    lab = Lab(_triangle(a_config=config))
    with pytest.raises(RouterConfigError, match=r"A/bird.conf:2: bird refused the configuration of router A "
                                                r"\(rendered from .*a\.bird\.j2\)"):
        lab.start()
    assert lab.nodes == {}                                 # no namespace was made
    assert lab.id not in cleanup.tagged_processes()
    assert not lab.workdir.exists()


def test_bird_and_frr_beside_exabgp(report):
    with Lab(_triangle()) as lab:
        tagged = cleanup.tagged_processes().get(lab.id, [])
        names = set()
        for pid in tagged:
            try:
                names.add(open(f"/proc/{pid}/comm").read().strip())
            except OSError:
                pass
        assert {"bird", "zebra", "bgpd"} <= names, names
        for router in ("A", "B", "T"):
            for other in {"A", "B", "T"} - {router}:
                assert_route(lab, router, other)            # in BGP and in the kernel, as chosen
                assert_route(lab, router, other, family=6)
        assert_as_path(lab, "A", "B", ["B"])
        assert lab.sessions("B")["A"]["state"] == "established"
        report("start with BIRD and FRR", f"{lab.timings['start']:.1f}", " s")
        lab.depeer("A", "B", how="link")
        assert_as_path(lab, "A", "B", ["T", "B"])
        assert_route(lab, "B", "A")
        lab.repeer("A", "B")
        assert_as_path(lab, "B", "A", ["A"])
        lab.depeer("B", "A")                                # vtysh: neighbor ... shutdown
        assert_session_down(lab, "A", "B")
        assert_as_path(lab, "A", "B", ["T", "B"])
        lab.repeer("B", "A")
        assert_as_path(lab, "A", "B", ["B"])
    assert lab.id not in cleanup.tagged_processes()
    assert not lab.workdir.exists()


def test_router_setup_is_idempotent_and_leaves_no_service():
    import glob
    import os
    import subprocess
    from pathlib import Path

    script = Path(__file__).parent.parent.parent / "scripts" / "setup-routers.sh"
    result = subprocess.run([str(script)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "installing" not in result.stdout  # already installed: it does nothing
    assert not glob.glob("/etc/rc[2-5].d/S*bird*") and not glob.glob("/etc/rc[2-5].d/S*frr*")
    if Path("/run/systemd/system").is_dir():
        for unit in ("bird", "frr"):
            state = subprocess.run(["systemctl", "is-enabled", unit], capture_output=True, text=True).stdout
            assert state.strip() not in ("enabled", "enabled-runtime"), (unit, state)
    # No bird, zebra or bgpd runs that a lab did not start (labs tag theirs).
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if comm in ("bird", "zebra", "bgpd", "watchfrr"):
            assert b"TESTBED_LAB=" in environ, f"{comm} (pid {pid}) runs outside any lab"
