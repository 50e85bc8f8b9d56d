"""Criteria of the exercise depeering (see exercise.yaml)."""

from testbed.assertions import assert_session_down
from testbed.exercise import criterion

OTHERS = ("T2", "C2", "M")


@criterion("your session with T2 is down",
           hint="the session with T2 is still Established: depeer it (depeer: [T2]).")
def depeered(lab):
    assert_session_down(lab, "You", "T2")


@criterion("your prediction of what C1 reaches is right",
           hint="after a depeering, C1 keeps only routes its provider (you) still learns from "
                "customers: M announces its own prefix to both providers, but a customer never "
                "passes one provider's routes to the other, so T2 and C2 are gone.")
def prediction_right(lab, answer):
    predict = answer.extra.get("predict") or {}
    reachable = set(predict.get("reachable") or []) if isinstance(predict, dict) else set()
    unreachable = set(predict.get("unreachable") or []) if isinstance(predict, dict) else set()
    assert reachable | unreachable == set(OTHERS) and not reachable & unreachable, (
        f"the prediction must name each of {', '.join(OTHERS)} once, as reachable or "
        f"unreachable; it says reachable {sorted(reachable)}, unreachable {sorted(unreachable)}")
    actual = {name for name in OTHERS if lab.route("C1", lab.prefix_of(name)) is not None}
    wrong = sorted((reachable - actual) | (unreachable & actual))
    assert not wrong, (f"C1 has routes to {sorted(actual) or 'none of them'} and none to "
                       f"{sorted(set(OTHERS) - actual) or 'none'}; the prediction was wrong about "
                       f"{', '.join(wrong)}")
