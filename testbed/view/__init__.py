"""Pictures of topologies: the AS-level graph in the field's conventions.

Three pure stages and one call to Graphviz: ``picture(topology)`` reads a
validated topology and its address plan into a ``Picture`` (plain data:
ASes with their tier and PoPs, BGP sessions with their kind, IXP LANs);
``to_dot(picture)`` writes it as DOT text; ``render(dot, "svg")`` runs
Graphviz's ``dot`` (argv, no shell) and returns the bytes. Every SVG element
of an AS has the id ``as-<name>``, of a session ``session-<router>-<router>``
(the two router names sorted), of an IXP ``ixp-<name>``, with classes
naming its kind, so a page (the HTML report, a live view) can highlight a
path or colour a session without knowing the layout. ``Picture.index()``
gives the same names as data for such a page.
"""

from .dot import to_dot
from .picture import Edge, Lan, Node, Picture, picture, session_id
from .render import GraphvizMissing, inline_svg, render

__all__ = ["Edge", "GraphvizMissing", "Lan", "Node", "Picture", "inline_svg", "picture", "render",
           "session_id", "to_dot"]
