"""Assertions about a running lab whose failures read in BGP terms.

Each helper checks one outcome and, when it fails, says which router, which
prefix, which session, and what was expected against what was found, with
the evidence (candidate routes, last NOTIFICATION) a network engineer would
ask for next.
"""

from __future__ import annotations

from .lab import Lab


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
        if kernel.get(prefix) != route["next_hop"]:
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


def assert_traceroute(lab: Lab, src: str, dst: str, expected: list[str], family: int = 4) -> None:
    """The packets from ``src`` to ``dst`` cross exactly the ASes ``expected``
    (AS names, source and destination included)."""
    actual = lab.as_traceroute(src, dst, family=family)
    if actual != list(expected):
        hops = lab.traceroute(src, dst, family=family)
        detail = ", ".join(f"{h.ttl}:{h.address or '*'}" for h in hops)
        raise AssertionError(f"traffic {src} -> {dst} crossed ASes {actual}, expected {list(expected)} "
                             f"(hops {detail})")
