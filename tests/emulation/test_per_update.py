"""A burst of one-route UPDATEs through a real P -> R -> C lab
(``testbed.bench.per_update``): every route arrives with its own AS path,
and each of the speakers' per-message batchings (``testbed.speaker.batching``)
is seen working in their own counters, so none can switch off unnoticed."""

from __future__ import annotations

import os

import pytest

from testbed.bench import per_update

pytestmark = pytest.mark.emulation

UPDATES = 500


@pytest.fixture(scope="module")
def burst(host_quiet):
    if os.geteuid() != 0:
        pytest.fail("emulation tests run as root")
    seen = {}

    def watch(pids):
        def after():
            from testbed.bench.per_update import sample

            seen["threads"] = {name: set(sample(pid)) for name, pid in pids.items()}
        return after

    results = per_update.run(UPDATES, 1, log=lambda text: None, watch=watch)
    return results[0], seen


def test_every_update_of_the_burst_is_counted_at_each_speaker(burst):
    result, _ = burst
    # P's routes (and its own two prefixes, announced again when the session came up)
    assert result["updates"]["P"] >= UPDATES
    assert result["updates"]["R"] >= UPDATES
    assert result["updates"]["C"] >= UPDATES


def test_the_threads_of_each_speaker_are_told_apart(burst):
    result, seen = burst
    assert seen["threads"] == {name: {"exabgp", "agent"} for name in per_update.SPEAKERS}
    for name in per_update.SPEAKERS:
        rows = result["speakers"][name]
        assert rows["exabgp"]["cpu"] > 0 and rows["total"]["cpu"] >= rows["exabgp"]["cpu"]


@pytest.mark.parametrize("receiver", ["R", "C"])
def test_a_burst_is_read_handed_over_and_turned_in_batches(burst, receiver):
    counters = burst[0]["counters"][receiver]
    assert counters["messages_read"] >= 1.0                 # the reader is ours ('recv')
    assert counters["socket_reads"] < 0.5                   # ... and reads several messages at once
    assert 0 < counters["handover_writes"] < 0.5            # the agent hears of several UPDATEs per write
    assert counters["peer_steps"] >= 1.0                    # the drain counts steps ('drain')
    assert counters["reactor_turns"] < 0.9                  # ... and several messages share a turn (without: >= 1)
