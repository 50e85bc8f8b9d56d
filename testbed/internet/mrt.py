"""Real BGP tables and update streams (MRT) and ROAs, replayed into a lab.

RIPE RIS (https://data.ris.ripe.net/) and RouteViews
(https://archive.routeviews.org/) publish RIB dumps as MRT TABLE_DUMP_V2
(``bview.*.gz``, ``rib.*.bz2``) and update streams as BGP4MP
(``updates.*``); users download them, nothing here does. ``read_table``
and ``read_updates`` parse them with ``mrtparse`` (pinned; plain, gzip or
bz2) into ``MrtRoute``/``MrtUpdate`` values (AS_SETs are flattened into
the path: a lab route carries sequences only). ``load_roas`` reads the
``{"roas": [{"asn": "AS13335", "prefix": "1.1.1.0/24", "maxLength": 24}]}``
export of RPKI validators (Routinator, rpki-client, OctoRPKI) into the
topology's ROA form, and ``rov_counts`` says how many routes of a table
are valid, invalid or not found. ``replay_table`` and ``replay_updates``
make a lab AS originate the routes with their recorded AS paths, so its
neighbors hear the real table through that AS's speaker (a full-table
customer, a leak tripping a maximum-prefix limit, ROV at the receiver);
the model predicts what follows (the event simulation, since replayed
routes carry paths). Errors name the file and the record or entry.
"""

from __future__ import annotations

import ipaddress
import json
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

# mrtparse's import sets SIGPIPE back to the default action (for its own
# command line): in a Python program that kills the whole process, pytest
# and the lab harness included, at the first write to a closed pipe or
# socket (a dead speaker's). Put back what was there.
_SIGPIPE = signal.getsignal(signal.SIGPIPE)
import mrtparse  # noqa: E402

if signal.getsignal(signal.SIGPIPE) != _SIGPIPE:
    try:
        signal.signal(signal.SIGPIPE, _SIGPIPE)
    except ValueError:  # imported outside the main thread: nothing can be done there
        pass

from testbed.bgp.rules import PolicyError, parse_roas, rpki_state
from testbed.errors import TestbedError

__all__ = ["MrtError", "MrtRoute", "MrtUpdate", "read_table", "read_updates", "load_roas",
           "rov_counts", "replay_table", "replay_updates"]


class MrtError(TestbedError):
    """An MRT file or ROA export that cannot be read."""


@dataclass(frozen=True)
class MrtRoute:
    prefix: str
    as_path: tuple[int, ...]
    next_hop: str | None
    peer_asn: int | None = None
    time: int = 0

    @property
    def origin_as(self) -> int | None:
        return self.as_path[-1] if self.as_path else None


@dataclass
class MrtUpdate:
    time: int
    peer_asn: int
    announced: list = field(default_factory=list)    # MrtRoute
    withdrawn: list = field(default_factory=list)    # prefixes


def _key(d: dict) -> int:
    return next(iter(d))


def _attributes(attributes) -> tuple[tuple[int, ...], str | None]:
    path: list[int] = []
    hop = None
    for attribute in attributes:
        code = _key(attribute["type"])
        if code in (2, 17):    # AS_PATH (AS4_PATH too)
            if code == 2:
                path = []
            for segment in attribute["value"]:
                path += [int(a) for a in segment["value"]]
        elif code == 3:
            hop = attribute["value"]
        elif code == 14 and hop is None:
            hops = attribute["value"].get("next_hop") or []
            hop = hops[0] if hops else None
    return tuple(path), hop


def _records(path):
    path = Path(path)
    if not path.is_file():
        raise MrtError(f"{path}: no such file (RIB dumps and updates: https://data.ris.ripe.net/, "
                       "https://archive.routeviews.org/)")
    for number, entry in enumerate(mrtparse.Reader(str(path)), 1):
        if entry.err:
            raise MrtError(f"{path}: MRT record {number}: {entry.err_msg}")
        yield number, entry.data


def read_table(path, peer_asn: int | None = None) -> list[MrtRoute]:
    """The routes of a TABLE_DUMP_V2 RIB dump (of one peer if ``peer_asn``)."""
    peers: list[int] = []
    routes: list[MrtRoute] = []
    for number, data in _records(path):
        if _key(data["type"]) != 13:
            raise MrtError(f"{path}: MRT record {number} is {data['type']}, not TABLE_DUMP_V2")
        subtype = _key(data["subtype"])
        if subtype == 1:
            peers = [int(p["peer_as"]) for p in data["peer_entries"]]
            continue
        if subtype not in (2, 4):
            continue
        prefix = str(ipaddress.ip_network(f"{data['prefix']}/{data['length']}", strict=False))
        for entry in data["rib_entries"]:
            try:
                asn = peers[entry["peer_index"]]
            except IndexError:
                raise MrtError(f"{path}: MRT record {number}: peer index {entry['peer_index']} "
                               "is not in the PEER_INDEX_TABLE") from None
            if peer_asn is not None and asn != peer_asn:
                continue
            as_path, hop = _attributes(entry["path_attributes"])
            routes.append(MrtRoute(prefix, as_path, hop, asn, _key(entry["originated_time"])))
    return routes


def read_updates(path) -> list[MrtUpdate]:
    """The UPDATEs of a BGP4MP stream, in file order (other messages and
    state changes are skipped)."""
    found = []
    for number, data in _records(path):
        if _key(data["type"]) not in (16, 17):
            raise MrtError(f"{path}: MRT record {number} is {data['type']}, not BGP4MP")
        message = data.get("bgp_message")
        if not message or _key(message["type"]) != 2:
            continue
        when = _key(data["timestamp"])
        as_path, hop = _attributes(message.get("path_attributes") or ())
        update = MrtUpdate(when, int(data["peer_as"]))
        for nlri in message.get("nlri") or ():
            update.announced.append(MrtRoute(str(ipaddress.ip_network(
                f"{nlri['prefix']}/{nlri['length']}", strict=False)), as_path, hop, update.peer_asn, when))
        for attribute in message.get("path_attributes") or ():
            if _key(attribute["type"]) == 14:
                for nlri in attribute["value"].get("nlri") or ():
                    update.announced.append(MrtRoute(str(ipaddress.ip_network(
                        f"{nlri['prefix']}/{nlri['length']}", strict=False)), as_path, hop,
                        update.peer_asn, when))
            if _key(attribute["type"]) == 15:
                update.withdrawn += [f"{n['prefix']}/{n['length']}" for n in attribute["value"].get("withdrawn_routes") or ()]
        update.withdrawn += [str(ipaddress.ip_network(f"{w['prefix']}/{w['length']}", strict=False))
                             for w in message.get("withdrawn_routes") or ()]
        found.append(update)
    return found


def load_roas(path) -> list[dict]:
    """ROAs of a validator's JSON export as ``{"prefix", "asn",
    "max_length"}`` (the form of ``Topology.roa`` and the agents' table)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise MrtError(f"{path}: cannot read the ROA export: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("roas"), list):
        raise MrtError(f'{path}: expected {{"roas": [...]}} (a validator\'s JSON export)')
    roas = []
    for index, item in enumerate(data["roas"]):
        where = f"{path}: roas[{index}]"
        if not isinstance(item, dict):
            raise MrtError(f"{where}: not an object")
        asn = item.get("asn")
        if isinstance(asn, str) and asn.upper().startswith("AS"):
            asn = asn[2:]
        try:
            roa = {"prefix": item["prefix"], "asn": int(asn),
                   "max_length": int(item.get("maxLength", item.get("max_length",
                                     ipaddress.ip_network(item["prefix"]).prefixlen)))}
            parse_roas([roa], where)
        except (KeyError, TypeError, ValueError, PolicyError) as exc:
            raise MrtError(f"{where}: {exc}") from None
        roas.append(roa)
    return roas


def rov_counts(routes, roas) -> Counter:
    """valid / invalid / not-found counts of ``routes`` against ``roas``."""
    table = parse_roas(roas)
    return Counter(rpki_state(table, r.prefix, r.origin_as) for r in routes)


def replay_table(lab, via: str, routes, wait: bool = True, timeout: float = 60.0) -> int:
    """AS ``via`` of a running lab originates each route of ``routes``
    (the first per prefix) with its recorded AS path; returns how many.
    Waits for the lab to converge (on the model's prediction) if ``wait``."""
    seen = set()
    for route in routes:
        if route.prefix in seen:
            continue
        seen.add(route.prefix)
        lab.announce(via, route.prefix, wait=False, as_path=route.as_path)
    if wait:
        lab.wait_converged(timeout)
    return len(seen)


def replay_updates(lab, via: str, updates, speed: float = 1.0, wait: bool = True,
                   timeout: float = 60.0) -> int:
    """Replay an update stream through AS ``via``, each update at its
    recorded offset from the first divided by ``speed`` (10: ten times
    faster); returns how many updates were sent."""
    if not updates:
        return 0
    first, started = updates[0].time, time.monotonic()
    for update in updates:
        due = started + (update.time - first) / speed
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)   # the recorded timing, scaled: the replay's own clock
        for prefix in update.withdrawn:
            lab.withdraw(via, prefix, wait=False)
        for route in update.announced:
            lab.announce(via, route.prefix, wait=False, as_path=route.as_path)
    if wait:
        lab.wait_converged(timeout)
    return len(updates)
