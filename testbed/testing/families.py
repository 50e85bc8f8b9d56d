"""Which ASes of a lab take part in each address family's checks.

An AS whose prefixes are all IPv6 (or all IPv4) has hosts with addresses
of that family only: a reachability matrix of the other family must leave
it out rather than report it unreachable. ``systems_with(lab, family)``
lists the ASes with hosts that have an address of ``family``;
``families_of(lab)`` the families any host has.
"""

from __future__ import annotations


def _has(host, family: int) -> bool:
    return bool(host.address4 if family == 4 else host.address6)


def systems_with(lab, family: int) -> list[str]:
    """ASes (in the plan's order) whose first host has an address of ``family``."""
    names = []
    for name in lab.plan.systems:
        hosts = lab.plan.hosts_of(name)
        if hosts and _has(hosts[0], family):
            names.append(name)
    return names


def families_of(lab) -> list[int]:
    """The address families of the lab's hosts: ``[4, 6]``, ``[4]`` or ``[6]``."""
    return [f for f in (4, 6) if any(_has(h, f) for h in lab.plan.hosts.values())]
