"""Session policies carried out by real speakers: what arrives on the other
side of a real BGP session (communities, large communities, NO_EXPORT,
prepending, MED, local_pref), and a maximum-prefix limit that closes a
session and keeps it closed."""

import time

import pytest

from testbed import Topology
from testbed.testing.assertions import assert_established, assert_session_down
from testbed.errors import LabError

pytestmark = pytest.mark.emulation

P_TAGGED = "198.51.100.0/24"     # A: tagged 64601:100 and 64601:1:2
P_LOCAL = "203.0.113.0/24"       # A: sent to B with NO_EXPORT added on the session


def build() -> Topology:
    topo = Topology("wire", hold_time=3)
    t = topo.add_as(64600, "T")
    a = topo.add_as(64601, "A")
    b = topo.add_as(64602, "B")
    c = topo.add_as(64603, "C")
    d = topo.add_as(64604, "D")
    topo.transit(t, a)
    topo.transit(t, b)
    topo.transit(b, c)
    topo.peering(a, b, policy={
        "A": {"prepend": 2, "med": 50,
              "export": [{"match": {"prefix": [P_LOCAL]}, "set": {"add_communities": ["no-export"]}}]},
        "B": {"import": [{"match": {"community": ["64601:100"]},
                          "set": {"local_pref": 300, "add_communities": ["64602:1"]}}]},
    })
    topo.transit(b, d, policy={"B": {"export": [{"set": {"remove_communities": "all",
                                                         "remove_large_communities": "all"}}]}})
    return topo


TOPOLOGY = build()


def test_attributes_arrive_as_the_policies_say(lab):
    lab.announce("A", P_TAGGED, communities=["64601:100"], large_communities=["64601:1:2"])
    route = lab.route("B", P_TAGGED)
    assert lab.names(route["as_path"]) == ["A", "A", "A"]          # prepended twice
    assert route["med"] == 50
    assert route["local_pref"] == 300                               # B's import term
    assert set(route["communities"]) == {"64601:100", "64602:1"}
    assert route["large_communities"] == ["64601:1:2"]
    # C (a customer of B) gets it with the communities; D's session strips them.
    assert set(lab.route("C", P_TAGGED)["communities"]) == {"64601:100", "64602:1"}
    assert lab.route("D", P_TAGGED)["communities"] == []
    assert lab.route("D", P_TAGGED)["large_communities"] == []


def test_no_export_added_on_a_session_stops_at_the_neighbor(lab):
    lab.announce("A", P_LOCAL)
    assert "65535:65281" in lab.route("B", P_LOCAL)["communities"]
    assert lab.route("C", P_LOCAL) is None, "B passed a NO_EXPORT route to its customer"
    assert lab.route("C", P_TAGGED) is not None                    # the control: no NO_EXPORT
    assert lab.names(lab.route("T", P_LOCAL)["as_path"]) == ["A"]   # A's other sessions: untouched


def test_a_policy_change_is_refused_when_invalid(lab):
    with pytest.raises(LabError, match=r"policy of B towards A\.import\[0\]\.set\.prepend"):
        lab.set_policy("B", "A", {"import": [{"set": {"prepend": 1}}]})


def test_maximum_prefix_limit_closes_the_session_and_keeps_it_closed(lab):
    lab.set_policy("C", "B", {"max_prefix": 100})
    assert_established(lab, "B", "C")
    lab.set_policy("B", "C", {"max_prefix": 2})   # C sends its two prefixes: at the limit
    assert_established(lab, "B", "C")
    lab.announce("C", "192.0.2.0/24")             # one more
    assert_session_down(lab, "B", "C")
    state = lab.sessions("C")["B"]
    assert state["last_notification"]["code"] == 6 and state["last_notification"]["subcode"] == 1
    assert "maximum prefixes exceeded" in lab.sessions("B")["C"]["shut"]
    flaps = lab.sessions("C")["B"]["flaps"]
    time.sleep(2)
    assert lab.sessions("C")["B"]["flaps"] == flaps, "the session came back although over the limit"
    assert lab.route("T", lab.prefix_of("C")) is None  # C's routes are gone from B and beyond
    lab.withdraw("C", "192.0.2.0/24")
    lab.repeer("B", "C")
    assert_established(lab, "B", "C")
    assert lab.route("T", lab.prefix_of("C")) is not None
