"""Faults the harness must report in BGP terms, and the lab's isolation
from the machine it runs on."""

import os
import signal
import stat
import subprocess

import pytest

from testbed.errors import ConvergenceTimeout, SpeakerCrashed
from testbed.lab.lab import Lab
from testbed.testing.wait import wait_until

pytestmark = pytest.mark.emulation


def wait_until_dropped(lab, router: str, peer: str, timeout: float, why: str) -> None:
    """Wait for an injected fault to take the session down (it is not
    instantaneous: a reload, a timer)."""
    wait_until(lambda: lab.sessions(router)[peer]["state"] != "established", timeout,
               f"router {router}'s session with {peer} to leave Established ({why})", interval=0.05)


def ended(pid: int) -> bool:
    """Whether process ``pid`` is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return "Z" in handle.read().split(")")[1][:3]
    except FileNotFoundError:
        return True


def root_namespace_state() -> dict[str, str]:
    run = lambda *argv: subprocess.run(argv, capture_output=True, text=True).stdout
    return {"links": run("ip", "-o", "link"), "addresses": run("ip", "-o", "addr"),
            "routes": run("ip", "-o", "route", "show", "table", "all"),
            "routes6": run("ip", "-o", "-6", "route", "show", "table", "all"),
            "listeners": run("ss", "-Htlnu")}


def test_lab_is_sealed_off_from_the_host():
    before = root_namespace_state()
    with Lab("triangle") as lab:
        # The lab adds no interface, address, route or listener (BGP or
        # other) to the root namespace.
        assert root_namespace_state() == before
        # Lab hosts have no way out: nothing outside the lab answers.
        assert lab.ping("A", "8.8.8.8", count=1, timeout=0.3).received == 0
        # The work directory (configs, logs, control sockets) is root's only.
        mode = stat.S_IMODE(os.stat(lab.workdir).st_mode)
        assert mode == 0o700, oct(mode)
        sock = lab.workdir / "A" / "agent.sock"
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600


def test_killed_agent_is_reported_by_router():
    with Lab("triangle") as lab:
        agent_pid = lab.snapshot("A")["pid"]
        os.kill(agent_pid, signal.SIGKILL)
        wait_until(lambda: ended(agent_pid), 5, f"router A's agent (pid {agent_pid}) to die")
        # The agent is its own process (exec model) or a thread of the
        # speaker (zygote model); either way router A is named.
        with pytest.raises(SpeakerCrashed, match="(route agent|BGP speaker) of router A"):
            lab.wait_converged(timeout=5)


def test_session_that_never_comes_up_is_named_with_its_notification():
    with Lab("triangle") as lab:
        # Inject a misconfiguration: B now expects A to be AS 65999.
        conf = lab.workdir / "B" / "exabgp.conf"
        a = lab.plan.routers["A"]
        text = conf.read_text()
        assert f"peer-as {a.asn};" in text
        conf.write_text(text.replace(f"peer-as {a.asn};", "peer-as 65999;"))
        lab._reload("B")
        wait_until_dropped(lab, "A", "B", 5, "B did not drop the session after the reload")
        with pytest.raises(ConvergenceTimeout) as info:
            lab.wait_converged(timeout=2)
        message = str(info.value)
        assert "router A: session to B" in message and "expected established" in message
        assert "'code': 2" in message and "'subcode': 2" in message, message  # OPEN error, bad peer AS


def protected_topology():
    from testbed import Topology

    topo = Topology("md5", hold_time=3)
    topo.add_as(64500, "T")
    topo.add_as(64501, "A")
    topo.add_as(64502, "B")
    topo.transit("T", "A", password="s3cr3t!")
    topo.transit("T", "B")
    return topo


def test_md5_protected_session_and_a_password_mismatch():
    with Lab(protected_topology()) as lab:
        assert lab.sessions("A")["T"]["state"] == "established"
        assert 'md5-password "s3cr3t!";' in (lab.workdir / "A" / "exabgp.conf").read_text()
        assert lab.as_path("A", "B") == ["T", "B"]
        # A's operator mistypes the password.
        conf = lab.workdir / "A" / "exabgp.conf"
        conf.write_text(conf.read_text().replace('"s3cr3t!"', '"s3cr3t?"'))
        lab._reload("A")
        wait_until_dropped(lab, "A", "T", 10, "A kept the session after the password changed")
        with pytest.raises(ConvergenceTimeout) as info:
            lab.wait_converged(timeout=4)  # more than a hold time: it never comes back
        message = str(info.value)
        assert "router A: session to T" in message and "TCP MD5 password" in message, message


def test_crashed_daemon_is_routed_around_at_once():
    with Lab("triangle") as lab:
        elapsed = lab.crash("B")
        # No NOTIFICATION, but the kernel closed B's TCP connections: the
        # neighbors need not wait for their hold timers.
        assert elapsed < lab.plan.hold_time, elapsed
        for router in ("A", "T"):
            assert lab.sessions(router)["B"]["state"] != "established"
            assert lab.route(router, "B") is None
            assert lab.prefix_of("B") not in lab.kernel_routes(router)
        assert lab.as_path("A", "T") == ["T"]
        assert lab.reachable("A", "T") and not lab.reachable("A", "B", timeout=0.3)
        # An unexpected death elsewhere is still reported.
        lab.speakers["T"].kill()
        lab.speakers["T"].wait(timeout=5)
        with pytest.raises(SpeakerCrashed, match="router T"):
            lab.wait_converged(timeout=5)


def test_wrong_peer_address_is_named():
    with Lab("triangle") as lab:
        a_seen_by_b = lab.plan.routers["B"].neighbor("A").address
        conf = lab.workdir / "B" / "exabgp.conf"
        conf.write_text(conf.read_text().replace(f"neighbor {a_seen_by_b} {{", "neighbor 10.0.0.99 {"))
        lab._reload("B")
        wait_until_dropped(lab, "A", "B", 10, "the session survived B forgetting A's address")
        with pytest.raises(ConvergenceTimeout) as info:
            lab.wait_converged(timeout=2)
        message = str(info.value)
        assert "router A: session to B" in message and "expected established" in message, message
        assert "router B: session to A" in message, message
