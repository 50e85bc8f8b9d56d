"""A small writer of MRT files (RFC 6396), for tests and examples.

RIPE RIS and RouteViews publish RIB dumps as TABLE_DUMP_V2 and update
streams as BGP4MP; the testbed reads them with ``mrtparse``, which has no
writer, so tests make their own files here: ``table_dump(path, peer,
routes)`` writes a PEER_INDEX_TABLE and one RIB_IPV4_UNICAST or
RIB_IPV6_UNICAST record per route, ``updates(path, peer, messages)``
BGP4MP_MESSAGE_AS4 records each holding one UPDATE. Only what the reader
needs: ORIGIN, a 4-byte AS_PATH (one AS_SEQUENCE), NEXT_HOP or, for IPv6,
MP_REACH_NLRI. bz2 when the name ends in ``.bz2``, as the archives
publish them.
"""

from __future__ import annotations

import bz2
import ipaddress
import struct
from pathlib import Path

__all__ = ["table_dump", "updates"]

TABLE_DUMP_V2, BGP4MP = 13, 16
PEER_INDEX_TABLE, RIB_IPV4_UNICAST, RIB_IPV6_UNICAST = 1, 2, 4
BGP4MP_MESSAGE_AS4 = 4


def _record(time: int, kind: int, subtype: int, body: bytes) -> bytes:
    return struct.pack("!IHHI", time, kind, subtype, len(body)) + body


def _prefix(prefix: str) -> bytes:
    net = ipaddress.ip_network(prefix)
    return bytes([net.prefixlen]) + net.network_address.packed[:(net.prefixlen + 7) // 8]


def _attribute(code: int, value: bytes, flags: int = 0x40) -> bytes:
    if len(value) > 255:
        return struct.pack("!BBH", flags | 0x10, code, len(value)) + value
    return struct.pack("!BBB", flags, code, len(value)) + value


def _attributes(as_path, next_hop: str, prefix_family: int, rib: bool) -> bytes:
    path = struct.pack("!BB", 2, len(as_path)) + b"".join(struct.pack("!I", a) for a in as_path)
    out = _attribute(1, b"\x00") + _attribute(2, path if as_path else b"")
    hop = ipaddress.ip_address(next_hop).packed
    if prefix_family == 4:
        out += _attribute(3, hop)
    elif rib:   # RFC 6396 4.3.4: the abbreviated MP_REACH_NLRI of a RIB entry
        out += _attribute(14, bytes([len(hop)]) + hop, flags=0x80)
    else:
        out += _attribute(14, struct.pack("!HBB", 2, 1, len(hop)) + hop + b"\x00", flags=0x80)
    return out


def _write(path, records: list[bytes]) -> None:
    data = b"".join(records)
    path = Path(path)
    path.write_bytes(bz2.compress(data) if path.suffix == ".bz2" else data)


def table_dump(path, peer: tuple[int, str], routes, time: int = 1_700_000_000) -> None:
    """A RIB dump of one peer (ASN, address) with ``routes``: (prefix, AS
    path, next hop) triples."""
    peer_asn, peer_ip = peer
    address = ipaddress.ip_address(peer_ip)
    peer_type = 0x02 | (0x01 if address.version == 6 else 0)
    index = (struct.pack("!I", 0x0A000001) + struct.pack("!H", 4) + b"test"
             + struct.pack("!H", 1) + bytes([peer_type]) + struct.pack("!I", 0x0A000002)
             + address.packed + struct.pack("!I", peer_asn))
    records = [_record(time, TABLE_DUMP_V2, PEER_INDEX_TABLE, index)]
    for sequence, (prefix, as_path, next_hop) in enumerate(routes):
        family = ipaddress.ip_network(prefix).version
        attributes = _attributes(as_path, next_hop, family, rib=True)
        body = (struct.pack("!I", sequence) + _prefix(prefix) + struct.pack("!H", 1)
                + struct.pack("!HIH", 0, time, len(attributes)) + attributes)
        records.append(_record(time, TABLE_DUMP_V2,
                               RIB_IPV4_UNICAST if family == 4 else RIB_IPV6_UNICAST, body))
    _write(path, records)


def updates(path, peer: tuple[int, str], messages, local: tuple[int, str] = (65000, "192.0.2.254")) -> None:
    """A BGP4MP update stream: ``messages`` are (time, announced, withdrawn)
    with announced as (prefix, AS path, next hop) triples (IPv4) and
    withdrawn as prefixes."""
    peer_asn, peer_ip = peer
    records = []
    for time, announced, withdrawn in messages:
        withdrawn_bytes = b"".join(_prefix(p) for p in withdrawn)
        body = struct.pack("!H", len(withdrawn_bytes)) + withdrawn_bytes
        if announced:
            groups: dict[tuple, list[str]] = {}
            for prefix, as_path, next_hop in announced:
                groups.setdefault((tuple(as_path), next_hop), []).append(prefix)
            if len(groups) != 1:
                raise ValueError("one UPDATE carries one set of attributes: split the message")
            (as_path, next_hop), prefixes = next(iter(groups.items()))
            attributes = _attributes(as_path, next_hop, 4, rib=False)
            body += struct.pack("!H", len(attributes)) + attributes + b"".join(_prefix(p) for p in prefixes)
        else:
            body += struct.pack("!H", 0)
        message = b"\xff" * 16 + struct.pack("!HB", 19 + len(body), 2) + body
        header = (struct.pack("!IIHH", peer_asn, local[0], 0, 1)
                  + ipaddress.ip_address(peer_ip).packed + ipaddress.ip_address(local[1]).packed)
        records.append(_record(time, BGP4MP, BGP4MP_MESSAGE_AS4, header + message))
    _write(path, records)
