"""Echo requests patched in place for batched sending (``_Echo.render_into``)
are byte for byte what ``_Echo.render`` builds, checksum included."""

from __future__ import annotations

import socket

import pytest

from testbed.traffic.packets import _Echo, _checksum


@pytest.mark.parametrize("family, destination", [(socket.AF_INET, "192.0.2.7"),
                                                 (socket.AF_INET6, "2001:db8::7")])
@pytest.mark.parametrize("number", [0, 1, 0xFFFF, 0x10000, 123_456_789, 2**64 - 1])
def test_render_into_equals_render(family, destination, number):
    echo = _Echo(family, destination, ident=0xBEEF)
    now_ns = 1_795_460_261_123_456_789
    buffer = bytearray(echo._frame * 3)
    offset = len(echo._frame)
    echo.render_into(buffer, offset, number, now_ns)
    assert bytes(buffer[offset:2 * offset]) == bytes(echo.render(number, now_ns))
    assert buffer[:offset] == echo._frame and buffer[2 * offset:] == echo._frame  # neighbours untouched


def test_the_ipv4_checksum_verifies():
    echo = _Echo(socket.AF_INET, "198.51.100.1", ident=7)
    buffer = bytearray(echo._frame)
    echo.render_into(buffer, 0, 987_654_321, 42)
    icmp = (buffer[0] & 0x0F) * 4
    assert _checksum(bytes(buffer[icmp:])) == 0
