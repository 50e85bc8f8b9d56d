"""Topologies written as YAML: the topology API as data.

``load_yaml(path)`` reads a YAML file with ruamel.yaml's round-trip loader
(whose nodes remember their line) and makes the same calls a Python
topology module makes (``add_as``, ``add_ixp``, ``transit``, ...), giving
every declaration the YAML line it came from, so the ordinary validation
(``testbed.validate``) reports each problem at ``file.yaml:LINE``. What the
YAML shape itself gets wrong (an unknown key, a list where a mapping
belongs, a syntax error) is reported here, also with its line, and then
nothing else is checked. ``locate(node, path)`` gives the line of a field
path such as ``import[1].match.prefix[0]`` inside a mapping, which is how
policy errors, in topologies and in exercise answer files, name their line.
The format is in the README ("Topologies as YAML").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from testbed.errors import TopologyError
from testbed.model.topology import Kind, PopRef, Topology, Where

SUFFIXES = (".yaml", ".yml")

TOP_KEYS = {"name", "description", "hold_time", "ases", "ixps", "route_servers",
            "relationships", "roas", "internal_links"}
AS_KEYS = {"asn", "name", "prefixes", "hosts", "description", "rov", "otc", "pops", "router", "config"}
IXP_KEYS = {"name", "lan4", "lan6"}
RS_KEYS = {"asn", "name", "ixp", "otc", "router", "config"}
ROA_KEYS = {"prefix", "asn", "max_length"}
LINK_KEYS = {"as", "between", "cost"}
REL_OPTIONS = {"via", "bandwidth", "delay", "loss", "password", "policy", "at"}
# The relationship keys, each naming the ends in the API's order.
REL_KINDS = {
    "transit": (Kind.TRANSIT, "[provider, customer]"),
    "peering": (Kind.PEERING, "[a, b]"),
    "paid_peering": (Kind.PAID_PEERING, "[payer, payee]"),
    "partial_transit": (Kind.PARTIAL_TRANSIT, "[provider, customer]"),
    "route_server_client": (Kind.ROUTE_SERVER, "[member, route server]"),
}


@dataclass(frozen=True)
class YamlWhere(Where):
    """A declaration's place in a YAML file, which can also name the line of
    a field inside it (``locate``)."""

    node: object = field(default=None, compare=False, repr=False)

    def locate(self, path: str) -> Where:
        """The place of ``path`` (``policy.A.import[0].match``) inside this
        declaration: the deepest part of it that exists in the file."""
        if self.node is None:
            return self
        return Where(self.file, locate(self.node, path, self.line))

    def locate_policy_error(self, message: str) -> Where:
        """The place of the field a policy error message names."""
        return self.locate("policy." + policy_path(message))


_STEP = re.compile(r"\.?([A-Za-z_][\w-]*)|\[(\d+)\]")


def locate(node: object, path: str, default: int) -> int:
    """The 1-based line of field ``path`` inside ``node`` (a ruamel mapping
    or list), or of the deepest part of the path that exists; ``default``
    when not even the first step does."""
    line = default
    for match in _STEP.finditer(path):
        key, index = match.group(1), match.group(2)
        if isinstance(node, CommentedMap) and key is not None and key in node:
            line = node.lc.key(key)[0] + 1
            node = node[key]
        elif isinstance(node, CommentedSeq) and index is not None and int(index) < len(node):
            line = node.lc.item(int(index))[0] + 1
            node = node[int(index)]
        else:
            break
    return line


def policy_path(message: str) -> str:
    """The field path a policy error names (``policy of A.import[1].match:
    ...`` gives ``A.import[1].match``)."""
    match = re.match(r"^(?:policy of )?([\w.\[\]-]*)", message)
    path = match.group(1) if match else ""
    unknown = re.search(r": unknown key '([\w-]+)'", message)
    return f"{path}.{unknown.group(1)}" if unknown else path


def plain(value: object) -> object:
    """``value`` with ruamel's mapping and list types made plain ``dict``
    and ``list`` (the policy parser and the model expect those)."""
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return value


def read(path: Path) -> object:
    """Parse a YAML file; a syntax error becomes ``TopologyError`` with its line."""
    yaml = YAML(typ="rt")
    try:
        return yaml.load(path.read_text())
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        what = " ".join(p for p in (exc.context, exc.problem) if p)
        raise TopologyError([f"{Where(str(path), line)}: YAML syntax: {what}"], str(path)) from None
    except OSError as exc:
        raise TopologyError([f"cannot read it: {exc}"], str(path)) from None


class _Builder:
    """Turns the parsed YAML into ``Topology`` calls, collecting what the
    shape gets wrong."""

    def __init__(self, path: Path):
        self.file = str(path)
        self.problems: list[str] = []

    def where(self, node: object, default: int = 1) -> YamlWhere:
        line = node.lc.line + 1 if isinstance(node, (CommentedMap, CommentedSeq)) else default
        return YamlWhere(self.file, line, node)

    def problem(self, line: int, text: str) -> None:
        self.problems.append(f"{Where(self.file, line)}: {text}")

    def mapping(self, node: object, what: str, line: int, keys: set[str]) -> bool:
        if not isinstance(node, CommentedMap):
            self.problem(line, f"{what} must be a mapping (key: value), not {plain(node)!r}")
            return False
        for key in node:
            if key not in keys:
                self.problem(node.lc.key(key)[0] + 1,
                             f"{what}: unknown key {key!r} (known: {', '.join(sorted(keys))})")
        return True

    def items(self, root: CommentedMap, key: str) -> list[tuple[int, object]]:
        """The entries of list ``key`` with their lines."""
        if key not in root or root[key] is None:
            return []
        seq = root[key]
        if not isinstance(seq, CommentedSeq):
            self.problem(root.lc.key(key)[0] + 1, f"{key} must be a list (- ...), not {plain(seq)!r}")
            return []
        return [(seq.lc.item(i)[0] + 1, item) for i, item in enumerate(seq)]

    def build(self, root: object) -> Topology | None:
        if not self.mapping(root, "the topology", 1, TOP_KEYS):
            return None
        topo = Topology(plain(root.get("name", Path(self.file).stem)),
                        plain(root.get("description", "")),
                        plain(root.get("hold_time", 9)), where=self.where(root))
        if "name" in root:
            topo.where = YamlWhere(self.file, root.lc.key("name")[0] + 1, root)
        for line, item in self.items(root, "ases"):
            if self.mapping(item, "an AS", line, AS_KEYS):
                topo.add_as(plain(item.get("asn")), plain(item.get("name")), plain(item.get("prefixes")),
                            plain(item.get("hosts", 1)), plain(item.get("description", "")),
                            rov=plain(item.get("rov", False)), otc=plain(item.get("otc", False)),
                            pops=plain(item.get("pops")), router=plain(item.get("router", "exabgp")),
                            config=plain(item.get("config"))).where = self.where(item, line)
        for line, item in self.items(root, "ixps"):
            if self.mapping(item, "an IXP", line, IXP_KEYS):
                topo.add_ixp(plain(item.get("name")), plain(item.get("lan4")),
                             plain(item.get("lan6"))).where = self.where(item, line)
        for line, item in self.items(root, "route_servers"):
            if self.mapping(item, "a route server", line, RS_KEYS):
                topo.add_route_server(plain(item.get("asn")), plain(item.get("name")),
                                      plain(item.get("ixp")),
                                      otc=plain(item.get("otc", False)),
                                      router=plain(item.get("router", "exabgp")),
                                      config=plain(item.get("config"))).where = self.where(item, line)
        for line, item in self.items(root, "internal_links"):
            if self.mapping(item, "an internal link", line, LINK_KEYS):
                between = plain(item.get("between"))
                if not (isinstance(between, list) and len(between) == 2):
                    self.problem(line, f"internal link: between must name two PoPs, [a, b], not {between!r}")
                    continue
                topo.internal_link(plain(item.get("as")), between[0], between[1],
                                   plain(item.get("cost", 10))).where = self.where(item, line)
        for line, item in self.items(root, "relationships"):
            self.relationship(topo, line, item)
        for line, item in self.items(root, "roas"):
            if self.mapping(item, "a ROA", line, ROA_KEYS):
                entry = {k: plain(v) for k, v in item.items()}
                entry["where"] = self.where(item, line)
                topo.roas.append(entry)
        return topo

    def relationship(self, topo: Topology, line: int, item: object) -> None:
        known = set(REL_KINDS) | {k.replace("_", "-") for k in REL_KINDS}
        if not self.mapping(item, "a relationship", line, known | REL_OPTIONS):
            return
        kinds = [k for k in item if k in known]
        if len(kinds) != 1:
            self.problem(line, f"a relationship names exactly one kind ({', '.join(sorted(REL_KINDS))}), "
                               f"found {kinds or 'none'}")
            return
        kind, order = REL_KINDS[kinds[0].replace("-", "_")]
        ends = plain(item[kinds[0]])
        if not (isinstance(ends, list) and len(ends) == 2):
            self.problem(item.lc.key(kinds[0])[0] + 1, f"{kinds[0]}: name its two ends, {order}, not {ends!r}")
            return
        at = plain(item.get("at"))
        if at is not None and not isinstance(at, dict):
            self.problem(item.lc.key("at")[0] + 1, f"at must map an AS name to its PoP, not {at!r}")
            return
        a, b = ((PopRef(end, at[end]) if at and end in at else end) for end in ends)
        options = {k: plain(item[k]) for k in ("via", "bandwidth", "delay", "loss", "password",
                                                "policy") if k in item}
        if kind == Kind.ROUTE_SERVER:
            extra = set(options) - {"password", "policy"}
            if extra:
                self.problem(line, f"route_server_client takes no {', '.join(sorted(extra))}")
                return
            rel = topo.route_server_client(a, b, **options)
        else:
            rel = topo._relate(kind, a, b, options.get("via"), options.get("bandwidth"),
                               options.get("delay"), options.get("loss"), options.get("password"),
                               options.get("policy"))
        rel.where = self.where(item, line)


def load_yaml(path: str | Path) -> Topology:
    """The topology described by the YAML file ``path``, not yet validated.
    Raises ``TopologyError`` (with lines) for a file whose shape is wrong."""
    path = Path(path)
    builder = _Builder(path)
    topo = builder.build(read(path))
    if builder.problems or topo is None:
        raise TopologyError(builder.problems, str(path))
    topo.source = str(path)
    return topo
