"""Emulation tests of the zygote process model (``testbed.speaker.zygote``).

Without Mininet: each router's namespace is held by an ``unshare -n sleep
infinity`` process tagged with a throwaway lab id, links are veth pairs made
over netlink, and the configurations come from the same renderers the lab
uses (``testbed.routers.exabgp_config``). Speakers are forked by a zygote; the
tests check what the harness relies on: sessions come up and routes reach
the kernels, every speaker carries the lab tag, leads its own session, sits
in its router's namespace and starts no interpreter; a dead agent takes its
speaker down with a non-zero status; the zygote holds no namespace; and
nothing is left afterwards, also when a test fails.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from testbed.lab import cleanup
from testbed.linux import netns
from testbed.model.addressing import Plan, plan
from testbed.routers.agent_client import AgentClient
from testbed.testing import namespaces
from testbed.errors import LabError
from testbed.lab.lab import _Listeners
from testbed.model.agent_config import agent_config
from testbed.routers.exabgp_config import BGP_PORT, config_tree, render, speaker_environment
from testbed.model.topology import Topology
from testbed.linux.processes import LAB_ENV
from testbed.speaker.client import ZygoteClient
from testbed.testing.wait import wait_until

pytestmark = pytest.mark.emulation
ROOT = Path(__file__).resolve().parents[2]


def triangle() -> Topology:
    topo = Topology("zygote-triangle", hold_time=3)
    t = topo.add_as(64500, "T", ["198.51.100.0/24", "2001:db8:64::/48"], hosts=0)
    a = topo.add_as(64501, "A", ["192.0.2.0/25", "2001:db8:a::/48"], hosts=0)
    b = topo.add_as(64502, "B", ["192.0.2.128/25", "2001:db8:b::/48"], hosts=0)
    topo.transit(t, a)
    topo.transit(t, b)
    topo.peering(a, b)
    return topo.validate()


def tree(n: int, hold_time: int = 9) -> Topology:
    """``n`` ASes, each buying transit from AS (i-1)//2: a binary tree."""
    topo = Topology(f"zygote-tree-{n}", hold_time=hold_time)
    systems = [topo.add_as(65000 + i, f"R{i}", hosts=0) for i in range(n)]
    for i in range(1, n):
        topo.transit(systems[(i - 1) // 2], systems[i])
    return topo.validate()


@dataclass
class MiniLab:
    """Namespaces, links, configurations and a zygote for one topology."""

    topology: Topology
    agent: str = "thread"
    id: str = field(default_factory=lambda: secrets.token_hex(3))
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="zygote-")))
    holders: dict[str, subprocess.Popen] = field(default_factory=dict)
    speakers: dict[str, int] = field(default_factory=dict)
    zygote: ZygoteClient | None = None

    def __post_init__(self):
        self.plan: Plan = plan(self.topology)
        os.chmod(self.workdir, 0o700)

    # -- building ------------------------------------------------------------
    def build(self) -> "MiniLab":
        from pyroute2 import IPRoute

        from testbed.linux.namespaces import configure_router

        home = netns.netns_inode(os.getpid())
        env = {**os.environ, LAB_ENV: self.id}
        for name in self.plan.routers:
            self.holders[name] = subprocess.Popen(["unshare", "-n", "sleep", "infinity"], env=env,
                                                  start_new_session=True)
        for name, holder in self.holders.items():
            wait_until(lambda: _inode(holder.pid) not in (None, home), 5.0,
                       f"router {name}'s namespace holder to unshare")
        for link in self.plan.links:
            with netns.inside(self.pid(link.node1)):
                ipr = IPRoute()
            try:
                ipr.link("add", ifname=link.ifname1, kind="veth",
                         peer={"ifname": link.ifname2, "net_ns_pid": self.pid(link.node2)})
            finally:
                ipr.close()
        for name, router in self.plan.routers.items():
            configure_router(self.pid(name), router)
        return self

    def pid(self, router: str) -> int:
        return self.holders[router].pid

    def router_dir(self, router: str) -> Path:
        return self.workdir / router

    def agent_argv(self, router: str) -> list[str]:
        return [sys.executable, "-m", "testbed.agent", str(self.router_dir(router) / "agent.json")]

    def write_configs(self, validate: bool = False) -> None:
        for name, router in self.plan.routers.items():
            directory = self.router_dir(name)
            directory.mkdir(mode=0o700, exist_ok=True)
            tree_ = config_tree(router, self.plan.hold_time, self.agent_argv(name))
            (directory / "exabgp.conf").write_text(render(tree_))
            config = agent_config(self.plan, router, str(directory / "agent.sock"),
                                  str(directory / "agent.log"))
            (directory / "agent.json").write_text(json.dumps(config, indent=2))
        if validate:
            exabgp = Path(sys.executable).parent / "exabgp"
            paths = [str(self.router_dir(n) / "exabgp.conf") for n in self.plan.routers]
            result = subprocess.run([str(exabgp), "validate", *paths], capture_output=True,
                                    text=True, env={**os.environ, "exabgp_log_destination": "stdout"})
            assert result.returncode == 0, result.stdout + result.stderr

    def environment(self, router: str) -> dict[str, str]:
        pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        return {**os.environ, **speaker_environment(self.plan.routers[router], self.id),
                "exabgp_api_respawn": "false", "exabgp_api_terminate": "true",
                "PYTHONPATH": pythonpath, "PYTHONUNBUFFERED": "1"}

    # -- speakers --------------------------------------------------------------
    def start_zygote(self) -> ZygoteClient:
        self.zygote = ZygoteClient(self.workdir / "zygote.sock", self.id,
                                   log=self.workdir / "zygote.log", agent=self.agent)
        return self.zygote.start()

    def order(self) -> list[str]:
        """Passive sides first: descending ASN, as the lab starts them."""
        return [r.name for r in sorted(self.plan.routers.values(), key=lambda r: r.asn, reverse=True)]

    def spawn(self, router: str) -> int:
        assert self.zygote is not None
        pid = self.zygote.spawn(router, self.pid(router), self.router_dir(router) / "exabgp.conf",
                                self.environment(router), self.router_dir(router) / "exabgp.log",
                                netns_inode=_inode(self.pid(router)))
        self.speakers[router] = pid
        return pid

    def client(self, router: str, timeout: float = 10.0) -> AgentClient:
        client = AgentClient(str(self.router_dir(router) / "agent.sock"), router)
        client.connect(time.monotonic() + timeout)
        return client

    def logs(self) -> str:
        parts = []
        for path in sorted(self.workdir.rglob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-20:]
            parts.append(f"--- {path} ---\n" + "\n".join(text))
        return "\n".join(parts)

    # -- teardown ----------------------------------------------------------------
    def close(self) -> None:
        """Stop speakers (through the zygote, then by tag), the zygote and the
        namespace holders; remove the work directory. Safe after any failure."""
        if self.zygote is not None:
            try:
                self.zygote.stop_children(grace=2.0)
            except Exception:
                pass
            self.zygote.close()
        cleanup.kill(cleanup.tagged_processes().get(self.id, []), grace=1.0)
        for holder in self.holders.values():
            if holder.poll() is None:
                holder.kill()
            holder.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _inode(pid: int) -> int | None:
    try:
        return netns.netns_inode(pid)
    except OSError:
        return None


def converged(lab: MiniLab, clients: dict[str, AgentClient]) -> bool:
    """Every session established and every router has every prefix in its kernel."""
    everything = {p for r in lab.plan.routers.values() for p in r.prefixes}
    for name, client in clients.items():
        snap = client.request("snapshot")
        if any(s["state"] != "established" for s in snap["sessions"].values()):
            return False
        own = set(lab.plan.routers[name].prefixes)
        if set(snap["kernel"]) != everything - own:
            return False
    return True


@pytest.fixture
def make_lab(request):
    """Factory: a built MiniLab, always torn down; logs on failure."""
    made: list[MiniLab] = []

    def make(topology: Topology, agent: str = "thread") -> MiniLab:
        lab = MiniLab(topology, agent=agent)
        made.append(lab)  # registered before anything exists: cleanup also after a half build
        return lab.build()

    yield make
    for lab in made:
        print(lab.logs())  # pytest shows it only for a failing test
        held = namespaces.namespaces_of(h.pid for h in lab.holders.values())
        lab.close()
        assert not cleanup.tagged_processes().get(lab.id), f"processes of lab {lab.id} left"
        assert not namespaces.left(held), f"namespaces of lab {lab.id} left"


def _environ(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/environ", "rb") as handle:
        entries = handle.read().split(b"\0")
    return dict(e.decode(errors="replace").split("=", 1) for e in entries if b"=" in e)


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _fd_targets(pid: int) -> set[str]:
    """What a process's descriptors point at. A descriptor it closes between the listing and the
    read (the agent opens netlink sockets and files for moments) is not one it holds."""
    targets = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            targets.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except FileNotFoundError:
            pass
    return targets


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as handle:
        return [int(p) for p in handle.read().split()]


@pytest.mark.parametrize("agent", ["thread", "fork"])
def test_forked_speakers_bring_sessions_up_and_routes_reach_the_kernels(make_lab, agent):
    lab = make_lab(triangle(), agent=agent)
    lab.write_configs(validate=True)
    zygote = lab.start_zygote()
    for name in lab.order():
        lab.spawn(name)
    with _Listeners(BGP_PORT) as listeners:
        wait_until(lambda: all(listeners.listening(n, lab.pid(n)) for n in lab.plan.routers), 10.0,
                   "every speaker to listen on port 179")
    clients = {name: lab.client(name) for name in lab.plan.routers}
    try:
        wait_until(lambda: converged(lab, clients), 20.0,
                   "every session established and every prefix in every kernel", interval=0.05)
        # The agents' view agrees with the kernels, read over netlink from here.
        from pyroute2 import IPRoute

        from testbed.linux.routes import read_bgp_routes

        for name, router in lab.plan.routers.items():
            with netns.inside(lab.pid(name)):
                ipr = IPRoute()
            try:
                kernel = read_bgp_routes(ipr)
            finally:
                ipr.close()
            snap = clients[name].request("snapshot")
            assert kernel == snap["kernel"], f"router {name}: kernel {kernel} vs agent {snap['kernel']}"
            a_neighbor = router.neighbors[0]
            assert snap["sessions"][a_neighbor.address]["state"] == "established"
        # A's route to T's prefix is direct; T's to B's is via B.
        assert lab.plan.routers["A"].neighbor("T").address in {
            clients["A"].request("snapshot")["loc_rib"]["198.51.100.0/24"]["next_hop"]}
        assert clients["T"].request("snapshot")["loc_rib"]["192.0.2.128/25"]["as_path"] == [64502]
    finally:
        for client in clients.values():
            client.close()

    zygote_pid = zygote.info["pid"]
    home = netns.netns_inode(os.getpid())
    for name, pid in lab.speakers.items():
        assert _environ(pid).get("TESTBED_LAB") == lab.id, f"speaker of {name} lacks the lab tag"
        assert os.getsid(pid) == pid and os.getpgid(pid) == pid, f"speaker of {name} leads no session"
        assert netns.netns_inode(pid) == netns.netns_inode(lab.pid(name)), f"speaker of {name} in the wrong namespace"
        # No new interpreter: the child is the zygote's image, not an exec.
        assert Path(f"/proc/{pid}/cmdline").read_bytes() == Path(f"/proc/{zygote_pid}/cmdline").read_bytes()
        assert os.readlink(f"/proc/{pid}/fd/1") == str(lab.router_dir(name) / "exabgp.log")
        assert Path(f"/proc/{pid}/comm").read_text().strip() == f"exabgp:{name}"
        children = _children(pid)
        if agent == "thread":
            assert children == [], f"speaker of {name} has child processes {children}"
        else:
            assert len(children) == 1, f"speaker of {name} should have one agent, has {children}"
            assert os.getpgid(children[0]) == children[0], "the agent leads no process group"
            assert Path(f"/proc/{children[0]}/comm").read_text().strip() == f"agent:{name}"
            # It let go of the speaker's sockets: only its pipes, the log and its own.
            held = _fd_targets(children[0])
            speaker_sockets = {t for t in _fd_targets(pid) if t.startswith("socket:")}
            assert not held & speaker_sockets, f"agent of {name} holds the speaker's sockets"
            assert _environ(children[0]).get("TESTBED_LAB") == lab.id
            assert netns.netns_inode(children[0]) == netns.netns_inode(pid)
    # The zygote stays in the root namespace and holds no namespace open.
    assert netns.netns_inode(zygote_pid) == home
    for target in _fd_targets(zygote_pid):
        assert not target.startswith("net:["), f"the zygote holds namespace {target} open"
    status = zygote.status()
    assert all(status[pid]["running"] for pid in lab.speakers.values())


@pytest.mark.parametrize("agent", ["thread", "fork"])
def test_a_dead_agent_takes_its_speaker_down_visibly(make_lab, agent):
    lab = make_lab(triangle(), agent=agent)
    lab.write_configs()
    if agent == "thread":
        # The agent of T cannot open its control socket: its thread dies at once.
        config = json.loads((lab.router_dir("T") / "agent.json").read_text())
        config["control_socket"] = str(lab.workdir / "missing" / "agent.sock")
        (lab.router_dir("T") / "agent.json").write_text(json.dumps(config))
    zygote = lab.start_zygote()
    for name in lab.order():
        lab.spawn(name)
    victim = lab.speakers["T"]
    if agent == "fork":
        found = wait_until(lambda: [p for p in _children(victim) if _comm(p) == "agent:T"], 5.0,
                           "T's speaker to fork its agent")
        os.kill(found[0], signal.SIGKILL)
    ended = wait_until(lambda: not zygote.status()[victim]["running"] and zygote.status()[victim],
                       10.0, "T's speaker to exit after losing its agent", interval=0.05)
    assert ended["status"] == 1, f"T's speaker exited with {ended['status']}, expected 1\n{lab.logs()}"
    log = (lab.router_dir("T") / "exabgp.log").read_text()
    assert "ended on its own" in log, log
    others = [pid for name, pid in lab.speakers.items() if name != "T"]
    assert all(zygote.status()[pid]["running"] for pid in others), "other speakers died too"


def test_spawn_into_a_namespace_that_is_gone_fails_with_the_reason(make_lab):
    lab = make_lab(triangle())
    lab.write_configs()
    zygote = lab.start_zygote()
    holder = lab.holders["A"]
    inode = _inode(holder.pid)
    holder.kill()
    holder.wait()
    with pytest.raises(LabError, match="router A: speaker did not start"):
        zygote.spawn("A", holder.pid, lab.router_dir("A") / "exabgp.conf", lab.environment("A"),
                     lab.router_dir("A") / "exabgp.log", netns_inode=inode)
    with pytest.raises(LabError, match="serves lab"):
        zygote.spawn("B", lab.pid("B"), lab.router_dir("B") / "exabgp.conf",
                     {**lab.environment("B"), "TESTBED_LAB": "other"}, lab.router_dir("B") / "exabgp.log")


def test_stop_ends_every_speaker_and_agent_and_leaves_nothing(make_lab):
    lab = make_lab(triangle(), agent="fork")
    lab.write_configs()
    zygote = lab.start_zygote()
    for name in lab.order():
        lab.spawn(name)
    wait_until(lambda: all(_comm(c).startswith("agent:") for p in lab.speakers.values()
                           for c in _children(p) or [0]), 5.0, "every speaker to fork its agent")
    agents = [_children(p)[0] for p in lab.speakers.values()]
    statuses = zygote.stop_children(grace=3.0)
    for pid in lab.speakers.values():
        assert not statuses[pid]["running"]
        assert statuses[pid]["status"] == 0, f"speaker {pid} ended with {statuses[pid]['status']}"
    for pid in agents:
        assert not cleanup.alive(pid), f"agent {pid} outlived its speaker"
    zygote.close()
    assert zygote.process is not None and zygote.process.returncode == 0
    assert not (lab.workdir / "zygote.sock").exists()


@pytest.mark.parametrize("agent", ["thread", "fork"])
def test_reload_signal_reaches_the_forked_speaker_and_keeps_its_agent(make_lab, agent):
    """What Lab.depeer(how="admin") does: rewrite the configuration without a
    neighbor and send SIGUSR1; the session goes down, the agent stays."""
    lab = make_lab(triangle(), agent=agent)
    lab.write_configs()
    lab.start_zygote()
    for name in lab.order():
        lab.spawn(name)
    clients = {name: lab.client(name) for name in lab.plan.routers}
    try:
        wait_until(lambda: converged(lab, clients), 20.0, "convergence", interval=0.05)
        agent_pid = clients["T"].request("summary")["pid"]
        agents_before = _children(lab.speakers["T"])
        path = lab.router_dir("T") / "exabgp.conf"
        path.write_text(render(config_tree(lab.plan.routers["T"], lab.plan.hold_time,
                                           lab.agent_argv("T"), disabled={"A"})))
        log = lab.router_dir("T") / "exabgp.log"
        os.kill(lab.speakers["T"], signal.SIGUSR1)
        wait_until(lambda: b"performing reload" in log.read_bytes().split(b"SIGUSR1 received")[-1]
                   and b"SIGUSR1 received" in log.read_bytes(), 5.0, "T's speaker to reload")
        a_to_t = lab.plan.routers["A"].neighbor("T").address
        wait_until(lambda: clients["A"].request("summary")["sessions"][a_to_t]["state"] != "established",
                   10.0, "A's session to T to go down")
        assert clients["T"].request("summary")["pid"] == agent_pid
        assert _children(lab.speakers["T"]) == agents_before, "the reload started another agent"
    finally:
        for client in clients.values():
            client.close()
