"""Emulation tests of the lab's lifecycle: start, converge, stop, and what is
left after every way a lab can end (normal, exception, SIGINT, SIGKILL),
with a second lab running beside it that must never be touched."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from testbed.lab import cleanup
from testbed.errors import ConvergenceTimeout, LabError, SpeakerCrashed
from testbed.model.generate import internet
from testbed.lab.lab import Lab
from testbed.linux import lab_records
from testbed.testing import namespaces
from testbed.testing.children import default_signals, stop_child
from testbed.testing.wait import wait_until

pytestmark = pytest.mark.emulation
# The tests that set and read the host's own settings (neighbour table sizes,
# ksmd) ask for ``host_exclusive`` (tests/conftest.py): with pytest-xdist no
# lab of the other worker runs while they check that the last lab puts them back.
ROOT = Path(__file__).resolve().parents[2]


def namespaces_of(lab: Lab) -> set[tuple[int, int]]:
    """The lab's network namespaces, by inode and cookie (an inode number
    alone is given to the next namespace of another lab)."""
    return namespaces.namespaces_of(node.pid for node in lab.nodes.values())


def assert_gone(lab_id: str, inodes: set[tuple[int, int]], workdir: Path | None) -> None:
    # What is guarded is that nothing is left; the bound only ends a wait
    # for processes the stop has killed to be reaped (it ends at once when
    # they are). It was 5 s and failed with two workers: another lab's new
    # namespace had been given the inode number of one of this lab's.
    wait_until(lambda: not cleanup.tagged_processes().get(lab_id) and not namespaces.left(inodes), 15,
               f"the processes and namespaces of lab {lab_id} to be gone", interval=0.05,
               explain=lambda: f"processes left: {cleanup.tagged_processes().get(lab_id, [])}, "
                               f"namespaces left: {sorted(namespaces.left(inodes))}")
    assert not cleanup.tagged_processes().get(lab_id), f"processes of lab {lab_id} left"
    assert not namespaces.left(inodes), f"network namespaces of lab {lab_id} left"
    if workdir is not None:
        assert not workdir.exists(), f"work directory {workdir} left"


def labs_in_use(root: Path) -> str:
    """For a failure of "the last lab puts the host's settings back": the
    labs on the host still in use (another program's, beside the suite, are
    labs too: the settings stay raised for them)."""
    found = [f"{record.id} (pids {record.pids[:3]})" for record in lab_records.labs(root) if record.in_use]
    return f"labs in use on the host now: {', '.join(found) or 'none'}"


@pytest.fixture
def triangle():
    """A triangle lab of the test's own: a lab shared by the module stayed
    up while its host-wide tests (neighbour limits, ksmd) waited for the
    last lab to stop, and failed them."""
    with Lab("triangle") as lab:
        yield lab


def test_every_link_carries_ipv6_the_moment_the_lab_is_up(triangle):
    # A veth end is only "running" for IPv6 once the kernel's link watcher
    # has reported its carrier; with both ends on the same interface index
    # that came up to a second late, and a router forwarding a packet in
    # that second could not resolve its next hop (no link-local address to
    # send the neighbour solicitation from): an IPv6 ping right after start
    # got no reply.
    lab = triangle
    late = []
    for name, node in lab.nodes.items():
        links = json.loads(subprocess.run(["mnexec", "-a", str(node.pid), "ip", "-j", "link"],
                                          capture_output=True, text=True, check=True).stdout)
        addresses = json.loads(subprocess.run(["mnexec", "-a", str(node.pid), "ip", "-j", "-6", "addr"],
                                              capture_output=True, text=True, check=True).stdout)
        local = {a["ifname"]: [i for i in a.get("addr_info", []) if i.get("scope") == "link"]
                 for a in addresses}
        for link in links:
            if "link_netnsid" not in link:  # only veth ends (their peer is in another namespace)
                continue
            ready = local.get(link["ifname"], [])
            if link["operstate"] != "UP" or not ready or any(i.get("tentative") for i in ready):
                late.append(f"{name}/{link['ifname']}: {link['operstate']}, link-local {ready}")
    assert not late, late
    for src, dst in (("A", "B"), ("B", "A"), ("A", "T"), ("T", "B")):
        assert lab.ping(src, dst, family=6, count=1).received, f"{src} -> {dst} over IPv6"


def test_lab_stops_cleanly_and_leaves_nothing():
    with Lab("triangle") as lab:
        lab_id, inodes, workdir = lab.id, namespaces_of(lab), lab.workdir
        assert len(inodes) == len(lab.plan.routers) + len(lab.plan.hosts)
        assert cleanup.tagged_processes()[lab_id]
        # Nothing of the lab in the root namespace: no interface, no route.
        root_links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        for link in lab.plan.links:
            assert f" {link.ifname1}@" not in root_links and f" {link.ifname1}:" not in root_links
        # Each node's shell holds its terminal and nothing of the harness
        # (no netlink socket, no control connection, no other node's pty).
        for name, node in lab.nodes.items():
            held = {fd: os.readlink(f"/proc/{node.pid}/fd/{fd}") for fd in os.listdir(f"/proc/{node.pid}/fd")}
            assert set(held) <= {"0", "1", "2", "255"}, f"the shell of {name} holds {held}"
            assert len({held[fd] for fd in ("0", "1", "2")}) == 1, f"the shell of {name}: {held}"
    assert_gone(lab_id, inodes, workdir)


def test_exception_inside_the_lab_still_cleans_up():
    captured = {}
    with pytest.raises(RuntimeError, match="scenario broke"):
        with Lab("triangle") as lab:
            captured.update(id=lab.id, inodes=namespaces_of(lab), workdir=lab.workdir)
            raise RuntimeError("scenario broke")
    assert_gone(captured["id"], captured["inodes"], captured["workdir"])


def test_convergence_timeout_says_what_is_missing_and_that_the_lab_settled(triangle):
    # Tell the model the A-B session is down while it is really up: the lab
    # is quiet in another state than the model's, and the timeout says so.
    lab = triangle
    lab.expect.set_session("A", "B", up=False)
    try:
        t0 = time.monotonic()
        with pytest.raises(ConvergenceTimeout) as info:
            lab.wait_converged(timeout=3.0)
        assert time.monotonic() - t0 < 5.0, "the wait was not bounded"
    finally:
        lab.expect.set_session("A", "B", up=True)
    message = str(info.value)
    assert "router A: session to B" in message and "expected down" in message
    assert "expected AS path ['T', 'B']" in message and "got AS path ['B']" in message
    assert "the lab settled in a state other than the model's" in message
    lab.wait_converged(timeout=5)  # the model put back: the lab agrees again


def test_killed_speaker_is_reported_by_name():
    with Lab("triangle") as lab:
        lab.speakers["B"].kill()
        lab.speakers["B"].wait(timeout=5)
        with pytest.raises(SpeakerCrashed, match="router B"):
            lab.check_alive()
        with pytest.raises(SpeakerCrashed, match="router B"):
            lab.wait_converged(timeout=5)


CHILD = textwrap.dedent("""
    import json, sys, time
    from testbed.lab.lab import Lab
    lab = Lab(sys.argv[1])
    try:
        lab.start()
        print(json.dumps({"id": lab.id, "workdir": str(lab.workdir),
                          "pids": [n.pid for n in lab.nodes.values()]}), flush=True)
        time.sleep(600)
    finally:
        lab.stop()
""")


def start_child(topology: str = "triangle", env: dict | None = None) -> tuple[subprocess.Popen, dict]:
    # Its own session, SIGINT at its default even where the suite runs as a background job.
    child = subprocess.Popen([sys.executable, "-c", CHILD, topology], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env,
                             start_new_session=True, preexec_fn=default_signals)
    line = child.stdout.readline()
    if not line:
        raise AssertionError(f"child lab did not start: {child.stderr.read()}")
    info = json.loads(line)
    info["inodes"] = namespaces.namespaces_of(info["pids"])
    return child, info


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT])
def test_interrupted_harness_leaves_nothing(sig):
    child, info = start_child()
    try:
        child.send_signal(sig)
        child.wait(timeout=20)
    finally:  # a child that ignored the signal must not outlive the test with its lab
        if stop_child(child):
            cleanup.clean(lab_id=info["id"])
    assert_gone(info["id"], info["inodes"], Path(info["workdir"]))


def test_clean_removes_a_killed_lab_and_spares_a_live_one():
    with Lab("triangle") as survivor:
        child, info = start_child()
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        assert cleanup.tagged_processes().get(info["id"]), "SIGKILL should leave the speakers behind"
        result = subprocess.run([str(Path(sys.executable).parent / "testbed"), "clean"],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert f"removed lab {info['id']}" in result.stdout
        assert_gone(info["id"], info["inodes"], Path(info["workdir"]))
        # The live lab is untouched and still routes.
        assert survivor.id in cleanup.tagged_processes()
        assert survivor.workdir.exists()
        survivor.check_alive()
        assert survivor.as_path("A", "B") == ["B"]
        assert survivor.reachable("A", "B")


def test_clean_spares_a_live_lab_under_another_root_and_removes_it_once_orphaned(tmp_path):
    # A lab whose work directory is under another root (Lab(root=...) or
    # TESTBED_WORKDIR) has no manifest where a plain `testbed clean` looks:
    # it sees the lab only through its tagged processes.
    testbed = str(Path(sys.executable).parent / "testbed")
    with Lab("triangle", root=tmp_path / "elsewhere") as other:
        result = subprocess.run([testbed, "clean"], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert f"removed lab {other.id}" not in result.stdout
        assert f"left running lab {other.id}" in result.stdout, result.stdout
        other.check_alive()
        assert other.as_path("A", "B") == ["B"] and other.reachable("A", "B")
    child, info = start_child(env={**os.environ, "TESTBED_WORKDIR": str(tmp_path / "orphans")})
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    parent = int(cleanup.proc_stat(info["pids"][0])[1])
    if parent != 1:
        cleanup.clean(lab_id=info["id"])
        pytest.skip(f"a subreaper (pid {parent}) adopted the killed lab's processes: they look owned")
    result = subprocess.run([testbed, "clean"], capture_output=True, text=True, timeout=60)
    assert f"removed lab {info['id']}" in result.stdout, result.stdout
    assert_gone(info["id"], info["inodes"], None)


def test_two_labs_run_side_by_side():
    with Lab("triangle") as first, Lab("triangle") as second:
        assert first.id != second.id
        assert first.plan.routers["A"].router_id == second.plan.routers["A"].router_id  # same plan
        first.depeer("A", "B")
        assert first.as_path("A", "B") == ["T", "B"]
        assert second.as_path("A", "B") == ["B"]  # the other lab did not notice
        assert second.reachable("A", "B") and first.reachable("A", "B")
        second_id, second_inodes = second.id, namespaces_of(second)
    assert_gone(second_id, second_inodes, None)


def test_bad_topology_exits_2_and_creates_nothing(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(textwrap.dedent("""
        from testbed import Topology
        topology = Topology("bad")
        topology.add_as(0, "A", ["192.0.2.0/24"])
        topology.add_as(64501, "B b", ["192.0.2.0/25"])
        topology.peering("A", "C")
    """))
    # A work root of its own: other labs may come and go under the default one meanwhile.
    root = tmp_path / "labs"
    result = subprocess.run([str(Path(sys.executable).parent / "testbed"), "up", str(bad), "--no-cli"],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "TESTBED_WORKDIR": str(root)})
    assert result.returncode == 2, result.stderr
    assert "ASN 0" in result.stderr and "'B b'" in result.stderr and "no AS named 'C'" in result.stderr
    assert f"{bad}:" in result.stderr  # says where
    assert not root.exists() or not os.listdir(root)  # no work directory, so no lab was started


def test_exec_process_model_still_works():
    # The plain model (an exec'd ExaBGP and agent per router) stays available
    # as the baseline of the benchmark and for debugging.
    with Lab("triangle", process_model="exec") as lab:
        lab_id, inodes, workdir = lab.id, namespaces_of(lab), lab.workdir
        agent = lab.snapshot("A")["pid"]
        assert agent != lab.speakers["A"].pid  # a process of its own
        assert lab.as_path("A", "B") == ["B"]
        lab.depeer("A", "B")
        assert lab.as_path("A", "B") == ["T", "B"]
        assert lab.reachable("A", "B", family=6)
    assert_gone(lab_id, inodes, workdir)


@pytest.mark.parametrize("model", ["zygote", "exec"])
def test_no_router_sends_an_update_before_every_session_is_up(model):
    # The lab's update delay: a route sent as soon as its session opens
    # would be explored again with every session opening after it.
    with Lab(internet(12, seed=2), process_model=model) as lab:
        summaries = {router: lab.snapshot(router) for router in lab.plan.routers}
    sessions = [s for summary in summaries.values() for s in summary["sessions"].values()]
    assert len(sessions) == 2 * len(lab.plan.sessions)
    assert all(s["state"] == "established" and s["flaps"] == 0 for s in sessions)
    last_up = max(s["since"] for s in sessions)
    for router, summary in summaries.items():
        delay = summary["update_delay"]
        assert delay["active"] is False and delay["reason"] == "the lab's sessions are up", router
        assert delay["at"] >= last_up, f"{router} sent routes before every session was up"
        assert summary["stats"]["announced_out"] > 0 and summary["loc_rib_size"] > 1, router


def test_zygote_model_runs_one_process_per_router(triangle):
    lab = triangle
    assert lab.process_model == "zygote"
    for router in lab.plan.routers:
        pid = lab.speakers[router].pid
        assert lab.snapshot(router)["pid"] == pid  # the agent is a thread of the speaker
        with open(f"/proc/{pid}/comm") as handle:
            assert handle.read().strip() == f"exabgp:{router}"


KILL_DURING_START = textwrap.dedent("""
    import sys
    from testbed.model.generate import internet
    from testbed.lab.lab import Lab
    Lab(internet(20, seed=3)).start()
""")


def test_sigkill_during_start_up_is_cleaned_by_id(tmp_path):
    # The child's lab gets a work root of its own, so it is told apart from
    # labs that others start and stop on the machine meanwhile.
    root = tmp_path / "labs"
    running = {r.id for r in cleanup.labs() if r.owner_alive}
    child = subprocess.Popen([sys.executable, "-c", KILL_DURING_START], cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env={**os.environ, "TESTBED_WORKDIR": str(root)})
    # Kill it once its speakers are being started: processes of its own
    # exist that outlive it (the nodes' shells exit with their harness, at
    # the end of their input, so counting them raced with their exit).
    def speaking(pids):
        for pid in pids:
            try:
                with open(f"/proc/{pid}/comm") as handle:
                    if handle.read().startswith("exabgp:"):
                        return True
            except OSError:
                pass
        return False

    def starting_lab() -> str | None:
        ids = os.listdir(root) if root.exists() else []
        if ids and speaking(cleanup.tagged_processes().get(ids[0], [])):
            return ids[0]
        return None

    lab_id = wait_until(starting_lab, 60, f"the child lab under {root} to start its speakers", interval=0.05)
    assert lab_id, "the child lab never got to starting its speakers"
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    workdir = root / lab_id
    assert cleanup.tagged_processes().get(lab_id), "SIGKILL should leave the lab's processes behind"
    removed = cleanup.clean(root)
    assert lab_id in [r.id for r in removed]
    assert_gone(lab_id, set(), workdir)
    # Nothing else was touched: every lab whose owner lived before still runs if its owner does.
    still = {r.id: r for r in cleanup.labs()}
    for other in running:
        record = still.get(other)
        assert record is None or not record.owner_alive or record.pids, f"lab {other} lost its processes"


def test_flapping_link_settles_back_to_the_initial_routes():
    with Lab("triangle") as lab:
        before = {r: lab.loc_rib(r) for r in lab.plan.routers}
        for _ in range(5):
            lab.depeer("A", "B", how="link", wait=False)
            time.sleep(0.3)  # the flap itself: shorter than the hold time
            lab.repeer("A", "B", wait=False)
            time.sleep(0.3)
        lab.wait_converged(timeout=20)
        for router in lab.plan.routers:
            assert lab.loc_rib(router) == before[router], router
        assert lab.reachable("A", "B") and lab.reachable("A", "B", family=6)
        assert lab.as_traceroute("A-h1", "B-h1") == ["A", "B"]


def test_a_session_that_never_opens_ends_the_update_delay_and_is_named(monkeypatch):
    # B expects A to be another AS, so that session never opens: the lab
    # must not wait for it forever before letting routes out, and the
    # timeout must name it.
    from testbed.routers.exabgp import ExaBGPBackend

    render = ExaBGPBackend.render

    def broken(self, router):
        text = render(self, router)
        if router == "B":
            text = text.replace(f"peer-as {self.plan.routers['A'].asn};", "peer-as 65999;")
        return text

    monkeypatch.setattr(ExaBGPBackend, "render", broken)
    # A shorter patience than a large lab's, so that the test does not wait
    # for it: still longer than a triangle takes to open its sessions.
    monkeypatch.setattr(Lab, "UPDATE_DELAY_PATIENCE", 2.0)
    stages = []
    lab = Lab("triangle", progress=stages.append)
    with pytest.raises(ConvergenceTimeout) as info:
        lab.start(timeout=Lab.UPDATE_DELAY_PATIENCE + 6)
    assert any(stage.startswith("sending routes with sessions of 2 router(s) still down (A, B)")
               for stage in stages), stages
    assert "router A: session to B" in str(info.value)
    # The other sessions carried routes once the delay ended.
    assert "router T" not in str(info.value)


def test_a_configuration_exabgp_refuses_fails_the_start_and_leaves_nothing(monkeypatch):
    # The configurations are rendered and validated while the namespaces
    # are built: the refusal must still stop the start, before any speaker.
    lab = Lab("triangle")
    monkeypatch.setattr(lab.backend, "render", lambda router: "neighbor 10.0.0.1 {\n    bogus-option 1;\n}\n")
    with pytest.raises(LabError, match="ExaBGP refused a generated configuration"):
        lab.start()
    assert not lab.speakers
    assert_gone(lab.id, set(), lab.workdir)


def test_a_lab_short_of_neighbour_entries_raises_the_limits_until_the_last_lab_stops(host_exclusive, monkeypatch,
                                                                                      tmp_path):
    # The kernel's ARP and NDP tables are one per host, shared by every
    # namespace (1,024 entries by default): a 1,000-AS lab's sessions never
    # opened past that. Here a small lab is made to claim a large one's need.
    from testbed.linux import neigh_limits as neighbours

    before = neighbours.read_thresholds()
    need = {4: 40_000, 6: 40_000}
    try:
        monkeypatch.setattr(neighbours, "needed", lambda plan: need)
        first = Lab("triangle", root=tmp_path)
        first.start()
        try:
            during = neighbours.read_thresholds()
            assert during["4.3"] >= 40_000 and during["6.3"] >= 40_000, during
            assert json.loads((tmp_path / neighbours.SAVED).read_text()) == before
            assert first.reachable("A", "B") and first.reachable("A", "B", family=6)
            monkeypatch.setattr(neighbours, "needed", lambda plan: {4: 10, 6: 10})
            with Lab("triangle", root=tmp_path):
                pass  # fits: changes nothing, and stopping it leaves them for the first lab
            assert neighbours.read_thresholds() == during
        finally:
            first.stop()
        assert neighbours.read_thresholds() == before, labs_in_use(tmp_path)  # the last lab put them back
        assert not (tmp_path / neighbours.SAVED).exists()
    finally:
        neighbours._write_thresholds(before)


def ksm_stat(pid: int) -> dict[str, str]:
    """/proc/<pid>/ksm_stat: ``{"ksm_rmap_items": "12", "ksm_merge_any:": "yes", ...}``."""
    with open(f"/proc/{pid}/ksm_stat") as handle:
        return dict(line.split(maxsplit=1) for line in handle.read().strip().splitlines())


def test_a_lab_that_merges_pages_offers_only_its_speakers_and_puts_ksmd_back(host_exclusive, tmp_path):
    # Large labs merge their speakers' identical pages (testbed.linux.ksm); here
    # a small one is made to. Where the kernel cannot, nothing changes.
    from testbed.linux import ksm

    before = ksm.read_settings() if (ksm.SYSFS / "run").exists() else None
    try:
        lab = Lab("triangle", root=tmp_path, merge_pages=True)
        if not ksm.supported():
            assert lab.merge_pages is False
            return
        lab.start()
        try:
            assert lab.zygote.info["merging_pages"] is True
            for pid in [lab.zygote.process.pid, *(s.pid for s in lab.speakers.values())]:
                assert ksm_stat(pid)["ksm_merge_any:"] == "yes", pid
            during = ksm.read_settings()
            if before["run"] == 0:
                assert during == {"run": 1, "pages_to_scan": ksm.scan_rate(3),
                                  "sleep_millisecs": ksm.SLEEP_MS, "nice": ksm.NICE}
                assert json.loads((tmp_path / ksm.SAVED).read_text()) == before
            else:  # the host runs KSM already: left as it is
                assert during == before and not (tmp_path / ksm.SAVED).exists()
            # ksmd scans the lab's memory (it has rmap items for its pages)
            zygote = lab.zygote.process.pid
            wait_until(lambda: int(ksm_stat(zygote)["ksm_rmap_items"]) > 0, 15,
                       "ksmd to scan the zygote's pages (ksm_rmap_items > 0)", interval=0.2)
            assert int(ksm_stat(zygote)["ksm_rmap_items"]) > 0
            # a lab that does not merge offers nothing, and leaves ksmd to the first
            with Lab("triangle", root=tmp_path, merge_pages=False) as other:
                assert not other.merge_pages
                for speaker in other.speakers.values():
                    assert ksm_stat(speaker.pid)["ksm_merge_any:"] == "no"
            assert ksm.read_settings() == during
            if "TESTBED_KSM" not in os.environ:
                assert Lab("triangle").merge_pages is False  # 3 routers: too small to by default
        finally:
            lab.stop()
        assert ksm.read_settings() == before, labs_in_use(tmp_path)  # the last lab put ksmd back
        assert not (tmp_path / ksm.SAVED).exists()
    finally:
        if before is not None:
            ksm._write_settings(before)


def test_a_speaker_counts_as_started_once_its_own_namespace_listens_on_the_port(bare_namespaces):
    """What start-up waits for before it starts the next speakers: a TCP
    listener on port 179 in that router's namespace, seen over sock_diag."""
    import socket

    from testbed.lab.lab import _Listeners
    from testbed.linux.netns import inside

    a, b = bare_namespaces(), bare_namespaces()
    made: list[socket.socket] = []

    def socket_in(pid: int, port: int, listen: bool) -> None:
        with inside(pid):
            sock = socket.socket()
        sock.bind(("127.0.0.1", port))
        if listen:
            sock.listen()
        made.append(sock)

    try:
        with _Listeners(179) as listeners:
            assert not listeners.listening("A", a)
            socket_in(b, 179, listen=True)       # another namespace's listener
            socket_in(a, 179, listen=False)      # bound, not listening
            socket_in(a, 1790, listen=True)      # listening on another port
            assert not listeners.listening("A", a)
            assert listeners.listening("B", b)
            made.pop(1).close()
            socket_in(a, 179, listen=True)
            assert listeners.listening("A", a)
            assert listeners._sockets == {}       # each closed once it said yes
            made.pop().close()                    # A stops listening
            assert not listeners.listening("A", a)
            assert list(listeners._sockets) == ["A"]
        assert listeners._sockets == {}           # and the rest on leaving
    finally:
        for sock in made:
            sock.close()


def test_the_benchmark_ring_reaches_each_as_from_its_two_peers_only_and_leaves_nothing():
    from testbed.bench.experiments import measure_ring, ring

    with Lab(ring(5)) as lab:
        for i in range(1, 6):
            peers = {f"p{(i % 5) + 1}", f"p{((i - 2) % 5) + 1}"}
            reached = {name for name in lab.plan.routers
                       if name != f"p{i}" and lab.route(f"p{i}", name) is not None}
            assert reached == peers, f"p{i} reaches {reached}, not only its peers {peers}"
    extra = measure_ring("zygote", 4)
    assert extra.errors == [] and extra.ring_size == 4
    assert 0 < extra.ring_phases["starting BGP speakers"] < extra.ring_start_s
    assert extra.ring_stop_s is not None


def test_the_benchmark_counts_what_the_agents_received_and_queued():
    from testbed.bench import cpu_account
    from testbed.bench.benchmark import Result, exploration
    from testbed.bench.observe import CLOCK_TICKS, lab_pids
    from testbed.linux.processes import proc_stat

    account = cpu_account.CpuAccount(lambda: lab.id)
    lab = Lab(internet(10, seed=1), progress=account.mark)
    account.mark(cpu_account.START)
    with lab:
        account.mark(cpu_account.END)
        # the account reads utime + stime (it splits user from system, as the
        # machine's /proc/stat does), not the scheduler's nanoseconds that
        # cpu_ticks sums: compare it with the same clock
        measured = sum(int(f[11]) + int(f[12]) for f in map(proc_stat, lab_pids(lab.id)) if f) / CLOCK_TICKS
        result = Result(size=10, seed=1)
        exploration(lab, result)
        split = cpu_account.lab_split(account, lab)
        # each speaker's two threads on the scheduler's clock (a 10-AS lab's
        # agents can all fall between the 10 ms ticks the account reads)
        from testbed.bench.per_update import sample
        threads = [sample(int(lab.clients[name].request("summary")["pid"])) for name in lab.plan.routers]
    assert result.routes_needed > 0 and result.routes_in >= result.routes_needed, result
    # The CPU account: the lab's processes by phase add up to their CPU read
    # at convergence; the speakers' two threads both worked; each phase adds
    # up to the machine's busy time (the residue is what no process read holds).
    total = cpu_account.totals(split["phases"])
    lab_cpu = sum(sum(total.get(kind, (0, 0))) for kind in ("exabgp", "agent", "zygote", "shells"))
    assert abs(lab_cpu - measured) <= 0.05 + 0.02 * measured, (lab_cpu, measured, total)
    assert all(t["exabgp"].run_ns > 0 and t["agent"].run_ns > 0 for t in threads), threads
    assert sum(total["exabgp"]) > 0, total
    for phase in split["phases"]:
        assert abs(sum(sum(v) for v in phase["cpu"].values()) - phase["machine"]["busy"]) < 0.01, phase
    assert split["routes_in"] == result.routes_in and split["by_sessions"], split
    assert result.updates_in > 0 and result.announced_out > 0 and result.session_drops == 0
    # Counted by each speaker's queue_change and reported through its agent.
    assert isinstance(result.superseded, int) and 0 <= result.misordered <= result.superseded, result
