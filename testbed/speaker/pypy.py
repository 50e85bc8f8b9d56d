"""The ``zygote-pypy`` process model: the same zygote, run by PyPy.

A lab of this model starts its zygote (``testbed.speaker.zygote``) with the
PyPy interpreter of a separate virtual environment (``scripts/setup-pypy.sh``
builds it: Debian's ``pypy3``, Python 3.9 language level, with the speaker's
pinned ExaBGP and pyroute2); every speaker and its agent thread are then
forks of a PyPy process. ``interpreter`` finds that environment (or says how
to make it); ``warm_up`` runs in the zygote before its first fork, so that
every child inherits the machine code PyPy's JIT made for the per-route
path instead of each compiling it again (an experiment, off unless
``TESTBED_PYPY_WARM`` asks: it did not help, see ``WARM_ROUNDS``): it drives representative UPDATEs
through ExaBGP's parser and encoder and the route agent's engine (its
Adj-RIB-In, best path, policy and the actions it returns), all in memory,
no socket and no kernel.

Data in: the environment (``TESTBED_PYPY``: the interpreter to use, else
``<checkout>/.venv-pypy/bin/python``); out: a path, or ``MissingDependency``.
"""

from __future__ import annotations

import contextlib
import os
import platform
import time
from pathlib import Path

from testbed.errors import MissingDependency

MODEL = "zygote-pypy"
PACKAGE_ROOT = Path(__file__).resolve().parents[2]
VENV = PACKAGE_ROOT / ".venv-pypy"
# UPDATEs (and routes) through each warmed path when asked for: 300 took
# 0.20 s cold and 0.02 s once 3,000 had run (the JIT's traces compiled).
# Off by default: it made no difference to the speakers' CPU at 100 ASes
# (docs/benchmark.md), since PyPy attaches the machine code to the loop that
# ran hot (the warm-up's), which no speaker runs; a function gets its own
# only once called ~1,600 times in one process.
WARM_ROUNDS = 3000


def interpreter() -> str:
    """The PyPy of the ``zygote-pypy`` model; ``MissingDependency`` saying
    how to install it if it is not there."""
    chosen = os.environ.get("TESTBED_PYPY")
    path = Path(chosen) if chosen else VENV / "bin" / "python"
    if not os.access(path, os.X_OK):
        where = f"TESTBED_PYPY={chosen}" if chosen else str(path)
        raise MissingDependency(f"the {MODEL} process model needs PyPy's environment ({where} is "
                                "missing): run scripts/setup-pypy.sh as root")
    return str(path)


# PyPy sizes its GC's nursery from the CPU's last-level cache: 240 MB on
# these virtual machines (they report 480 MiB of L3), and every speaker
# writes through all of its own (66 MB private per speaker a minute after
# the fork). 4 MB is about what PyPy picks on a machine with an 8 MB cache.
NURSERY = "4MB"


def zygote_options() -> dict:
    """What ``ZygoteClient`` takes to start the zygote on PyPy."""
    # Its start (imports, then the warm-up) takes 3-4 s of CPU where
    # CPython's takes 1: on a loaded machine, well over the 15 s allowed.
    return {"python": interpreter(), "python_env": {"PYPY_GC_NURSERY": NURSERY}, "ready_timeout": 60.0}


def running() -> bool:
    return platform.python_implementation() == "PyPy"


def configure_jit() -> str | None:
    """``TESTBED_PYPY_JIT``: PyPy's JIT parameters for the zygote and every
    speaker (``off``, or ``threshold=200,function_threshold=300``...: what
    ``pypyjit.set_param`` takes), for experiments; what was set."""
    setting = os.environ.get("TESTBED_PYPY_JIT")
    if not setting or not running():
        return None
    import pypyjit

    pypyjit.set_param(setting)
    return setting


def warm_rounds() -> int:
    """``TESTBED_PYPY_WARM``: rounds of the warm-up (none if unset or 0;
    ``WARM_ROUNDS`` is what was measured)."""
    return int(os.environ.get("TESTBED_PYPY_WARM") or 0)


def warm_up(rounds: int = WARM_ROUNDS) -> dict:
    """Run the per-route paths ``rounds`` times in this process (the zygote,
    before it forks); what was done and how long it took."""
    t0 = time.monotonic()
    with _exabgp_defaults():
        parsed = _exabgp_updates(rounds)
    routes = _agent_routes(rounds)
    return {"updates": parsed, "routes": routes, "s": round(time.monotonic() - t0, 3)}


@contextlib.contextmanager
def _exabgp_defaults():
    """ExaBGP's environment read from its defaults for the duration, then
    unread again: each speaker reads its own router's after the fork
    (``testbed.speaker.child.read_exabgp_environment``), and ExaBGP reads
    it only once."""
    from exabgp.environment import setup
    from exabgp.environment.environment import Env
    from exabgp.logger.option import option

    if Env._setup:
        raise RuntimeError("ExaBGP's environment was read before the warm-up")
    saved = {k: v for k, v in os.environ.items() if k.lower().startswith("exabgp")}
    definition = Env.definition
    for key in saved:
        del os.environ[key]
    logger, option.logger = option.logger, _Silent()  # no log: DEBUG is off
    try:
        Env.setup(setup.CONFIGURATION)
        yield
    finally:
        option.logger = logger
        Env._env.clear()
        Env._setup, Env.definition = False, definition
        os.environ.update(saved)


class _Silent:
    def __getattr__(self, level):
        return lambda *args, **kwargs: None


def _exabgp_updates(rounds: int) -> int:
    """Parse and re-encode UPDATEs as a speaker does for its peers: the
    wire bytes through ``Update.unpack_message`` and back through
    ``Update.messages`` for a four-byte-AS peer."""
    from exabgp.bgp.message import Action
    from exabgp.bgp.message.direction import Direction
    from exabgp.bgp.message.open.asn import ASN
    from exabgp.bgp.message.open.capability.negotiated import Negotiated
    from exabgp.bgp.message.update import Update
    from exabgp.bgp.neighbor import Neighbor
    from exabgp.bgp.message.update.attribute import Attributes
    from exabgp.bgp.message.update.attribute.aspath import SEQUENCE, ASPath
    from exabgp.bgp.message.update.attribute.nexthop import NextHop
    from exabgp.bgp.message.update.attribute.origin import Origin
    from exabgp.bgp.message.update.nlri.cidr import CIDR
    from exabgp.bgp.message.update.nlri.inet import INET
    from exabgp.protocol.family import AFI, SAFI
    from exabgp.protocol.ip import IP

    negotiated = Negotiated(Neighbor())  # a default neighbor: four-byte ASNs, no ADD-PATH
    negotiated.asn4 = True
    negotiated.families = [(AFI.ipv4, SAFI.unicast), (AFI.ipv6, SAFI.unicast)]
    negotiated.local_as, negotiated.peer_as = ASN(65001), ASN(65002)
    count = 0
    for i in range(rounds):
        attributes = Attributes()
        attributes.add(Origin(Origin.IGP))
        attributes.add(ASPath([SEQUENCE([ASN(a) for a in (65001, 64500 + i % 50, 64600 + i % 7, 64700)])]))
        attributes.add(NextHop("10.0.0.1", IP.pton("10.0.0.1")))
        nlris = []
        for j in range(1 + i % 3):
            nlri = INET(AFI.ipv4, SAFI.unicast, Action.ANNOUNCE)
            nlri.cidr = CIDR(bytes([10, i % 256, j, 0]), 24)
            nlri.nexthop = IP.create("10.0.0.1")
            nlris.append(nlri)
        for message in Update(nlris, attributes).messages(negotiated):
            Update.unpack_message(message[19:], Direction.IN, negotiated)
            count += 1
    return count


def _agent_routes(rounds: int) -> int:
    """Feed received routes to a route engine as an agent does, then
    withdraw them: import policy, best path, export to the other peers."""
    from testbed.bgp import Relationship, Route
    from testbed.bgp.engine import RouterEngine
    from testbed.bgp.route import Neighbor

    neighbors = [Neighbor(address=f"10.0.{k}.2", asn=65100 + k, relationship=relationship,
                          router_id=f"10.0.{k}.2", local_address=f"10.0.{k}.1")
                 for k, relationship in enumerate((Relationship.CUSTOMER, Relationship.PEER,
                                                   Relationship.PROVIDER))]
    engine = RouterEngine(65001, "10.255.0.1", neighbors)
    for neighbor in neighbors:
        engine.session_up(neighbor.address)
    count = 0
    for i in range(rounds):
        neighbor = neighbors[i % len(neighbors)]
        prefix = f"198.{18 + i % 2}.{i % 256}.0/24"
        route = Route(prefix, neighbor.address, (neighbor.asn, 64500 + i % 40))
        engine.receive(neighbor.address, [route], [])
        if i % 4 == 3:
            engine.receive(neighbor.address, [], [prefix])
        count += 1
    return count
