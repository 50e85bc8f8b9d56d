"""What a traffic operation gives back, and its error.

``PingResult`` (echo requests and their replies), ``Hop`` (one TTL of a
traceroute) and ``StreamResult`` (a stream at a fixed rate and what it
lost) are frozen values the lab and the assertions read; ``TrafficError``
says a probe could not be sent or an operation was misused.
"""

from __future__ import annotations

from dataclasses import dataclass

from testbed.errors import TestbedError


class TrafficError(TestbedError):
    """Probes could not be sent or an operation was misused (bad address,
    source process gone, stream started twice)."""


@dataclass(frozen=True)
class PingResult:
    """Echo requests sent from one host to ``destination`` and what came back.

    ``rtts`` are the round-trip times of the replies, in seconds; ``errors``
    the ICMP errors received instead (``"10.0.1.1: net unreachable"``) and
    probes the source could not send at all.
    """

    destination: str
    sent: int
    received: int
    rtts: tuple[float, ...]
    errors: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """At least one reply came back."""
        return self.received > 0

    @property
    def loss(self) -> float:
        """Fraction of probes without a reply, 0.0 to 1.0."""
        return 1.0 - self.received / self.sent if self.sent else 1.0


@dataclass(frozen=True)
class Hop:
    """One TTL of a traceroute.

    ``address`` is who answered (``None``: nobody within the timeout),
    ``rtt`` the smallest round-trip time of the probes at this TTL,
    ``reached`` whether the destination itself answered, ``error`` an
    unreachable error reported at this hop (such a hop ends the path).
    """

    ttl: int
    address: str | None
    rtt: float | None
    reached: bool
    rtts: tuple[float, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class StreamResult:
    """A stream of echo requests at a fixed rate and what was lost.

    ``lost`` holds the sequence numbers (0 for the first probe) without a
    reply. Times are in seconds; ``first_lost_at`` and ``recovered_at`` count
    from the start of the stream: when the first lost probe was sent, and
    when the first answered probe after the last loss was sent (``None`` if
    nothing was lost, or for ``recovered_at`` if the loss lasted to the end).
    ``longest_outage`` is the longest run of consecutive lost probes,
    measured from the send time of its first probe to that of the next
    answered probe (or the end of the stream).
    """

    destination: str
    sent: int
    received: int
    lost: tuple[int, ...]
    duration: float
    rate: float
    longest_outage: float
    first_lost_at: float | None
    recovered_at: float | None
    icmp_errors: int = 0
    send_errors: int = 0
    max_rtt: float | None = None

    @property
    def loss(self) -> float:
        """Fraction of probes without a reply, 0.0 to 1.0."""
        return len(self.lost) / self.sent if self.sent else 0.0
