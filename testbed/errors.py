"""The project's exceptions: one root, a few a user can act on.

Library code raises these; only the CLI turns them into exit codes.
"""

from __future__ import annotations


class TestbedError(Exception):
    """Root of every error this project raises on purpose."""

    __test__ = False  # not a pytest test class, despite the name


class TopologyError(TestbedError):
    """A topology is invalid. ``problems`` lists every problem found, each
    naming where it is (the AS, link or IXP) and what is wrong."""

    def __init__(self, problems: list[str], source: str | None = None):
        self.problems = list(problems)
        self.source = source
        where = f" in {source}" if source else ""
        lines = [f"topology{where} is invalid ({len(self.problems)} problem"
                 f"{'s' if len(self.problems) != 1 else ''}):"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))


class MissingDependency(TestbedError):
    """The machine lacks something the lab needs (root, a program, a kernel
    feature). The message says what and how to get it."""


class LabError(TestbedError):
    """A lab failed to start or to carry out an event."""


class SpeakerCrashed(LabError):
    """A BGP speaker or route agent process exited while the lab ran."""


class ConvergenceTimeout(LabError):
    """Routing did not reach the expected state in time. The message lists
    what was still missing, router by router."""


class SettledWrong(ConvergenceTimeout):
    """Routing stopped changing (no router received or changed anything for
    a while) with every session as expected but some RIB not as predicted:
    waiting longer would not help. Told apart from a lab still converging
    when its timeout came (a plain ``ConvergenceTimeout``)."""


class NoConvergence(TestbedError):
    """The BGP model found no stable routing state (the policies oscillate)."""
