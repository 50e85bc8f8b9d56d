"""``sharing.AttributeMaker`` gives what ``handover.make_attributes`` gives,
for every route command's attributes, whether its caches are cold or warm."""

import itertools

import pytest

from testbed.speaker import handover, sharing

exabgp = pytest.importorskip("exabgp")

HOPS = ("10.0.0.1", "10.0.0.5", "192.0.2.254", "fd00::1", "2001:db8:0:1::2", "fe80::1")
PATHS = ((), (65001,), (65001, 65002, 65003), (4200000000, 65001, 65001, 65001))
KEYS = [(hop, origin, path, med, local_pref) for hop, origin, path, med, local_pref in itertools.product(
    HOPS, ("igp", "egp", "incomplete"), PATHS, (None, 0, 50), (None, 100, 200))]


def negotiated(local_as=65002, peer_as=65001, asn4=True):
    from exabgp.bgp.message.open.asn import ASN
    from exabgp.bgp.message.open.capability import Negotiated
    from exabgp.bgp.neighbor import Neighbor

    found = Negotiated(Neighbor())
    found.local_as, found.peer_as, found.asn4 = ASN(local_as), ASN(peer_as), asn4
    return found


# eBGP 4-octet, 2-octet, iBGP, and eBGP 4-octet with other ASes (packed as the first)
SESSIONS = (negotiated(), negotiated(asn4=False), negotiated(local_as=65001), negotiated(64512, 4200000001))


def observed(attributes) -> tuple:
    """What ExaBGP can see of an ``Attributes``: its type, codes in order,
    each attribute's type and value, text, index, JSON and packed forms."""
    return (type(attributes), [(code, type(a), a.pack(SESSIONS[0])) for code, a in attributes.items()],
            attributes.index(), str(attributes), attributes.json(), attributes.cacheable,
            [attributes.pack(session) for session in SESSIONS], attributes.has(3), len(attributes))


@pytest.mark.parametrize("order", ["as listed", "reversed"])
def test_the_maker_gives_what_make_attributes_gives(order):
    maker = sharing.AttributeMaker(handover.make_attributes)
    keys = KEYS if order == "as listed" else KEYS[::-1]
    for key in keys + keys:  # cold caches first, warm the second time
        assert observed(maker(*key)) == observed(handover.make_attributes(*key)), key


def test_warm_calls_share_the_attribute_objects_and_fill_the_index():
    maker = sharing.AttributeMaker(handover.make_attributes)
    maker("10.0.0.1", "igp", (65001, 65002), None, 100)
    maker("10.0.0.5", "egp", (65003,), None, None)
    first = maker("10.0.0.5", "igp", (65001, 65002), None, 100)   # from a template and a known hop
    second = maker("10.0.0.1", "igp", (65001, 65002), None, 100)
    assert first is not second and first[2] is second[2] and first[3] is not second[3]
    assert first._idx and first._idx != second._idx
    assert first == handover.make_attributes("10.0.0.5", "igp", (65001, 65002), None, 100)


def test_a_withdrawal_has_empty_attributes():
    maker = sharing.AttributeMaker(handover.make_attributes)
    assert observed(maker(None, None, None, None, None)) == observed(handover.make_attributes(None, None, None,
                                                                                               None, None))


def test_the_caches_are_bounded():
    maker = sharing.AttributeMaker(handover.make_attributes, limit=4)
    for asn in range(1, 20):
        key = (f"10.0.0.{asn}", "igp", (asn,), None, None)
        assert observed(maker(*key)) == observed(handover.make_attributes(*key))
    assert len(maker._templates) <= 4 and len(maker._hops) <= 4


def test_it_can_be_turned_off():
    assert sharing.enabled({}) and sharing.enabled({sharing.ENV: "1"})
    assert not sharing.enabled({sharing.ENV: "0"})


def forms_as_packing_makes_them(attributes, session):
    """What ``packing._attribute_forms`` computes without the maker."""
    from exabgp.bgp.message.update.attribute import Attributes

    full = attributes.pack(session)
    hop = attributes.get(3)
    if hop is None or hop.ipv4() is not True:
        return full, full
    rest = Attributes()
    for code, attribute in attributes.items():
        if code != 3:
            dict.__setitem__(rest, code, attribute)
    return full, rest.pack(session)


def test_the_packed_forms_are_what_packing_computes():
    maker = sharing.AttributeMaker(handover.make_attributes)
    for key in KEYS + KEYS:
        attributes = maker(*key)
        for session in SESSIONS:
            assert maker.forms(attributes, session) == forms_as_packing_makes_them(attributes, session), key
    assert len(maker._packed) == len(maker._templates) * 3   # three kinds of session


def test_no_packed_forms_for_attributes_it_did_not_make_or_that_changed():
    from exabgp.bgp.message.update.attribute import MED

    maker = sharing.AttributeMaker(handover.make_attributes)
    assert maker.forms(handover.make_attributes("10.0.0.1", "igp", (1,), None, None), SESSIONS[0]) is None
    changed = maker("10.0.0.1", "igp", (1,), None, None)
    changed.add(MED(5))
    assert maker.forms(changed, SESSIONS[0]) is None



def test_it_refuses_an_exabgp_whose_attributes_changed(monkeypatch):
    from testbed.speaker import compat

    monkeypatch.setattr(compat, "_verified", set())
    patch = compat.PATCHES["attributes-index"]
    monkeypatch.setitem(compat.PATCHES, "attributes-index", patch._replace(digest="0" * 16))
    with pytest.raises(compat.CompatError, match="attributes-index"):
        sharing.AttributeMaker(handover.make_attributes)
