"""Which ExaBGP peers get a turn of the loop within a second
(``testbed.speaker.reactor.needs_turn``): only those with something to do."""

from __future__ import annotations

from collections import deque
from types import SimpleNamespace

import pytest
from exabgp.bgp.fsm import FSM
from exabgp.reactor.peer import ACTION

from testbed.speaker.reactor import needs_turn as _needs_turn

FD = 7


def peer(**change) -> SimpleNamespace:
    """An Established peer with nothing to do, but for ``change``."""
    pending = change.pop("pending", False)
    queues = {name: deque(change.pop(name, ())) for name in ("messages", "refresh", "eor")}
    fields = {"fsm": SimpleNamespace(state=FSM.ESTABLISHED), "_testbed_action": ACTION.LATER,
              "_teardown": None, "_neighbor": None, "socket": lambda: FD,
              "neighbor": SimpleNamespace(rib=SimpleNamespace(outgoing=SimpleNamespace(pending=lambda: pending)),
                                          **queues)}
    fields.update(change)
    return SimpleNamespace(**fields)


def needs(p, ready=()) -> bool:
    return _needs_turn(p, set(ready), FSM.ESTABLISHED, ACTION.LATER)


def test_an_idle_established_peer_waits_for_the_next_second():
    assert not needs(peer())
    assert not needs(peer(), ready={FD + 1})  # another socket is readable


@pytest.mark.parametrize("why, p, ready", [
    ("its socket is readable", peer(), {FD}),
    ("it asked for another turn", peer(_testbed_action=ACTION.NOW), ()),
    ("it has not run yet", peer(_testbed_action=None), ()),
    ("it is connecting", peer(fsm=SimpleNamespace(state=FSM.CONNECT)), ()),
    ("it is exchanging OPENs", peer(fsm=SimpleNamespace(state=FSM.OPENCONFIRM)), ()),
    ("it is told to tear down", peer(_teardown=6), ()),
    ("it has a new configuration", peer(_neighbor=object()), ()),
    ("routes wait in its Adj-RIB-Out", peer(pending=True), ()),
    ("an operational message waits", peer(messages=["op"]), ()),
    ("a route refresh waits", peer(refresh=["refresh"]), ()),
    ("an EOR waits", peer(eor=["eor"]), ()),
])
def test_a_peer_with_something_to_do_gets_a_turn(why, p, ready):
    assert needs(p, ready), why
