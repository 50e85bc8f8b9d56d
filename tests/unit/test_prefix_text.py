"""``normalise_prefix`` gives ``ipaddress``'s canonical text, or its error,
for every IPv6 and IPv4 prefix, whichever path it takes (the fast checks
``_fast_ipv4`` and ``_fast_ipv6`` accept only text already canonical)."""

import ipaddress
import random

import pytest

from testbed.bgp import route


def reference(text: str):
    try:
        return str(ipaddress.ip_network(text.strip(), strict=True))
    except ValueError:
        return ValueError


def ours(text: str):
    route._SORT_KEYS.clear()  # no memory of earlier answers: each text judged afresh
    try:
        return route.normalise_prefix(text)
    except ValueError:
        return ValueError


def sixes(count: int, seed: int = 7):
    """IPv6 prefixes with runs of zero groups in every place, as text in
    canonical and other forms."""
    rng = random.Random(seed)
    for _ in range(count):
        groups = [rng.choice((0, 0, 0, 1, 0xdb8, 0xffff, rng.randrange(1 << 16))) for _ in range(8)]
        value = int.from_bytes(b"".join(g.to_bytes(2, "big") for g in groups), "big")
        bits = rng.choice((0, 1, 16, 32, 47, 48, 63, 64, 96, 127, 128))
        network = value & ~((1 << (128 - bits)) - 1) if bits else 0
        address = ipaddress.IPv6Address(network)
        yield f"{address}/{bits}"                      # canonical
        yield f"{address.exploded}/{bits}"             # every zero written
        yield f"{str(address).upper()}/{bits}"
        yield f"{ipaddress.IPv6Address(value)}/{bits}"  # host bits, mostly


ODD = ["::/0", "::1/128", "::/128", "1::/16", "1:0:0:1::/64", "1::1:0:0:0/128", "1:0:0:1:0:0:0:0/64",
       "::ffff:1.2.3.4/128", "::ffff:102:304/128", "::1.2.3.4/128", "::102:304/128", "64:ff9b::/96",
       "2001:db8::/32", "2001:db8::/032", "2001:db8::/+32", "2001:db8::/129", "2001:db8::/", "2001:db8::",
       " 2001:db8::/32", "2001:db8::/32 ", "fe80::1%eth0/128", "2001:db8::/-1", "2001:0db8::/32",
       "2001:db8:0:0:1::/80", "2001:db8::1:0:0:1/128", "2001:db8:0:1:0:0:0:1/128", "::0/0", "0::/0",
       "10.0.0.0/8", "10.1.0.0/16", "010.0.0.0/8", "10.0.0.1/8", "1.2.3.4/32", "0.0.0.0/0", "10/8"]


@pytest.mark.parametrize("text", ODD)
def test_special_texts_are_judged_as_ipaddress_judges_them(text):
    assert ours(text) == reference(text)


def test_random_ipv6_texts_are_judged_as_ipaddress_judges_them():
    checked = 0
    for text in sixes(3000):
        assert ours(text) == reference(text), text
        checked += 1
    assert checked == 12000


def test_the_fast_check_takes_canonical_ipv6_and_nothing_else():
    assert route._fast_ipv6("2001:db8:1::/48") == (0x20010db8000100000000000000000000, 48)
    for text in ("2001:0db8:1::/48", "2001:DB8:1::/48", "2001:db8:1::1/48", "::ffff:1.2.3.4/128", "x/48",
                 "2001:db8:1::/048"):
        assert route._fast_ipv6(text) is None, text
