"""BIRD's control socket spoken directly, and its answers read quickly, for watching many BIRD routers.

``birdc`` (what ``testbed.routers.bird`` runs for each query) is a process
per question: at a thousand routers, a few questions each, a look at the
whole lab took tens of seconds of CPU that the routers needed. ``command(socket,
text)`` sends one command over a fresh connection to a router's control
socket and returns the answer as birdc would print it (the reply codes of
BIRD's CLI protocol taken off, an error reply raised as ``LabError``).
``protocol_sections`` cuts ``show protocols all`` into each protocol's
head line and its "key: value" lines (``testbed.routers.bird``'s
``parse_protocols`` reads them too); ``parse_channels`` reads them into what a watcher needs
per BGP session (state, since when, routes imported per channel, route
updates received), and ``parse_table`` reads ``show route all`` into
compact tuples (prefix, protocol, best, time, AS path, next hop, MED).
Pure functions of text, except ``command``.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from testbed.errors import LabError

__all__ = ["Session", "TableRoute", "clock_seconds", "command", "parse_channels", "parse_table",
           "protocol_sections"]

_CODE = re.compile(rb"^(\d{4})([ -])")


def command(path: Path | str, text: str, timeout: float = 30.0) -> str:
    """The answer of the BIRD daemon listening on ``path`` to ``text``, as
    birdc prints it; ``LabError`` for an error reply or a dead socket."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
            reader = sock.makefile("rb", buffering=1 << 16)
            _reply(reader, path, "the greeting")
            sock.sendall(text.encode() + b"\n")
            return _reply(reader, path, text)
        except OSError as exc:
            raise LabError(f"BIRD control socket {path}: {text}: {exc}") from None


def _reply(reader, path, what: str) -> str:
    """Lines up to the one that ends a reply (a code followed by a space)."""
    out: list[bytes] = []
    code = b""
    for line in reader:
        found = _CODE.match(line)
        if found is None:  # a continuation line: a space, then the text
            out.append(line[1:])
            continue
        code = found[1]
        if found[2] == b" ":
            if code[:1] in (b"8", b"9"):
                raise LabError(f"BIRD control socket {path}: {what}: {line[5:].decode(errors='replace').strip()}")
            if code != b"0000" and code != b"0001":
                out.append(line[5:])
            return b"".join(out).decode(errors="replace")
        out.append(line[5:])
    raise LabError(f"BIRD control socket {path}: {what}: the daemon closed the connection mid-answer")


def clock_seconds(text: str) -> float:
    """Seconds since midnight of BIRD's ``hh:mm:ss.mmm`` (its default time format)."""
    hours, minutes, seconds = text.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


@dataclass
class Session:
    """One BGP protocol of ``show protocols all``."""

    name: str
    state: str                 # BIRD's protocol state: up, down, start...
    bgp_state: str = ""        # Established, Active, Connect...
    since: str = ""            # when the state last changed, hh:mm:ss.mmm
    neighbor: str | None = None
    imported: dict[str, int] = field(default_factory=dict)  # channel (ipv4, ipv6) -> routes in the table
    updates_received: int = 0  # route announcements received, every channel
    withdraws_received: int = 0


_HEAD = re.compile(r"^(?P<name>\S+)\s+(?P<proto>\S+)\s+(?P<table>\S+)\s+(?P<state>\S+)\s+"
                   r"(?P<since>\d\d:\d\d:\d\d(?:\.\d+)?)\s*(?P<info>.*)$")


def protocol_sections(text: str) -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """Each protocol of ``show protocols all``: its head line (name, proto,
    table, state, since, info) and the (key, value) of the indented lines
    under it, in order (blank lines skipped)."""
    head: str | None = None
    items: list[tuple[str, str]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        if not line.startswith(" "):
            if head is not None:
                yield head, items
            head, items = line, []
        elif head is not None:
            key, _, value = line.strip().partition(":")
            items.append((key, value.strip()))
    if head is not None:
        yield head, items


def parse_channels(text: str) -> dict[str, Session]:
    """BGP protocol name -> ``Session`` from ``show protocols all``."""
    found: dict[str, Session] = {}
    for head_line, items in protocol_sections(text):
        head = _HEAD.match(head_line)
        if not head or head["proto"] != "BGP":
            continue
        current = found[head["name"]] = Session(head["name"], head["state"], head["info"].strip(), head["since"])
        channel = ""
        for key, value in items:
            if key == "BGP state":
                current.bgp_state = value
            elif key == "Neighbor address":
                current.neighbor = value
            elif key.startswith("Channel "):
                channel = key.split()[1]
            elif key == "Routes":
                current.imported[channel] = int(value.split()[0])
            elif key == "Import updates":
                current.updates_received += int(value.split()[0])
            elif key == "Import withdraws":
                current.withdraws_received += int(value.split()[0])
    return found


# A route's first line: "prefix  unicast [proto hh:mm:ss.mmm] * (100) [AS64520i]"
# (no prefix for the second and later routes of a network).
_ROUTE = re.compile(r"^(\S+)?\s+(?:unicast|unreachable|blackhole|prohibited)\s+"
                    r"\[(\S+) (\d\d:\d\d:\d\d(?:\.\d+)?)[^\]]*\]\s*(\*)?")

TableRoute = tuple  # (prefix, protocol, best, time, AS path tuple, next hop or None, MED or None)


def parse_table(text: str) -> list[TableRoute]:
    """Every route of ``show route all`` as (prefix, protocol, best, time
    (hh:mm:ss.mmm), AS path, BGP next hop: the global address where an
    IPv6 next hop comes with its link-local one, MED; None for what a
    route of another protocol than BGP lacks)."""
    routes: list[list] = []
    prefix = None
    current = None
    for line in text.splitlines():
        if line.startswith("\t"):
            if current is None:
                continue
            if line.startswith("\tBGP.as_path:"):
                current[4] = tuple(int(x) for x in line[13:].split() if x.isdigit())
            elif line.startswith("\tBGP.next_hop:"):
                hops = line[14:].split()
                current[5] = hops[0] if hops else None
            elif line.startswith("\tBGP.med:"):
                current[6] = int(line[9:])
            continue
        found = _ROUTE.match(line)
        if found is None:
            current = None
            continue
        prefix = found[1] or prefix
        current = [prefix, found[2], bool(found[4]), found[3], (), None, None]
        routes.append(current)
    return [tuple(route) for route in routes]
