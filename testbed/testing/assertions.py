"""Assertions about a running lab whose failures read in BGP terms.

Each helper checks one outcome and, when it fails, says which router, which
prefix, which session, and what was expected against what was found, with
the evidence (candidate routes, last NOTIFICATION) a network engineer would
ask for next.
"""

from __future__ import annotations

import time

from testbed.bgp import Route
from testbed.bgp.engine import kernel_target
from testbed.lab.lab import Lab
from testbed.testing.families import families_of, systems_with

__all__ = [
    "assert_established",
    "assert_session_down",
    "assert_as_path",
    "assert_route",
    "assert_no_route",
    "assert_reachable",
    "assert_unreachable",
    "assert_traceroute",
    "valley",
    "assert_valley_free",
    "leaks",
    "assert_no_leak",
    "assert_prefers",
    "assert_forwarding_follows_bgp",
    "reachability",
    "format_matrix",
    "assert_reachability",
    "interconnections",
    "exchanged_bytes",
    "assert_traffic_ratio",
    "announcements",
    "assert_consistent_announcements",
]


def _candidates(lab: Lab, router: str, prefix: str) -> str:
    snap = lab.snapshot(router)
    lines = []
    for address, rib in sorted(snap["adj_rib_in"].items()):
        route = rib.get(prefix)
        if route is None:
            continue
        name = snap["sessions"].get(address, {}).get("name", address)
        verdict = f"rejected: {route['rejected']}" if route.get("rejected") else "accepted"
        lines.append(f"    from {name}: AS path {lab.names(route['as_path'])}, {verdict}")
    return "\n".join(lines) if lines else "    (no neighbor sent it)"


def assert_established(lab: Lab, a: str, b: str) -> None:
    """The BGP session between ``a`` and ``b`` is Established on both sides."""
    for x, y in ((a, b), (b, a)):
        state = lab.sessions(x).get(y)
        if state is None:
            raise AssertionError(f"router {x} has no BGP session with {y}")
        if state["state"] != "established":
            note = state.get("last_notification")
            raise AssertionError(
                f"BGP session {x} -> {y} is not Established: {x} sees it as {state['state']!r}"
                + (f" ({state['reason']})" if state.get("reason") else "")
                + (f"; last NOTIFICATION {note}" if note else ""))


def assert_session_down(lab: Lab, a: str, b: str) -> None:
    """The BGP session between ``a`` and ``b`` is not Established on either side."""
    for x, y in ((a, b), (b, a)):
        state = lab.sessions(x).get(y)
        if state is not None and state["state"] == "established":
            raise AssertionError(f"BGP session {x} -> {y} is still Established")


def assert_as_path(lab: Lab, router: str, target: str, expected: list[str], family: int = 4) -> None:
    """At ``router``, the best route to ``target`` (AS name or prefix) has
    the AS path ``expected`` (AS names, nearest first)."""
    prefix = lab.prefix_of(target, family)
    route = lab.route(router, prefix)
    if route is None:
        raise AssertionError(f"at router {router}, prefix {prefix} ({target}) is missing; "
                             f"expected AS path {expected}. Candidates:\n{_candidates(lab, router, prefix)}")
    actual = lab.names(route["as_path"])
    if actual != list(expected):
        raise AssertionError(f"at router {router}, the AS path to {prefix} ({target}) is {actual}, "
                             f"expected {list(expected)}. Candidates:\n{_candidates(lab, router, prefix)}")


def assert_route(lab: Lab, router: str, target: str, family: int = 4) -> dict:
    """``router`` has a best route to ``target`` and it is in its kernel."""
    prefix = lab.prefix_of(target, family)
    route = lab.route(router, prefix)
    if route is None:
        raise AssertionError(f"prefix {prefix} ({target}) is missing at router {router}. "
                             f"Candidates:\n{_candidates(lab, router, prefix)}")
    if route.get("next_hop"):
        kernel = lab.kernel_routes(router)
        target = kernel_target(Route.from_json(route))  # the next hop, or "blackhole"
        expected = lab.plan.routers[router].kernel_next_hop(target)  # an iBGP next hop: the IGP's first hop
        if kernel.get(prefix) != expected:
            raise AssertionError(f"router {router} chose {prefix} via {route['next_hop']} but its "
                                 f"kernel has {kernel.get(prefix) or 'no BGP route'} for it")
    return route


def assert_no_route(lab: Lab, router: str, target: str, family: int = 4) -> None:
    """``router`` has no route to ``target``, neither in BGP nor in the kernel."""
    prefix = lab.prefix_of(target, family)
    route = lab.route(router, prefix)
    if route is not None:
        raise AssertionError(f"router {router} still has a route to {prefix} ({target}): "
                             f"AS path {lab.names(route['as_path'])} via {route['next_hop']}")
    if prefix in lab.kernel_routes(router):
        raise AssertionError(f"router {router} has no BGP route to {prefix} but its kernel still does")


def assert_reachable(lab: Lab, src: str, dst: str, family: int = 4) -> None:
    """Packets from ``src`` reach ``dst`` and come back."""
    result = lab.ping(src, dst, family=family)
    if not result.received:
        raise AssertionError(f"{src} cannot reach {dst} over IPv{family} "
                             f"({result.sent} echo requests to {result.destination}, no reply)")


def assert_unreachable(lab: Lab, src: str, dst: str, family: int = 4) -> None:
    """No packet from ``src`` gets an answer from ``dst``."""
    result = lab.ping(src, dst, family=family, count=2, timeout=0.5)
    if result.received:
        raise AssertionError(f"{src} still reaches {dst} over IPv{family} "
                             f"({result.received}/{result.sent} replies)")


def _as_traceroute(lab: Lab, src: str, dst: str, family: int, expected: list[str]) -> list[str]:
    """``lab.as_traceroute``, asked again a few times while it differs from
    ``expected``: right after a link comes back, IPv6 neighbour discovery on
    it may still be under way (the router answers "address unreachable"),
    and a data plane that settles within a second is not a wrong path."""
    actual = lab.as_traceroute(src, dst, family=family)
    for _ in range(5):
        if actual == expected:
            break
        time.sleep(0.2)
        actual = lab.as_traceroute(src, dst, family=family)
    return actual


def assert_traceroute(lab: Lab, src: str, dst: str, expected: list[str], family: int = 4) -> None:
    """The packets from ``src`` to ``dst`` cross exactly the ASes ``expected``
    (AS names, source and destination included)."""
    actual = _as_traceroute(lab, src, dst, family, list(expected))
    if actual != list(expected):
        hops = lab.traceroute(src, dst, family=family)
        detail = ", ".join(f"{h.ttl}:{h.address or '*'}" for h in hops)
        raise AssertionError(f"traffic {src} -> {dst} crossed ASes {actual}, expected {list(expected)} "
                             f"(hops {detail})")


# -- assertions that know about relationships ---------------------------------

def _neighbors_of(plan, system: str):
    for router in plan.systems.get(system) or ((system,) if system in plan.routers else ()):
        yield from plan.routers[router].neighbors


def _relation(plan, x: str, y: str) -> str | None:
    """What AS ``y`` is to AS ``x`` ("customer", "peer", "provider"), with
    two clients of one route server counting as peers; None if unrelated."""
    servers = set()
    for neighbor in _neighbors_of(plan, x):
        if neighbor.peer_system == y:
            # Route server and client are peers: neither sells the other transit.
            return "peer" if neighbor.relationship in ("route-server", "rs-client") else neighbor.relationship
        if neighbor.relationship == "route-server":
            servers.add(neighbor.peer_system)
    if any(n.peer_system in servers for n in _neighbors_of(plan, y)):
        return "peer"
    return None


def _collapse(names: list[str]) -> list[str]:
    out: list[str] = []
    for name in names:
        if not out or out[-1] != name:
            out.append(name)
    return out


def valley(plan, path: list[str]) -> str | None:
    """Why the AS path ``path`` (AS names, from the router holding the route
    to the origin) is not valley-free, or None if it is.

    The route travelled from the origin (last) to the router (first); each
    hop went up (customer to provider), across (peer to peer, at most once)
    or down (provider to customer), and valley-free means up*, across?,
    down* (Gao-Rexford)."""
    hops = _collapse(path)
    phase = "up"
    for i in range(len(hops) - 1, 0, -1):
        sender, receiver = hops[i], hops[i - 1]
        what = _relation(plan, sender, receiver)
        if what is None:
            return f"{sender} and {receiver} are not neighbors"
        step = {"provider": "up", "peer": "across", "customer": "down"}[what]
        if step == "up" and phase != "up":
            return f"{sender} gave {receiver} (its provider) a route it learned from a peer or provider"
        if step == "across":
            if phase != "up":
                return f"{sender} gave {receiver} (its peer) a route it learned from a peer or provider"
            phase = "across"
        elif step == "down":
            phase = "down"
    return None


def assert_valley_free(lab: Lab, routers: list[str] | None = None) -> None:
    """Every best path at every router (or at ``routers``) is valley-free."""
    offences = []
    for router in routers or lab.plan.routers:
        if lab.plan.routers[router].route_server:
            continue
        for prefix, route in sorted(lab.loc_rib(router).items()):
            if route.get("neighbor") is None:
                continue
            path = [lab.plan.system_of(router)] + lab.names(route["as_path"])
            why = valley(lab.plan, path)
            if why:
                offences.append(f"  at {router}: {prefix} via {' '.join(path[1:])}: {why}")
    if offences:
        raise AssertionError("best paths that are not valley-free:\n" + "\n".join(offences))


def leaks(lab: Lab) -> list[str]:
    """Every route a router sent to a peer, provider or route server that it
    had learned from a peer, provider or route server: one line each."""
    found = []
    for router, plan in lab.plan.routers.items():
        if plan.route_server:
            continue
        snap = lab.snapshot(router)
        best = snap["loc_rib"]
        for neighbor in plan.neighbors:
            if neighbor.relationship not in ("peer", "provider", "route-server"):
                continue
            for prefix in sorted(snap["adj_rib_out"].get(neighbor.address, {})):
                source = best.get(prefix)
                learned = None if source is None or source.get("neighbor") is None else source.get("relationship")
                if learned in ("peer", "provider", "route-server"):
                    found.append(f"  {router} sent {prefix} (AS path {lab.names(source['as_path'])}, learned "
                                 f"from its {learned}) to its {neighbor.relationship} {neighbor.name}")
    return found


def assert_no_leak(lab: Lab) -> None:
    """No router sent a route learned from a peer or provider to another peer
    or provider (RFC 7908 route leak, type 1-4)."""
    found = leaks(lab)
    if found:
        raise AssertionError("route leaks:\n" + "\n".join(found))


def assert_prefers(lab: Lab, router: str, target: str, chosen: str, over: str, family: int = 4) -> None:
    """At ``router``, the best route to ``target`` was learned from a
    neighbor of relationship ``chosen`` although one from ``over`` is
    available (e.g. ``chosen="customer", over="peer"``)."""
    prefix = lab.prefix_of(target, family)
    snap = lab.snapshot(router)
    best = snap["loc_rib"].get(prefix)
    kinds = {}
    for address, rib in snap["adj_rib_in"].items():
        route = rib.get(prefix)
        if route is not None and not route.get("rejected"):
            kinds.setdefault(route["relationship"], []).append(snap["sessions"][address]["name"])
    if over not in kinds:
        raise AssertionError(f"at {router}, no route to {prefix} ({target}) from a {over} to compare "
                             f"with; candidates:\n{_candidates(lab, router, prefix)}")
    if best is None or best.get("relationship") != chosen:
        got = "no route" if best is None else (
            f"the route from its {best.get('relationship')} (AS path {lab.names(best['as_path'])})")
        raise AssertionError(f"at {router}, the best route to {prefix} ({target}) is {got}, expected the "
                             f"one from its {chosen}; candidates:\n{_candidates(lab, router, prefix)}")


def assert_forwarding_follows_bgp(lab: Lab, src: str, dst: str, family: int = 4) -> list[str]:
    """The ASes the packets from ``src`` to ``dst`` cross (traceroute) are
    the AS path of the best route at ``src``'s router (prepending ignored).
    Returns that path."""
    system = lab.host(src).system
    target = lab.host(dst).system if (dst in lab.plan.hosts or lab.plan.hosts_of(dst)) else dst
    route = lab.route(lab.plan.systems.get(system, (system,))[0], target, family)
    if route is None:
        raise AssertionError(f"{system} has no route to {target} over IPv{family}")
    control = _collapse([system] + lab.names(route["as_path"]))
    data = _as_traceroute(lab, src, dst, family, control)
    if data != control:
        raise AssertionError(f"traffic {src} -> {dst} crossed {data}, but the BGP best path at {system} "
                             f"is {control}")
    return control


def reachability(lab: Lab, family: int = 4, systems: list[str] | None = None) -> dict[tuple[str, str], bool]:
    """(source AS, destination AS) -> whether a ping from the source's first
    host gets an answer from the destination's, for every ordered pair of
    ASes with hosts (or of ``systems``)."""
    names = systems or systems_with(lab, family)
    return {(a, b): lab.reachable(a, b, family=family) for a in names for b in names if a != b}


def format_matrix(matrix: dict[tuple[str, str], bool]) -> str:
    """A reachability matrix as a table: rows are sources, columns destinations."""
    names = sorted({a for a, _ in matrix} | {b for _, b in matrix})
    width = max(len(n) for n in names) + 1
    lines = [" " * width + " ".join(n.rjust(width) for n in names)]
    for a in names:
        cells = ["-" if a == b else ("ok" if matrix.get((a, b)) else "NO") for b in names]
        lines.append(a.ljust(width) + " ".join(c.rjust(width) for c in cells))
    return "\n".join(lines)


def assert_reachability(lab: Lab, expected: dict[tuple[str, str], bool] | None = None,
                        family: int | None = None) -> dict:
    """Every pair of ASes reaches each other (or as ``expected`` says, for
    the pairs it lists), in ``family`` among the ASes whose hosts have that
    family; by default in each family the lab's hosts have, and then the
    result is ``{4: matrix, 6: matrix}``. A failure prints the whole matrix."""
    if family is None:
        return {f: assert_reachability(lab, expected, f) for f in families_of(lab)}
    matrix = reachability(lab, family)
    wrong = [(pair, ok) for pair, ok in matrix.items()
             if (expected.get(pair, True) if expected is not None else True) != ok]
    if wrong:
        listed = ", ".join(f"{a}->{b} {'reachable' if ok else 'unreachable'}" for (a, b), ok in wrong)
        raise AssertionError(f"IPv{family} reachability differs from what was expected ({listed}):\n"
                             + format_matrix(matrix))
    return matrix


# -- peering agreements --------------------------------------------------------

def interconnections(lab: Lab, a: str, b: str) -> list[tuple[str, str]]:
    """(router of AS ``a``, router of AS ``b``) for every BGP session between
    the two ASes: their interconnection points."""
    found = []
    for router in lab.plan.systems.get(a, (a,)):
        for neighbor in lab.plan.routers[router].neighbors:
            if neighbor.peer_system == b:
                found.append((router, neighbor.name))
    return found


def exchanged_bytes(lab: Lab, a: str, b: str) -> tuple[int, int]:
    """(bytes sent from AS ``a`` to AS ``b``, bytes from ``b`` to ``a``) so
    far, summed over their private interconnects (interface counters at
    ``a``'s end)."""
    sent = received = 0
    for router, peer in interconnections(lab, a, b):
        if lab.plan.routers[router].neighbor(peer).via is not None:
            continue  # an IXP port carries every member's traffic
        counters = lab.counters(router, peer)
        sent += counters["tx_bytes"]
        received += counters["rx_bytes"]
    return sent, received


def assert_traffic_ratio(a_to_b: int, b_to_a: int, max_ratio: float, a: str = "a", b: str = "b") -> float:
    """The larger direction carries at most ``max_ratio`` times the smaller
    (the traffic-ratio clause of many peering agreements). Returns the
    ratio."""
    if a_to_b == 0 and b_to_a == 0:
        raise AssertionError(f"no traffic measured between {a} and {b}: no ratio to check")
    high, low = max(a_to_b, b_to_a), min(a_to_b, b_to_a)
    ratio = float("inf") if low == 0 else high / low
    if ratio > max_ratio:
        heavy = f"{a} -> {b}" if a_to_b >= b_to_a else f"{b} -> {a}"
        raise AssertionError(f"traffic ratio {ratio:.2f}:1 exceeds the agreed {max_ratio:g}:1 "
                             f"({a} -> {b} {a_to_b} bytes, {b} -> {a} {b_to_a} bytes; heavier: {heavy})")
    return ratio


def announcements(lab: Lab, a: str, b: str) -> dict[tuple[str, str], set[str]]:
    """The prefixes AS ``a`` announces to AS ``b`` at each interconnection
    point (from ``a``'s Adj-RIBs-Out)."""
    out = {}
    for router, peer in interconnections(lab, a, b):
        address = lab.plan.routers[router].neighbor(peer).address
        out[(router, peer)] = set(lab.snapshot(router)["adj_rib_out"].get(address, {}))
    return out


def assert_consistent_announcements(lab: Lab, a: str, b: str) -> set[str]:
    """AS ``a`` announces the same prefixes to AS ``b`` at every
    interconnection point (a common clause: it lets ``b`` hand traffic over
    at the nearest point). Returns the prefixes."""
    seen = announcements(lab, a, b)
    if not seen:
        raise AssertionError(f"AS {a} and AS {b} have no session")
    everywhere = set.union(*seen.values())
    gaps = [f"  at {r} -> {p}: missing {sorted(everywhere - prefixes)}"
            for (r, p), prefixes in sorted(seen.items()) if everywhere - prefixes]
    if gaps:
        raise AssertionError(f"{a} does not announce the same routes to {b} at every "
                             f"interconnection point:\n" + "\n".join(gaps))
    return everywhere
