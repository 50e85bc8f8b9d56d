"""The one gate around ExaBGP's internals: what we patch, and the check that
it is still what we patched.

Code of ``testbed.speaker`` replaces, wraps or re-implements a few private
functions of ExaBGP (written for ``EXABGP_VERSION``) and relies on a few
more. Each is a ``Patch`` in ``PATCHES``: its name, the ExaBGP function it
concerns (``module:qualified.name``), which of our modules does it, how
(``replaces``, ``wraps``, ``reimplements``, ``relies``) and the sha256 of
that function's source (``inspect.getsource``) in the version it was
written for. ``verify`` compares the installed ExaBGP with all of it and
raises ``CompatError`` naming every patch whose original differs (or the
version); ``replace`` applies one patch, after that check, so nothing is
ever patched silently on code it was not written for. The zygote verifies
once before it forks (its speakers inherit the verdict). After an ExaBGP
upgrade, ``python -m testbed.speaker.compat`` prints every digest as found,
for review of each patch against its new original.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import sys
from typing import NamedTuple

from testbed.errors import TestbedError

EXABGP_VERSION = "5.0.15"


class CompatError(TestbedError):
    """The installed ExaBGP is not the one a patch was written for."""


class Patch(NamedTuple):
    name: str
    target: str   # "exabgp.module:Class.function": the original
    by: str       # our module that does it
    how: str      # replaces, wraps, reimplements (copies its logic), relies (on its behaviour)
    digest: str   # sha256 (first 16 hex digits) of the original's source


_S, _R, _H, _Z, _B = ("testbed.speaker.speedups", "testbed.speaker.reactor", "testbed.speaker.handover",
                      "testbed.speaker.child", "testbed.speaker.batching")
_P = "testbed.speaker.packing"
_SH = "testbed.speaker.sharing"
_PF = "testbed.speaker.prefixes"
_RC = "testbed.speaker.receiving"

PATCHES: dict[str, Patch] = {p.name: p for p in (
    Patch("afi-create", "exabgp.protocol.family:AFI.create", _S, "replaces", "e3572ad165fdaab7"),
    Patch("safi-create", "exabgp.protocol.family:SAFI.create", _S, "replaces", "4fac2e5ab4213303"),
    Patch("family-index", "exabgp.protocol.family:Family.index", _S, "replaces", "c01df7ddc9420435"),
    Patch("family-family", "exabgp.protocol.family:Family.family", _S, "replaces", "137dc8f00d925c6e"),
    Patch("log-debug", "exabgp.logger:_log.debug", _S, "wraps", "ab6001acaee2d55a"),
    Patch("inet-unpack", "exabgp.bgp.message.update.nlri.inet:INET.unpack_nlri", _S, "wraps",
          "f3a2f4e158406eae"),
    Patch("nlri-unpack", "exabgp.bgp.message.update.nlri.nlri:NLRI.unpack_nlri", _S, "replaces",
          "c8bac328c0f4b382"),
    Patch("listener-incoming", "exabgp.reactor.listener:Listener.incoming", _S, "replaces",
          "c95257c15ffba6cf"),
    Patch("reactor-wait", "exabgp.reactor.loop:Reactor._wait_for_io", _R, "wraps", "abe9694fbe6f8686"),
    Patch("reactor-active-peers", "exabgp.reactor.loop:Reactor.active_peers", _R, "wraps",
          "163a6e3b7080e056"),
    Patch("peer-run", "exabgp.reactor.peer:Peer.run", _R, "wraps", "c00bb5613e406b4f"),
    Patch("helper-lost", "exabgp.reactor.api.processes:Processes._handle_problem", _R, "wraps",
          "9f3e80dac1cd0a56"),
    Patch("helper-start", "exabgp.reactor.api.processes:Processes._start", "testbed.speaker.helpers", "wraps",
          "3b7435641454714f"),
    Patch("api-process", "exabgp.reactor.api:API.process", _H, "wraps", "577ac15463d05088"),
    Patch("async-run", "exabgp.reactor.asynchronous:ASYNC.run", _H, "reimplements", "b19e41c01689bade"),
    Patch("json-update", "exabgp.reactor.api.response.json:JSON.update", _H, "wraps", "af8f551c29801382"),
    Patch("rib-queue", "exabgp.rib.outgoing:OutgoingRIB.add_to_rib", _H, "relies", "fe7ea3a347789c4e"),
    Patch("inject-change", "exabgp.configuration.configuration:_Configuration.inject_change", _H, "reimplements",
          "061dae4651ca234d"),
    Patch("inet-init", "exabgp.bgp.message.update.nlri.inet:INET.__init__", _H, "reimplements",
          "6f96f6875df7ae08"),
    Patch("connection-reader", "exabgp.reactor.network.connection:Connection.reader", _B, "replaces",
          "f24e4d410e05b858"),
    Patch("connection-read-bytes", "exabgp.reactor.network.connection:Connection._reader", _B, "reimplements",
          "1a78401f968206d6"),
    Patch("server-cmdline", "exabgp.application.server:cmdline", _Z, "relies", "4f4efc613d5b7912"),
    Patch("env-setup", "exabgp.environment.environment:Env.setup", _Z, "relies", "53ba9a6f28e764ca"),
    Patch("protocol-new-update", "exabgp.reactor.protocol:Protocol.new_update", _P, "replaces", "7b25e4e0dd97e57d"),
    Patch("update-messages", "exabgp.bgp.message.update:Update.messages", _P, "reimplements", "2f245ef279ad1ac0"),
    Patch("mpreach-pack", "exabgp.bgp.message.update.attribute.mprnlri:MPRNLRI.packed_attributes", _P,
          "reimplements", "08763fb7ec94bf01"),
    Patch("rib-updates", "exabgp.rib.outgoing:OutgoingRIB.updates", _P, "relies", "49a023385063c86e"),
    Patch("attributes-pack", "exabgp.bgp.message.update.attribute.attributes:Attributes.pack", _P, "relies",
          "bc79206eef2ce2f5"),
    Patch("update-unpack", "exabgp.bgp.message.update:Update.unpack_message", _P, "relies", "0dbbe84626d1243a"),
    Patch("attributes-init", "exabgp.bgp.message.update.attribute.attributes:Attributes.__init__", _SH,
          "reimplements", "2c93b8d9870aead2"),
    Patch("attributes-index", "exabgp.bgp.message.update.attribute.attributes:Attributes.index", _SH,
          "reimplements", "1b607245a269734a"),
    Patch("attributes-text", "exabgp.bgp.message.update.attribute.attributes:Attributes._generate_text", _SH,
          "relies", "848344349ad32381"),
    Patch("log-info", "exabgp.logger:_log.info", _S, "wraps", "4b9688bc5399d7b1"),
    Patch("change-index", "exabgp.rib.change:Change.index", _PF, "relies", "e4fcb978a899d6f2"),
    Patch("inet-index", "exabgp.bgp.message.update.nlri.inet:INET.index", _PF, "relies", "0032da0983ef113e"),
    Patch("inet-pack", "exabgp.bgp.message.update.nlri.inet:INET.pack_nlri", _PF, "relies", "38b6a077cc1de43b"),
    Patch("cidr-pack", "exabgp.bgp.message.update.nlri.cidr:CIDR.pack_nlri", _PF, "relies", "9cab5aab57aa5820"),
    Patch("protocol-send", "exabgp.reactor.protocol:Protocol.send", _P, "reimplements", "b5b0461338ed6d4b"),
    Patch("attributes-unpack", "exabgp.bgp.message.update.attribute.attributes:Attributes.unpack", _RC, "wraps",
          "c458a61a25563c46"),
    Patch("attributes-parse", "exabgp.bgp.message.update.attribute.attributes:Attributes.parse", _RC, "relies",
          "5c6fd3aa6a92f530"),
    Patch("attributes-parse-one", "exabgp.bgp.message.update.attribute.attributes:Attributes._parse_one", _RC,
          "relies", "3a23a3ce12cfa67b"),
    Patch("mpreach-unpack", "exabgp.bgp.message.update.attribute.mprnlri:MPRNLRI.unpack", _RC, "reimplements",
          "9096c8e9b92c315c"),
    Patch("aspath-new", "exabgp.bgp.message.update.attribute.aspath:ASPath._new_aspaths", _RC, "reimplements",
          "9fba0e0c3c899896"),
    Patch("aspath-unpack", "exabgp.bgp.message.update.attribute.aspath:ASPath.unpack", _RC, "reimplements",
          "baccee96470c60e7"),
)}

_verified: set[str] = set()   # patches checked in this process (or in the zygote before its fork)


def exabgp_version() -> str | None:
    try:
        from exabgp.version import version
    except ImportError:
        return None
    return str(version)


def resolve(target: str):
    module, _, qualname = target.partition(":")
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def source_digest(obj) -> str:
    return hashlib.sha256(inspect.getsource(obj).encode()).hexdigest()[:16]


def verify(names=None) -> None:
    """Check the installed ExaBGP against every patch (or those named);
    ``CompatError`` naming each that does not match."""
    patches = [PATCHES[name] for name in (PATCHES if names is None else names) if name not in _verified]
    if not patches:
        return
    version = exabgp_version()
    if version != EXABGP_VERSION:
        raise CompatError(f"ExaBGP {version or '(not installed)'} is installed, but testbed.speaker was "
                          f"written for ExaBGP {EXABGP_VERSION}; patches that would run on code they "
                          f"were not written for: {', '.join(p.name for p in patches)}")
    problems = []
    for patch in patches:
        try:
            found = source_digest(resolve(patch.target))
        except (ImportError, AttributeError, OSError, TypeError) as exc:
            problems.append(f"patch {patch.name!r} ({patch.by} {patch.how} {patch.target}): "
                            f"the original cannot be read: {type(exc).__name__}: {exc}")
            continue
        if found != patch.digest:
            problems.append(f"patch {patch.name!r} ({patch.by} {patch.how} {patch.target}): the original's "
                            f"source differs from the one it was written for (sha256 {found}, "
                            f"expected {patch.digest})")
    if problems:
        raise CompatError("ExaBGP's internals changed under testbed.speaker:\n  " + "\n  ".join(problems))
    _verified.update(p.name for p in patches)


def replace(name: str, owner, new):
    """Apply patch ``name``: set ``new`` as the attribute of ``owner`` that
    the patch's target names (``owner`` is the target's class or module,
    or a stand-in of it in a test), once ``verify`` passed for it; return
    the attribute it replaced."""
    verify([name])
    attribute = PATCHES[name].target.rpartition(".")[2].rpartition(":")[2]
    original = getattr(owner, attribute)
    setattr(owner, attribute, new)
    return original


def main() -> int:
    print(f"installed ExaBGP {exabgp_version()}, written for {EXABGP_VERSION}")
    for patch in PATCHES.values():
        try:
            found = source_digest(resolve(patch.target))
        except Exception as exc:  # noqa: BLE001 - reported, not raised: this is a survey
            found = f"unreadable ({type(exc).__name__})"
        mark = "ok" if found == patch.digest else "CHANGED"
        print(f"{mark:8} {patch.name:22} {found:18} {patch.how:12} {patch.target}  ({patch.by})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
