"""Building a lab's machine side: work directory, namespaces, links, addresses.

``make_workdir`` makes the lab's private work directory (its name is the
lab's id, its ``manifest.json`` says who owns it). ``build_network`` makes
one Mininet node (a shell in new namespaces) per router, host and IXP of
the address plan and the veth links between them (plain links in one
netlink batch, shaped links through Mininet's ``TCLink``). ``configure``
gives every namespace its addresses, bridges, sysctls and static routes over
netlink (``testbed.linux.namespaces``), in threads (``Configuring``) beside the
start of the speakers where the backend can start them so, in the order
they start in. ``kill_processes`` is the other end: it kills every process
carrying the lab's tag, leaves first. Data enters as the plan and the lab's
id; the nodes leave in a dict the lab keeps.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from testbed.errors import LabError
from testbed.linux.namespaces import configure_host, configure_ixp, configure_router, create_veths, prepare_namespace
from testbed.linux.nodes import PrebuiltLink, node_class
from testbed.linux.processes import kill, process_start_time, tagged_processes
from testbed.model.addressing import Plan
from testbed.model.topology import Topology

NODE_THREADS = 8  # nodes whose shells start at the same time
CONFIGURE_THREADS = 4  # namespaces configured at the same time


def make_workdir(root: Path, topology: Topology) -> tuple[str, Path]:
    """A new work directory under ``root`` with a fresh lab id; returns both."""
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    for _ in range(16):
        lab_id = secrets.token_hex(3)
        workdir = root / lab_id
        try:
            workdir.mkdir(mode=0o700)
        except FileExistsError:
            continue
        break
    else:
        raise LabError(f"could not create a work directory under {root}")
    manifest = {"id": lab_id, "topology": topology.name, "source": topology.source,
                "owner_pid": os.getpid(), "owner_start": process_start_time(os.getpid()),
                "created": time.time()}
    try:
        tmp = workdir / "manifest.json.tmp"
        tmp.write_text(json.dumps(manifest, indent=2))
        tmp.rename(workdir / "manifest.json")
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return lab_id, workdir


def build_network(plan: Plan, lab_id: str, nodes: dict):
    """Make the plan's nodes and links; returns the Mininet network. Every
    node is put in ``nodes`` as soon as it exists, so that the caller can
    stop it whatever fails next."""
    from mininet.link import TCLink
    from mininet.net import Mininet

    # Mininet.init() would raise system-wide limits and sysctls of the
    # root namespace; a lab touches nothing it did not create.
    Mininet.inited = True
    cls = node_class(lab_id)
    net = Mininet(topo=None, build=False, controller=None, autoSetMacs=False,
                  waitConnected=False, inNamespace=False)
    names = list(plan.routers) + list(plan.hosts) + list(plan.ixps)
    made: dict[str, object] = {}

    def make(name: str):
        node = cls(name, ip=None, inNamespace=True)
        made[name] = node  # known to stop() from now on, whatever happens next
        # Before any link exists: interfaces made from now on inherit
        # "default" (no DAD, so no tentative link-local address delaying
        # IPv6 neighbour discovery for a second after start).
        prepare_namespace(node.pid)
        return node

    # Each node's shell takes a few milliseconds to start, mostly waiting
    # for it (fork, exec, its first prompt): start several at once.
    try:
        with ThreadPoolExecutor(max_workers=NODE_THREADS) as pool:
            built = list(pool.map(make, names))
    finally:
        nodes.update(made)  # every shell started, even if one failed
    nodes.clear()
    for name, node in zip(names, built):  # Mininet's lists in the plan's order, as addHost makes them
        net.hosts.append(node)
        net.nameToNode[name] = node
        nodes[name] = node
    plain = []
    for link in plan.links:
        shaped = link.bandwidth is not None or link.delay is not None or link.loss is not None
        if not shaped:
            plain.append(link)
            continue
        params = {k: v for k, v in (("bw", link.bandwidth), ("delay", link.delay),
                                    ("loss", link.loss)) if v is not None}
        net.addLink(nodes[link.node1], nodes[link.node2],
                    intfName1=link.ifname1, intfName2=link.ifname2,
                    addr1=mac(link.node1, link.ifname1), addr2=mac(link.node2, link.ifname2),
                    cls=TCLink, **params)
    # Plain links: veth pairs made over netlink in one go, then recorded in Mininet.
    create_veths([(link.node1, link.ifname1, mac(link.node1, link.ifname1),
                   link.node2, link.ifname2, mac(link.node2, link.ifname2)) for link in plain],
                 {name: node.pid for name, node in nodes.items()})
    for link in plain:
        net.addLink(nodes[link.node1], nodes[link.node2],
                    intfName1=link.ifname1, intfName2=link.ifname2,
                    addr1=mac(link.node1, link.ifname1), addr2=mac(link.node2, link.ifname2),
                    cls=PrebuiltLink)
    return net


def configure(plan: Plan, nodes: dict, backend=None) -> "Configuring":
    """Every namespace's addresses, bridges, sysctls and static routes
    (``Configuring``): beside the start of ``backend``'s daemons where it
    can start them so (``starts_while_configuring``), else all before
    this returns."""
    configuring = Configuring(plan, nodes)
    if getattr(backend, "starts_while_configuring", False):
        backend.configured = configuring.wait
    else:
        configuring.result()
    return configuring


class Configuring:
    """Every namespace's addresses, bridges, sysctls and static routes,
    configured in threads while the lab goes on (the speakers start
    meanwhile). Each thread enters its own namespace, and the kernel's
    share of the work (it runs in the sending system call, outside the
    interpreter lock) overlaps the encoding of the next batch.

    The order is the one the speakers start in: IXP peering LANs first,
    then routers in descending ASN order (``start_in_order``), end hosts
    last. ``wait(router)`` returns once a router can start: its own
    namespace, every IXP's and those of its AS's other routers (their iBGP
    sessions run over the AS's internal links) are configured.
    ``result()`` waits for all, raising the first failure; ``join()``
    (``Lab.stop``) waits without raising."""

    def __init__(self, plan: Plan, nodes: dict):
        self.plan = plan
        routers = sorted(plan.routers.items(), key=lambda item: item[1].asn, reverse=True)
        work = ([(configure_ixp, name, ixp) for name, ixp in plan.ixps.items()]
                + [(configure_router, name, router) for name, router in routers]
                + [(configure_host, name, host) for name, host in plan.hosts.items()])
        self.pool = ThreadPoolExecutor(max_workers=CONFIGURE_THREADS, thread_name_prefix="configure")
        try:
            self.futures = {name: self.pool.submit(fn, nodes[name].pid, item) for fn, name, item in work}
        finally:
            self.pool.shutdown(wait=False)  # runs what was queued; the threads end with it
        self.by_asn: dict[int, list[str]] = {}
        for name, router in plan.routers.items():
            self.by_asn.setdefault(router.asn, []).append(name)

    def wait(self, router: str) -> None:
        for name in [*self.plan.ixps, *self.by_asn[self.plan.routers[router].asn]]:
            self.futures[name].result()

    def result(self) -> None:
        for done in self.futures.values():
            done.exception()  # wait for every one before raising any
        for done in self.futures.values():
            done.result()

    def join(self) -> None:
        for done in self.futures.values():
            done.exception()


def kill_processes(lab_id: str, nodes: dict) -> None:
    """Kill every process tagged with the lab's id, leaves first (agents and
    speakers, then the node shells, whose exit removes the namespaces and
    links with them)."""
    pids = tagged_processes().get(lab_id, [])
    shells = {node.shell.pid for node in nodes.values() if node.shell}
    kill([p for p in pids if p not in shells], grace=1.0)
    for node in nodes.values():
        try:
            node.terminate()
        except Exception:
            pass
    kill(tagged_processes().get(lab_id, []), grace=1.0)


def mac(node: str, ifname: str) -> str:
    """A stable, locally administered MAC address for an interface."""
    digest = hashlib.sha1(f"{node}/{ifname}".encode()).digest()
    return ":".join(f"{b:02x}" for b in (0x02, *digest[:5]))
