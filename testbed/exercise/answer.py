"""A participant's answer file: read, checked, refused with its line.

An answer is YAML, in the README's policy language::

    policy:                 # your router's sessions: neighbor -> session policy
      P2:
        export:
          - {match: {learned_from: provider}, action: reject}
    announce:               # prefixes your AS starts to originate
      - {prefix: 198.18.0.0/23, communities: ["64502:80"]}
    depeer: [B]             # sessions your router shuts down
    predict: ...            # only the keys an exercise asks for (answer_keys)

``parse_answer(path, plan, exercise)`` checks everything against the lab's
address plan before anything is applied and raises ``AnswerError``, whose
problems each name the file, line and field path. Pure: no lab is touched.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from testbed.bgp.community import community_set, large_set
from testbed.bgp.rules import PolicyError, parse_policy
from testbed.errors import TestbedError
from testbed.model.yaml_loader import locate, plain, policy_path, read
from testbed.model.topology import Where

KEYS = {"policy", "announce", "depeer"}
ANNOUNCE_KEYS = {"prefix", "communities", "large_communities"}


class AnswerError(TestbedError):
    """An answer file that cannot be applied; ``problems`` say where."""

    def __init__(self, problems: list[str], source: str):
        self.problems = problems
        super().__init__(f"answer {source} is refused, the lab is left as it was "
                         f"({len(problems)} problem{'s' if len(problems) != 1 else ''}):\n"
                         + "\n".join(f"  - {p}" for p in problems))


@dataclass
class Answer:
    """A checked answer: what to apply to the participant's router."""

    source: str
    policy: dict = field(default_factory=dict)  # neighbor -> policy (plain data)
    announce: list = field(default_factory=list)  # [{"prefix", "communities", "large_communities"}]
    depeer: list = field(default_factory=list)  # neighbor names
    extra: dict = field(default_factory=dict)  # the exercise's own keys (answer_keys)


def parse_answer(path: str | Path, plan, router: str, answer_keys=()) -> Answer:
    """The answer in ``path`` for ``router`` of ``plan``, or ``AnswerError``."""
    path = Path(path)
    try:
        root = read(path)
    except TestbedError as exc:  # YAML syntax, with its line
        raise AnswerError(getattr(exc, "problems", [str(exc)]), str(path)) from None
    problems: list[str] = []

    def at(field_path: str) -> str:
        return f"{Where(str(path), locate(root, field_path, 1))}: {field_path}: "

    if root is None:
        root = {}
    if not isinstance(root, dict):
        raise AnswerError([f"{Where(str(path), 1)}: the answer must be a mapping (policy:, announce:, ...)"],
                          str(path))
    allowed = KEYS | set(answer_keys)
    for key in root:
        if key not in allowed:
            problems.append(f"{at(str(key))}unknown key (known: {', '.join(sorted(allowed))})")
    answer = Answer(str(path))
    me = plan.routers[router]
    neighbors = [n.name for n in me.neighbors]
    policies = root.get("policy") or {}
    if not isinstance(policies, dict):
        problems.append(f"{at('policy')}must map a neighbor of {router} to its policy")
        policies = {}
    for neighbor, data in policies.items():
        if neighbor not in neighbors:
            problems.append(f"{at(f'policy.{neighbor}')}{router} has no session with {neighbor!r} "
                            f"(its neighbors: {', '.join(neighbors)})")
            continue
        try:
            parse_policy(plain(data), f"policy.{neighbor}")
        except PolicyError as exc:
            where = Where(str(path), locate(root, policy_path(str(exc)), 1))
            problems.append(f"{where}: {exc}")
            continue
        answer.policy[neighbor] = plain(data)
    own = [ipaddress.ip_network(p) for p in me.prefixes]
    announce = root.get("announce") or []
    if not isinstance(announce, list):
        problems.append(f"{at('announce')}must be a list of {{prefix: ..., communities: [...]}}")
        announce = []
    for index, item in enumerate(announce):
        here = f"announce[{index}]"
        if isinstance(item, str):
            item = {"prefix": item}
        if not isinstance(item, dict):
            problems.append(f"{at(here)}must be a prefix or {{prefix: ..., communities: [...]}}")
            continue
        unknown = set(item) - ANNOUNCE_KEYS
        if unknown:
            problems.append(f"{at(here)}unknown key {sorted(unknown)[0]!r} (known: "
                            f"{', '.join(sorted(ANNOUNCE_KEYS))})")
            continue
        try:
            net = ipaddress.ip_network(str(item.get("prefix")), strict=True)
        except ValueError as exc:
            problems.append(f"{at(here + '.prefix')}{item.get('prefix')!r}: {exc}")
            continue
        if not any(net.version == o.version and net.subnet_of(o) for o in own):
            problems.append(f"{at(here + '.prefix')}{net} is not inside your prefixes "
                            f"({', '.join(map(str, own))})")
            continue
        try:
            community_set(plain(item.get("communities") or []))
        except (ValueError, TypeError) as exc:
            problems.append(f"{at(here + '.communities')}{exc}")
            continue
        try:
            large_set(plain(item.get("large_communities") or []))
        except (ValueError, TypeError) as exc:
            problems.append(f"{at(here + '.large_communities')}{exc}")
            continue
        answer.announce.append({"prefix": str(net),
                                "communities": plain(item.get("communities") or []),
                                "large_communities": plain(item.get("large_communities") or [])})
    depeer = root.get("depeer") or []
    if not isinstance(depeer, list):
        problems.append(f"{at('depeer')}must be a list of neighbor names")
        depeer = []
    for index, neighbor in enumerate(depeer):
        if neighbor not in neighbors:
            problems.append(f"{at(f'depeer[{index}]')}{router} has no session with {neighbor!r} "
                            f"(its neighbors: {', '.join(neighbors)})")
        else:
            answer.depeer.append(str(neighbor))
    answer.extra = {k: plain(root[k]) for k in answer_keys if k in root}
    if problems:
        raise AnswerError(problems, str(path))
    return answer
