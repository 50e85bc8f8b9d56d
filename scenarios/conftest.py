"""Each scenario test starts from the lab state it declares (its
``lab_state`` marker; the topology's baseline without one), whatever the
tests before it did or failed to do: see ``testbed.testing.baseline``."""

from testbed.testing.baseline import lab_state  # noqa: F401  (an autouse fixture)

