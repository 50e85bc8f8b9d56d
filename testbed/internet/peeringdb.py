"""PeeringDB exchanges for the ASes of an imported sub-graph.

PeeringDB (https://www.peeringdb.com/apidocs/) publishes its objects as
JSON: ``net`` (a network: ``id``, ``asn``, ``name``), ``ix`` (an exchange:
``id``, ``name``), ``ixlan`` (its peering LAN: ``id``, ``ix_id``),
``ixpfx`` (the LAN's prefixes: ``ixlan_id``, ``protocol``, ``prefix``) and
``netixlan`` (a network's port on a LAN: ``net_id``/``asn``, ``ixlan_id``,
``ipaddr4``, ``ipaddr6``, ``is_rs_peer``). ``load(path)`` reads either one
JSON file holding the five object lists (each a list or the API's
``{"data": [...]}``, as ``peeringdb`` tool dumps hold them) or a directory
of ``net.json``, ``ix.json``... as the API serves them (``GET
/api/net`` and so on); users download these themselves, nothing here does.
``exchanges(dump, asns)`` gives the exchanges where at least two of
``asns`` have a port, with their LAN prefixes and members (and which use
the route server), which ``testbed.internet.subgraph.topology_source``
turns into ``add_ixp``, ``add_route_server`` and ``route_server_client``
calls, and bilateral peerings between members onto the exchange's LAN.
Bad input raises ``PeeringDBError`` naming the file and the object.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from testbed.errors import TestbedError

__all__ = ["PeeringDBError", "Exchange", "load", "exchanges", "ROUTE_SERVER_ASN_BASE"]

OBJECTS = ("net", "ix", "ixlan", "ixpfx", "netixlan")
ROUTE_SERVER_ASN_BASE = 4_200_000_000
"""A route server's ASN in the lab: private (RFC 6996), this plus the
exchange's PeeringDB id (PeeringDB does not name route servers' ASNs)."""


class PeeringDBError(TestbedError):
    """A PeeringDB dump that cannot be read."""


@dataclass
class Exchange:
    """An exchange with members among the sub-graph's ASes."""

    id: int
    name: str
    lan4: str | None
    lan6: str | None
    members: dict = field(default_factory=dict)     # ASN -> uses the route server (bool)

    @property
    def rs_clients(self) -> list[int]:
        return sorted(a for a, rs in self.members.items() if rs)

    @property
    def route_server_asn(self) -> int:
        return ROUTE_SERVER_ASN_BASE + self.id


def _objects(data, where: str, kind: str) -> list[dict]:
    if isinstance(data, dict) and "data" in data:
        data = data["data"]
    if not isinstance(data, list) or not all(isinstance(o, dict) for o in data):
        raise PeeringDBError(f"{where}: {kind!r} must be a list of objects (or {{\"data\": [...]}})")
    return data


def load(path: str | Path) -> dict[str, list[dict]]:
    """The five object lists of a dump (see the module docstring)."""
    path = Path(path)
    found: dict[str, list[dict]] = {}
    try:
        if path.is_dir():
            for kind in OBJECTS:
                file = path / f"{kind}.json"
                if not file.exists():
                    raise PeeringDBError(f"{path}: no {kind}.json (expected {', '.join(k + '.json' for k in OBJECTS)})")
                found[kind] = _objects(json.loads(file.read_text()), str(file), kind)
        elif path.is_file():
            data = json.loads(path.read_text())
            if not isinstance(data, dict):
                raise PeeringDBError(f"{path}: expected an object with the keys {', '.join(OBJECTS)}")
            for kind in OBJECTS:
                if kind not in data:
                    raise PeeringDBError(f"{path}: no {kind!r} objects (expected {', '.join(OBJECTS)})")
                found[kind] = _objects(data[kind], str(path), kind)
        else:
            raise PeeringDBError(f"{path}: no such file or directory (PeeringDB's API serves the "
                                 "objects at https://www.peeringdb.com/api/net, /api/ix, ...)")
    except json.JSONDecodeError as exc:
        raise PeeringDBError(f"{path}: not JSON: {exc}") from None
    found["where"] = str(path)  # type: ignore[assignment]
    return found


def _field(obj: dict, name: str, kind: str, where: str):
    if name not in obj:
        raise PeeringDBError(f"{where}: {kind} object {obj.get('id', '?')} has no {name!r}")
    return obj[name]


def ixp_name(name: str, taken: set[str]) -> str:
    """A lab IXP name (letters, digits, '-'; at most 9 characters, so that
    ``ix-<name>`` is an interface name) for a PeeringDB exchange name."""
    base = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:9].strip("-") or "ix"
    if not base[0].isalpha():
        base = ("x" + base)[:9]
    candidate, k = base, 2
    while candidate in taken:
        suffix = str(k)
        candidate = base[:9 - len(suffix)] + suffix
        k += 1
    taken.add(candidate)
    return candidate


def exchanges(dump: dict, asns) -> list[Exchange]:
    """The exchanges where two or more of ``asns`` have a port (see the
    module docstring), sorted by PeeringDB id."""
    where = dump.get("where", "<dump>")
    asns = set(asns)
    nets = {_field(n, "id", "net", where): _field(n, "asn", "net", where) for n in dump["net"]}
    ixs = {_field(x, "id", "ix", where): x for x in dump["ix"]}
    lan_of: dict[int, int] = {}
    for lan in dump["ixlan"]:
        lan_of[_field(lan, "id", "ixlan", where)] = _field(lan, "ix_id", "ixlan", where)
    prefixes: dict[int, dict[int, str]] = {}
    for pfx in dump["ixpfx"]:
        lan = _field(pfx, "ixlan_id", "ixpfx", where)
        try:
            net = ipaddress.ip_network(_field(pfx, "prefix", "ixpfx", where))
        except ValueError:
            raise PeeringDBError(f"{where}: ixpfx object {pfx.get('id', '?')}: bad prefix "
                                 f"{pfx.get('prefix')!r}") from None
        prefixes.setdefault(lan, {}).setdefault(net.version, str(net))
    found: dict[int, Exchange] = {}
    for port in dump["netixlan"]:
        asn = port.get("asn", nets.get(port.get("net_id")))
        if asn is None:
            raise PeeringDBError(f"{where}: netixlan object {port.get('id', '?')} names no network")
        if asn not in asns:
            continue
        lan = _field(port, "ixlan_id", "netixlan", where)
        ix_id = port.get("ix_id", lan_of.get(lan))
        if ix_id not in ixs:
            raise PeeringDBError(f"{where}: netixlan object {port.get('id', '?')}: no ix {ix_id}")
        lans = prefixes.get(lan, {})
        exchange = found.setdefault(ix_id, Exchange(ix_id, ixs[ix_id].get("name", f"ix{ix_id}"),
                                                    lans.get(4), lans.get(6)))
        exchange.members[asn] = exchange.members.get(asn, False) or bool(port.get("is_rs_peer"))
    return [found[k] for k in sorted(found) if len(found[k].members) >= 2]
