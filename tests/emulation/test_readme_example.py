"""The README's own example, run as a newcomer would run it: the topology
and scenario files are cut out of README.md, saved into a fresh project
directory, and run with pytest. If the README drifts from the code, this
fails."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def blocks() -> dict[str, str]:
    found = {}
    for body in re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S):
        first = body.splitlines()[0]
        if first.startswith("# ") and first.endswith(".py"):
            found[first[2:]] = body
    return found


def test_readme_example_is_short():
    files = blocks()
    assert set(files) == {"topologies/my_lab.py", "scenarios/test_my_lab.py"}
    lines = sum(len([l for l in body.splitlines() if l.strip()]) for body in files.values())
    assert lines < 40, f"the README's example takes {lines} lines, the promise is under 40"


@pytest.mark.emulation
def test_readme_example_passes(tmp_path):
    for name, body in blocks().items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(body)
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "scenarios/test_my_lab.py"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
    # `testbed run PATH`, as the README shows: the story, the outcome, the measurement.
    result = subprocess.run([str(Path(sys.executable).parent / "testbed"), "run", "scenarios/test_my_lab.py"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    flat = " ".join(result.stdout.replace("│", " ").split())
    assert "peers use their peering passed" in flat and "convergence:" in flat, result.stdout


def test_readme_validation_example_matches_the_real_messages(tmp_path):
    sample = re.search(r"```text\n(error: topology in topologies/bad.py.*?)```", README.read_text(), re.S).group(1)
    bad = tmp_path / "topologies" / "bad.py"
    bad.parent.mkdir()
    bad.write_text('from testbed import Topology\ntopology = Topology("bad")\n\n'
                   'topology.add_as(0, "A")\ntopology.add_as(64501, "B b")\ntopology.peering("A", "C")\n')
    result = subprocess.run([str(Path(sys.executable).parent / "testbed"), "validate", "topologies/bad.py"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == sample.strip(), result.stderr
