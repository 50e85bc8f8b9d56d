"""Scenario tests that start from a known lab state, whatever ran before.

The tests of a scenario module share one lab, and each changes it (depeers,
re-peers, changes a policy, announces a hijack). So that a test does not
depend on its predecessors, running alone or after one that failed half-way,
each test declares the state it starts from, as the topology's baseline
plus a few differences, and ``bring_to`` takes the lab there before it
runs:

    @pytest.mark.lab_state(down=[("A", "B")])       # A has shut its session with B
    def test_repeering_restores_the_direct_path(lab): ...

A test without the marker starts from the baseline itself: every session
up, every policy as the topology sets it, every AS originating its own
prefixes and nothing else. The marker's keywords are those of ``bring_to``
(``state=function`` for keywords a function of the lab returns, for
values read from the lab; a bare function would be taken by pytest as the
thing the marker decorates).
The state is compared with the lab's own record of what it did (the
model's sessions, policies and originations), and only the differences are
undone or done, so when the tests run in order, each starting where the
one before ended, nothing is done; the lab is then checked to equal the
model's prediction (``wait_converged``, a question to each agent when
nothing changed; skipped then in a lab with BIRD or FRR routers, whose
wait is a quiet period). A crashed router cannot be brought back: that is
an error naming it.

The ``lab_state`` fixture applies the marker before each test that uses the
``lab`` fixture; a ``conftest.py`` turns it on for its directory by
importing it (``scenarios/conftest.py`` does).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping

import pytest

from testbed.bgp.community import community_set, large_set
from testbed.errors import LabError

# (a, b) or (a, b, how): a shuts its session with b ("admin"), or the link is cut ("link")
Down = tuple
# (router, prefix), (router, prefix, communities) or (router, prefix, communities, large communities)
Announced = tuple


def bring_to(lab, *, down: Iterable[Down] = (), policies: Mapping[tuple[str, str], dict | None] | None = None,
             announced: Iterable[Announced] = (), timeout: float = 60.0) -> list[str]:
    """Take ``lab`` to its baseline plus: the sessions in ``down`` depeered,
    the session policies in ``policies`` ((router, peer) -> policy) set,
    and the prefixes in ``announced`` originated as well. Does only what
    differs from the lab's present state, then waits until the lab equals
    the model's prediction. Returns what it did, one line per action (empty
    when the lab was already there)."""
    if lab.crashed:
        raise LabError(f"router(s) {', '.join(sorted(lab.crashed))} crashed in an earlier test: the lab "
                       "cannot be brought back to a known state (give that test a lab of its own)")
    plan = lab.plan
    done: list[str] = []

    # Policies: the topology's own, but for those named.
    wanted_policy = {(router.name, n.name): n.policy for router in plan.routers.values() for n in router.neighbors}
    for key, policy in (policies or {}).items():
        if key not in wanted_policy:
            raise LabError(f"lab_state: router {key[0]!r} has no session with {key[1]!r}")
        wanted_policy[key] = policy
    for (router, peer), policy in wanted_policy.items():
        if lab.policy(router, peer) != policy:
            lab.set_policy(router, peer, policy, wait=False)
            done.append(f"policy of {router} towards {peer} set to {policy}")

    # Sessions: every one up, but for those named.
    wanted_down: dict[frozenset, tuple[str, str, str]] = {}
    for entry in down:
        a, b, how = (*entry, "admin") if len(entry) == 2 else entry
        wanted_down[plan.session(a, b).key] = (a, b, how)
    slow = False
    disabled, cut = lab.disabled, set(lab.cut_links)  # router -> peers it holds down; cut links
    for session in plan.sessions:
        key = session.key
        is_down = key not in lab.expect.up
        residue = key in cut or session.b in disabled[session.a] or session.a in disabled[session.b]
        if key in wanted_down:
            a, b, how = wanted_down[key]
            if is_down and (b in disabled[a] if how == "admin" else key in cut):
                continue
            if is_down or residue:
                lab.repeer(a, b, wait=False)
            lab.depeer(a, b, how=how, wait=False)
            slow = slow or how == "link"
            done.append(f"{a} -- {b} depeered ({how})")
        elif is_down or residue:
            lab.repeer(session.a, session.b, wait=False)
            done.append(f"{session.a} -- {session.b} re-peered")

    # Originations: each router's own prefixes, and those named.
    wanted_origin = {name: {p: ((), ()) for p in router.prefixes} for name, router in plan.routers.items()}
    given: dict[tuple[str, str], tuple] = {}
    for entry in announced:
        router, prefix, communities, large = (*entry, (), ())[:4]
        if router not in wanted_origin:
            raise LabError(f"lab_state: no router named {router!r}")
        prefix = str(ipaddress.ip_network(prefix, strict=True))
        wanted_origin[router][prefix] = (community_set(communities), large_set(large))
        given[(router, prefix)] = (communities, large)
    replayed = getattr(lab.expect, "paths", {})  # (router, prefix) -> a replayed AS path
    for router, wanted in wanted_origin.items():
        now = lab.expect.originated[router]
        for prefix in sorted(set(now) - set(wanted)):
            lab.withdraw(router, prefix, wait=False)
            done.append(f"{router} withdrew {prefix}")
        for prefix, tags in wanted.items():
            if now.get(prefix) != tags or (router, prefix) in replayed:
                communities, large = given.get((router, prefix), ((), ()))
                lab.announce(router, prefix, wait=False, communities=communities, large_communities=large)
                done.append(f"{router} announced {prefix}")

    if done or not _has_foreign_routers(lab):
        lab.wait_converged(max(timeout, 3 * plan.hold_time + 10) if slow else timeout)
    return done


def _has_foreign_routers(lab) -> bool:
    """Whether the lab runs BIRD or FRR routers: its wait ends only after a
    quiet period (~0.7 s; the model cannot predict a foreign policy), too
    dear to spend on a lab nothing was done to."""
    from testbed.model.router_kinds import choices

    return any(choice.kind != "exabgp" for choice in choices(lab.topology).values())


def declared(request: pytest.FixtureRequest, lab) -> dict:
    """The keywords of the test's ``lab_state`` marker for ``bring_to``;
    ``state=function`` stands for those ``function(lab)`` returns (values
    read from the lab); {} without a marker."""
    marker = request.node.get_closest_marker("lab_state")
    if marker is None:
        return {}
    if marker.args:
        raise pytest.UsageError(f"{request.node.nodeid}: lab_state takes keywords only "
                                "(down=, policies=, announced=, or state=function of the lab)")
    kwargs = dict(marker.kwargs)
    make: Callable | None = kwargs.pop("state", None)
    return {**make(lab), **kwargs} if make is not None else kwargs


@pytest.fixture(autouse=True)
def lab_state(request: pytest.FixtureRequest):
    """Before a test that uses ``lab``: bring the lab to the state its
    ``lab_state`` marker declares (the baseline without one)."""
    if "lab" in request.fixturenames:
        lab = request.getfixturevalue("lab")
        bring_to(lab, **declared(request, lab))
    yield
