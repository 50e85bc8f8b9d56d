"""BGP communities: standard (RFC 1997) and large (RFC 8092).

A standard community is kept as its 32-bit number and written ``ASN:value``
(two 16-bit halves); a large community is a triple of 32-bit numbers,
written ``global:local1:local2``. Routes hold both kinds as sorted tuples
without duplicates (``community_set``), so that equal attribute sets compare
equal. ``parse_community``/``parse_large`` read the text forms, including
the well-known names, and raise ``ValueError`` naming the bad text.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "NO_EXPORT", "NO_ADVERTISE", "NO_EXPORT_SUBCONFED", "BLACKHOLE", "WELL_KNOWN",
    "parse_community", "parse_large", "community_text", "large_text",
    "community_set", "large_set",
]

NO_EXPORT = 0xFFFFFF01
"""RFC 1997: do not advertise outside the AS (to any eBGP neighbor)."""
NO_ADVERTISE = 0xFFFFFF02
"""RFC 1997: do not advertise to any BGP neighbor."""
NO_EXPORT_SUBCONFED = 0xFFFFFF03
BLACKHOLE = 0xFFFF029A
"""RFC 7999 (65535:666): the neighbor asks us to discard traffic to the prefix."""

WELL_KNOWN = {
    "no-export": NO_EXPORT,
    "no-advertise": NO_ADVERTISE,
    "no-export-subconfed": NO_EXPORT_SUBCONFED,
    "blackhole": BLACKHOLE,
}
_NAMES = {value: name for name, value in WELL_KNOWN.items()}


def _number(text: str, bits: int, what: str) -> int:
    if not text.isdigit():
        raise ValueError(f"{what}: {text!r} is not a number")
    value = int(text)
    if value >= 1 << bits:
        raise ValueError(f"{what}: {value} does not fit in {bits} bits")
    return value


def parse_community(text: object) -> int:
    """The number of standard community ``text``: ``"65000:120"``, a
    well-known name (``"no-export"``, ``"no-advertise"``, ``"blackhole"``)
    or a number. Raises ``ValueError``."""
    if isinstance(text, int) and not isinstance(text, bool):
        if not 0 <= text < 1 << 32:
            raise ValueError(f"community {text} is outside 0..4294967295")
        return text
    if not isinstance(text, str):
        raise ValueError(f"community {text!r} is not text like '65000:120'")
    lowered = text.strip().lower()
    if lowered in WELL_KNOWN:
        return WELL_KNOWN[lowered]
    parts = lowered.split(":")
    if len(parts) != 2:
        raise ValueError(f"community {text!r} must be ASN:value (two numbers up to 65535) "
                         f"or one of {', '.join(WELL_KNOWN)}")
    what = f"community {text!r}"
    return _number(parts[0], 16, what) << 16 | _number(parts[1], 16, what)


def parse_large(text: object) -> tuple[int, int, int]:
    """The triple of large community ``text`` (``"64500:1:2"``). Raises
    ``ValueError``."""
    if isinstance(text, (tuple, list)) and len(text) == 3:
        text = ":".join(str(part) for part in text)
    if not isinstance(text, str):
        raise ValueError(f"large community {text!r} is not text like '64500:1:2'")
    parts = text.strip().split(":")
    if len(parts) != 3:
        raise ValueError(f"large community {text!r} must be three numbers, global:local1:local2")
    what = f"large community {text!r}"
    a, b, c = (_number(part, 32, what) for part in parts)
    return (a, b, c)


def community_text(value: int) -> str:
    """``"ASN:value"`` of a standard community (well-known ones too)."""
    return f"{value >> 16}:{value & 0xFFFF}"


def community_name(value: int) -> str:
    """The well-known name of ``value`` if it has one, else its text."""
    return _NAMES.get(value, community_text(value))


def large_text(value: tuple[int, int, int]) -> str:
    return f"{value[0]}:{value[1]}:{value[2]}"


def community_set(values: Iterable) -> tuple[int, ...]:
    """Standard communities (numbers or text) as a sorted tuple without
    duplicates."""
    return tuple(sorted({parse_community(v) for v in values}))


def large_set(values: Iterable) -> tuple[tuple[int, int, int], ...]:
    """Large communities (triples or text) as a sorted tuple without
    duplicates."""
    return tuple(sorted({parse_large(v) for v in values}))
