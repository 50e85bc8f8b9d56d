"""A real table and update stream (MRT files written here in the formats
RIPE RIS and RouteViews publish) replayed into a running lab through a
neighbour's speaker: R learns them from its customer F over a real BGP
session, validates origins against ROAs read from a validator's JSON
export (the invalid route never reaches R's table nor R's other customer
X), follows a timed update stream, and trips a maximum-prefix limit."""

import json
import time

import pytest

from testbed import Topology
from testbed.internet import mrt
from testbed.internet.mrt_write import table_dump, updates
from testbed.testing.assertions import assert_session_down

pytestmark = pytest.mark.emulation

VALID, INVALID, UNKNOWN = "1.1.1.0/24", "203.0.113.0/24", "198.51.100.0/24"
VALID6, LATER = "2606:4700::/32", "45.60.0.0/22"
ROUTES = [(VALID, [3356, 13335], "192.0.2.1"), (INVALID, [3356, 64999], "192.0.2.1"),
          (UNKNOWN, [3356, 174, 64777], "192.0.2.1"), (VALID6, [3356, 13335], "2001:db8::1")]
ROAS = {"roas": [{"asn": "AS13335", "prefix": "1.1.1.0/24", "maxLength": 24, "ta": "apnic"},
                 {"asn": "AS13335", "prefix": "2606:4700::/32", "maxLength": 48, "ta": "arin"},
                 {"asn": "AS64510", "prefix": "203.0.113.0/24", "maxLength": 24, "ta": "arin"}]}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    work = tmp_path_factory.mktemp("mrt")
    (work / "roas.json").write_text(json.dumps(ROAS))
    table_dump(work / "bview.20250101.0000.bz2", (3356, "192.0.2.1"), ROUTES)
    updates(work / "updates.20250101.0000.bz2", (3356, "192.0.2.1"), [
        (1000, [], [UNKNOWN]), (1003, [(LATER, [3356, 19551], "192.0.2.1")], [])])
    return work


def build(roas) -> Topology:
    topo = Topology("replay", hold_time=3)
    r = topo.add_as(64500, "R", rov=True)
    f = topo.add_as(64501, "F")
    x = topo.add_as(64502, "X")
    topo.transit(r, f)
    topo.transit(r, x)
    for roa in roas:
        topo.roa(roa["prefix"], roa["asn"], roa["max_length"])
    return topo


@pytest.fixture(scope="module")
def lab(request, files):
    from testbed.lab import Lab
    lab = Lab(build(mrt.load_roas(files / "roas.json")).validate())
    request.addfinalizer(lab.stop)
    lab.start()
    return lab


def test_table_replayed_with_origin_validation(lab, files):
    routes = mrt.read_table(files / "bview.20250101.0000.bz2")
    assert mrt.rov_counts(routes, mrt.load_roas(files / "roas.json")) == {"valid": 2, "invalid": 1, "not-found": 1}
    assert mrt.replay_table(lab, "F", routes) == 4
    at_r, at_x = lab.loc_rib("R"), lab.loc_rib("X")
    assert at_r[VALID]["as_path"] == [64501, 3356, 13335]
    assert at_r[VALID6]["as_path"] == [64501, 3356, 13335]
    assert at_x[UNKNOWN]["as_path"] == [64500, 64501, 3356, 174, 64777]
    assert INVALID not in at_r and INVALID not in at_x
    received = lab.snapshot("R")["adj_rib_in"][lab.plan.routers["R"].neighbor("F").address]
    assert "RPKI invalid" in received[INVALID]["rejected"]
    assert lab.expect.model == "event simulation"


def test_update_stream_replayed_with_its_timing(lab, files):
    stream = mrt.read_updates(files / "updates.20250101.0000.bz2")
    started = time.monotonic()
    assert mrt.replay_updates(lab, "F", stream, speed=10) == 2
    assert time.monotonic() - started >= 0.3      # 3 s recorded, ten times faster
    at_r = lab.loc_rib("R")
    assert UNKNOWN not in at_r and at_r[LATER]["as_path"] == [64501, 3356, 19551]


def test_a_leak_trips_a_maximum_prefix_limit(lab):
    accepted = 5    # F's own two prefixes, VALID, VALID6 and LATER: at the limit
    lab.set_policy("R", "F", {"rov": True, "max_prefix": accepted})
    leak = [mrt.MrtRoute("8.8.8.0/24", (3356, 15169), "192.0.2.1")]
    mrt.replay_table(lab, "F", leak)
    deadline = time.monotonic() + 15
    while not (lab.sessions("R")["F"].get("shut") or "").startswith("maximum prefixes exceeded"):
        assert time.monotonic() < deadline, f"no maximum-prefix teardown: {lab.sessions('R')['F']}"
        time.sleep(0.1)
    assert_session_down(lab, "R", "F")
    lab.wait_converged(15)
    assert VALID not in lab.loc_rib("X")
