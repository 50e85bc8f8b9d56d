"""Values that carry shell metacharacters reach no shell and no ExaBGP
command line. Names with them are refused by validation
(``tests/unit/test_validation.py``); what is accepted and still holds them
is a session password (TCP MD5 keys may contain ``$()``, backticks, ``|``,
``&``, ``<``, ``>``), and what a scenario passes at run time is a prefix to
announce or withdraw. Both are checked here on a running lab."""

import os
import shutil
import tempfile

import pytest

from testbed import Topology
from testbed.errors import LabError
from testbed.lab.lab import Lab

pytestmark = pytest.mark.emulation

INJECTIONS = ["192.0.2.0/25; shutdown", "192.0.2.0/25\nshutdown", "192.0.2.0/25 next-hop 10.9.9.9",
              "$(reboot)", "`reboot`", "192.0.2.0/25' or '1", '192.0.2.0/25"', "192.0.2.0/25|reboot"]


@pytest.fixture
def marks():
    path = tempfile.mkdtemp(prefix="m")  # short: a password holds 80 characters
    yield path
    shutil.rmtree(path)


def test_metacharacters_in_a_password_and_in_prefixes_reach_no_shell(marks):
    # Were any of this run by a shell, a file would appear in `marks`, and
    # the two ends would not hold the same key (the session stays down).
    password = f"$(touch${{IFS}}{marks}/a)`touch${{IFS}}{marks}/b`|&<>"
    topo = Topology("noshell", hold_time=3)
    topo.add_as(64500, "T")
    topo.add_as(64501, "A")
    topo.add_as(64502, "B")
    topo.transit("T", "A", password=password)
    topo.transit("T", "B")
    with Lab(topo) as lab:
        assert lab.sessions("A")["T"]["state"] == "established"
        assert lab.sessions("T")["A"]["state"] == "established"
        for router in ("A", "T"):
            assert f'md5-password "{password}";' in (lab.workdir / router / "exabgp.conf").read_text()
        assert lab.as_path("A", "B") == ["T", "B"]
        before = {router: lab.loc_rib(router) for router in ("T", "A", "B")}
        for text in INJECTIONS:
            for event in (lab.announce, lab.withdraw):
                with pytest.raises(LabError, match="invalid prefix"):
                    event("A", text)
        lab.wait_converged(timeout=5)
        assert {router: lab.loc_rib(router) for router in ("T", "A", "B")} == before
        assert all(state["state"] == "established" for state in lab.sessions("A").values())
    assert os.listdir(marks) == []
