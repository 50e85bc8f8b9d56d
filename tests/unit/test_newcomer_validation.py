"""Validation refuses, before anything is created, what used to pass and
then fail inside the kernel or ExaBGP (issue 15, items 5-8): strings with a
trailing newline, names the address plan uses itself, special-purpose
prefixes, ROAs for reserved ASNs, and a topology file that raises."""

import ipaddress
import textwrap
from pathlib import Path

import pytest

from testbed import Topology
from testbed.errors import TopologyError
from testbed.model import special_prefixes
from testbed.model.loader import load
from testbed.model.validate import problems

HERE = Path(__file__).name


def pair(**options) -> Topology:
    topo = Topology("pair", **options)
    topo.add_as(64500, "T")
    topo.add_as(64501, "A")
    return topo


def only_problem(topo: Topology) -> str:
    found = problems(topo)
    assert len(found) == 1, found
    assert found[0].startswith(f"{topo.source or ''}") and f"{HERE}:" in found[0], found[0]
    return found[0]


@pytest.mark.parametrize("field, words", [
    ("as", "AS name 'T\\n' cannot become an interface name"),
    ("ixp", "IXP name 'ix\\n' cannot become an interface name"),
    ("host", "host name 'T-x\\n'"),
    ("pop", "PoP name 'west\\n'"),
    ("password", "password"),
    ("delay", "delay"),
    ("topology", "topology name 'nl\\n'"),
])
def test_a_trailing_newline_is_refused_in_every_string_that_reaches_the_kernel_or_exabgp(field, words):
    topo = Topology("nl\n" if field == "topology" else "nl")
    t = topo.add_as(64500, "T\n" if field == "as" else "T", hosts=["T-x\n"] if field == "host" else 1)
    a = topo.add_as(64501, "A", pops=["west\n"] if field == "pop" else None)
    ix = topo.add_ixp("ix\n" if field == "ixp" else "ix")
    topo.transit(t, a, password="secret\n" if field == "password" else None,
                 delay="20ms\n" if field == "delay" else None)
    topo.peering(t, a, via=ix)
    found = [p for p in problems(topo) if words in p]
    assert found and f"{HERE}:" in found[0], problems(topo)


@pytest.mark.parametrize("name", ["peering", "lo", "all", "default"])
def test_a_member_named_like_the_plans_own_interfaces_is_refused_with_the_reason(name):
    topo = Topology("ixnames")
    topo.add_as(64500, "T")
    topo.add_as(64501, name)
    ix = topo.add_ixp("ix")
    topo.peering("T", name, via=ix)
    found = [p for p in problems(topo) if f"'{name}'" in p and "reserved" in p]
    assert found and f"{HERE}:" in found[0], problems(topo)


@pytest.mark.parametrize("prefix, words", [
    ("::ffff:0:0/96", "IPv4-mapped Address, RFC 4291"),
    ("0.0.0.0/8", '"This network", RFC 791'),
    ("240.0.0.0/4", "Reserved, RFC 1112"),
    ("0.0.0.0/0", "holds 0.0.0.0/8"),
    ("192.0.0.0/24", "IETF Protocol Assignments, RFC 6890"),
    ("100::/64", "Discard-Only Address Block, RFC 6666"),
    ("2002::/16", "6to4, RFC 3056"),
    ("255.255.255.255/32", "Limited Broadcast, RFC 919"),
])
def test_special_purpose_prefixes_are_refused_with_the_rfcs_name(prefix, words):
    topo = Topology("special")
    topo.add_as(64500, "T")
    topo.add_as(64501, "A", [prefix])
    topo.transit("T", "A")
    found = [p for p in problems(topo) if prefix in p]
    assert len(found) == 1 and words in found[0] and f"{HERE}:" in found[0], problems(topo)


def test_documentation_and_benchmarking_ranges_need_the_topologys_mark():
    for allow, refused in ((("documentation", "benchmarking"), False), ((), True), (("documentation",), True)):
        topo = Topology("marked", allow_special=allow)
        topo.add_as(64500, "T", ["192.0.2.0/24"] if "documentation" not in allow else None)
        topo.add_as(64501, "A", ["198.18.0.0/24", "2001:2::/48"])  # benchmarking
        topo.transit("T", "A")
        found = problems(topo)
        assert bool(found) == refused, found
        if refused:
            assert any("benchmarking range" in p and "RFC 2544" in p and "allow_special" in p for p in found)
    # Private-use and unique-local space routes like any other.
    topo = Topology("private")
    topo.add_as(64500, "T", ["192.168.1.0/24", "fd12:3456::/48"])
    topo.add_as(64501, "A", ["100.64.1.0/24"])
    topo.transit("T", "A")
    assert problems(topo) == []


def test_an_unknown_kind_of_special_range_is_refused():
    topo = pair(allow_special=("everything",))
    topo.transit("T", "A")
    assert "allow_special: 'everything'" in only_problem(topo)


def test_the_registry_decides_by_the_most_specific_range():
    assert special_prefixes.problem(ipaddress.ip_network("2001:2::/48")) is None  # benchmarking in 2001::/23
    assert "IETF Protocol Assignments" in special_prefixes.problem(ipaddress.ip_network("2001:3::/32"))
    assert special_prefixes.problem(ipaddress.ip_network("185.1.0.0/16")) is None


@pytest.mark.parametrize("asn, words", [(0, "RFC 7607"), (23456, "AS_TRANS (RFC 6793)")])
def test_a_roa_for_a_reserved_asn_is_refused_like_the_asn_on_an_as(asn, words):
    topo = pair()
    topo.transit("T", "A")
    topo.roa("198.51.100.0/24", asn)
    assert f"ASN {asn} is reserved" in only_problem(topo) or words in only_problem(topo)
    assert words in only_problem(topo)


def test_a_roa_for_a_special_prefix_is_refused():
    topo = pair()
    topo.transit("T", "A")
    topo.roa("240.0.0.0/8", 64501)
    assert "Reserved, RFC 1112" in only_problem(topo)


def test_an_exception_inside_a_topology_file_names_its_line(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text(textwrap.dedent("""\
        from testbed import Topology

        topology = Topology("broken")
        topology.add_as(64500, "T")
        topology.add_as(64501, "A")
        topology.transit("T", undefined_name)
    """))
    with pytest.raises(TopologyError) as info:
        load(path)
    assert f"{path}:6: importing it failed: NameError: name 'undefined_name' is not defined" in str(info.value)
    path.write_text("from testbed import Topology\n\ntopology = Topology(\"x\"\n")
    with pytest.raises(TopologyError) as info:
        load(path)
    assert f"{path}:3: importing it failed: SyntaxError" in str(info.value)
