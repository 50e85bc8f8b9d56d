"""ExaBGP configuration and route-agent configuration for one router.

Rendering is staged: the router's plan becomes a plain config tree
(``config_tree``), the tree becomes ExaBGP's text (``render``), and the lab
writes it and checks all files with ``exabgp validate`` before any speaker
starts. The agent's own JSON configuration (``agent_config``) comes from the
same plan, so the two never disagree about a neighbor.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable

from testbed.model.addressing import Plan, RouterPlan
from testbed.linux.processes import LAB_ENV
from testbed.speaker import AGENT_PROCESS

PROCESS = AGENT_PROCESS  # the process block the zygote runs as the route agent
BGP_PORT = 179  # where every speaker listens, on its IPv4 session addresses


def config_tree(router: RouterPlan, hold_time: int, agent_argv: list[str],
                disabled: Iterable[str] = ()) -> dict:
    """The ExaBGP configuration of ``router`` as nested dicts.

    ``disabled`` names peer ASes whose session is administratively shut
    down: they are left out, so ExaBGP tears the session down on reload and
    refuses the peer's connections.
    """
    for arg in agent_argv:
        if not arg or any(c.isspace() or c in ";{}'\"" for c in arg):
            raise ValueError(f"router {router.name}: agent command argument {arg!r} contains "
                             "white space or ExaBGP syntax; move the checkout to a plain path")
    tree: dict = {f"process {PROCESS}": {"run": " ".join(agent_argv), "encoder": "json"}}
    skip = set(disabled)
    for neighbor in router.neighbors:
        if neighbor.name in skip:
            continue
        tree[f"neighbor {neighbor.address}"] = {
            "description": f'"{router.name} to {neighbor.name} ({neighbor.relationship})"',
            "router-id": router.router_id,
            "local-address": neighbor.local_address,
            "local-as": router.asn,
            "peer-as": neighbor.asn,
            "hold-time": hold_time,
            "passive": "true" if neighbor.passive else "false",
            # The agent keeps the Adj-RIB-In; ExaBGP's own copy would cost a
            # change object and a cache entry per route received, unread.
            "adj-rib-in": "false",
            # The agent keeps the Adj-RIB-Out too, and announces all of it
            # when a session comes up; ExaBGP's copy (its "cache") would hold
            # every route ever sent, per neighbor, and replay it on top.
            "adj-rib-out": "false",
            **({"md5-password": f'"{neighbor.password}"'} if neighbor.password else {}),
            "family": {"ipv4 unicast": None, "ipv6 unicast": None},
            "api": {
                "processes": f"[ {PROCESS} ]",
                "neighbor-changes": None,
                "receive": {"parsed": None, "update": None, "notification": None, "open": None},
            },
        }
    return tree


def render(tree: dict, indent: int = 0) -> str:
    """ExaBGP configuration text of a config tree."""
    pad = "    " * indent
    lines = []
    for key, value in tree.items():
        if isinstance(value, dict):
            lines.append(f"{pad}{key} {{")
            lines.append(render(value, indent + 1).rstrip("\n"))
            lines.append(f"{pad}}}")
        elif value is None:
            lines.append(f"{pad}{key};")
        else:
            lines.append(f"{pad}{key} {value};")
    return "\n".join(line for line in lines if line) + "\n"


def speaker_environment(router: RouterPlan, lab_id: str) -> dict[str, str]:
    """Environment for ExaBGP: listen on the router's session addresses, stay
    root inside the namespace, log to stdout (the lab redirects it to a
    file), no API acknowledgements."""
    bind = sorted({n.local_address for n in router.neighbors})
    return {
        "exabgp_tcp_bind": " ".join(bind),
        "exabgp_tcp_port": str(BGP_PORT),
        "exabgp_daemon_user": "root",
        "exabgp_daemon_drop": "false",
        "exabgp_daemon_daemonize": "false",
        "exabgp_log_destination": "stdout",
        "exabgp_log_level": "INFO",
        "exabgp_log_statistics": "false",  # a line per message sent or received
        "exabgp_api_ack": "false",
        "exabgp_api_cli": "false",
        # ExaBGP's loop is driven by poll() on its sockets, with a timeout
        # of 10 ms x speed when idle: 5 cuts an idle speaker's CPU by about
        # two thirds (1.5 % to 0.5 % of a core measured) at no cost to
        # message latency, which is event-driven.
        "exabgp_reactor_speed": "5.0",
        LAB_ENV: lab_id,
    }


def quote_argv(argv: list[str]) -> str:
    """A command line for humans (logs, error messages)."""
    return " ".join(shlex.quote(a) for a in argv)
