"""The README's CLI transcript, typed into ``testbed up my_lab`` through a
pseudo-terminal as a person would (issue 15, item 10): every command the
README shows, ``exit`` included, with what each must print. The README's
example lab is cut out of README.md into a fresh project directory."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pexpect
import pytest

from testbed.lab import cleanup
from testbed.testing.children import default_signals, stop_child

pytestmark = pytest.mark.emulation
README = Path(__file__).resolve().parents[2] / "README.md"
BIN = Path(sys.executable).parent
PROMPT = "testbed:my_lab> "


def readme_files() -> dict[str, str]:
    found = {}
    for body in re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S):
        first = body.splitlines()[0]
        if first.startswith("# ") and first.endswith(".py"):
            found[first[2:]] = body
    return found


def transcript_commands() -> list[str]:
    block = re.search(r"```text\n(testbed:my_lab> .*?)```", README.read_text(), re.S).group(1)
    return [line[len(PROMPT):] for line in block.splitlines() if line.startswith(PROMPT)]


# What each command the README shows must print (every one must be listed).
EXPECTED = {
    "routes A": [r"routes of A \(AS64501\)", r"192\.0\.2\.0/25\s+│\s+\(own\)"],
    "sessions B": [r"B -> A \(peer\): established", r"B -> C \(peer\): established"],
    "astrace A-h1 C-h1": [r"A -> T -> C"],
    # B's prefix over the peering link, C's through T: BGP routes in A's kernel.
    "A ip route": [r"172\.16\.1\.0/24 (nhid \d+ )?via 10\.0\.0\.\d+ dev to-B proto bgp",
                   r"172\.16\.2\.0/24 (nhid \d+ )?via 10\.0\.0\.\d+ dev to-T proto bgp"],
    # Run on host A-h1, not router A: two routers (B, A) on the way back, so TTL 62.
    "A-h1 ping -c 1 B-h1": [r"PING 172\.16\.1\.10 ", r"1 received", r"ttl=62"],
    "A-h1 ping -c 1 C-h1": [r"PING 172\.16\.\d+\.10 ", r"1 received", r"ttl=61"],
    "pingall": [r"A-h1 -> T-h1 B-h1 C-h1 C-h2", r"\*\*\* Results: 0% dropped \(20/20 received\)"],
    "depeer A B": [r"converged in \d+\.\d+ s"],
    "repeer A B": [r"converged in \d+\.\d+ s"],
    "exit": [r"lab \w+ stopped in"],
}


def plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text).replace("\u2192", "->")


def test_every_cli_command_of_the_readme_runs_in_a_terminal(tmp_path):
    commands = transcript_commands()
    assert commands == list(EXPECTED), "the README's CLI transcript and this test differ"
    for name, body in readme_files().items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(body)
    root = tmp_path / "labs"
    child = pexpect.spawn(str(BIN / "testbed"), ["up", "topologies/my_lab.py"], cwd=str(tmp_path),
                          env={**os.environ, "TESTBED_WORKDIR": str(root)}, encoding="utf-8",
                          preexec_fn=default_signals, dimensions=(60, 160), timeout=90)
    seen: dict[str, str] = {}
    try:
        child.expect_exact(PROMPT)
        started = plain(child.before)
        lab_id = re.search(r"lab (\w+) of topology 'my_lab' converged", started).group(1)
        for command in commands:
            child.sendline(command)
            if command == "exit":
                child.expect(pexpect.EOF, timeout=60)
            else:
                child.expect_exact(PROMPT, timeout=60)
            seen[command] = plain(child.before)
        child.close()
        assert child.exitstatus == 0, seen
    finally:
        stop_child(child, root)
    for command, patterns in EXPECTED.items():
        for pattern in patterns:
            assert re.search(pattern, seen[command]), f"{command!r} printed:\n{seen[command]}"
    assert not cleanup.tagged_processes().get(lab_id)
    assert not (root / lab_id).exists()
