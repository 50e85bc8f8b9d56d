"""The configuration text of a BIRD or FRR router, and its check by the daemon's own parser.

``config_text(choice, plan, router)`` returns what the router runs: the
user's file as it is, the user's Jinja2 template rendered with
``template_values`` (router id, ASN, interfaces and addresses, neighbours
with their addresses, ASNs and relationships, the prefixes to originate),
or, without a user's configuration, the one ``testbed.routers.bird_config``
/ ``frr_config`` generate with the ExaBGP routers' policy.
``check(kind, path, source)`` runs ``bird -p -c`` or ``vtysh --dryrun -f``
on a written file and raises ``RouterConfigError`` naming the file and
line of the first error (and the template it came from). Text in, text
out, except ``check``, which runs the parser (no root needed).
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
from pathlib import Path

from testbed.errors import LabError
from testbed.model.plans import Plan, RouterPlan
from testbed.model.router_kinds import Choice

__all__ = ["RouterConfigError", "check", "config_text", "template_values", "FRR_BIN", "daemon_binary",
           "control"]

FRR_BIN = Path("/usr/lib/frr")
BINARIES = {"bird": ("bird", "birdc"), "frr": ("vtysh", str(FRR_BIN / "bgpd"), str(FRR_BIN / "zebra"))}


class RouterConfigError(LabError):
    """A router configuration the daemon's parser (or the template engine) refused."""


def daemon_binary(name: str) -> str:
    """The path of a daemon program, or a ``LabError`` saying how to get it."""
    found = name if Path(name).is_absolute() and Path(name).exists() else shutil.which(name)
    if not found:
        raise LabError(f"{name} is not installed: run scripts/setup-routers.sh (as root) for BIRD and FRR")
    return found


def control(router: str, argv: list[str], what: str, timeout: float) -> str:
    """The output of a daemon's control client (``birdc``, ``vtysh``) run as
    ``argv``, or a ``LabError`` naming the router and ``what`` was asked
    with the client's own message (also when it timed out)."""
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise LabError(f"router {router}: {what} timed out") from None
    if result.returncode != 0:
        raise LabError(f"router {router}: {what}: {(result.stderr or result.stdout).strip()}")
    return result.stdout


def template_values(plan: Plan, router: RouterPlan) -> dict:
    """What a user's template may use: ``name``, ``asn``, ``router_id``,
    ``hold_time``, ``prefixes`` (``prefixes4``/``prefixes6``), ``lan4``/
    ``lan6``, ``interfaces`` (name -> {address4, address6}), ``neighbors``
    (a list of dicts: ``name``, ``as_name``, ``asn``, ``relationship``
    (what the neighbour is to this router), ``address``, ``address6``,
    ``local_address``, ``local_address6``, ``interface``, ``ixp``,
    ``passive``, ``password``, ``router_id``, ``prefixes4``/``prefixes6``:
    what its AS originates), ``neighbor`` (the same by router or AS name),
    ``route_server`` and ``roas`` (the topology's ROAs: prefix, asn,
    max_length)."""
    neighbors = [{
        "name": n.name, "as_name": n.peer_system, "asn": n.asn, "relationship": n.relationship,
        "address": n.address, "address6": n.address6, "local_address": n.local_address,
        "local_address6": n.local_address6, "interface": n.ifname, "ixp": n.via,
        "passive": n.passive, "password": n.password, "router_id": n.router_id,
        "prefixes4": [p for p in plan.prefixes_of(n.peer_system) if ":" not in p],
        "prefixes6": [p for p in plan.prefixes_of(n.peer_system) if ":" in p],
    } for n in router.neighbors]
    return {
        "name": router.name, "as_name": router.as_name, "asn": router.asn, "router_id": router.router_id,
        "hold_time": plan.hold_time,
        "prefixes": list(router.prefixes),
        "prefixes4": [p for p in router.prefixes if ":" not in p],
        "prefixes6": [p for p in router.prefixes if ":" in p],
        "lan4": router.lan4, "lan6": router.lan6,
        "interfaces": {p.ifname: {"address4": p.address4, "address6": p.address6,
                                  "ip4": str(ipaddress.ip_interface(p.address4).ip),
                                  "ip6": str(ipaddress.ip_interface(p.address6).ip)} for p in router.ports},
        "neighbors": neighbors,
        "neighbor": {n["name"]: n for n in neighbors} | {n["as_name"]: n for n in neighbors},
        "route_server": router.route_server,
        "roas": [{"prefix": r["prefix"], "asn": r["asn"],
                  "max_length": r.get("max_length") or int(r["prefix"].split("/")[1])} for r in plan.roas],
    }


def _render_template(path: Path, values: dict) -> str:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(path.parent)),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    try:
        return env.get_template(path.name).render(**values)
    except jinja2.TemplateSyntaxError as exc:
        raise RouterConfigError(f"{exc.filename or path}:{exc.lineno}: template error: {exc.message}") from None
    except jinja2.UndefinedError as exc:
        raise RouterConfigError(f"{path}: template error: {exc.message} (the values a template may use: "
                                f"{', '.join(sorted(values))})") from None


def config_text(choice: Choice, plan: Plan, router: RouterPlan) -> str:
    """The configuration ``router`` runs (see the module docstring)."""
    if choice.config is None:
        if choice.kind == "bird":
            from testbed.routers.bird_config import render
        else:
            from testbed.routers.frr_config import render
        return render(router, plan.hold_time)
    if choice.template:
        return _render_template(choice.config, template_values(plan, router))
    return choice.config.read_text()


_BIRD_ERROR = re.compile(r"^bird: (?P<file>.*?):(?P<line>\d+):(?P<col>\d+) (?P<message>.*)$", re.M)
_FRR_ERROR = re.compile(r"line (?P<line>\d+): (?P<message>.*)")


def check(kind: str, path: Path, router: str, source: Path | None = None) -> None:
    """Parse the written configuration ``path`` of ``router`` with the
    daemon's own parser; raise ``RouterConfigError`` with file:line."""
    origin = f" (rendered from {source})" if source is not None and source != path else ""
    if kind == "bird":
        command = [daemon_binary("bird"), "-p", "-c", str(path)]
    else:
        command = [daemon_binary("vtysh"), "--dryrun", "-f", str(path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    text = (result.stderr + result.stdout).strip()
    if result.returncode == 0 and not (kind == "frr" and _FRR_ERROR.search(text)):
        return
    pattern = _BIRD_ERROR if kind == "bird" else _FRR_ERROR
    found = pattern.search(text)
    if found:
        line = int(found["line"])
        lines = path.read_text().splitlines()
        shown = lines[line - 1].strip() if 0 < line <= len(lines) else ""
        raise RouterConfigError(f"{path}:{line}: {kind} refused the configuration of router {router}"
                                f"{origin}: {found['message'].strip()}" + (f"\n    {shown}" if shown else ""))
    raise RouterConfigError(f"{path}: {kind} refused the configuration of router {router}{origin}: "
                            f"{text or 'exit status ' + str(result.returncode)}")
