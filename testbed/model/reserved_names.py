"""Names the address plan gives kernel objects itself, which no AS may take.

An IXP's namespace holds its bridge (``plans.IXP_BRIDGE``), its
loopback ``lo`` and one port per member router named after the router; the
kernel also refuses ``all`` and ``default`` as interface names (they are
its per-protocol settings directories). A member named like one of these
would fail at start with "File exists" or "Invalid argument", so
validation refuses the name first, with the reason. Pure data: validation
calls ``reserved_name_problem``.
"""

from __future__ import annotations

from testbed.model.plans import IXP_BRIDGE

RESERVED = {
    IXP_BRIDGE: "the address plan names each IXP's bridge so",
    "lo": "it is every namespace's loopback interface",
    "all": "the kernel keeps its settings for all interfaces under that name",
    "default": "the kernel keeps the settings of new interfaces under that name",
}


def reserved_name_problem(kind: str, name: object) -> str | None:
    """Why ``name`` cannot be the name of a router (an AS's), or ``None``."""
    if isinstance(name, str) and name in RESERVED:
        return (f"{kind} name {name!r} is reserved: {RESERVED[name]} (its routers' ports on an IXP "
                "are named after them); choose another name")
    return None
