"""A stream of echo requests at a fixed rate, and what it lost.

``Traffic.stream`` makes a ``Stream``; ``start()`` sends from a thread of
its own on a schedule (a batch per ``sendmmsg`` when due, skipping ahead
rather than bursting after a stall), the receiver thread marks each
probe answered, and ``stop()`` waits briefly for the last reply and
summarises the run as a ``StreamResult`` (losses, the longest outage, when
it began and ended): how long a depeering or a cut link interrupted
traffic.
"""

from __future__ import annotations

import threading
import time
from array import array
from typing import TYPE_CHECKING

from testbed.traffic.mmsg import _Batch
from testbed.traffic.packets import _IDENTS, _Answer, _Echo, _family
from testbed.traffic.results import StreamResult, TrafficError

if TYPE_CHECKING:
    from testbed.traffic.traffic import Traffic

class Stream:
    """Echo requests at a steady rate from a background thread, counting the
    replies; ``start()``, then ``stop()`` gives the ``StreamResult``. As a
    context manager it starts on entry and leaves the result in ``.result``.
    """

    # If the sender falls this far behind its schedule (a stalled thread),
    # it skips ahead instead of bursting to catch up, which would flood the
    # path right when it is being measured.
    _MAX_LAG = 0.05

    def __init__(self, traffic: Traffic, pid: int, destination: str, rate: float):
        if not rate > 0:
            raise TrafficError(f"stream rate must be positive, got {rate!r} packets/s")
        self.destination, self.rate = destination, float(rate)
        self.result: StreamResult | None = None
        self._traffic, self._pid = traffic, pid
        self._family = _family(destination)
        self._sent_at = array("d")  # seconds since start, per sequence number
        self._replied = bytearray()  # 1 per sequence number answered
        self._icmp_errors = 0
        self._send_errors = 0
        self._max_rtt_ns = -1
        self._final = -1  # the last probe sent, once sending stopped
        self._drained = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = self._ended = 0.0

    def __enter__(self) -> Stream:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.result = self.stop()

    def start(self) -> Stream:
        """Start sending; returns the stream."""
        if self._thread is not None:
            raise TrafficError(f"stream to {self.destination} was already started")
        self._endpoint, self._receiver = self._traffic._endpoint(self._pid, self._family)
        self._ident = _IDENTS.acquire()
        try:
            self._echo = _Echo(self._family, self.destination, self._ident)
            self._receiver.listen(self._endpoint, self._ident, self._on_answer, self._on_reply)
            self._thread = threading.Thread(
                target=self._send, daemon=True,
                name=f"traffic-stream-{self._pid}-{self.destination}")
            self._traffic._streams.add(self)
            self._started = time.monotonic()
            self._thread.start()
        except BaseException:
            self._receiver.forget(self._endpoint, self._ident)
            _IDENTS.release(self._ident)
            self._traffic._streams.discard(self)
            raise
        return self

    def stop(self, drain: float = 0.5) -> StreamResult:
        """Stop sending, wait up to ``drain`` seconds for the reply to the
        last probe, and return the result (the same one if called again)."""
        if self.result is not None:
            return self.result
        if self._thread is None:
            raise TrafficError(f"stream to {self.destination} was never started")
        self._stopping.set()
        self._thread.join()
        self._final = len(self._sent_at) - 1
        if self._final < 0 or self._answered(self._final):
            self._drained.set()
        self._drained.wait(drain)
        self._receiver.forget(self._endpoint, self._ident)
        _IDENTS.release(self._ident)
        self._traffic._streams.discard(self)
        self.result = self._summarise()
        return self.result

    def _answered(self, number: int) -> bool:
        replied = self._replied
        return number < len(replied) and replied[number] == 1

    def _send(self) -> None:
        try:
            batch = _Batch(self._endpoint.send, self._echo)
        except (OSError, AttributeError):  # no sendmmsg here: one sendto per probe
            batch = None
        try:
            if batch is None:
                self._send_each()
            else:
                self._send_batches(batch)
        finally:
            self._ended = time.monotonic()

    def _send_batches(self, batch: _Batch) -> None:
        """Every probe due by now in one system call (up to ``_Batch.SIZE``),
        then sleep until the next is due: the same schedule as
        ``_send_each`` at low rates, a few hundred thousand probes per second
        at high ones."""
        sent_at, stopping, rate = self._sent_at, self._stopping, self.rate
        start = origin = self._started
        number = first_due = 0  # probes sent; the number due at ``origin``
        lag = max(1, int(rate * self._MAX_LAG))
        size = _Batch.SIZE
        while not stopping.is_set():
            now = time.monotonic()
            due = first_due + int((now - origin) * rate) + 1 - number
            if due <= 0:
                wait = origin + (number - first_due) / rate - now
                if wait > 0.001:
                    stopping.wait(wait)
                elif wait > 0:
                    time.sleep(wait)
                continue
            if due > lag + size:  # a stalled thread: skip ahead instead of bursting
                origin, first_due, due = now, number, 1
            count = min(due, size)
            # Recorded first: the reply may be read before sendmmsg returns.
            offset = now - start
            sent_at.extend([offset] * count)
            try:
                done = batch.send(number, count, time.time_ns())
            except OSError:
                done = 0
            self._send_errors += count - done
            number += count

    def _send_each(self) -> None:
        endpoint, echo, sent_at = self._endpoint, self._echo, self._sent_at
        transmit, render = endpoint.send.sendto, echo.render
        stopping, interval = self._stopping, 1.0 / self.rate
        start = self._started
        due = start
        number = 0
        while not stopping.is_set():
            now = time.monotonic()
            if now < due:
                wait = due - now
                if wait > 0.001:
                    stopping.wait(wait)
                else:
                    time.sleep(wait)
                continue
            # Recorded first: the reply may be read before sendto returns.
            sent_at.append(now - start)
            try:
                transmit(render(number, time.time_ns()), echo.address)
            except OSError:
                self._send_errors += 1
            number += 1
            due += interval
            if now - due > self._MAX_LAG:
                due = now

    def _on_reply(self, number: int, sent_ns: int, received_ns: int) -> None:
        """An echo reply (runs in the receiver thread): ``_on_answer`` without the _Answer."""
        if number >= len(self._sent_at):
            return
        replied = self._replied
        if number >= len(replied):
            replied.extend(bytes(max(number + 1 - len(replied), 4096)))
        if replied[number]:
            return  # duplicate
        replied[number] = 1
        rtt = received_ns - sent_ns
        if rtt > self._max_rtt_ns:
            self._max_rtt_ns = rtt
        if number == self._final:
            self._drained.set()

    def _on_answer(self, answer: _Answer) -> None:
        """Runs in the receiver thread."""
        if answer.kind != "reply":
            self._icmp_errors += 1
            return
        if answer.number is not None:
            self._on_reply(answer.number, answer.sent_ns, answer.received_ns)

    def _summarise(self) -> StreamResult:
        sent_at, replied = self._sent_at, self._replied
        sent = len(sent_at)
        answered = replied[:sent].ljust(sent, b"\0")
        lost = tuple(n for n in range(sent) if not answered[n])
        duration = self._ended - self._started
        longest = 0.0
        run_start = None
        for index, number in enumerate(lost):
            if run_start is None:
                run_start = number
            if index + 1 == len(lost) or lost[index + 1] != number + 1:
                until = sent_at[number + 1] if number + 1 < sent else duration
                longest = max(longest, until - sent_at[run_start])
                run_start = None
        recovered_at = None
        if lost and lost[-1] + 1 < sent:
            recovered_at = sent_at[lost[-1] + 1]
        return StreamResult(
            destination=self.destination, sent=sent, received=sent - len(lost),
            lost=lost, duration=duration,
            rate=sent / duration if duration > 0 else 0.0,
            longest_outage=longest,
            first_lost_at=sent_at[lost[0]] if lost else None,
            recovered_at=recovered_at,
            icmp_errors=self._icmp_errors, send_errors=self._send_errors,
            max_rtt=self._max_rtt_ns / 1e9 if self._max_rtt_ns >= 0 else None)
