"""MRT files (written here in the real formats, read by mrtparse) and a
validator's ROA export: what a replay would send, and its ROV counts."""

import json
import signal
import subprocess
import sys

import pytest

from testbed.internet import mrt
from testbed.internet.mrt_write import table_dump, updates

ROUTES = [("1.1.1.0/24", [3356, 13335], "192.0.2.1"),
          ("203.0.113.0/24", [3356, 64999], "192.0.2.1"),
          ("198.51.100.0/24", [3356, 174, 64777], "192.0.2.1"),
          ("2001:db8:1::/48", [3356, 13335], "2001:db8::1")]


@pytest.mark.parametrize("name", ["rib.20250101.0000", "bview.20250101.0000.bz2"])
def test_table_dump_round_trip(tmp_path, name):
    path = tmp_path / name
    table_dump(path, (3356, "192.0.2.1"), ROUTES)
    got = mrt.read_table(path)
    assert [(r.prefix, list(r.as_path), r.next_hop, r.peer_asn) for r in got] == \
        [(p, a, h, 3356) for p, a, h in ROUTES]
    assert mrt.read_table(path, peer_asn=174) == []


def test_update_stream(tmp_path):
    path = tmp_path / "updates.20250101.0000.bz2"
    updates(path, (3356, "192.0.2.1"), [
        (100, [("192.0.2.128/25", [3356, 64512], "192.0.2.1")], []),
        (130, [], ["192.0.2.128/25", "203.0.113.0/24"]),
    ])
    got = mrt.read_updates(path)
    assert [(u.time, u.peer_asn, [(r.prefix, r.as_path) for r in u.announced], u.withdrawn) for u in got] == [
        (100, 3356, [("192.0.2.128/25", (3356, 64512))], []),
        (130, 3356, [], ["192.0.2.128/25", "203.0.113.0/24"]),
    ]
    with pytest.raises(mrt.MrtError, match="not TABLE_DUMP_V2"):
        mrt.read_table(path)


def test_roas_and_rov_counts(tmp_path):
    export = tmp_path / "roas.json"
    export.write_text(json.dumps({"metadata": {"generated": 1}, "roas": [
        {"asn": "AS13335", "prefix": "1.1.1.0/24", "maxLength": 24, "ta": "apnic"},
        {"asn": "AS13335", "prefix": "2001:db8::/32", "maxLength": 48, "ta": "ripe"},
        {"asn": 64500, "prefix": "203.0.113.0/24", "maxLength": 24, "ta": "arin"}]}))
    roas = mrt.load_roas(export)
    assert roas[0] == {"prefix": "1.1.1.0/24", "asn": 13335, "max_length": 24}
    table = tmp_path / "rib"
    table_dump(table, (3356, "192.0.2.1"), ROUTES)
    assert mrt.rov_counts(mrt.read_table(table), roas) == {"valid": 2, "invalid": 1, "not-found": 1}
    export.write_text(json.dumps({"roas": [{"asn": "AS1", "prefix": "1.1.1.0/24"},
                                           {"asn": "ASx", "prefix": "1.1.1.0/24"}]}))
    with pytest.raises(mrt.MrtError, match=r"roas\.json: roas\[1\]"):
        mrt.load_roas(export)


def test_not_an_mrt_file(tmp_path):
    path = tmp_path / "junk"
    path.write_bytes(b"\x00\x00\x00\x01\x00\x0d\x00\x02\x00\x00\x00\x05abc")
    with pytest.raises(mrt.MrtError, match="junk: MRT record 1"):
        mrt.read_table(path)
    with pytest.raises(mrt.MrtError, match="no such file"):
        mrt.read_table(tmp_path / "missing")


def test_importing_it_leaves_sigpipe_ignored():
    # mrtparse sets SIGPIPE to its default action when imported, which made
    # the test run die (exit 141) when a test killed a speaker.
    assert signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN
    code = "import signal, testbed.internet.mrt; print(signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "True"
