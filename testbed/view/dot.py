"""A ``Picture`` as Graphviz DOT text, in the conventions of AS-level maps.

Rows top to bottom are the tiers (providers above customers), held by an
invisible chain of row labels each AS shares a rank with. Transit is an
arrow from provider to customer; partial transit an open arrow labelled
"partial"; settlement-free peering an undirected level line; paid peering a
line from payer to payee ending in a circle, labelled "$"; a route
server's session an undirected grey line to the server. A private link is
drawn solid, a session across an IXP dashed; an IXP is a dark LAN bar with
a thin line to each member's port. An AS with PoPs shows them as cells,
and its sessions attach to the PoP that carries them; internal links and
their IGP costs are listed under it. Colours are the colour-blind-safe
blue/orange/purple of ColorBrewer's PuOr and RdBu schemes. Only the
picture's order decides the text: the same topology gives the same bytes.
"""

from __future__ import annotations

from html import escape

from .picture import Edge, Lan, Node, Picture

FONT = "Helvetica"
COLOURS = {
    "transit": "#222222",
    "partial-transit": "#b35806",
    "peering": "#2166ac",
    "paid-peering": "#762a83",
    "route-server": "#878787",
}
ROLE_FILL = {"tier1": "#fde0c5", "transit": "#e8eef7", "stub": "#f7f7f7",
             "peer-only": "#f7f7f7", "route-server": "#ffffff"}
KIND_TEXT = {
    "transit": "transit (provider \u2192 customer)",
    "partial-transit": "partial transit (provider \u2192 customer)",
    "peering": "settlement-free peering",
    "paid-peering": "paid peering (payer \u2192 payee)",
    "route-server": "route-server session",
}


def _q(text: object) -> str:
    """A DOT double-quoted string."""
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _attrs(**values: object) -> str:
    parts = []
    for key, value in values.items():
        if value is None:
            continue
        key = key.rstrip("_")
        if isinstance(value, str) and value.startswith("<") and value.endswith(">"):
            parts.append(f"{key}={value}")  # an HTML-like label
        else:
            parts.append(f"{key}={_q(value)}")
    return "[" + ", ".join(parts) + "]"


def _node_label(node: Node, prefixes: bool) -> str:
    rows = [f'<TR><TD><B>{escape(node.name)}</B></TD></TR>',
            f'<TR><TD><FONT POINT-SIZE="8">AS{node.asn}</FONT></TD></TR>']
    if node.pops:
        cells = "".join(f'<TD PORT="{escape(pop)}" BGCOLOR="white">{escape(pop)}</TD>' for pop in node.pops)
        rows.append('<TR><TD><TABLE BORDER="0" CELLBORDER="1" CELLSPACING="2" CELLPADDING="2">'
                    f'<TR>{cells}</TR></TABLE></TD></TR>')
    if prefixes:
        for prefix in node.prefixes:
            rows.append(f'<TR><TD><FONT POINT-SIZE="7">{escape(prefix)}</FONT></TD></TR>')
    return ('<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">'
            + "".join(rows) + "</TABLE>>")


def _end(node: str, pop: str | None) -> str:
    return _q(node) + (f":{_q(pop)}" if pop else "")


def _edge(edge: Edge) -> str:
    kind = edge.kind
    colour = COLOURS.get(kind, "#222222")
    where = f"across IXP {edge.via}" if edge.via else "private link"
    arrow = "\u2192" if edge.directed else "\u2014"
    tooltip = f"{kind} {edge.tail} {arrow} {edge.head} ({where})"
    style = "dashed" if edge.via else "solid"
    common = dict(id=edge.id, class_=f"session {kind} {'ixp' if edge.via else 'private'}",
                  color=colour, tooltip=tooltip, style=style, penwidth="1.3")
    if kind in ("transit", "partial-transit"):
        extra = dict(arrowhead="normal" if kind == "transit" else "empty", arrowsize="0.7",
                     label="partial" if kind == "partial-transit" else None,
                     fontcolor=colour if kind == "partial-transit" else None)
    elif kind == "paid-peering":
        extra = dict(arrowhead="odot", arrowsize="0.8", label="$", fontcolor=colour, constraint="false")
    elif kind == "route-server":
        extra = dict(dir="none", constraint="false", penwidth="0.9")
    else:
        extra = dict(dir="none", constraint="false", penwidth="1.6")
    return (f"  {_end(edge.tail_as, edge.tail_pop)} -> {_end(edge.head_as, edge.head_pop)} "
            + _attrs(**{**common, **extra}))


def _lan(lan: Lan) -> list[str]:
    width = max(1.6, 0.55 * (len(lan.members) + len(lan.route_servers)))
    lines = [f"  {_q(lan.id)} " + _attrs(
        id=lan.id, class_="ixp", shape="box", style="filled", fillcolor="#4d4d4d", color="#4d4d4d",
        fontcolor="white", fontsize="9", height="0.22", width=f"{width:.2f}", fixedsize="false",
        label=f"IXP {lan.name}  {lan.lan4}",
        tooltip=f"IXP {lan.name}: peering LAN {lan.lan4} {lan.lan6}; "
                f"members {', '.join(lan.members)}"
                + (f"; route servers {', '.join(lan.route_servers)}" if lan.route_servers else ""))]
    for member in (*lan.members, *lan.route_servers):
        lines.append(f"  {_q(member)} -> {_q(lan.id)} " + _attrs(
            id=f"port-{lan.name}-{member}", class_="port", dir="none", color="#bababa",
            penwidth="0.8", constraint="false", tooltip=f"{member}'s port on IXP {lan.name}"))
    return lines


def _legend(picture: Picture) -> list[str]:
    kinds = [k for k in KIND_TEXT if any(e.kind == k for e in picture.edges)]
    rows = []
    for kind in kinds:
        mark = "\u2192" if kind in ("transit", "partial-transit") else "\u2014"
        rows.append(f'<TR><TD ALIGN="LEFT"><FONT COLOR="{COLOURS[kind]}">{mark}</FONT></TD>'
                    f'<TD ALIGN="LEFT">{escape(KIND_TEXT[kind])}</TD></TR>')
    if any(e.via for e in picture.edges):
        rows.append('<TR><TD ALIGN="LEFT">- -</TD><TD ALIGN="LEFT">session across an IXP '
                    '(solid: private link)</TD></TR>')
    if not rows:
        return []
    label = ('<<TABLE BORDER="1" COLOR="#cccccc" CELLBORDER="0" CELLSPACING="0" CELLPADDING="2">'
             + "".join(rows) + "</TABLE>>")
    return [f"  \"legend\" {_attrs(id='legend', class_='legend', shape='plain', style='', fontsize='8', label=label)}"]


def to_dot(picture: Picture) -> str:
    """The DOT text of a picture (see the module docstring)."""
    out = [f"digraph {_q(picture.name)} {{",
           "  " + "graph " + _attrs(id="topology", class_="topology", rankdir="TB", newrank="true",
                                    nodesep="0.18", ranksep="0.55", splines="true",
                                    outputorder="edgesfirst", fontname=FONT, bgcolor="white",
                                    tooltip=f"topology {picture.name}"),
           "  node " + _attrs(fontname=FONT, fontsize="10", shape="box", style="rounded,filled",
                              color="#555555", penwidth="0.8", margin="0.06,0.03"),
           "  edge " + _attrs(fontname=FONT, fontsize="8"),
           ]
    # The row labels, chained invisibly: the backbone of the ranks.
    for i, label in enumerate(picture.rows):
        out.append(f"  {_q(f'row{i}')} " + _attrs(id=f"row{i}", class_="row", shape="plaintext",
                                                  style="", fontcolor="#8c8c8c", fontsize="9",
                                                  label=label))
    extra_row = len(picture.rows)
    if picture.legend:
        out.append(f"  {_q(f'row{extra_row}')} " + _attrs(shape="point", style="invis", label=""))
    chain = [_q(f"row{i}") for i in range(len(picture.rows) + (1 if picture.legend else 0))]
    if len(chain) > 1:
        out.append("  " + " -> ".join(chain) + " " + _attrs(style="invis"))
    for node in picture.nodes:
        role = node.role
        tooltip = (f"{node.name} AS{node.asn} ({role}"
                   + (f", tier {node.tier}" if node.tier else "") + ")"
                   + (f": {node.description}" if node.description and not node.description.startswith(
                       ("Tier", "regional", "stub", "route server")) else "")
                   + (f"; routers {', '.join(node.routers)}" if node.pops else "")
                   + (f"; prefixes {' '.join(node.prefixes)}" if node.prefixes else ""))
        out.append(f"  {_q(node.name)} " + _attrs(
            id=node.id, class_=f"as {role}", label=_node_label(node, picture.show_prefixes),
            fillcolor=ROLE_FILL.get(role, "#f7f7f7"), tooltip=tooltip,
            shape="hexagon" if role == "route-server" else None,
            style="filled" if role == "route-server" else None))
    for lan in picture.lans:
        out.extend(_lan(lan))
    for i in range(len(picture.rows)):
        members = [n.name for n in picture.nodes if n.row == i]
        members += [lan.id for lan in picture.lans if lan.row == i]
        out.append("  { rank=same; " + "; ".join(_q(m) for m in [f"row{i}", *members]) + "; }")
    for edge in picture.edges:
        out.append(_edge(edge))
    for link in picture.internal:
        pops = picture.by_name[link.system].pops
        a, b = link.a[len(link.system) + 1:], link.b[len(link.system) + 1:]
        if a in pops and b in pops:
            out.append(f"  {_end(link.system, a)} -> {_end(link.system, b)} " + _attrs(
                id=f"internal-{link.a}-{link.b}", class_="internal", dir="none", color="#bababa",
                style="dotted", constraint="false", label=str(link.cost), fontcolor="#8c8c8c",
                tooltip=f"internal link {link.a} \u2014 {link.b}, IGP cost {link.cost}"))
    if picture.legend:
        legend = _legend(picture)
        if legend:
            out.extend(legend)
            out.append(f"  {{ rank=same; {_q(f'row{extra_row}')}; \"legend\"; }}")
    out.append("}")
    return "\n".join(out) + "\n"
