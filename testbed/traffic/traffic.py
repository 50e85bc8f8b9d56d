"""Real packets between lab hosts, sent and counted by the harness process.

``Traffic`` answers "can this host reach that address, along which path, and
what was lost while the topology changed" with ICMP echo requests. Nothing
runs in the hosts: for a source host (named by the pid of a process in its
network namespace) it opens raw sockets inside that namespace with
``inside(pid)`` and keeps them, so the kernel there routes the probes and
resolves neighbours as it would for the host's own traffic. The probes carry
an ICMP identifier unique in this process, the sequence number and a payload
of a per-process magic, the full sequence number and the send time, so that
a reply, or an error quoting the probe, is matched to the operation that sent
it. One background thread reads the receiving sockets of every namespace and
hands each answer to the operation that owns its identifier; a stream sends
from a thread of its own at a controlled rate.

The package's modules: ``results`` (what operations return), ``packets``
(the probes and the parsing of answers), ``mmsg`` (batched send and
receive), ``receiver`` (the sockets per namespace and the reading thread),
``streams`` (``Stream``) and this one, the public face: ``Traffic`` and
the ping and traceroute operations (``_Probe``).

Routers must have net.ipv4.icmp_ratelimit and net.ipv6.icmp.ratelimit at 0
for traceroutes to see every hop. Even then an IPv4 router answers packets
it has no route for with at most one "net unreachable" per second per source
(burst 5): that is net.ipv4.route.error_cost, a machine-wide setting no
namespace can change, so expect silence rather than errors there.
"""

from __future__ import annotations

import queue
import threading
import time

from testbed.errors import MissingDependency
from testbed.linux.netns import netns_inode
from testbed.traffic.packets import _IDENTS, _Answer, _Echo, _family
from testbed.traffic.receiver import _Endpoint, _Receiver
from testbed.traffic.results import Hop, PingResult, StreamResult, TrafficError
from testbed.traffic.streams import Stream

__all__ = ["Hop", "PingResult", "Stream", "StreamResult", "Traffic", "TrafficError"]


class _Probe:
    """The state of one ping or traceroute: an identifier, its answers in a
    queue, the send time of each sequence number."""

    def __init__(self, traffic: Traffic, pid: int, destination: str):
        family = _family(destination)
        self.endpoint, self.receiver = traffic._endpoint(pid, family)
        self.destination = destination
        self.ident = _IDENTS.acquire()
        self.answers: queue.SimpleQueue[_Answer] = queue.SimpleQueue()
        self.sent_ns: dict[int, int] = {}
        try:
            self.echo = _Echo(family, destination, self.ident)
            self.receiver.listen(self.endpoint, self.ident, self.answers.put)
        except BaseException:
            _IDENTS.release(self.ident)
            raise

    def __enter__(self) -> _Probe:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.receiver.forget(self.endpoint, self.ident)
        _IDENTS.release(self.ident)

    def send(self, seq: int, ttl: int | None = None) -> str | None:
        """Send probe ``seq``; the reason if the source could not send it."""
        now_ns = time.time_ns()
        self.sent_ns[seq] = now_ns
        try:
            self.endpoint.transmit(self.echo, self.echo.render(seq, now_ns, ttl), ttl)
        except OSError as error:
            return f"cannot send from pid {self.endpoint.pid}: {error.strerror}"
        return None

    def next(self, deadline: float) -> _Answer | None:
        """The next answer to a probe we sent, or None at ``deadline``
        (time.monotonic)."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                answer = self.answers.get(timeout=min(remaining, 0.1))
            except queue.Empty:
                self.receiver.check()
                continue
            if answer.seq in self.sent_ns:
                return answer

    def rtt(self, answer: _Answer) -> float:
        return max(0, answer.received_ns - self.sent_ns[answer.seq]) / 1e9


class Traffic:
    """Pings, traceroutes and streams from lab hosts, each named by the pid of
    a process in its network namespace. Thread-safe. ``close()`` it before
    the lab stops: its sockets keep the namespaces alive. It can be used
    again after ``close()``, reopening what it needs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._endpoints: dict[tuple[int, int], _Endpoint] = {}
        self._retired: list[_Endpoint] = []
        self._receiver: _Receiver | None = None
        self._streams: set[Stream] = set()

    def __enter__(self) -> Traffic:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def ping(self, src_pid: int, destination: str, count: int = 3,
             timeout: float = 1.0, interval: float = 0.02) -> PingResult:
        """Send ``count`` echo requests ``interval`` seconds apart and wait up
        to ``timeout`` after the last for the replies; returns early once
        every probe is answered, by a reply or an error."""
        if not 1 <= count <= 0x10000:
            raise TrafficError(f"ping count must be 1 to 65536, got {count}")
        rtts: list[float] = []
        errors: list[str] = []
        settled: set[int] = set()
        with _Probe(self, src_pid, destination) as probe:

            def take(answer: _Answer) -> None:
                if answer.seq in settled:
                    return
                settled.add(answer.seq)
                if answer.kind == "reply":
                    rtts.append(probe.rtt(answer))
                else:
                    errors.append(f"{answer.source}: {answer.detail}")

            for seq in range(count):
                if seq:
                    pause = time.monotonic() + interval
                    while (answer := probe.next(pause)) is not None:
                        take(answer)
                failure = probe.send(seq)
                if failure is not None:
                    settled.add(seq)
                    errors.append(failure)
            deadline = time.monotonic() + timeout
            while len(settled) < count and (answer := probe.next(deadline)) is not None:
                take(answer)
        return PingResult(destination, count, len(rtts), tuple(rtts), tuple(errors))

    def reachable(self, src_pid: int, destination: str, timeout: float = 1.0) -> bool:
        """Whether ``destination`` answers a ping from ``src_pid``: up to
        three probes within ``timeout``, stopping at the first reply."""
        tries = 3
        with _Probe(self, src_pid, destination) as probe:
            # After the setup: opening sockets and importing scapy the first
            # time can take seconds on a loaded machine.
            started = time.monotonic()
            for seq in range(tries):
                if probe.send(seq) is not None:
                    return False
                deadline = started + timeout * (seq + 1) / tries
                while (answer := probe.next(deadline)) is not None:
                    if answer.kind == "reply":
                        return True
                    if answer.seq == seq:
                        break  # an error for this probe: try the next one now
        return False

    def traceroute(self, src_pid: int, destination: str, max_hops: int = 16,
                   timeout: float = 1.0, probes: int = 1) -> list[Hop]:
        """The hops from ``src_pid`` to ``destination``, one per TTL, ending
        at the destination or at a hop reporting it unreachable; all
        ``max_hops`` if neither answers within ``timeout``. Every TTL is
        probed at once, so this takes one round trip, not one per hop."""
        if not 1 <= max_hops <= 255:
            raise TrafficError(f"max_hops must be 1 to 255, got {max_hops}")
        if not 1 <= probes <= 16:
            raise TrafficError(f"probes must be 1 to 16, got {probes}")
        answers: dict[int, _Answer] = {}  # by seq = (ttl - 1) * probes + n

        def end() -> int | None:
            ends = [seq // probes + 1 for seq, a in answers.items() if a.kind != "time-exceeded"]
            return min(ends) if ends else None

        with _Probe(self, src_pid, destination) as probe:
            for seq in range(max_hops * probes):
                failure = probe.send(seq, ttl=seq // probes + 1)
                if failure is not None:  # no route at the source itself
                    return [Hop(ttl=1, address=None, rtt=None, reached=False,
                                error=failure)]
            deadline = time.monotonic() + timeout
            while True:
                last = end()
                if last is not None and all(s in answers for s in range(last * probes)):
                    break
                answer = probe.next(deadline)
                if answer is None:
                    break
                answers.setdefault(answer.seq, answer)
            hops = []
            for ttl in range(1, (end() or max_hops) + 1):
                got = [answers[s] for s in range((ttl - 1) * probes, ttl * probes)
                       if s in answers]
                rtts = tuple(probe.rtt(a) for a in got)
                errors = [a.detail for a in got if a.kind == "unreachable"]
                hops.append(Hop(
                    ttl=ttl, address=got[0].source if got else None,
                    rtt=min(rtts) if rtts else None,
                    reached=any(a.kind == "reply" for a in got),
                    rtts=rtts, error=errors[0] if errors else None))
        return hops

    def stream(self, src_pid: int, destination: str, rate: float = 200.0) -> Stream:
        """A stream of echo requests at ``rate`` per second, not yet started."""
        return Stream(self, src_pid, destination, rate)

    def close(self) -> None:
        """Stop running streams and the receiver, close every socket."""
        for stream in list(self._streams):
            stream.stop(drain=0)
        with self._lock:
            receiver, self._receiver = self._receiver, None
            endpoints = [*self._endpoints.values(), *self._retired]
            self._endpoints.clear()
            self._retired.clear()
        if receiver is not None:
            receiver.stop()
        for endpoint in endpoints:
            endpoint.close()

    def _endpoint(self, pid: int, family: int) -> tuple[_Endpoint, _Receiver]:
        """The sockets of ``pid``'s namespace for ``family``, opened on first
        use, and the receiver reading them."""
        try:
            inode = netns_inode(pid)
        except FileNotFoundError:
            raise TrafficError(f"no process {pid}: its network namespace is gone, "
                               "or the node was never started") from None
        with self._lock:
            if self._receiver is None:
                self._receiver = _Receiver()
            self._receiver.check()
            endpoint = self._endpoints.get((pid, family))
            if endpoint is not None and endpoint.inode != inode:
                # The pid was reused by another namespace's process. The
                # receiver may be reading the old sockets: close them in close().
                self._retired.append(self._endpoints.pop((pid, family)))
                endpoint = None
            if endpoint is None:
                try:
                    endpoint = _Endpoint(pid, family, inode)
                except PermissionError:
                    raise MissingDependency(
                        "raw sockets need root or CAP_NET_RAW: run the lab as root"
                    ) from None
                except FileNotFoundError:
                    raise TrafficError(f"no process {pid}: its network namespace is "
                                       "gone") from None
                self._endpoints[pid, family] = endpoint
                self._receiver.add(endpoint)
            return endpoint, self._receiver
