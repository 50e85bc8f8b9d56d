"""Faster versions of a few ExaBGP 5.0.15 functions on a speaker's per-route path.

A profile of a Tier-1 speaker converging in a 100-AS lab (py-spy, samples
holding the interpreter lock) spent ~14 % of its time computing the same
few bytes again and again while ExaBGP's Adj-RIB-Out checks whether a
change is already cached (``Change.index`` -> ``INET.index`` ->
``Family.index``) and ~5 % building ``Family`` objects whose ``AFI`` and
``SAFI`` lookups construct a throw-away object on every call (the
default argument of a ``dict.get`` is evaluated even on a hit), and ~4 %
in debug log calls that find DEBUG off only after two calls (and INFO
calls, one per statistics counter changed by each message read). Receiving
and sending a table (one router ingesting 100,000 prefixes) added two
more: ``NLRI.unpack_nlri`` formats the names of the family into a lookup
key, and builds a closure for a debug line, for every prefix of an UPDATE;
``Family.family()``, called five times per route on its way out, builds a
new ``Family`` through both lookups each time. And a router with many
sessions spent most of its time in ``Listener.incoming``, which tries
``accept()`` on each of its listening sockets on every turn of the loop.

Each replacement returns what the original returns, for every input the
original accepts (``tests/unit/test_exabgp_speedups.py`` compares them);
only the work to get there changes. ``install()`` applies them in a forked
zygote speaker through ``testbed.speaker.compat``, which refuses (loudly,
naming the patch) any original that is not the one they were written
against; the exec model (the baseline: stock ExaBGP) never runs them.
``TESTBED_EXABGP_SPEEDUPS=0`` turns them off (for an A/B).
"""

from __future__ import annotations

import os

from testbed.speaker import compat

PATCHES = ("afi-create", "safi-create", "family-index", "family-family", "log-debug", "inet-unpack",
           "nlri-unpack", "listener-incoming", "log-info")


def enabled() -> bool:
    return os.environ.get("TESTBED_EXABGP_SPEEDUPS", "1") != "0"


def install() -> bool:
    """Patch ExaBGP's classes in this process (True); ``compat.CompatError``
    naming the patches, and nothing patched, if an original changed."""
    compat.verify(PATCHES)
    from exabgp.protocol.family import AFI, SAFI, Family, _AFI, _SAFI

    afi_cache, safi_cache = AFI.cache, SAFI.cache

    def afi_create(cls, value):
        found = afi_cache.get(value)
        return found if found is not None else _AFI(value)

    def safi_create(cls, value):
        found = safi_cache.get(value)
        return found if found is not None else _SAFI(value)

    compat.replace("afi-create", AFI, classmethod(afi_create))
    compat.replace("safi-create", SAFI, classmethod(safi_create))

    indexes: dict[tuple[int, int], bytes] = {}

    def family_index(self):
        key = (int(self.afi), int(self.safi))
        found = indexes.get(key)
        if found is None:
            found = indexes[key] = f"{self.afi:02x}{self.safi:02x}".encode()
        return found

    compat.replace("family-index", Family, family_index)

    def family(self):
        afi, safi = self.afi, self.safi
        if type(afi) is not _AFI or type(safi) is not _SAFI:
            return Family(afi, safi)  # what __init__ would make of them
        new = object.__new__(Family)
        new.afi, new.safi = afi, safi  # what AFI.create/SAFI.create give for these
        return new

    compat.replace("family-family", Family, family)

    # Logging: every ``log.debug(lambda: ...)`` on the per-message path
    # goes through two calls and two dict lookups before finding DEBUG off
    # (~450,000 calls in a 100-AS lab). Check the level first; a message
    # that is not callable still takes the original path (ExaBGP warns
    # about it whatever the level).
    from exabgp.logger import _log
    from exabgp.logger.option import option


    def fast_debug(cls, message, source="", level="DEBUG"):
        if callable(message) and not option.logit.get(level, False):
            return None
        return debug(cls, message, source, level)

    debug = compat.replace("log-debug", _log, classmethod(fast_debug)).__func__

    # The same for INFO: ``Peer._main`` logs a line per changed statistics
    # counter (messages received, ...) for every message it reads.
    # Their source (``statistics``) is off in the lab's speakers, INFO on:
    # the same test as the original's ``option.log_enabled``.
    def fast_info(cls, message, source="", level="INFO"):
        if callable(message) and not (option.enabled.get(source, True) and option.logit.get(level, False)):
            return None
        return info(cls, message, source, level)

    info = compat.replace("log-info", _log, classmethod(fast_info)).__func__

    from exabgp.bgp.message.notification import Notify
    from exabgp.bgp.message.update.nlri import nlri as nlri_module

    NLRI, lazynlri, nlri_log = nlri_module.NLRI, nlri_module.lazynlri, nlri_module.log

    # Receiving a table: ``INET.unpack_nlri`` builds each prefix through
    # three ``__init__`` layers and checks for labels, route distinguishers
    # and path identifiers a unicast prefix without ADD-PATH never has
    # (~5 us a prefix). For that case the object is built directly, with
    # the attributes the original gives it; anything else, and every
    # malformed prefix (for the original's NOTIFICATION), takes the
    # original.
    from exabgp.bgp.message.update.nlri.cidr import CIDR
    from exabgp.bgp.message.update.nlri.inet import INET
    from exabgp.bgp.message.update.nlri.qualifier import PathInfo
    from exabgp.protocol.ip import NoNextHop

    unicast, lengths = SAFI.unicast, {AFI.ipv4: 4, AFI.ipv6: 16}
    padding = {(length, size): bytes(length - size) for length in (4, 16) for size in range(length + 1)}
    no_path, new_object = PathInfo.NOPATH, object.__new__

    def unpack_inet(cls, afi, safi, bgp, action, addpath):
        length = lengths.get(afi)
        if cls is not INET or addpath or safi != unicast or length is None or not bgp:
            return inet_unpack(cls, afi, safi, bgp, action, addpath)
        mask = bgp[0]
        size = (mask + 7) >> 3
        if mask > length * 8 or len(bgp) <= size:
            return inet_unpack(cls, afi, safi, bgp, action, addpath)
        nlri = new_object(INET)  # its attributes in the order the original sets them
        nlri.afi, nlri.safi = AFI.create(afi), SAFI.create(safi)
        nlri.action, nlri.path_info = action, no_path
        nlri.cidr = CIDR(bgp[1:size + 1] + padding[length, size], mask)
        nlri.nexthop = NoNextHop
        return nlri, bgp[size + 1:]

    inet_unpack = compat.replace("inet-unpack", INET, classmethod(unpack_inet)).__func__

    keys: dict[tuple[int, int], str] = {}

    # where the lookup below leads for unicast prefixes, if it does
    inet_registered = all(NLRI.registered_nlri.get(f"{afi}/unicast") is INET for afi in ("ipv4", "ipv6"))

    def unpack_nlri(cls, afi, safi, data, action, addpath):
        if (inet_registered and not addpath and safi == unicast and afi in lengths
                and not option.logit.get("DEBUG", False)):
            return unpack_inet(INET, afi, safi, data, action, addpath)
        a, s = AFI.create(afi), SAFI.create(safi)
        if option.logit.get("DEBUG", False):
            nlri_log.debug(lazynlri(a, s, addpath, data), "parser")
        # the names of a family's AFI and SAFI depend on their numbers only
        number = (int(a), int(s))
        key = keys.get(number)
        if key is None:
            key = keys[number] = "{}/{}".format(a, s)
        found = cls.registered_nlri.get(key)
        if found is not None:
            return found.unpack_nlri(a, s, data, action, addpath)
        raise Notify(3, 0, "trying to decode unknown family {}/{}".format(a, s))

    compat.replace("nlri-unpack", NLRI, classmethod(unpack_nlri))

    # Accepting: ExaBGP's listener tries ``accept()`` on every listening
    # socket on every turn of its loop, and a router listens once per local
    # session address. With 100 sessions, every UPDATE received cost 100
    # ``accept()`` calls raising EAGAIN: over half the CPU of a router with
    # 101 peers taking 5,000 UPDATEs. An epoll set of the listening sockets
    # says which have a connection waiting (a listening socket is readable
    # exactly then); it is made again whenever the set of sockets changed.
    import select

    from exabgp.reactor.listener import Listener
    from exabgp.reactor.listener import error as network_error
    from exabgp.reactor.listener import log as listener_log

    def incoming(self):
        if not self.serving:
            return False
        sockets = tuple(self._sockets)
        watched = self.__dict__.get("_testbed_watched")
        if watched is None or watched[0] != sockets:
            if watched is not None:
                watched[1].close()
            poller, by_fd = select.epoll(), {}
            for sock in sockets:
                fd = sock.fileno()
                if fd >= 0:
                    poller.register(fd, select.EPOLLIN)
                    by_fd[fd] = sock
            self._testbed_watched = watched = (sockets, poller, by_fd)
        by_fd = watched[2]
        peer_connected = False
        for fd, _ in watched[1].poll(0):
            sock = by_fd[fd]
            if sock in self._accepted:
                continue
            try:
                io, _ = sock.accept()
                self._accepted[sock] = io
                peer_connected = True
            except OSError as exc:
                if exc.errno in network_error.block:
                    continue
                listener_log.critical(lambda exc=exc: str(exc), "network")
        return peer_connected

    compat.replace("listener-incoming", Listener, incoming)
    return True
