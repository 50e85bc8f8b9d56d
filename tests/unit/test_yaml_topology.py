"""YAML topologies (testbed.model.yaml_loader through testbed.topology.load).

Each row of ``ERRORS`` is a small YAML file with one mistake and the line
and text its problem must carry: the shape errors the loader reports
itself, and the ordinary validation's problems placed at the YAML line of
the declaration (or, for a policy, of the field) at fault. The README's
YAML example must give the same address plan as its Python example.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from testbed.model.addressing import plan
from testbed.errors import TopologyError
from testbed.model.yaml_loader import load_yaml, locate, read
from testbed.model.loader import available, load, resolve

README = Path(__file__).resolve().parents[2] / "README.md"

VALID = """\
name: t
ases:
  - {asn: 65001, name: A}
  - {asn: 65002, name: B}
relationships:
  - peering: [A, B]
"""

# (id, YAML text, the line, a fragment of the message)
ERRORS = [
    ("unknown top key", "name: t\nsystems: []\n", 2, "the topology: unknown key 'systems'"),
    ("unknown AS key", VALID.replace("name: B}", "name: B, colour: red}"), 4, "an AS: unknown key 'colour'"),
    ("AS not a mapping", VALID.replace("  - {asn: 65002, name: B}", "  - B"), 4, "an AS must be a mapping"),
    ("ases not a list", "name: t\nases: {asn: 1}\n", 2, "ases must be a list"),
    ("reserved ASN", VALID.replace("65002", "0"), 4, "AS 'B': ASN 0 is reserved"),
    ("bad name, block style", VALID.replace("  - {asn: 65002, name: B}", "  - asn: 65002\n    name: B b"),
     4, "AS name 'B b' cannot become an interface name"),
    ("dangling end", VALID + "  - transit: [A, C]\n", 7, "transit A -> C: no AS named 'C'"),
    ("one end", VALID + "  - transit: [A]\n", 7, "transit: name its two ends, [provider, customer]"),
    ("two kinds", VALID.replace("  - peering: [A, B]", "  - peering: [A, B]\n    transit: [A, B]"), 6,
     "exactly one kind"),
    ("unknown relationship key", VALID + "    speed: 10\n", 7, "a relationship: unknown key 'speed'"),
    ("bad bandwidth", VALID + "    bandwidth: -5\n", 6, "bandwidth"),
    ("no IXP", VALID + "    via: nowhere\n", 6, "no IXP named 'nowhere'"),
    ("policy field line", VALID + "    policy:\n      A:\n        import:\n          - action: reject\n"
     "          - match:\n              prefix: [\"10.0.0.1/8\"]\n            action: reject\n",
     12, "policy of A.import[1].match.prefix[0]: '10.0.0.1/8'"),
    ("policy unknown key", VALID + "    policy:\n      A:\n        max_prefixes: 3\n", 9,
     "policy of A: unknown key 'max_prefixes'"),
    ("ROA", VALID + "roas:\n  - {prefix: 192.0.2.1/24, asn: 65001}\n", 8, "192.0.2.1/24"),
    ("syntax", "name: t\nases:\n  - {asn: 1, name: A\n", 4, "YAML syntax"),
    ("duplicate key", "name: t\nname: u\n", 2, "YAML syntax"),
]


@pytest.mark.parametrize("text,line,fragment", [row[1:] for row in ERRORS], ids=[row[0] for row in ERRORS])
def test_each_error_names_its_yaml_line(tmp_path, text, line, fragment):
    path = tmp_path / "t.yaml"
    path.write_text(text)
    with pytest.raises(TopologyError) as caught:
        load(path)
    found = [p for p in caught.value.problems if fragment in p]
    assert found, f"no problem mentions {fragment!r}: {caught.value.problems}"
    location = re.match(r"^(.+):(\d+): ", found[0])
    assert location, found[0]
    assert Path(location.group(1)).resolve() == path.resolve()
    assert int(location.group(2)) == line, f"{found[0]} (expected line {line})\n{text}"


def test_a_valid_file_loads_with_lines(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(VALID)
    topo = load(path)
    assert [s.name for s in topo.systems] == ["A", "B"]
    assert [s.where.line for s in topo.systems] == [3, 4]
    assert topo.relationships[0].where.line == 6
    assert topo.source == str(path)


def test_every_api_call_has_a_yaml_form(tmp_path):
    path = tmp_path / "full.yaml"
    path.write_text(textwrap.dedent("""\
        name: full
        hold_time: 3
        ases:
          - {asn: 64500, name: T, pops: [west, east]}
          - {asn: 64501, name: A, prefixes: [203.0.113.0/24], hosts: [web, db], rov: true}
          - {asn: 64502, name: B, otc: true}
          - {asn: 64503, name: C}
          - {asn: 64504, name: D}
        ixps:
          - {name: ix, lan4: 198.18.7.0/24}
        route_servers:
          - {asn: 64510, name: RS, ixp: ix}
        internal_links:
          - {as: T, between: [west, east], cost: 20}
        relationships:
          - transit: [T, A]
            at: {T: west}
          - partial-transit: [T, B]
            at: {T: east}
          - paid_peering: [C, B]
            password: s3cret
          - peering: [A, C]
            via: ix
            policy: {A: {prepend: 2}}
          - transit: [C, D]
          - route_server_client: [A, RS]
          - route_server_client: [B, RS]
        roas:
          - {prefix: 203.0.113.0/24, asn: 64501, max_length: 24}
        """))
    topo = load(path)
    p = plan(topo)
    assert set(p.routers) == {"T-west", "T-east", "A", "B", "C", "D", "RS"}
    assert [h.name for h in p.hosts_of("A")] == ["web", "db"]
    kinds = [(r.kind.value, r.a, r.b, r.pop_of("T")) for r in topo.relationships]
    assert kinds[:3] == [("transit", "T", "A", "west"), ("partial-transit", "T", "B", "east"),
                         ("paid-peering", "C", "B", None)]
    assert topo.relationships[3].policy == {"A": {"prepend": 2}}
    assert topo.roas[0]["max_length"] == 24 and topo.systems[1].rov is True


def _yaml_block() -> str:
    return re.search(r"```yaml\n# topologies/my_lab.yaml\n(.*?)```", README.read_text(), re.S).group(1)


def _python_block() -> str:
    return re.search(r"```python\n# topologies/my_lab.py\n(.*?)```", README.read_text(), re.S).group(1)


def test_readme_yaml_example_is_the_python_example(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "my_lab.yaml").write_text(_yaml_block())
    (tmp_path / "b" / "my_lab.py").write_text(_python_block())
    from_yaml, from_python = plan(load(tmp_path / "a" / "my_lab.yaml")), plan(load(tmp_path / "b" / "my_lab.py"))
    assert from_yaml.routers == from_python.routers
    assert from_yaml.sessions == from_python.sessions
    assert from_yaml.hosts == from_python.hosts


def test_a_name_finds_a_yaml_file_near_a_scenario(tmp_path):
    (tmp_path / "topologies").mkdir()
    (tmp_path / "topologies" / "mine.yaml").write_text(VALID)
    assert resolve("mine", near=tmp_path / "scenarios") == tmp_path / "topologies" / "mine.yaml"
    assert resolve("mine.yaml", near=tmp_path / "topologies") == tmp_path / "topologies" / "mine.yaml"
    assert load(resolve("mine", near=tmp_path / "scenarios")).name == "t"


def test_shipped_yaml_topologies_are_listed_and_valid():
    yamls = [name for name in available() if resolve(name).suffix == ".yaml"]
    assert yamls, "no YAML topology is shipped"
    for name in yamls:
        load(name)


def test_locate_walks_a_field_path(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("a:\n  import:\n    - x: 1\n    - match:\n        prefix: [1, 2]\n")
    root = read(path)
    assert locate(root, "a.import[1].match.prefix[0]", 99) == 5
    assert locate(root, "a.import[0]", 99) == 3
    assert locate(root, "a.export", 99) == 1  # the deepest part that exists
    assert locate(root, "zz", 99) == 99


def test_load_yaml_leaves_validation_to_validate(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(VALID.replace("65002", "0"))
    topo = load_yaml(path)  # the shape is right; the ASN is validation's business
    assert topo.systems[1].asn == 0


def test_readme_yaml_error_example_is_what_validate_prints(tmp_path):
    import subprocess
    import sys

    text = README.read_text()
    body = re.search(r"```yaml\n# topologies/bad.yaml\n(.*?)```", text, re.S).group(1)
    sample = re.search(r"```text\n(error: topology in topologies/bad.yaml.*?)```", text, re.S).group(1)
    (tmp_path / "topologies").mkdir()
    (tmp_path / "topologies" / "bad.yaml").write_text(body)
    result = subprocess.run([str(Path(sys.executable).parent / "testbed"), "validate", "topologies/bad.yaml"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == sample.strip(), result.stderr
