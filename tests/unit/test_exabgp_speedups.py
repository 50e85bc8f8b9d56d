"""The faster ExaBGP functions a zygote speaker installs return what the
originals return. Run in a child process: the patches are process-wide."""

import subprocess
import sys
import textwrap

import pytest

from testbed.speaker import speedups as exabgp_speedups

CHECK = textwrap.dedent(r"""
    import io, json
    from exabgp.protocol.family import AFI, SAFI, Family
    from exabgp.logger import log
    from exabgp.logger.option import option

    def observe():
        out = {}
        lines = []
        option.logger = type("L", (), {"debug": staticmethod(lines.append), "info": staticmethod(lines.append),
                                       "warning": staticmethod(lines.append)})()
        option.formater = lambda line, source, level, timestamp: f"{level} {source} {line}"
        option.enabled = {}
        for value in list(range(0, 30)) + [16388, 25, 70, 128, 133, 134, 65535]:
            out[f"afi {value}"] = (repr(AFI.create(value)), int(AFI.create(value)), type(AFI.create(value)).__name__)
            out[f"safi {value}"] = (repr(SAFI.create(value)), int(SAFI.create(value)), type(SAFI.create(value)).__name__)
        for afi, safi in [(1, 1), (2, 1), (1, 2), (2, 128), (25, 65), (16388, 71), (3, 5)]:
            family = Family(afi, safi)
            out[f"family {afi} {safi}"] = (family.index().hex(), family.afi_safi() == (afi, safi))
        # the same objects for known values, as before
        out["identity"] = (AFI.create(1) is AFI.ipv4, SAFI.create(1) is SAFI.unicast)
        # the prefixes of an UPDATE, for families known and not, good and bad bytes
        from exabgp.bgp.message import Action
        from exabgp.bgp.message.notification import Notify
        from exabgp.bgp.message.update.nlri import NLRI, INET
        from exabgp.bgp.message.update.nlri.qualifier import PathInfo
        from exabgp.protocol.ip import NoNextHop

        def unpack(afi, safi, data, addpath=False):
            try:
                nlri, left = NLRI.unpack_nlri(AFI.create(afi), SAFI.create(safi), data, Action.ANNOUNCE, addpath)
            except Notify as exc:
                return ["notify", str(exc)]
            family = nlri.family()
            return [str(nlri), left.hex(), repr(family.afi), repr(family.safi), type(family).__name__,
                    family.afi is nlri.afi, family == Family(afi, safi), nlri.index().hex()]

        cases = [(1, 1, b"\x18\x14\x00\x00\x20\x0a\x00"), (2, 1, b"\x20\x20\x01\x0d\xb8"),
                 (1, 2, b"\x10\x0a\x01"), (1, 1, b"\x18\x14\x00\x00", True),
                 (1, 1, b"\x00\x00\x00\x00\x18\x14\x00\x00", True), (99, 1, b"\x08\x0a"),
                 (1, 1, b""), (1, 1, b"\x21\x01\x02\x03\x04\x05"), (1, 4, b"\x30\x00\x01\x41\x0a\x00\x00")]
        for case in cases:
            out[f"nlri {case}"] = unpack(*case)
        # unicast prefixes as a table carries them, and every way one can be cut short or too long
        cases = [(1, 1, b"\x00"), (1, 1, b"\x00\x18\x0a\x00\x01"), (1, 1, b"\x20\x0a\x00\x00\x01"),
                 (1, 1, b"\x1f\x0a\x00\x00\x01"), (1, 1, b"\x01\x80"), (1, 1, b"\x09\x0a\x80\x18"),
                 (1, 1, b"\x18\x0a\x00"), (1, 1, b"\x08"), (1, 1, b"\xff\x0a"), (2, 1, b"\x00"),
                 (2, 1, b"\x80" + bytes(range(16))), (2, 1, b"\x81" + bytes(range(17))),
                 (2, 1, b"\x40\x20\x01\x0d\xb8\x00\x00\x00"), (2, 1, b"\x30\x20\x01\x0d\xb8\x00\x01\x18")]
        for afi, safi, data in cases:
            for action in (Action.ANNOUNCE, Action.WITHDRAW):
                try:
                    nlri, left = NLRI.unpack_nlri(AFI.create(afi), SAFI.create(safi), data, action, False)
                except Notify as exc:
                    out[f"inet {afi} {data.hex()} {int(action)}"] = ["notify", str(exc)]
                    continue
                out[f"inet {afi} {data.hex()} {int(action)}"] = [
                    type(nlri).__name__, list(vars(nlri)), str(nlri), nlri.cidr.prefix(), nlri.cidr.mask,
                    bytes(nlri.cidr._packed).hex(), nlri.action == action, nlri.path_info is PathInfo.NOPATH,
                    nlri.nexthop is NoNextHop, nlri.afi is AFI.create(afi), nlri.safi is SAFI.create(safi),
                    nlri.index().hex(), nlri.pack_nlri().hex(), bytes(left).hex()]
        first, rest = NLRI.unpack_nlri(AFI.ipv4, SAFI.unicast, b"\x18\x0a\x01\x02\x10\x0a\x02",
                                       Action.ANNOUNCE, False)
        second, rest = NLRI.unpack_nlri(AFI.ipv4, SAFI.unicast, rest, Action.ANNOUNCE, False)
        out["two in a row"] = [str(first), str(second), rest.hex(), first.cidr is not second.cidr]
        # a Family whose AFI and SAFI were set to plain numbers
        odd = INET(AFI.ipv4, SAFI.unicast, Action.ANNOUNCE)
        odd.afi, odd.safi = 2, 1
        out["odd family"] = (repr(odd.family().afi), type(odd.family().afi).__name__, odd.family().afi_safi() == (2, 1))
        # debug logging: nothing when DEBUG is off, a line when it is on
        option._set_level("INFO")
        log.debug(lambda: "hidden", "reactor")
        log.info(lambda: "info shown", "reactor")
        option.enabled = {"statistics": False}
        log.info(lambda: "info hidden", "statistics")
        option.enabled = {}
        option._set_level("WARNING")
        log.info(lambda: "info hidden", "reactor")
        option._set_level("DEBUG")
        log.debug(lambda: "shown", "reactor")
        unpack(1, 1, b"\x18\x14\x00\x00")
        option._set_level("INFO")
        unpack(1, 1, b"\x18\x14\x00\x01")
        out["log"] = lines
        out["accept"] = accepting()
        return out

    def accepting():
        # Three listening sockets, as a router with three session addresses
        # has; which ones accept, turn after turn, and what is left waiting.
        import socket
        from exabgp.reactor.listener import Listener

        listener = Listener(None)
        seen = []
        servers = []
        for _ in range(3):
            server = socket.socket()
            server.bind(("127.0.0.1", 0))
            server.listen(8)
            server.setblocking(False)
            listener._sockets[server] = ("127.0.0.1", server.getsockname()[1], "127.0.0.1", False)
            servers.append(server)
        seen.append(["idle", listener.incoming()])
        listener.serving = True
        seen.append(["nothing waiting", listener.incoming()])
        clients = [socket.create_connection(servers[i].getsockname()) for i in (0, 2, 2)]
        seen.append(["two waiting", listener.incoming(), sorted(servers.index(s) for s in listener._accepted)])
        seen.append(["one already accepted", listener.incoming(), len(listener._accepted)])
        listener._accepted.clear()
        seen.append(["the second of server 2", listener.incoming(), sorted(servers.index(s) for s in listener._accepted)])
        listener._accepted.clear()
        seen.append(["none left", listener.incoming()])
        # a socket added and one closed and dropped
        extra = socket.socket()
        extra.bind(("127.0.0.1", 0))
        extra.listen(8)
        extra.setblocking(False)
        listener._sockets[extra] = ("127.0.0.1", extra.getsockname()[1], "127.0.0.1", False)
        servers[0].close()
        del listener._sockets[servers[0]]
        clients.append(socket.create_connection(extra.getsockname()))
        seen.append(["new socket", listener.incoming(), [s is extra for s in listener._accepted]])
        listener._accepted.clear()
        seen.append(["after", listener.incoming()])
        for sock in clients + servers[1:] + [extra]:
            sock.close()
        return seen

    import sys
    if sys.argv[1] == "patched":
        from testbed.speaker import speedups as exabgp_speedups
        assert exabgp_speedups.install()
    print(json.dumps(observe(), sort_keys=True))
""")


def test_patched_functions_answer_as_the_originals():
    results = {}
    for mode in ("stock", "patched"):
        done = subprocess.run([sys.executable, "-c", CHECK, mode], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        results[mode] = done.stdout
    assert '"log": ["INFO reactor info shown", "DEBUG reactor shown", "DEBUG parser NLRI      ipv4 unicast' in results["stock"]
    assert results["stock"].count("parser NLRI") == 1
    assert results["patched"] == results["stock"]
    assert ('"accept": [["idle", false], ["nothing waiting", false], ["two waiting", true, [0, 2]], '
            '["one already accepted", false, 2], ["the second of server 2", true, [2]], '
            '["none left", false], ["new socket", true, [true]], ["after", false]]') in results["stock"]


@pytest.mark.parametrize("module, owner, attribute, patch", [
    ("speedups", "exabgp.protocol.family:Family", "index", "family-index"),
    ("receiving", "exabgp.bgp.message.update.attribute.attributes:Attributes", "unpack", "attributes-unpack"),
])
def test_another_exabgp_version_fails_loudly_and_patches_nothing(monkeypatch, module, owner, attribute, patch):
    import importlib

    from testbed.speaker import compat

    where, name = owner.split(":")
    target = getattr(importlib.import_module(where), name)
    monkeypatch.setattr(compat, "_verified", set())
    monkeypatch.setattr(compat, "exabgp_version", lambda: "4.2.21")
    before = getattr(target, attribute)
    with pytest.raises(compat.CompatError, match=rf"ExaBGP 4\.2\.21 .* 5\.0\.15.*{patch}"):
        importlib.import_module(f"testbed.speaker.{module}").install()
    assert getattr(target, attribute) == before


def test_they_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("TESTBED_EXABGP_SPEEDUPS", "0")
    assert not exabgp_speedups.enabled()
    monkeypatch.delenv("TESTBED_EXABGP_SPEEDUPS")
    assert exabgp_speedups.enabled()
