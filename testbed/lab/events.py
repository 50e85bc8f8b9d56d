"""What happens to a running lab: depeerings, re-peerings, crashes, routes, policies.

Each event changes the lab through its router backend (or, for a cut link,
the kernel's interfaces) and the model's prediction (``Expectation``)
together, so that the next wait knows what to converge to. An
administrative depeering is one backend operation, ``admin_down``
(``admin_up`` undoes it); a link depeering sets both ends of the private
link down. ``session_held`` is the event of a router holding down a session
it closed at a maximum-prefix limit (the backend reports it): the
prediction then keeps that session down until a re-peer clears it.
Errors name the router, peer or prefix; the waits themselves are
``testbed.lab.converge``'s.
"""

from __future__ import annotations

import ipaddress

from testbed.errors import LabError
from testbed.linux import netns
from testbed.model.addressing import Plan
from testbed.model.prediction import Expectation
from testbed.routers.base import RouterBackend


class Events:
    """The events of one lab; each method returns once the lab and the prediction both changed."""

    def __init__(self, plan: Plan, expect: Expectation, backend: RouterBackend, nodes: dict):
        self.plan = plan
        self.expect = expect
        self.backend = backend
        self.nodes = nodes
        self.cut_links: set[frozenset] = set()
        backend.on_session_held = self.session_held

    def depeer(self, a: str, b: str, how: str = "admin") -> None:
        session = self.plan.session(a, b)
        if how == "admin":
            self.backend.admin_down(a, b)
        elif how == "link":
            self.set_link(session, up=False)
        else:
            raise LabError(f"unknown way to depeer {how!r}: use 'admin' or 'link'")
        self.expect.set_session(a, b, up=False)

    def repeer(self, a: str, b: str) -> None:
        session = self.plan.session(a, b)
        for x, y in ((a, b), (b, a)):
            if y in self.backend.admin_down_peers(x):
                self.backend.admin_up(x, y)
        if session.key in self.cut_links:
            self.set_link(session, up=True)
        self.expect.set_session(a, b, up=True)

    def session_held(self, router: str, peer: str) -> None:
        """``router`` holds its session with ``peer`` down (it closed it at a
        maximum-prefix limit): down in the prediction too, whatever the peer
        sends meanwhile, until ``repeer`` clears it."""
        self.expect.set_session(router, peer, up=False)

    def crash(self, router: str) -> None:
        self.backend.crash(router)
        for neighbor in self.plan.routers[router].neighbors:
            self.expect.set_session(router, neighbor.name, up=False)

    def announce(self, system: str, prefix: str, communities=(), large_communities=(),
                 as_path=()) -> None:
        from testbed.bgp.community import community_set, community_text, large_set, large_text

        try:
            tags = community_set(communities)
            large = large_set(large_communities)
        except ValueError as exc:
            raise LabError(f"announce {prefix} from {system}: {exc}") from None
        path = [int(a) for a in as_path]
        self.backend.originate(system, prefix, [community_text(c) for c in tags],
                               [large_text(c) for c in large], **({"as_path": path} if path else {}))
        self.expect.set_origin(system, normal(prefix), True, tags, large, as_path=path)

    def withdraw(self, system: str, prefix: str) -> None:
        self.backend.withdraw(system, prefix)
        self.expect.set_origin(system, normal(prefix), False)

    def set_policy(self, router: str, peer: str, policy: dict | None) -> None:
        from testbed.bgp.rules import PolicyError, parse_policy

        try:
            self.plan.routers[router].neighbor(peer)
        except KeyError:
            raise LabError(f"router {router!r} has no session with {peer!r}") from None
        try:
            parse_policy(policy, f"policy of {router} towards {peer}")
        except PolicyError as exc:
            raise LabError(str(exc)) from None
        self.backend.set_policy(router, peer, policy)
        self.expect.set_policy(router, peer, policy)

    def policy(self, router: str, peer: str) -> dict | None:
        """The policy ``router`` applies on its session with ``peer`` now."""
        if (router, peer) in self.expect.policies:
            return self.expect.policies[(router, peer)]
        return self.plan.routers[router].neighbor(peer).policy

    def set_link(self, session, up: bool) -> None:
        """Set both ends of a session's private link up or down."""
        if session.via is not None:
            raise LabError(f"the session {session.a}-{session.b} crosses IXP {session.via}: "
                           "cutting a port there would cut every session on it; depeer it with how='admin'")
        for router, peer in ((session.a, session.b), (session.b, session.a)):
            ifname = self.plan.routers[router].neighbor(peer).ifname
            with netns.iproute(self.nodes[router].pid) as ipr:
                ipr.link("set", index=ipr.link_lookup(ifname=ifname)[0], state="up" if up else "down")
        (self.cut_links.discard if up else self.cut_links.add)(session.key)


def normal(prefix: str) -> str:
    """A prefix in its normal form (``ipaddress``); ``ValueError`` if it is not one."""
    return str(ipaddress.ip_network(prefix, strict=True))
