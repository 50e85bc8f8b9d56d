"""The ExaBGP half of the in-process transport (the agent's half is
``testbed.speaker.inprocess``): inside a zygote speaker, routes cross
between ExaBGP and its agent thread as objects instead of JSON and text.

Outbound, ``RouteChange`` batches (``testbed.agent.codec``) the agent queued
on its ``Channel`` are injected, when ExaBGP's API reads their marker line,
as the ExaBGP ``Change`` objects its own parser makes of the same command
(``make_change``, ``make_attributes``) into each neighbor's Adj-RIB-Out
(``queue_change``), in steps of ExaBGP's async queue (``_inject``).
Inbound, ``routes_of_update`` reads an ExaBGP ``Update`` as the agent
reads its JSON, and the wrapped JSON encoder queues those routes on the
channel with a marker line in the JSON's place. ``install`` applies the
patches through ``testbed.speaker.compat`` (``api-process``, ``async-run``,
``json-update``); nothing here runs in the exec model.
"""

from __future__ import annotations

from testbed.agent.transport import Received
from testbed.speaker import compat
from testbed.speaker.inprocess import MARK_IN, MARK_OUT

INJECT_STEP = 256             # changes injected per step of ExaBGP's async queue
# Changes injected per turn of ExaBGP's loop, at most: its peers then build
# and send UPDATEs before the next ones are injected. ExaBGP runs 50 steps
# of its async queue per turn, so a batch of 10,000 changes was otherwise
# all injected before the first UPDATE left (0.1 s during which the
# receiving router had nothing to do; ingest 50,000 -> 53,000 prefixes/s).
INJECT_TURN = 1024
END_TURN = object()           # yielded by _inject: end this turn of the async queue
superseded = 0
"""Changes ``queue_change`` removed from another attribute set's queue in
this speaker (stock ExaBGP would have sent them too)."""
misordered = 0
"""Of those, the ones stock ExaBGP would have sent after the change that
replaced them, leaving the peer with the older route."""


_IMPORTED: dict[str, tuple] = {}
prefix_parts = None
"""Where ``_inject`` shares each prefix's NLRI parts between neighbors, if set:
a ``testbed.speaker.prefixes.PrefixParts`` (equal results, less work)."""
attribute_maker = None
"""What ``_inject`` makes a change's ``Attributes`` with, if not ``make_attributes``:
a ``testbed.speaker.sharing.AttributeMaker`` (equal results, less work)."""


def _exabgp(user: str) -> tuple:
    """The ExaBGP names ``user`` needs, imported on its first call (this
    module is imported where ExaBGP is not, e.g. by the harness) and kept:
    a function-level import costs a lookup per call on the per-route path."""
    found = _IMPORTED.get(user)
    if found is not None:
        return found
    from exabgp.bgp.message import Action
    from exabgp.bgp.message.open import ASN
    from exabgp.bgp.message.update import Update
    from exabgp.bgp.message.update.attribute import (MED, SEQUENCE, ASPath, Attributes, LocalPreference,
                                                     NextHop, Origin)
    from exabgp.bgp.message.update.nlri import CIDR, INET
    from exabgp.bgp.message.update.nlri.qualifier import PathInfo
    from exabgp.protocol.family import AFI, SAFI
    from exabgp.protocol.ip import IP, IPRange
    from exabgp.rib.change import Change

    _IMPORTED.update({
        "make_change": (Action, NextHop, CIDR, INET, IP, IPRange, Change, AFI, SAFI, PathInfo),
        "make_attributes": (ASN, MED, SEQUENCE, ASPath, Attributes, LocalPreference, NextHop, Origin, IP),
        "routes_of_update": (Action, Update, AFI, SAFI),
    })
    return _IMPORTED[user]


def make_change(neighbor: str, announce: bool, prefix: str, next_hop: str | None, origin: str | None,
                as_path: tuple | None, med: int | None, local_pref: int | None, attributes=None,
                next_hops: dict | None = None, prefixes=None):
    """The ExaBGP ``Change`` its API makes of the same ``announce route`` /
    ``withdraw route`` command (``exabgp.configuration.static.parser``).
    ``attributes``: the ``make_attributes`` of the same values, to share;
    ``next_hops``: a dict in which to share next-hop objects between the
    changes of one batch; ``prefixes``: a ``testbed.speaker.prefixes.PrefixParts``
    in which to share the prefix's parts between neighbors."""
    Action, NextHop, CIDR, INET, IP, IPRange, Change, AFI, SAFI, PathInfo = _exabgp("make_change")
    if prefixes is not None:
        found = prefixes.get(prefix)
        if found is not None:
            hop = _hop(next_hop, next_hops, IP, NextHop)
            nlri = object.__new__(INET)   # as below, with the parts kept
            nlri.afi, nlri.safi, cidr, index = found
            nlri.action = Action.ANNOUNCE if announce else Action.WITHDRAW
            nlri.path_info = PathInfo.NOPATH
            nlri.cidr = cidr
            nlri.nexthop = hop
            if attributes is None:
                attributes = make_attributes(next_hop, origin, as_path, med, local_pref)
            change = Change(nlri, attributes)
            change._Change__index = index   # what Change.index() computes of the same parts
            return change
    ip, mask = prefix.split("/")
    # What IPRange.create(ip, mask) holds, without building one per route:
    # its address family, packed address and NetMask (ExaBGP's own cached
    # object for that mask, looked up once per mask here).
    afi = IP.toafi(ip)
    netmask = _MASKS.get((mask, afi))
    if netmask is None:
        netmask = _MASKS[(mask, afi)] = IPRange.create(ip, mask).mask
    hop = _hop(next_hop, next_hops, IP, NextHop)
    # INET(afi, IP.tosafi(ip), action) with its cidr and next hop, built as
    # its three __init__ layers would build it (the same attributes, in the
    # same order) at a third of the cost: a Tier-1 makes one per route and
    # neighbor.
    nlri = object.__new__(INET)
    nlri.afi = AFI.create(afi)
    nlri.safi = SAFI.unicast if afi == AFI.ipv6 or int(ip[:ip.index(".")]) not in IP._multicast_range \
        else SAFI.multicast
    nlri.action = Action.ANNOUNCE if announce else Action.WITHDRAW
    nlri.path_info = PathInfo.NOPATH
    nlri.cidr = CIDR(IP.pton(ip), netmask)
    nlri.nexthop = hop
    if attributes is None:
        attributes = make_attributes(next_hop, origin, as_path, med, local_pref)
    change = Change(nlri, attributes)
    if prefixes is not None:
        prefixes.keep(prefix, change)
    return change


def _hop(next_hop: str | None, next_hops: dict | None, IP, NextHop):
    """The next-hop object of a change (shared in ``next_hops``)."""
    if next_hop is None:
        return NextHop("0.0.0.0")  # what ExaBGP's withdraw command sets
    hop = None if next_hops is None else next_hops.get(next_hop)
    if hop is None:
        hop = IP.create(next_hop)
        if next_hops is not None:
            next_hops[next_hop] = hop
    return hop


_MASKS: dict = {}  # (mask text, AFI) -> ExaBGP's NetMask


def make_attributes(next_hop: str | None, origin: str | None, as_path: tuple | None, med: int | None,
                    local_pref: int | None):
    """The ExaBGP ``Attributes`` of a route command (empty without a next hop)."""
    ASN, MED, SEQUENCE, ASPath, Attributes, LocalPreference, NextHop, Origin, IP = _exabgp("make_attributes")
    attributes = Attributes()
    if next_hop is None:
        return attributes
    attributes.add(NextHop(IP.create(next_hop).top()))
    attributes.add(Origin(_ORIGINS[origin]))
    segment = SEQUENCE()
    for asn in as_path:
        segment.append(ASN(asn))
    attributes.add(ASPath([segment]))
    if med is not None:
        attributes.add(MED(med))
    if local_pref is not None:
        attributes.add(LocalPreference(local_pref))
    return attributes


_ORIGINS = {"igp": 0, "egp": 1, "incomplete": 2}
_KNOWN_ATTRIBUTES = frozenset((1, 2, 3, 4, 5))  # origin, AS path, next hop, MED, local preference


def routes_of_update(update):
    """``(announced routes, withdrawn prefixes)`` of an ExaBGP ``Update``,
    as ``testbed.agent.codec.parse_update`` reads them from its JSON; None when
    the UPDATE carries anything else (then the JSON way is taken)."""
    Action, Update, AFI, SAFI = _exabgp("routes_of_update")
    from testbed.bgp.route import Origin, Route, RouteGroup, RouteGroups

    if type(update) is not Update:
        return None
    attributes = update.attributes
    for code in attributes:
        if code not in _KNOWN_ATTRIBUTES:
            return None
    path: list[int] = []
    if 2 in attributes:
        for segment in attributes[2].aspath:
            path.extend(int(a) for a in segment)
    as_path = tuple(path)
    origin = Origin.parse(str(attributes[1]) if 1 in attributes else "igp")
    med = attributes[4].med if 4 in attributes else None
    local_pref = attributes[5].localpref if 5 in attributes else None
    withdrawn: list[str] = []
    by_hop: dict[str, list[str]] = {}  # prefixes by next hop, in the UPDATE's order
    unicast, families = SAFI.unicast, (AFI.ipv4, AFI.ipv6)
    announce, withdraw = Action.ANNOUNCE, Action.WITHDRAW
    # The prefixes of an UPDATE (up to ~900) mostly share one next-hop
    # object: its text is made once.
    last_hop, prefixes = None, None
    for nlri in update.nlris:
        if nlri.safi != unicast or nlri.afi not in families:
            continue
        action = nlri.action
        if action == announce:
            hop = nlri.nexthop
            if hop is not last_hop:
                last_hop, prefixes = hop, by_hop.setdefault(str(hop), [])
            prefixes.append(nlri.cidr.prefix())
        elif action == withdraw:
            withdrawn.append(nlri.cidr.prefix())
    groups = [RouteGroup(Route(prefix=group[0], next_hop=hop, as_path=as_path, origin=origin, med=med,
                               local_pref=local_pref), group) for hop, group in by_hop.items()]
    if len(groups) == 1:  # one set of attributes, one next hop: the usual UPDATE
        return groups[0], withdrawn
    # several next hops (IPv4 and IPv6 beside each other): each imported as a group
    return (RouteGroups(groups) if groups else []), withdrawn


class _Encoder:
    """ExaBGP's JSON encoder for an in-process agent: UPDATEs it can hand
    over become queued routes and a marker line."""

    def __init__(self, inner, channel):
        self._inner = inner
        self._channel = channel

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def update(self, neighbor, direction, update, negotiated, header, body):
        routes = routes_of_update(update)
        if routes is None:
            return self._inner.update(neighbor, direction, update, negotiated, header, body)
        self._channel.inbound.append(Received(str(neighbor["peer-address"]), *routes))
        return MARK_IN


def queue_change(outgoing, change) -> None:
    """``outgoing.add_to_rib(change)`` (ExaBGP's ``OutgoingRIB``), first
    dropping a change for the same route still queued under other attributes.

    ExaBGP queues unsent changes by attribute set and sends the sets in the
    order each was first queued, without removing an earlier change for the
    same route from another set: a route queued as A, then B, then A again
    before the session's next send left the peer with B, sent last, while
    the sender's latest was A. A withdrawal queued after an announcement
    under other attributes had the same fault when the withdrawal's set was
    queued first. Both counts are kept (``superseded``, ``misordered``)."""
    global superseded, misordered
    index = change.index()
    previous = outgoing._new_nlri.get(index)
    if previous is not None:
        attributes = previous.attributes.index()
        replacing = change.attributes.index()
        if attributes != replacing:
            family = previous.nlri.family().afi_safi()
            queued = outgoing._new_attr_af_nlri
            if queued.get(attributes, {}).get(family, {}).pop(index, None) is not None:
                superseded += 1
                if replacing in queued:  # sets go out in the order they were first queued
                    order = list(queued)
                    misordered += order.index(replacing) < order.index(attributes)
    outgoing.add_to_rib(change)


def _inject(reactor, service: str, batch: list):
    """Generator run by ExaBGP's async queue: the batch into the Adj-RIBs-Out
    (what ``inject_change`` does for a parsed command, minus the deep copy
    of a change made for one neighbor alone)."""
    neighbors = reactor.configuration.neighbors
    by_address: dict[str, list] = {}
    for name in reactor.peers(service):
        neighbor = neighbors.get(name)
        if neighbor is not None:
            # with the families it was configured for, as (AFI, SAFI) pairs
            by_address.setdefault(str(neighbor["peer-address"]), []).append(
                (neighbor, frozenset(neighbor.families())))
    shared: dict[tuple, object] = {}  # one Attributes per attribute set, as ExaBGP's parser shares them
    next_hops: dict[str, object] = {}
    for done, item in enumerate(batch, 1):
        for neighbor, families in by_address.get(item[0], ()):
            key = item[3:]
            attributes = shared.get(key)
            if attributes is None:
                attributes = shared[key] = (attribute_maker or make_attributes)(*key)
            change = make_change(*item, attributes=attributes, next_hops=next_hops, prefixes=prefix_parts)
            nlri = change.nlri
            if (nlri.afi, nlri.safi) in families:  # nlri.family().afi_safi(), without the Family
                queue_change(neighbor.rib.outgoing, change)
        if done % INJECT_TURN == 0:
            yield END_TURN
        elif done % INJECT_STEP == 0:
            yield False


def queue_stats() -> dict:
    """The counts of ``queue_change`` in this speaker, and of the UPDATEs it
    sent (``testbed.speaker.packing``), for the agent's summary."""
    from testbed.speaker.packing import sent_stats

    return {"superseded_in_queue": superseded, "misordered_in_queue": misordered, **sent_stats()}


def wrap_encoder(processes, name: str, channel) -> None:
    """Make the JSON encoder of helper ``name`` (just started by
    ``Processes._start``) hand UPDATEs over on ``channel``."""
    compat.verify(["json-update"])
    if not isinstance(processes._encoder.get(name), _Encoder):
        processes._encoder[name] = _Encoder(processes._encoder[name], channel)


def install(api_class, async_class, channel_of) -> None:
    """Patch ExaBGP (in a forked speaker only): its API takes our marker
    line, its async queue runs our injections. ``channel_of(handle)``
    gives the ``Channel`` of a helper started in-process, else None."""
    compat.verify(["rib-queue", "inject-change", "inet-init", "json-update"])  # what make_change and queue_change copy

    def api_process(self, reactor, service, command):
        if command == MARK_OUT:
            handle = reactor.processes._process.get(service)
            channel = channel_of(handle)
            if channel is not None and channel.outbound:
                batch = channel.outbound.popleft()
                reactor.asynchronous.schedule(service, command, _inject(reactor, service, batch))
                return True
        return process(self, reactor, service, command)

    process = compat.replace("api-process", api_class, api_process)

    def run_generators(self):
        """ExaBGP's ``ASYNC.run`` without a new asyncio event loop per turn
        of the reactor when every callback is a generator (ours and its
        API commands all are): the same steps, in the same order, except
        that a step yielding ``END_TURN`` ends the turn."""
        import inspect

        if not self._async:
            return False
        if not all(inspect.isgenerator(callback) for _, callback in self._async):
            return run(self)
        uid, callback = self._async.popleft()
        for _ in range(self.LIMIT):
            try:
                if next(callback) is END_TURN:
                    break
            except StopIteration:
                if not self._async:
                    return False
                uid, callback = self._async.popleft()
            except Exception as exc:
                from exabgp.logger import log

                log.error(lambda uid=uid: f"async | {uid} | problem with function", "reactor")
                for line in str(exc).split("\n"):
                    log.error(lambda line=line, uid=uid: f"async | {uid} | {line}", "reactor")
                self._notify_error(uid)
                if not self._async:
                    return False
                uid, callback = self._async.popleft()
        self._async.appendleft((uid, callback))
        return True

    run = compat.replace("async-run", async_class, run_generators)
