"""The interactive lab of ``testbed up``: Mininet's CLI with the lab's commands.

``run_cli(lab, console)`` opens Mininet's command line on a started lab and
returns when the user leaves it (``exit``, ``quit``, end of input). On top
of Mininet's own commands it has ``routes``, ``sessions``, ``depeer``,
``repeer`` and ``astrace``; ``<node> <command>`` runs a command in a node's
namespace, the node being a router (``A``) or a host (``A-h1``: names with
'-' are one word here), with node names after it replaced by their addresses
from the address plan (a host's address, a router's router id), as Mininet
does with its own; ``pingall`` pings between the end hosts.
"""

from __future__ import annotations

import cmd
import contextlib

from mininet.cli import CLI
from rich.console import Console
from rich.table import Table

from testbed.errors import TestbedError

COMMANDS_HINT = ("Mininet CLI: 'routes A', 'sessions A', 'depeer A B', 'repeer A B', "
                 "'astrace A-h1 B-h1', 'pingall', or '<node> <command>' (e.g. 'A ip route', "
                 "'A-h1 ping B-h1'); 'exit' stops the lab.")


def node_address(lab, name: str) -> str | None:
    """The address a node name stands for on a command line."""
    if name in lab.plan.hosts:
        host = lab.plan.hosts[name]
        return host.address4.split("/")[0] if host.address4 else (host.address6 or "").split("/")[0] or None
    if name in lab.plan.routers:
        return lab.plan.routers[name].router_id
    return None


def _known_addresses(lab) -> None:
    """Tell Mininet each end host's address (configured over netlink, so
    Mininet never learned it): its ``pingall`` pings ``host.IP()``."""
    for name in lab.plan.hosts:
        address = node_address(lab, name)
        node = lab.nodes[name]
        if address and node.intfList():
            node.defaultIntf().ip = address


def routes_table(lab, router: str) -> Table:
    """A router's Loc-RIB and kernel routes as a table."""
    rib = lab.loc_rib(router)
    kernel = lab.kernel_routes(router)
    table = Table(title=f"routes of {router} (AS{lab.plan.routers[router].asn})", title_justify="left")
    for column in ("prefix", "AS path", "next hop", "in kernel"):
        table.add_column(column)
    for prefix, route in sorted(rib.items()):
        path = " ".join(lab.names(route["as_path"])) or "(own)"
        nh = route.get("next_hop") or "-"
        table.add_row(prefix, path, nh, "yes" if kernel.get(prefix) == route.get("next_hop") else
                      ("-" if not route.get("next_hop") else "[red]no[/red]"))
    return table


def make_cli(lab, console: Console, lock=None):
    """The CLI class for ``lab``; ``lock`` (the live view's) is held while
    a command runs."""
    class LabCLI(CLI):
        prompt = f"testbed:{lab.topology.name}> "
        # Node names such as A-h1 are one word (cmd's default stops at '-',
        # and 'A-h1 ping B-h1' ran 'ping' on router A).
        identchars = cmd.Cmd.identchars + "-"

        def onecmd(self, line):
            try:
                with lock if lock is not None else contextlib.nullcontext():
                    return super().onecmd(line)
            except (TestbedError, IndexError, ValueError) as exc:
                console.print(f"[red]error[/red]: {exc}")
                return None

        def default(self, line):
            first, args, line = self.parseline(line)
            if first not in lab.nodes:
                console.print(f"[red]unknown command or node[/red]: {line} (type 'help')")
                return
            if not args:
                console.print(f"give a command to run on {first}, e.g. '{first} ip route'")
                return
            words = [node_address(lab, word) or word if word in lab.nodes else word for word in args.split(" ")]
            node = lab.nodes[first]
            node.sendCmd(" ".join(words))
            self.waitForNode(node)

        def do_pingall(self, line):
            "pingall [TIMEOUT]: ping between every two end hosts of the lab."
            self.mn.ping(hosts=[lab.nodes[h] for h in lab.plan.hosts], timeout=line.strip() or None)

        def do_routes(self, line):
            "routes ROUTER: the router's best routes (AS path, next hop, kernel)."
            for router in line.split() or list(lab.plan.routers):
                console.print(routes_table(lab, router))

        def do_sessions(self, line):
            "sessions ROUTER: the router's BGP sessions."
            for router in line.split() or list(lab.plan.routers):
                for peer, state in lab.sessions(router).items():
                    console.print(f"{router} -> {peer} ({state['relationship']}): {state['state']}")

        def do_depeer(self, line):
            "depeer A B [admin|link]: end the session between A and B."
            parts = line.split()
            took = lab.depeer(parts[0], parts[1], how=parts[2] if len(parts) > 2 else "admin")
            console.print(f"converged in {took:.3f} s")

        def do_repeer(self, line):
            "repeer A B: restore the session between A and B."
            parts = line.split()
            console.print(f"converged in {lab.repeer(parts[0], parts[1]):.3f} s")

        def do_astrace(self, line):
            "astrace SRC DST: the ASes packets from SRC to DST cross."
            src, dst = line.split()[:2]
            console.print(" -> ".join(lab.as_traceroute(src, dst)))

    return LabCLI


def run_cli(lab, console: Console, lock=None) -> None:
    """Open the CLI on ``lab``; return when the user leaves."""
    from mininet.log import setLogLevel

    setLogLevel("output")  # pingall's matrix and results are Mininet's "output" lines
    _known_addresses(lab)
    console.print(COMMANDS_HINT)
    make_cli(lab, console, lock)(lab.net)
