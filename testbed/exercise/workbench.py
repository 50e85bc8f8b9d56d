"""An exercise's lab: start it with its gap, apply answers, reset, check.

``Workbench(exercise)`` owns one ``Lab`` of the exercise's topology.
``start()`` starts it and plays the exercise's set-up events (a hijack
announced, ...). ``check(answer_path)`` parses the answer first (an invalid
one raises ``AnswerError`` and changes nothing), puts the participant's
router back as it was at the start (policies, announcements, depeered or
max-prefix-closed sessions), applies the answer with the lab's own events
(``set_policy``, ``announce``, ``depeer``), waits for convergence and runs
the criteria. The harness process and the grader both drive one of these.
"""

from __future__ import annotations

import time

from testbed.bgp.rules import parse_policy
from testbed.lab import Lab
from testbed.exercise.answer import Answer, parse_answer
from testbed.exercise.model import Exercise, Result, run_criteria


def _import_side(data) -> tuple:
    """What of a session policy applies to received routes: a change of it
    resets the session (``RouterEngine.set_policy``)."""
    p = parse_policy(data)
    return (p.import_terms, p.local_pref, p.max_prefix, p.blackhole, p.rov, p.otc)


class Workbench:
    """One exercise lab; see the module docstring."""

    def __init__(self, exercise: Exercise, **lab_options):
        self.exercise = exercise
        self.lab = Lab(exercise.topology_file, **lab_options)
        self.router = exercise.router
        if self.router not in self.lab.plan.routers:
            from testbed.exercise.model import ExerciseError

            raise ExerciseError(f"exercise {exercise.name}: its router {self.router!r} is not in its topology")
        self.baseline = {n.name: self.lab.policy(self.router, n.name)
                         for n in self.lab.plan.routers[self.router].neighbors}
        self.applied: Answer | None = None

    def start(self) -> "Workbench":
        try:
            self.lab.start()
            for event in self.exercise.setup:
                self._setup(event)
            self.lab.wait_converged()
        except BaseException:
            self.lab.stop()
            raise
        return self

    def _setup(self, event: dict) -> None:
        (kind, args), = event.items()
        if kind == "announce":
            self.lab.announce(args["as"], args["prefix"], wait=False,
                              communities=args.get("communities", ()),
                              large_communities=args.get("large_communities", ()))
        elif kind == "withdraw":
            self.lab.withdraw(args["as"], args["prefix"], wait=False)
        elif kind == "depeer":
            self.lab.depeer(args[0], args[1], wait=False)

    def stop(self) -> None:
        self.lab.stop()

    def parse(self, path) -> Answer:
        return parse_answer(path, self.lab.plan, self.router, self.exercise.answer_keys)

    def reset(self) -> None:
        """Put the participant's router back as it was after ``start``."""
        lab, me = self.lab, self.router
        for neighbor, policy in self.baseline.items():
            if lab.policy(me, neighbor) != policy:
                lab.set_policy(me, neighbor, policy, wait=False)
        # Sessions the answer shut, or a maximum-prefix limit closed, on
        # either side of the router's sessions.
        for neighbor in self.baseline:
            if neighbor in lab.disabled[me] or me in lab.disabled.get(neighbor, ()):
                lab.repeer(me, neighbor, wait=False)
        if self.applied is not None:
            own = set(lab.plan.routers[me].prefixes)
            for item in self.applied.announce:
                if item["prefix"] in own:  # originated from the start: only its tags go
                    lab.announce(me, item["prefix"], wait=False)
                else:
                    lab.withdraw(me, item["prefix"], wait=False)
        self.applied = None
        lab.wait_converged()

    def apply(self, answer: Answer) -> None:
        """Reset, then apply ``answer`` and wait until routing converged."""
        self.reset()
        lab, me = self.lab, self.router
        self.applied = answer
        resets = {}
        for neighbor, policy in answer.policy.items():
            session = lab.sessions(me)[neighbor]
            if _import_side(lab.policy(me, neighbor)) != _import_side(policy) \
                    and session["state"] == "established":
                resets[neighbor] = session["flaps"]
            lab.set_policy(me, neighbor, policy, wait=False)
        self._settle(resets)
        for item in answer.announce:
            lab.announce(me, item["prefix"], wait=False, communities=item["communities"],
                         large_communities=item["large_communities"])
        for neighbor in answer.depeer:
            lab.depeer(me, neighbor, wait=False)
        lab.wait_converged()

    def _settle(self, flaps: dict[str, int], timeout: float = 10.0) -> None:
        """Wait until each session whose import policy changed has been
        reset (its flap count moved) and is up again or held shut by a
        maximum-prefix limit. Without this, convergence could be declared
        during the reset itself, while the session is briefly down, which
        is also what a limit that will trip expects."""
        lab, me = self.lab, self.router
        deadline = time.monotonic() + timeout
        while flaps and time.monotonic() < deadline:
            sessions = lab.sessions(me)
            flaps = {n: f for n, f in flaps.items()
                     if not (sessions[n]["flaps"] > f and (sessions[n]["state"] == "established"
                                                          or n in lab.disabled[me]
                                                          or sessions[n].get("shut")))}
            if flaps:
                lab.wait_converged()  # follows the agents' state changes; returns when settled
                time.sleep(0.05)

    def check(self, path) -> list[Result]:
        """Parse (refusing an invalid answer untouched), apply, run the criteria."""
        answer = self.parse(path)
        self.apply(answer)
        return run_criteria(self.lab, self.exercise, answer)
