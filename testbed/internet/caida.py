"""CAIDA AS-relationship files: read them into an ``ASGraph``, write them.

CAIDA publishes the inferred business relationships between ASes as
``YYYYMMDD.as-rel.txt.bz2`` (serial-1: ``as1|as2|rel``) and
``YYYYMMDD.as-rel2.txt.bz2`` (serial-2: ``as1|as2|rel|source``), where
``rel`` is ``-1`` when ``as1`` is a provider of ``as2`` and ``0`` when they
peer; lines starting with ``#`` are comments (the inferred clique is given
as ``# input clique: ...``). Users download them from
https://publicdata.caida.org/datasets/as-relationships/ (nothing here
downloads anything). ``load(path)`` reads a plain or bz2-compressed file
(by its content, not its name) and returns the graph; bad lines raise
``CaidaError`` naming file and line, and nothing is returned. ``write``
writes a graph (or link lists) in either serial, compressed when the name
ends in ``.bz2``.
"""

from __future__ import annotations

import bz2
import gzip
from pathlib import Path

from testbed.errors import TestbedError
from .graph import ASGraph

__all__ = ["CaidaError", "load", "parse_lines", "write", "clique_of"]


class CaidaError(TestbedError):
    """An AS-relationship file that cannot be read."""


def _open_text(path: Path):
    with open(path, "rb") as raw:
        magic = raw.read(3)
    if magic == b"BZh":
        return bz2.open(path, "rt", encoding="ascii", errors="replace")
    if magic[:2] == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="ascii", errors="replace")
    return open(path, encoding="ascii", errors="replace")


def parse_lines(lines, where: str = "<input>") -> tuple[ASGraph, dict]:
    """(graph, facts) from the lines of an as-rel file. ``facts`` has the
    ``clique`` the file names (a list of ASNs), ``serial`` (1 or 2) and the
    link counts. Raises ``CaidaError`` with ``where:line`` on the first bad
    line (a wrong field count, a non-number, a relationship other than -1
    or 0, an AS related to itself, a pair given twice)."""
    graph = ASGraph()
    facts = {"clique": [], "serial": None, "transit": 0, "peering": 0, "where": where}
    seen: dict[tuple[int, int], int] = {}
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            body = line[1:].strip()
            if body.startswith("input clique:"):
                facts["clique"] = [int(a) for a in body.split(":", 1)[1].split() if a.isdigit()]
            continue
        fields = line.split("|")
        if len(fields) not in (3, 4):
            raise CaidaError(f"{where}:{number}: expected 'as1|as2|rel' or 'as1|as2|rel|source', "
                             f"got {line[:80]!r}")
        serial = 1 if len(fields) == 3 else 2
        if facts["serial"] is None:
            facts["serial"] = serial
        try:
            a, b, rel = int(fields[0]), int(fields[1]), int(fields[2])
        except ValueError:
            raise CaidaError(f"{where}:{number}: AS numbers and the relationship must be "
                             f"integers, got {line[:80]!r}") from None
        if rel not in (-1, 0):
            raise CaidaError(f"{where}:{number}: relationship {rel} is neither -1 "
                             f"(provider to customer) nor 0 (peers)")
        if not (0 < a < 2**32 and 0 < b < 2**32):
            raise CaidaError(f"{where}:{number}: AS numbers must be 1..4294967295, got {line[:80]!r}")
        if a == b:
            raise CaidaError(f"{where}:{number}: AS{a} related to itself")
        key = (a, b) if a < b else (b, a)
        if key in seen:
            raise CaidaError(f"{where}:{number}: AS{a} and AS{b} are already related "
                             f"(line {seen[key]})")
        seen[key] = number
        x, y = graph.node(a), graph.node(b)
        if rel == -1:
            graph.add_transit(x, y)
            facts["transit"] += 1
        else:
            graph.add_peering(x, y)
            facts["peering"] += 1
    if not len(graph):
        raise CaidaError(f"{where}: no relationship in the file")
    return graph, facts


def load(path: str | Path) -> tuple[ASGraph, dict]:
    """Read an as-rel file (serial-1 or serial-2, plain, bz2 or gzip); see
    ``parse_lines``. Raises ``CaidaError`` for a missing or bad file."""
    path = Path(path)
    if not path.is_file():
        raise CaidaError(f"{path}: no such file (get the AS-relationship files from "
                         "https://publicdata.caida.org/datasets/as-relationships/serial-2/)")
    try:
        with _open_text(path) as lines:
            return parse_lines(lines, str(path))
    except (OSError, EOFError) as exc:
        raise CaidaError(f"{path}: cannot read it: {exc}") from None


def write(path: str | Path, transit, peering, serial: int = 2, clique=(), comment: str = "") -> None:
    """Write an as-rel file: ``transit`` as (provider ASN, customer ASN)
    pairs, ``peering`` as ASN pairs; serial 1 or 2 (source ``bgp``); bz2
    when ``path`` ends in ``.bz2``."""
    path = Path(path)
    opener = bz2.open if path.suffix == ".bz2" else open
    with opener(path, "wt") as out:
        if comment:
            for line in comment.splitlines():
                out.write(f"# {line}\n")
        if clique:
            out.write("# input clique: " + " ".join(str(a) for a in clique) + "\n")
        tail = "|bgp" if serial == 2 else ""
        out.writelines(f"{p}|{c}|-1{tail}\n" for p, c in transit)
        out.writelines(f"{a}|{b}|0{tail}\n" for a, b in peering)


def graph_links(graph: ASGraph) -> tuple[list, list]:
    """(transit pairs, peering pairs) of a graph, as ASNs."""
    asns = graph.asns
    transit = [(asns[p], asns[c]) for p in range(len(graph)) for c in graph.customers[p]]
    peering = [(asns[a], asns[b]) for a in range(len(graph)) for b in graph.peers[a] if a < b]
    return transit, peering


def clique_of(graph: ASGraph, facts: dict | None = None) -> list[int]:
    """The nodes of the provider-free clique: the file's ``input clique``
    when it names one, else the provider-free nodes with the most customers
    that all peer with each other."""
    if facts and facts.get("clique"):
        return [graph.index[a] for a in facts["clique"] if a in graph.index]
    free = sorted(graph.provider_free(), key=lambda n: -len(graph.customers[n]))
    clique: list[int] = []
    for node in free:
        if all(node in graph.peers[m] for m in clique):
            clique.append(node)
    return clique
