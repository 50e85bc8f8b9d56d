"""``receiving.make_unpack`` answers what ExaBGP's ``Attributes.unpack``
answers, for attribute blocks built with ExaBGP's own classes (the lab's
dual-stack UPDATEs: MP_REACH_NLRI beside the IPv4 attributes) and for every
malformed variant of them: the same attributes in the same order, the same
errors raised or marked (RFC 7606 treat-as-withdraw, discard), the same
state of the session's own cache, whether our cache is cold or warm."""

from __future__ import annotations

import itertools
import random

import pytest

from testbed.speaker import receiving

exabgp = pytest.importorskip("exabgp")


def negotiated(asn4=True, families=("ipv4", "ipv6")):
    from exabgp.bgp.message.open.asn import ASN
    from exabgp.bgp.message.open.capability import Negotiated
    from exabgp.bgp.neighbor import Neighbor
    from exabgp.protocol.family import AFI, SAFI

    found = Negotiated(Neighbor())
    found.local_as, found.peer_as, found.asn4 = ASN(65002), ASN(65001), asn4
    found.families = [(AFI.ipv4 if name == "ipv4" else AFI.ipv6, SAFI.unicast) for name in families]
    found.msg_size = 4096
    return found


def attributes(hop, path, med=None, communities=(), large=()):
    from exabgp.bgp.message.open.asn import ASN
    from exabgp.bgp.message.update.attribute import (MED, SEQUENCE, ASPath, Attributes, NextHop, Origin)
    from exabgp.bgp.message.update.attribute.community import Communities, Community
    from exabgp.bgp.message.update.attribute.community.large.communities import LargeCommunities
    from exabgp.bgp.message.update.attribute.community.large.community import LargeCommunity
    from exabgp.protocol.ip import IP

    found = Attributes()
    found.add(NextHop(IP.create(hop).top()))
    found.add(Origin(Origin.IGP))
    found.add(ASPath([SEQUENCE([ASN(a) for a in path])]))
    if med is not None:
        found.add(MED(med))
    if communities:
        found.add(Communities([Community.cached(c.to_bytes(4, "big")) for c in communities]))
    if large:
        found.add(LargeCommunities([LargeCommunity(b"".join(x.to_bytes(4, "big") for x in v)) for v in large]))
    return found


def mp_attribute(prefixes, hop="fd00::1", withdraw=False):
    """The MP_REACH_NLRI (or MP_UNREACH_NLRI) ExaBGP packs for IPv6 ``prefixes``."""
    from exabgp.bgp.message import Action
    from exabgp.bgp.message.update.attribute.mprnlri import MPRNLRI
    from exabgp.bgp.message.update.attribute.mpurnlri import MPURNLRI
    from exabgp.bgp.message.update.nlri import CIDR, INET
    from exabgp.protocol.family import AFI, SAFI
    from exabgp.protocol.ip import IP

    nlris = []
    for prefix in prefixes:
        address, mask = prefix.split("/")
        nlri = INET(AFI.ipv6, SAFI.unicast, Action.WITHDRAW if withdraw else Action.ANNOUNCE)
        nlri.cidr = CIDR(IP.pton(address), int(mask))
        nlri.nexthop = IP.create(hop)
        nlris.append(nlri)
    kind = MPURNLRI if withdraw else MPRNLRI
    return b"".join(kind(AFI.ipv6, SAFI.unicast, nlris).packed_attributes(negotiated(), 4096))


def blocks():
    """Attribute blocks as the lab's speakers send them (MP first, as
    ``packing`` puts it), and MP attributes placed elsewhere."""
    session = negotiated()
    found = []
    paths = ((65001,), (65001, 65002, 65003), (4200000000, 65001))
    for n, (path, med, communities, large) in enumerate(itertools.product(
            paths, (None, 7), ((), (65001 << 16 | 5, 65002 << 16 | 9)), ((), ((65001, 1, 2),)))):
        rest = attributes("10.0.0.1", path, med, communities, large).pack(session)
        reach = mp_attribute([f"2001:db8:{n:x}::/48", f"2001:db8:{n:x}:1::/64"])
        unreach = mp_attribute([f"2001:db8:ff{n:x}::/48"], withdraw=True)
        found += [reach + rest, unreach + reach + rest, unreach + rest]
        # the MP attributes between and after the others
        cut = 4 + rest[2]   # after ORIGIN: its header and one octet... and AS_PATH's start
        cut = 4
        found += [rest[:cut] + reach + rest[cut:], rest + reach, rest[:cut] + unreach + rest[cut:] + reach]
    return found


def observed(result, session) -> tuple:
    """What ExaBGP can see of an unpacked block, and of the session's cache."""
    if isinstance(result, Exception):
        return ("raised", type(result).__name__, str(result))
    items = []
    for code, attribute in result.items():
        described = [int(code), type(attribute).__name__, str(attribute)]
        if int(code) in (14, 15):
            described.append([(str(n), str(n.nexthop), int(n.action)) for n in attribute.nlris])
        elif int(code) == 2:   # the segments' and numbers' types, the packed form kept
            described.append([(type(s).__name__, [(type(a).__name__, int(a)) for a in s]) for s in attribute.aspath])
            described.append((attribute.index, attribute.segments, attribute._str, attribute._json, attribute.ASN4))
        else:
            described.append(repr(sorted(vars(attribute).items())))
        items.append(described)
    state = (session.cached_wire, session.cached_attributes is result,
             session.cached_attributes is None)
    return ("parsed", items, type(result).__name__, result.cacheable, result._str, result._idx, state)


def unpack_both(data, sessions, fast):
    from exabgp.bgp.message.direction import Direction
    from exabgp.bgp.message.update.attribute.attributes import Attributes

    answers = []
    for function, session in ((Attributes.unpack.__func__, sessions[0]), (fast, sessions[1])):
        try:
            result = function(Attributes, data, Direction.IN, session)
        except Exception as exc:  # noqa: BLE001 - compared
            result = exc
        answers.append(observed(result, session))
    return answers


def mutations(block, seed):
    """Malformed variants: cut at every length, each octet changed."""
    rng = random.Random(seed)
    for cut in range(len(block)):
        yield block[:cut]
    for at in range(len(block)):
        for value in {0, 1, 0x40, 0x80, 0xc0, 0xff, block[at] ^ 0x10, rng.randrange(256)}:
            yield block[:at] + bytes((value,)) + block[at + 1:]


def fast_unpack(limit=receiving.LIMIT):
    from exabgp.bgp.message.update.attribute.attributes import Attributes

    return receiving.make_unpack(Attributes.unpack.__func__, Attributes, NO_DEBUG, limit)


class NO_DEBUG:
    logit: dict = {}


def test_well_formed_blocks_parse_as_the_original_cold_and_warm(exabgp_env):
    fast = fast_unpack()
    sessions = (negotiated(), negotiated())
    before = dict(receiving.stats)
    for data in blocks() * 2:
        stock, ours = unpack_both(data, sessions, fast)
        assert stock[0] == "parsed" and ours == stock, data.hex()
    assert receiving.stats["hits"] - before["hits"] >= 2 * len(blocks())


def test_malformed_blocks_fail_as_the_original(exabgp_env):
    """Every cut and every changed octet of three blocks (one with
    communities and large communities), through a session whose cache
    holds the good block: equal answers, errors included."""
    fast = fast_unpack()
    chosen = blocks()
    outcomes = set()
    for n, good in enumerate((chosen[0], chosen[-3], chosen[-5])):
        for asn4 in (True, False):
            sessions = (negotiated(asn4), negotiated(asn4))
            for data in mutations(good, n):
                unpack_both(good, sessions, fast)   # warm: the rest of the block cached
                stock, ours = unpack_both(data, sessions, fast)
                assert ours == stock, data.hex()
                outcomes.add(stock[0] if stock[0] == "raised" else
                             "withdraw" if any(i[0] == 0xFFFF for i in stock[1]) else
                             "discard" if any(i[0] == 0xFFFE for i in stock[1]) else "parsed")
    assert outcomes >= {"raised", "withdraw", "parsed"}


def test_special_cases(exabgp_env):
    """Two MP_REACH_NLRI (a NOTIFICATION), AS4_PATH, a non-negotiated family,
    an unknown transitive attribute, an attribute twice: each as the original."""
    good = blocks()[0]
    reach = mp_attribute(["2001:db8:77::/48"])
    rest = attributes("10.0.0.1", (65001,)).pack(negotiated())
    egp = bytes((0x40, 1, 1, 1))
    assert rest[:4] == bytes((0x40, 1, 1, 0))   # ORIGIN IGP
    as4 = bytes((0xc0, 17, 6, 2, 1)) + (4200000000).to_bytes(4, "big")
    cases = [reach + good, good + as4, reach + rest + bytes((0xc0, 99, 2, 1, 2)),
             reach + rest + bytes((0x80, 99, 2, 1, 2)), reach + rest + rest[:4], rest[:4] + reach + rest,
             reach + rest + bytes((0x50, 8, 0, 4, 1, 2, 3, 4)), bytes((0x90, 14, 0, 0)) + rest,
             good + bytes((0x40, 5, 4, 0, 0, 0, 100)), good[:-1] + b"\x00\x00\x00\x00\x00",
             # ORIGIN twice (the first counts), then the second alone, then twice again
             reach + rest[:4] + egp + rest[4:], reach + egp + rest[4:], reach + rest[:4] + egp + rest[4:]]
    fast = fast_unpack()
    for families in (("ipv4", "ipv6"), ("ipv4",)):
        sessions = (negotiated(families=families), negotiated(families=families))
        for data in cases * 2:
            stock, ours = unpack_both(data, sessions, fast)
            assert ours == stock, data.hex()


def test_the_cache_is_bounded_and_per_session(exabgp_env):
    fast = fast_unpack(limit=4)
    sessions = (negotiated(), negotiated())
    for data in blocks():
        unpack_both(data, sessions, fast)
    assert 0 < len(sessions[1]._testbed_attributes[1]) <= 4
    assert "_testbed_attributes" not in vars(sessions[0])


def test_split_refuses_what_it_cannot_cache():
    reach = bytes((0x90, 14, 0, 2, 0, 2))
    origin = bytes((0x40, 1, 1, 0))
    assert receiving.split(reach + origin[:2]) is None          # a header cut short
    assert receiving.split(reach + bytes((0x40, 1, 5, 0))) is None   # a length past the end
    assert receiving.split(reach + bytes((0xc0, 17, 0))) is None     # AS4_PATH
    assert receiving.split(origin + reach) == [(1, origin), (14, reach)]
    assert receiving.split(b"") == []


def test_it_can_be_turned_off():
    assert receiving.enabled({}) and not receiving.enabled({receiving.ENV: "0"})


def test_as_paths_of_every_shape(exabgp_env):
    """AS_PATH attributes of each segment type, count and length, one or
    two segments, on two- and four-octet sessions: what ExaBGP decodes."""
    reach = mp_attribute(["2001:db8:99::/48"])
    origin = bytes((0x40, 1, 1, 0))
    payloads = [bytes((kind, count)) + bytes(range(1, size + 1))
                for kind in range(6) for count in range(6) for size in range(0, 21, 1)]
    payloads += [bytes((2, 1, 0, 0, 0xfd, 0xe9, 1, 2, 0xfd, 0xea, 0, 0, 0xfd, 0xeb)),
                 bytes((2, 2, 0, 0, 0xfd, 0xe9, 0, 0, 0xfd, 0xea, 1, 1, 0, 0, 0, 7)), b""]
    fast = fast_unpack()
    for asn4 in (True, False):
        sessions = (negotiated(asn4), negotiated(asn4))
        for payload in payloads:
            for flag in (0x40, 0x50, 0xc0):
                header = bytes((flag, 2, 0, len(payload))) if flag & 0x10 else bytes((flag, 2, len(payload)))
                data = reach + origin + header + payload
                stock, ours = unpack_both(data, sessions, fast)
                assert ours == stock, (asn4, data.hex())


def test_mp_reach_of_every_length(exabgp_env):
    """MP_REACH_NLRI cut after each octet of its value (the attribute's
    length saying so), with one and two next hops, each flag form, on
    sessions with and without IPv6: what ExaBGP decodes or raises."""
    good = mp_attribute(["2001:db8:99::/48", "2001:db8:98:1::/64"])
    value = good[3:] if good[0] & 0x10 == 0 else good[4:]
    two_hops = value[:3] + bytes((32,)) + value[4:20] + bytes.fromhex("fe80" + "00" * 13 + "01") + value[20:]
    rest = attributes("10.0.0.1", (65001,)).pack(negotiated())
    fast = fast_unpack()
    for families in (("ipv4", "ipv6"), ("ipv4",)):
        sessions = (negotiated(families=families), negotiated(families=families))
        for full in (value, two_hops):
            for cut in range(len(full) + 1):
                part = full[:cut]
                for header in (bytes((0x80, 14, len(part))), bytes((0x90, 14, 0, len(part))),
                               bytes((0xa0, 14, len(part))), bytes((0xc0, 14, len(part)))):
                    data = header + part + rest
                    stock, ours = unpack_both(data, sessions, fast)
                    assert ours == stock, data.hex()
